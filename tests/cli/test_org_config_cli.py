"""`--org-config PATH`: the command line merges organization defaults under the repo config, as the App does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main


def test_the_cli_merges_an_organization_file_under_the_repo_config(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org.yml"
    org.write_text("cache_repository: org-wide-cache\nmode: min\n")
    (repo / ".github").mkdir(exist_ok=True)
    (repo / ".github" / "ecr-cache.yml").write_text("mode: max\n")
    assert main(["plan", str(repo), "--json", "--org-config", str(org)]) == 0
    spec = next(c for c in json.loads(capsys.readouterr().out)["changes"] if c["path"] == "buildspec.yml")
    assert "org-wide-cache" in spec["content"] and "mode=max" in spec["content"]
    # extends: false in the repository: the organization file is not used
    (repo / ".github" / "ecr-cache.yml").write_text("extends: false\n")
    assert main(["plan", str(repo), "--json", "--org-config", str(org)]) == 0
    spec = next(c for c in json.loads(capsys.readouterr().out)["changes"] if c["path"] == "buildspec.yml")
    assert "org-wide-cache" not in spec["content"]


def test_the_cli_names_a_bad_or_missing_organization_file(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org.yml"
    org.write_text("lifecycle_days: 0\n")
    assert main(["check", str(repo), "--org-config", str(org)]) == 2
    err = capsys.readouterr().err
    assert str(org) in err and "`lifecycle_days`" in err
    assert main(["check", str(repo), "--org-config", str(tmp_path / "missing.yml")]) == 2
    assert "missing.yml" in capsys.readouterr().err
