"""Read a local checkout into a RepoSnapshot and write planned edits back (the CLI's file I/O)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bot.core import planner
from bot.core.model import FileEdit, Options, RepoSnapshot
from bot.core.repo_config import CONFIG_PATH

MAX_FILE_BYTES = 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", "vendor", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}


class LocalRepoError(OSError):
    """The checkout cannot be read or written; the message says which path and why."""


def list_paths(root: Path) -> tuple[str, ...]:
    """Every file path relative to ``root`` (git's view when it is a git checkout)."""
    if not root.is_dir():
        raise LocalRepoError(f"{root} is not a directory")
    if (root / ".git").exists():
        result = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            names = [n for n in result.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
            return tuple(sorted(n for n in names if (root / n).is_file()))
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        for name in files:
            full = Path(directory, name)
            if full.is_file() and not full.is_symlink():
                found.append(full.relative_to(root).as_posix())
    return tuple(sorted(found))


def read_text(root: Path, path: str) -> str | None:
    """File text decoded as UTF-8 with every byte kept (CRLF, BOM); None when too large or unreadable."""
    full = root / path
    try:
        if full.stat().st_size > MAX_FILE_BYTES:
            return None
        return full.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def read_snapshot(root: Path | str, options: Options | None = None) -> RepoSnapshot:
    """Snapshot of a checkout: all paths, and the text of the files the planner needs."""
    root = Path(root)
    paths = list_paths(root)
    wanted = planner.paths_to_read(paths, options or Options())
    files = {p: t for p in wanted if (t := read_text(root, p)) is not None}
    config_text = read_text(root, CONFIG_PATH) if CONFIG_PATH in paths else None
    return RepoSnapshot(paths=paths, files=files, config_text=config_text)


def write_edits(root: Path | str, edits: tuple[FileEdit, ...]) -> list[str]:
    """Write each edit atomically (temp file + rename, mode kept); return the paths written."""
    root = Path(root).resolve()
    written = []
    for edit in edits:
        target = (root / edit.path).resolve()
        if root not in target.parents:
            raise LocalRepoError(f"refusing to write {edit.path}: it is outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=".ecr-cache-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(edit.content.encode("utf-8", "surrogateescape"))
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(edit.path)
    return written
