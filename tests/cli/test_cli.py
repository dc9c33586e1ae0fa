"""The CLI contract: plan/apply/check exit codes, --json shape, config errors, byte-faithful writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-service"


def test_plan_json_contract(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(repo), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) >= {"changes", "findings"}
    assert document["changes"], "the example repository must get a real plan"
    for change in document["changes"]:
        assert set(change) >= {"path", "action", "content"}  # keys are added, never removed
        assert change["action"] in ("create", "modify")
    for finding in document["findings"]:
        assert set(finding) >= {"path", "level", "code", "message"}
    paths = {c["path"] for c in document["changes"]}
    assert "buildspec.yml" in paths


def test_plan_prints_diff_and_report(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "--- a/buildspec.yml" in out and "+++ b/buildspec.yml" in out
    assert "Changes:" in out and "One-time AWS setup" in out
    assert repo.joinpath("buildspec.yml").read_bytes() == EXAMPLE.joinpath("buildspec.yml").read_bytes()


def test_check_apply_check_cycle(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(repo)]) == 1
    assert main(["apply", str(repo)]) == 0
    capsys.readouterr()
    assert main(["check", str(repo)]) == 0
    assert "Already set up" in capsys.readouterr().out
    assert main(["plan", str(repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []


def test_apply_keeps_crlf_and_file_mode(repo: Path) -> None:
    spec = repo / "buildspec.yml"
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n"))
    spec.chmod(0o600)
    assert main(["apply", str(repo)]) == 0
    written = spec.read_bytes()
    assert b"docker buildx build" in written
    assert written.count(b"\n") == written.count(b"\r\n")
    assert spec.stat().st_mode & 0o777 == 0o600


def test_invalid_config_exits_2_naming_the_key(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("mode: turbo\n")
    before = (repo / "buildspec.yml").read_bytes()
    assert main(["apply", str(repo)]) == 2
    assert "`mode`" in capsys.readouterr().err
    assert (repo / "buildspec.yml").read_bytes() == before


def test_invalid_flag_value_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(repo), "--cache-repository", "Not_Valid"]) == 2
    assert "cache_repository" in capsys.readouterr().err


def test_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_disabled_repository_is_left_alone(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("enabled: false\n")
    assert main(["check", str(repo)]) == 4  # its own code: not "set up"
    assert main(["plan", str(repo), "--json"]) == 0
    capsys.readouterr()


def test_config_file_options_reach_the_plan(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("cache_repository: orders-buildcache\n")
    assert main(["plan", str(repo), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    spec = next(c for c in changes if c["path"] == "buildspec.yml")
    assert "orders-buildcache" in spec["content"]
