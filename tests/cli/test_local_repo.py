"""Reading a checkout keeps every byte; writing is atomic and stays inside the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.cli.local_repo import LocalRepoError, list_paths, read_text, write_edits
from bot.core.model import FileEdit


def test_list_paths_walks_and_skips_dependency_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "buildspec.yml").write_text("version: 0.2\n")
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "Dockerfile").write_text("FROM x\n")
    assert list_paths(tmp_path) == ("a/buildspec.yml",)


def test_list_paths_uses_git_view(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.yml\n")
    (tmp_path / "ignored.yml").write_text("x")
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    assert list_paths(tmp_path) == (".gitignore", "Dockerfile")


def test_read_text_keeps_bom_crlf_and_invalid_bytes(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbfversion: 0.2\r\n# \xff\r\n"
    (tmp_path / "b.yml").write_bytes(raw)
    text = read_text(tmp_path, "b.yml")
    assert text is not None and text.startswith("\ufeff")
    write_edits(tmp_path, (FileEdit("c.yml", "create", text),))
    assert (tmp_path / "c.yml").read_bytes() == raw


def test_read_text_refuses_huge_files(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    assert read_text(tmp_path, "big") is None


def test_write_refuses_paths_outside_the_checkout(tmp_path: Path) -> None:
    with pytest.raises(LocalRepoError):
        write_edits(tmp_path / "repo", (FileEdit("../evil", "create", "x"),))
    assert not (tmp_path / "evil").exists()


def test_write_creates_folders(tmp_path: Path) -> None:
    write_edits(tmp_path, (FileEdit("ecr-cache/policy.json", "create", "{}\n"),))
    assert (tmp_path / "ecr-cache" / "policy.json").read_text() == "{}\n"
