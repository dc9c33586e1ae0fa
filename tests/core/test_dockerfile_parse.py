"""The line-range splitter against BuildKit's parser test files and hand-made edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.dockerfile.parse import DockerfileParseError, parse

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTAX = SHARED / "corpus" / "dockerfile-syntax"


def _syntax_files() -> list[Path]:
    if not SYNTAX.is_dir():
        return []
    return sorted(
        p for p in SYNTAX.rglob("*") if p.is_file() and (p.name == "Dockerfile" or p.name.endswith(".Dockerfile"))
    )


def _result_names(result: Path) -> list[str]:
    return [line[1:].split(" ", 1)[0].rstrip(")") for line in result.read_text().splitlines() if line.startswith("(")]


def test_corpus_present_or_skip() -> None:
    if not SYNTAX.is_dir():
        pytest.skip("../shared/corpus/dockerfile-syntax not present")
    assert len(_syntax_files()) >= 40


@pytest.mark.parametrize("path", _syntax_files(), ids=lambda p: str(p.relative_to(SYNTAX)))
def test_instruction_view_agrees_with_buildkit(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    negative = "testfiles-negative" in path.parts
    if negative:
        with pytest.raises(DockerfileParseError):
            parse(text)
        return
    df = parse(text)
    lines = text.split("\n")
    for inst in df.instructions:
        assert 0 <= inst.start <= inst.end < len(lines) + 1
        first = df.lines[inst.start].lstrip("\ufeff").lstrip()
        assert first.split()[0].upper() == inst.keyword if first.split() else False
    starts = [i.start for i in df.instructions]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert "".join(df.lines) == text, "the physical lines must rebuild the file byte for byte"
    result = path.parent / "result"
    if result.exists():
        assert [i.keyword.lower() for i in df.instructions] == _result_names(result)
        for line, inst in zip(result.read_text().splitlines(), df.instructions, strict=False):
            # For a single shell-form argument BuildKit dumps the joined logical line: compare it.
            prefix = f'({inst.keyword.lower()} "'
            if (
                inst.keyword in ("RUN", "CMD")
                and not inst.flags
                and line.startswith(prefix)
                and line.endswith('")')
                and '" "' not in line
                and inst.json_args() is None
            ):
                assert json.loads(line[len(prefix) - 1 : -1]) == inst.args.strip()


def test_escape_directive_backtick_and_continuations() -> None:
    text = "# escape=`\nFROM windows `\n  AS base\nRUN dir `\n# comment inside\n\n  c:\\\nCOPY . .\n"
    df = parse(text)
    assert df.escape == "`"
    assert [(i.keyword, i.start, i.end) for i in df.instructions] == [("FROM", 1, 2), ("RUN", 3, 6), ("COPY", 7, 7)]
    assert df.instructions[1].args == "dir   c:\\"


def test_escape_directive_after_comment_is_ignored() -> None:
    df = parse("# hello\n# escape=`\nFROM a\nRUN x `\nRUN y\n")
    assert df.escape == "\\"
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "RUN"]


def test_heredocs_span_their_bodies() -> None:
    text = (
        "FROM a\nRUN <<EOF\nRUN not an instruction\nEOF\nCOPY <<-END /x\n\tbody\n\tEND\n"
        'RUN cat <<\'A\' <<"B"\na\nA\nb\nB\nRUN ["echo", "<<EOF"]\n'
    )
    df = parse(text)
    assert [(i.keyword, i.start, i.end) for i in df.instructions] == [
        ("FROM", 0, 0),
        ("RUN", 1, 3),
        ("COPY", 4, 6),
        ("RUN", 7, 11),
        ("RUN", 12, 12),
    ]
    assert df.instructions[1].heredocs == ("RUN not an instruction\n",)
    assert df.instructions[3].heredocs == ("a\n", "b\n")


def test_unterminated_heredoc_is_an_error() -> None:
    with pytest.raises(DockerfileParseError):
        parse("FROM a\nRUN <<EOF\necho\n")


def test_crlf_bom_and_no_final_newline() -> None:
    text = "\ufeffFROM a\r\nRUN echo \\\r\n  b\r\nCMD x"
    df = parse(text)
    assert df.newline == "\r\n"
    assert [(i.keyword, i.start, i.end) for i in df.instructions] == [("FROM", 0, 0), ("RUN", 1, 2), ("CMD", 3, 3)]
    assert "".join(df.lines) == text


def test_escaped_escape_does_not_continue() -> None:
    df = parse("FROM a\nENV C trailing\\\\\nENV D x\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "ENV", "ENV"]


def test_stages_and_names() -> None:
    df = parse("ARG V=1\nFROM a:${V} AS Build\nRUN x\nFROM build\nCOPY --from=build /a /b\n")
    assert [(s.index, s.name, s.base) for s in df.stages] == [(0, "build", "a:${V}"), (1, None, "build")]
    assert df.instructions[0].stage == -1
