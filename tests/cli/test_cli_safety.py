"""The CLI on hostile checkouts: symlinks, special files, huge files, failed writes, undecodable bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import local_repo
from bot.cli.main import main


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.timeout(10)  # the old code read /dev/zero until memory ran out
def test_a_config_that_is_a_symlink_or_a_fifo_is_an_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github/ecr-cache.yml").symlink_to("/dev/zero")
    assert main(["check", str(repo)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    (repo / ".github/ecr-cache.yml").unlink()
    os.mkfifo(repo / ".github/ecr-cache.yml")
    assert main(["check", str(repo)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_a_buildspec_too_large_to_read_is_not_called_set_up(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open(repo / "buildspec.yml", "a") as handle:
        handle.write("#" + "x" * (local_repo.MAX_FILE_BYTES + 1) + "\n")
    assert main(["check", str(repo)]) == 2
    assert "buildspec.yml: is larger than 1 MiB" in capsys.readouterr().err


def test_a_symlinked_file_is_reported_and_never_written_through(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside.Dockerfile"
    shutil.move(repo / "Dockerfile", outside)
    before = outside.read_bytes()
    (repo / "Dockerfile").symlink_to(outside)
    assert main(["apply", str(repo)]) == 0
    assert "not read: Dockerfile: is a symbolic link" in capsys.readouterr().err
    assert outside.read_bytes() == before and (repo / "Dockerfile").is_symlink()


def test_a_failed_write_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(repo)
    real = os.replace

    def refuse_buildspec(src: str, dst: object) -> None:
        if str(dst).endswith("buildspec.yml"):
            raise PermissionError(1, "Operation not permitted")
        real(src, dst)

    monkeypatch.setattr(local_repo.os, "replace", refuse_buildspec)
    assert main(["apply", str(repo)]) == 2
    assert "could not write buildspec.yml (Operation not permitted); nothing was changed" in capsys.readouterr().err
    assert _digest(repo) == before
    assert not (repo / "ecr-cache").exists() and not list(repo.rglob(".ecr-cache-*"))


def test_undecodable_bytes_print_back_as_the_same_bytes(repo: Path) -> None:
    dockerfile = repo / "Dockerfile"
    dockerfile.write_bytes(b"# caf\xe9\n" + dockerfile.read_bytes())
    # A strict UTF-8 stdout (any locale but C/POSIX): the diff must still print, byte for byte.
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "plan", str(repo)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"# caf\xe9" in result.stdout
