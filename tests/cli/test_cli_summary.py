"""`plan` for people: a summary before the diff, colour only on a terminal (NO_COLOR), wrapping, --diff-only."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures import write_checkout

from bot.cli.main import build_parser, main

ESC = "\x1b["
README = Path(__file__).resolve().parents[2] / "README.md"


class Tty(io.StringIO):
    """A captured stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """One buildspec (a flags variable on line 6, a Docker Hub push on line 7) and one Dockerfile."""
    return write_checkout(tmp_path)


def _on_tty(monkeypatch: pytest.MonkeyPatch, argv: list[str], columns: int = 200) -> tuple[int, str]:
    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setenv("COLUMNS", str(columns))
    code = main(argv)
    monkeypatch.undo()
    return code, tty.getvalue()


def _json(checkout: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(["plan", str(checkout), "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_summary_comes_first_and_counts_files_and_warnings(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _json(checkout, capsys)
    changed = [c["path"] for c in document["changes"] if c["action"] == "modify"]
    created = [c["path"] for c in document["changes"] if c["action"] == "create"]
    warnings = [f for f in document["findings"] if f["level"] == "warning"]
    assert changed == ["buildspec.yml"] and len(created) == 3 and len(warnings) == 1
    assert main(["plan", str(checkout)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("Summary:")
    assert "1 file changed" in first and "3 created" in first and "1 warning" in first
    assert out.index("Summary:") < out.index("--- a/buildspec.yml") < out.index("Findings:")
    assert ESC not in out  # captured output is not a terminal


def test_summary_of_a_repository_without_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("nothing here\n")
    assert main(["plan", str(tmp_path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("Summary: no change") and "0 warnings" in first


def test_terminal_gets_colour_on_diff_lines_and_levels(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out = _on_tty(monkeypatch, ["plan", str(checkout)])
    assert code == 0
    assert "\x1b[32m+" in out and "\x1b[31m-" in out  # added and removed diff lines
    assert "\x1b[33m[warning]" in out
    assert "\x1b[0m" in out


@pytest.mark.parametrize(("value", "coloured"), [("1", False), ("true", False), ("0", False), ("", True)])
def test_no_color_disables_colour_when_not_empty(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, value: str, coloured: bool
) -> None:
    monkeypatch.setenv("NO_COLOR", value)
    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    assert main(["plan", str(checkout)]) == 0
    assert (ESC in tty.getvalue()) is coloured


def test_diff_only_prints_just_the_diff(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(checkout), "--diff-only"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- ") and "+++ b/buildspec.yml" in out
    assert "Summary:" not in out and "Findings:" not in out and "Changes:" not in out


def test_report_only_prints_summary_and_report_without_diff(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(checkout), "--report-only"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Summary:") and "Findings:" in out and "Changes:" in out
    assert "--- a/" not in out and "+++ b/" not in out and "@@ " not in out


@pytest.mark.parametrize("extra", [["--diff-only", "--report-only"], ["--json", "--diff-only"]])
def test_output_selectors_exclude_each_other(
    checkout: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(checkout), *extra])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_long_reasons_wrap_to_the_terminal_width_but_commands_stay_whole(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _json(checkout, capsys)["setup"]["commands"]
    assert any(len(c) > 60 for c in commands)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out = _on_tty(monkeypatch, ["plan", str(checkout), "--report-only"], columns=60)
    assert code == 0
    lines = out.splitlines()
    for command in commands:
        assert any(line.strip() == command for line in lines), command  # one line each, copy-pasteable
    prose = [line for line in lines if line.strip() not in commands]
    assert max(len(line) for line in prose) <= 60
    assert any(line.startswith("        ") for line in prose)  # a wrapped reason keeps its indent


def test_piped_output_is_not_wrapped(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["plan", str(checkout), "--report-only"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) > 100  # grep sees each finding on one line


def test_diff_only_output_is_a_patch_git_applies(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(checkout), "--diff-only"]) == 0
    patch = checkout.parent / "plan.patch"
    patch.write_text(capsys.readouterr().out)
    subprocess.run(["git", "apply", str(patch)], cwd=checkout, check=True, capture_output=True)
    assert main(["check", str(checkout)]) == 0
    assert capsys.readouterr().out.startswith("Already set up")


def test_readme_documents_every_plan_and_check_flag() -> None:
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("plan", "check"):
        for action in subcommands.choices[name]._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in section or f" {flag}" in section, (name, flag)
