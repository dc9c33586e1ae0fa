"""`check` never says "already set up" when nothing was found: its own message and exit code for each state."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bot.cli.main import EXIT_CHANGES, EXIT_DISABLED, EXIT_ERROR, EXIT_NOTHING, EXIT_OK, main

README = Path(__file__).resolve().parents[2] / "README.md"
NO_DOCKER = "version: 0.2\nphases:\n  build:\n    commands:\n      - npm test\n"


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["check", str(path)])
    return code, capsys.readouterr().out


def _status(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["plan", str(path), "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["status"])


def test_exit_codes_are_distinct() -> None:
    assert (EXIT_OK, EXIT_CHANGES, EXIT_ERROR, EXIT_NOTHING, EXIT_DISABLED) == (0, 1, 2, 3, 4)


def test_empty_folder_is_nothing_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(tmp_path, capsys)
    assert code == EXIT_NOTHING
    assert "No CodeBuild Docker build found" in out and "Already set up" not in out
    assert _status(tmp_path, capsys) == "nothing-found"


def test_buildspec_without_docker_build_is_nothing_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "buildspec.yml").write_text(NO_DOCKER)
    (tmp_path / "README.md").write_text("# app\n")
    code, out = _check(tmp_path, capsys)
    assert code == EXIT_NOTHING and "buildspec.yml" in out and "Already set up" not in out


def test_only_ignored_fixtures_is_nothing_found(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "fixtures-only"
    for folder in ("tests/golden/case", "examples/app"):
        shutil.copytree(repo, root / folder)
    code, out = _check(root, capsys)
    assert code == EXIT_NOTHING and "Already set up" not in out


def test_disabled_has_its_own_code(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("enabled: false\n")
    code, out = _check(repo, capsys)
    assert code == EXIT_DISABLED and "enabled: false" in out and "Already set up" not in out
    assert _status(repo, capsys) == "disabled"


def test_changes_then_set_up(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(repo, capsys)
    assert code == EXIT_CHANGES and out.startswith("Not set up")
    assert _status(repo, capsys) == "changes"
    assert main(["apply", str(repo)]) == 0
    code, out = _check(repo, capsys)
    assert code == EXIT_OK and "Already set up" in out and "1 CodeBuild Docker build" in out
    assert _status(repo, capsys) == "set-up"


def test_readme_documents_every_check_code() -> None:
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `ecr-cache-bot check"))
    cells = re.split(r"(?<!\\)\|", row)  # a `\|` inside a cell is not a column border
    codes = dict(re.findall(r"(\d) ([a-z][^,|]+)", cells[3]))
    assert set(codes) == {"0", "1", "2", "3", "4"}
    assert "nothing found" in codes["3"] and "no CodeBuild Docker build" in codes["3"]
    assert "disabled" in codes["4"]
