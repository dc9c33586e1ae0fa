"""Split a Dockerfile into instructions with exact physical line ranges, as BuildKit's parser does.

Mirrors `moby/buildkit/frontend/dockerfile/parser/parser.go`: parser directives (`# syntax=`, `# escape=`)
only before anything else, the escape token as line continuation (unless itself escaped), comment and
blank lines skipped inside a continuation, heredocs (`<<EOF`, `<<-EOF`, quoted names) on RUN/COPY/ADD
in shell form. Nothing is normalised: callers splice the original lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_VALID_DIRECTIVES = {"escape", "syntax", "check"}
_HEREDOC_KEYWORDS = {"RUN", "COPY", "ADD"}
_JSON_KEYWORDS = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}
KEYWORDS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)


class DockerfileParseError(ValueError):
    """The text is not a Dockerfile BuildKit would accept (or not one this splitter understands)."""


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, its logical text and the physical lines it occupies."""

    index: int
    keyword: str
    start: int
    end: int
    line_text: str
    flags: tuple[str, ...]
    args: str
    heredocs: tuple[str, ...]
    stage: int

    @property
    def lineno(self) -> int:
        """1-based number of the first physical line."""
        return self.start + 1

    def flag(self, name: str) -> str | None:
        """Value of `--name=value` (or "" for a bare `--name`), else None."""
        for flag in self.flags:
            key, _, value = flag[2:].partition("=")
            if key.lower() == name:
                return value
        return None

    def json_args(self) -> list[str] | None:
        """The exec-form list when the arguments are a JSON string array."""
        value = _json_array(self.args)
        if value is None or not all(isinstance(v, str) for v in value):
            return None
        return [str(v) for v in value]


@dataclass(frozen=True)
class Stage:
    """One build stage: from its FROM to the instruction before the next FROM."""

    index: int
    name: str | None
    base: str
    first: int
    last: int


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: original physical lines plus the instruction view."""

    lines: tuple[str, ...]
    instructions: tuple[Instruction, ...]
    escape: str
    directive_lines: int

    @property
    def newline(self) -> str:
        """The line ending the file mostly uses (CRLF or LF)."""
        crlf = sum(1 for line in self.lines if line.endswith("\r\n"))
        lf = sum(1 for line in self.lines if line.endswith("\n"))
        return "\r\n" if crlf and crlf * 2 >= lf else "\n"

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        """The build stages in order (computed once: callers ask per instruction)."""
        out: list[Stage] = []
        froms = [i for i in self.instructions if i.keyword == "FROM"]
        for n, frm in enumerate(froms):
            last = froms[n + 1].index - 1 if n + 1 < len(froms) else len(self.instructions) - 1
            words = split_words(frm.args)
            name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            out.append(Stage(n, name, words[0] if words else "", frm.index, last))
        return tuple(out)

    @cached_property
    def _first_named(self) -> dict[str, int]:
        """Stage name -> index of the first stage with that name."""
        out: dict[str, int] = {}
        for stage in self.stages:
            if stage.name is not None:
                out.setdefault(stage.name, stage.index)
        return out

    @cached_property
    def _first_of(self) -> dict[str, int]:
        """Keyword -> index of its first instruction."""
        out: dict[str, int] = {}
        for inst in self.instructions:
            out.setdefault(inst.keyword, inst.index)
        return out

    def first_index(self, keyword: str) -> int | None:
        """Index of the first instruction with this (upper-case) keyword, else None."""
        return self._first_of.get(keyword)

    def stage_ref(self, value: str, upto: int) -> Stage | None:
        """The first of the stages before ``upto`` named ``value`` (or numbered ``value``), else None."""
        found = [i for i in (self._first_named.get(value.lower()),) if i is not None]
        # Only the canonical decimal spelling names a stage by number (`01` does not); the length check keeps
        # int() away from Python's limit on very long digit strings.
        if value.isascii() and value.isdecimal() and len(value) < 19 and str(int(value)) == value:
            found.append(int(value))
        found = [i for i in found if i < min(upto, len(self.stages))]
        return self.stages[min(found)] if found else None

    def stage_instructions(self, stage: Stage) -> tuple[Instruction, ...]:
        """Instructions of one stage, FROM included."""
        return self.instructions[stage.first : stage.last + 1]

    def block(self, inst: Instruction) -> str:
        """The exact original text of one instruction (all its physical lines)."""
        return "".join(self.lines[inst.start : inst.end + 1])


def split_lines(text: str) -> tuple[str, ...]:
    """Physical lines split on LF only, endings kept (BuildKit does not break on a lone CR)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return tuple(out)


