"""The CLI on a checkout someone else wrote: its `.git/config` runs nothing, and no path leads out of it."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from bot.cli.local_repo import list_paths, read_snapshot_checked, read_text, why_unreadable
from bot.cli.main import main

BUILDSPEC = """\
version: 0.2
env:
  variables:
    AWS_DEFAULT_REGION: "eu-central-1"
    REGISTRY: "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
phases:
  pre_build:
    commands:
      - aws ecr get-login-password | docker login --username AWS --password-stdin $REGISTRY
  build:
    commands:
      - docker build -t 123456789012.dkr.ecr.eu-central-1.amazonaws.com/shop:latest .
      - docker push 123456789012.dkr.ecr.eu-central-1.amazonaws.com/shop:latest
"""
DOCKERFILE = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        env={
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "PATH": "/usr/bin:/bin",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )


def _checkout(root: Path) -> Path:
    root.mkdir()
    (root / "buildspec.yml").write_text(BUILDSPEC)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "requirements.txt").write_text("flask\n")
    (root / ".gitignore").write_text("ignored.yml\n")
    (root / "ignored.yml").write_text("version: 0.2\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    return root


def _hostile(root: Path, marker: Path, key: str) -> None:
    """Point `key` of the checkout's own `.git/config` at a script that leaves `marker` behind."""
    script = root.parent / f"{key.replace('.', '-')}.sh"
    script.write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    with open(root / ".git" / "config", "a") as handle:
        section, name = key.split(".")
        handle.write(f"[{section}]\n\t{name} = {script}\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("via", ["config", "include"])
def test_fsmonitor_of_the_checkout_runs_nothing(via: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _checkout(tmp_path / "repo")
    marker = tmp_path / "fsmonitor-ran"
    _hostile(root, marker, "core.fsmonitor")
    if via == "include":  # the same key from a file the config includes
        config = root / ".git" / "config"
        text = config.read_text()
        hook = text[text.rindex("[core]") :]
        config.write_text(text[: text.rindex("[core]")] + "[include]\n\tpath = extra.cfg\n")
        (root / ".git" / "extra.cfg").write_text(hook)
    subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, check=False)
    assert marker.exists(), "the hostile config must be live for this test to mean anything"
    marker.unlink()
    for command in ("plan", "check", "apply"):
        assert main([command, str(root)]) in (0, 1), capsys.readouterr().err
        assert not marker.exists(), f"`{command}` ran the checkout's core.fsmonitor"
    # git's view is still what is listed: the ignored file stays out.
    assert "ignored.yml" not in list_paths(root) and "buildspec.yml" in list_paths(root)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("key", ["core.hooksPath", "core.pager", "diff.external", "core.editor"])
def test_other_command_keys_of_the_checkout_run_nothing(key: str, tmp_path: Path) -> None:
    root = _checkout(tmp_path / "repo")
    marker = tmp_path / "ran"
    if key == "core.hooksPath":  # a hooks folder whose every hook leaves the marker
        hooks = tmp_path / "hooks"
        hooks.mkdir()
        for name in ("post-index-change", "pre-commit", "post-checkout", "reference-transaction"):
            (hooks / name).write_text(f"#!/bin/sh\necho ran >> '{marker}'\n")
            (hooks / name).chmod(0o755)
        with open(root / ".git" / "config", "a") as handle:
            handle.write(f"[core]\n\thooksPath = {hooks}\n")
    else:
        _hostile(root, marker, key)
    (root / "buildspec.yml").write_text(BUILDSPEC + "# touched\n")  # a dirty index: a refresh would write it
    snapshot, _ = read_snapshot_checked(root)
    assert "buildspec.yml" in snapshot.paths
    assert not marker.exists()


def test_a_symlinked_github_folder_is_not_read_and_its_value_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "buildspec.yml").write_text(BUILDSPEC)
    (root / "Dockerfile").write_text(DOCKERFILE)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ecr-cache.yml").write_text("SECRET-OUTSIDE-VALUE: 1\n")  # an unknown key is named in errors
    (root / ".github").symlink_to(outside, target_is_directory=True)
    assert read_text(root, ".github/ecr-cache.yml") is None
    assert "symbolic link" in (why_unreadable(root, ".github/ecr-cache.yml") or "")
    snapshot, _ = read_snapshot_checked(root)
    assert snapshot.config_text is None
    for command in ("plan", "check"):
        code = main([command, str(root)])
        out, err = capsys.readouterr()
        assert code == 2 and ".github" in err and "symbolic link" in err
        assert "SECRET-OUTSIDE-VALUE" not in out + err


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_files_under_a_symlinked_folder_are_neither_read_nor_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app").mkdir()
    (root / "app" / "buildspec.yml").write_text(BUILDSPEC)
    (root / "app" / "Dockerfile").write_text(DOCKERFILE)
    (root / "app" / "requirements.txt").write_text("flask\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    # The index still lists app/..., but on disk `app` now leads outside the checkout.
    outside = tmp_path / "outside"
    shutil.move(root / "app", outside)
    (outside / "buildspec.yml").write_text(BUILDSPEC.replace("shop", "OUTSIDE-MARKER"))
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    (root / "app").symlink_to(outside, target_is_directory=True)
    for path in ("app/buildspec.yml", "app/Dockerfile"):
        assert read_text(root, path) is None
        assert "symbolic link" in (why_unreadable(root, path) or "")
    snapshot, unread = read_snapshot_checked(root)
    assert snapshot.files == {} and any("app/buildspec.yml" in u and "symbolic link" in u for u in unread)
    assert main(["plan", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "OUTSIDE-MARKER" not in out + err and "app/buildspec.yml" in err
    assert main(["apply", str(root)]) == 0
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "./buildspec.yml", ""])
def test_paths_that_leave_the_checkout_are_never_read(path: str, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("outside")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "buildspec.yml").write_text(BUILDSPEC)
    assert read_text(root, path) is None
    assert why_unreadable(root, path) is not None


def test_a_checkout_is_listed_without_git_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "buildspec.yml").write_text(BUILDSPEC)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert list_paths(root) == ("buildspec.yml",)