def _continuation(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, quotes kept together (quotes removed)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                cur.append(text[i])
            else:
                cur.append(ch)
        elif ch in "'\"":
            quote = ch
            in_word = True
        elif ch.isspace():
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words


def _raw_words(text: str) -> list[str]:
    """Shell words with quotes and escapes kept (BuildKit's RawQuotes/RawEscapes lexing)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                cur.append(text[i])
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            cur.append(ch)
            i += 1
            cur.append(text[i])
        elif ch.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def heredoc_names(line: str) -> list[tuple[str, bool]]:
    """(terminator, chomp) of every heredoc opened on an instruction line."""
    out: list[tuple[str, bool]] = []
    for word in _raw_words(line):
        match = _HEREDOC.match(word)
        if not match or not match.group(3):
            continue
        inner = split_words(match.group(3))
        if len(inner) != 1:
            continue
        out.append((inner[0], match.group(2) == "-"))
    return out


def _split_command(line: str) -> tuple[str, tuple[str, ...], str]:
    """Keyword, leading `--flags` and the rest, as BuildKit's splitCommand/extractBuilderFlags."""
    stripped = line.strip()
    parts = stripped.split(None, 1)
    keyword = parts[0] if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    flags: list[str] = []
    while rest.startswith("--"):
        match = re.match(r"(--(?:[^\s\"']|\"[^\"]*\"|'[^']*')*)\s*", rest)
        if not match:
            break
        word = match.group(1)
        if word == "--":
            break
        flags.append(word)
        rest = rest[match.end() :]
    return keyword, tuple(flags), rest


def parse(text: str) -> Dockerfile:
    """Parse ``text``; raise DockerfileParseError where BuildKit would fail."""
    # Every build of a buildspec reads its Dockerfile again: parse each text once (the result is immutable).
    return _parse_cached(text)


@lru_cache(maxsize=32)
def _parse_cached(text: str) -> Dockerfile:
    """The cached parse: at most 32 Dockerfiles, each under the 1 MiB the readers accept."""
    lines = split_lines(text)
    escape = "\\"
    cont = _continuation(escape)
    done = False
    seen: set[str] = set()
    directive_lines = 0
    instructions: list[Instruction] = []
    stage = -1
    i = 0

    def process(raw: str, first: bool) -> str:
        nonlocal done, escape, cont, directive_lines
        token = raw.rstrip("\r\n")
        if first:
            token = token.lstrip()
        if not done:
            match = _DIRECTIVE.match(token)
            key = match.group(1).lower() if match else ""
            if not match or key not in _VALID_DIRECTIVES:
                done = True
            else:
                if key in seen:
                    raise DockerfileParseError(f"only one {key} parser directive can be used")
                seen.add(key)
                directive_lines = i + 1
                if key == "escape":
                    value = match.group(2)
                    if value not in ("`", "\\"):
                        raise DockerfileParseError(f"invalid escape token {value!r}")
                    escape = value
                    cont = _continuation(escape)
        return "" if token.startswith("#") else token

    def is_comment(raw: str) -> bool:
        return raw.rstrip("\r\n").lstrip().startswith("#")

    while i < len(lines):
        raw = lines[i]
        if i == 0 and raw.startswith("\ufeff"):
            raw = raw[1:]
        token = process(raw, True)
        start = i
        i += 1
        line, ended = _trim(token, cont)
        if ended and line == "":
            continue
        while not ended and i < len(lines):
            raw = lines[i]
            token = process(raw, False)
            i += 1
            if is_comment(raw):
                continue
            if not token.strip():
                continue
            more, ended = _trim(token, cont)
            line += more
        keyword, flags, args = _split_command(line)
        upper = keyword.upper()
        _check(upper, args)
        heredocs: list[str] = []
        if upper in _HEREDOC_KEYWORDS and _json_array(args) is None:
            for name, chomp in heredoc_names(line):
                body: list[str] = []
                while True:
                    if i >= len(lines):
                        raise DockerfileParseError(f"unterminated heredoc {name} at line {start + 1}")
                    candidate = lines[i].rstrip("\r\n")
                    if chomp:
                        candidate = candidate.lstrip("\t")
                    i += 1
                    if candidate == name:
                        break
                    body.append(lines[i - 1])
                heredocs.append("".join(body))
        if upper == "FROM":
            stage += 1
        instructions.append(
            Instruction(
                index=len(instructions),
                keyword=upper,
                start=start,
                end=i - 1,
                line_text=line,
                flags=flags,
                args=args,
                heredocs=tuple(heredocs),
                stage=stage,
            )
        )
    if not instructions:
        raise DockerfileParseError("file with no instructions")
    return Dockerfile(lines=lines, instructions=tuple(instructions), escape=escape, directive_lines=directive_lines)


def _trim(token: str, cont: re.Pattern[str]) -> tuple[str, bool]:
    if cont.search(token):
        return cont.sub(r"\1", token), False
    return token, True


def _json_array(args: str) -> list[object] | None:
    """The arguments as a JSON array (the exec form), or None when they are not one."""
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested past Python's limit
        return None
    return value if isinstance(value, list) else None


def _check(keyword: str, args: str) -> None:
    """The few argument errors BuildKit's line parsers raise (see testfiles-negative)."""
    text = args.strip()
    if keyword in _JSON_KEYWORDS and text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: arrays nested past Python's limit
            return
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise DockerfileParseError(f"{keyword}: JSON array must hold only strings")
    if keyword == "ENV":
        words = split_words(text)
        if not words:
            raise DockerfileParseError("ENV requires at least one argument")
        if "=" not in words[0] and len(words) < 2:
            raise DockerfileParseError("ENV must have two arguments")
