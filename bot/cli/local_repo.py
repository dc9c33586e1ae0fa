"""Read a local checkout into a RepoSnapshot and write planned edits back (the CLI's file I/O)."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

from bot.core import planner
from bot.core.model import FileEdit, Options, RepoSnapshot
from bot.core.repo_config import CONFIG_PATH
from bot.settings import process_env

MAX_FILE_BYTES = 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", "vendor", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}


class LocalRepoError(OSError):
    """The checkout cannot be read or written; the message says which path and why."""


# `git ls-files` reads the checkout's own `.git/config`, whose author may not be the person running the CLI:
# `core.fsmonitor` there is a command git runs (git-scm.com/docs/git-config, core.fsmonitor).
# Command-line `-c` wins over every config file (includes too), so these turn off what could run or write:
# the fsmonitor hook, hooks, the untracked cache and the optional index refresh; the operator's own system and
# global config are left out as well. git's `safe.directory` check stays on: a checkout owned by someone
# else is then walked without git.
_GIT_SAFE = (
    "git",
    "--no-optional-locks",
    "-c",
    "core.fsmonitor=false",
    "-c",
    f"core.hooksPath={os.devnull}",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "core.splitIndex=false",
)
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
}
# Variables that would point git at another repository, work tree or config than the checkout's own.
_GIT_UNSET = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_CEILING_DIRECTORIES",
    "GIT_EXTERNAL_DIFF",
)


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in process_env().items() if k not in _GIT_UNSET and not k.startswith("GIT_CONFIG_")}
    return {**env, **_GIT_ENV}


def _inside(path: str) -> bool:
    """True for a plain relative path (no `.`, `..`, empty or absolute parts)."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def list_paths(root: Path) -> tuple[str, ...]:
    """Every file path relative to ``root`` (git's view when it is a git checkout)."""
    if not root.is_dir():
        raise LocalRepoError(f"{root} is not a directory")
    if (root / ".git").exists():
        try:
            result = subprocess.run(
                [*_GIT_SAFE, "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True,
                check=False,
                env=_git_env(),
                stdin=subprocess.DEVNULL,
            )
        except OSError:  # no git on this machine: walk the folder instead
            result = subprocess.CompletedProcess([], 127, b"", b"")
        if result.returncode == 0:
            names = [n for n in result.stdout.decode("utf-8", "surrogateescape").split("\0") if _inside(n)]
            return tuple(sorted(set(n for n in names if (root / n).is_file() or (root / n).is_symlink())))
    found: list[str] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        for name in files:
            full = Path(directory, name)
            if full.is_file() or full.is_symlink():  # a symlink is listed, never read (see why_unreadable)
                found.append(full.relative_to(root).as_posix())
    return tuple(sorted(found))


def why_unreadable(root: Path, path: str) -> str | None:
    """Why ``path`` will not be read (outside the checkout, a symlink or under one, not a regular file, too
    large); None when it can be."""
    if not _inside(path):
        return "is not a path inside the checkout"
    parts = path.split("/")
    for depth in range(1, len(parts)):  # every folder on the way must be a real folder of the checkout
        folder = "/".join(parts[:depth])
        try:
            mode = (root / folder).lstat().st_mode
        except OSError as exc:
            return exc.strerror or "cannot be read"
        if stat.S_ISLNK(mode):
            return (
                f"is inside {folder}, a symbolic link (the bot reads and writes only regular files inside the checkout)"
            )
        if not stat.S_ISDIR(mode):
            return f"is inside {folder}, which is not a folder"
    try:
        info = (root / path).lstat()
    except OSError as exc:
        return exc.strerror or "cannot be read"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link (the bot reads and writes only regular files inside the checkout)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size > MAX_FILE_BYTES:
        return f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
    return None


def read_text(root: Path, path: str) -> str | None:
    """File text decoded as UTF-8 with every byte kept (CRLF, BOM); None when it cannot or should not be read."""
    if why_unreadable(root, path) is not None:
        return None
    try:
        # O_NOFOLLOW: a file swapped for a symlink since the lstat is still not followed.
        with open(os.open(root / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # the size may have changed since lstat
    except OSError:
        return None
    return None if len(data) > MAX_FILE_BYTES else data.decode("utf-8", "surrogateescape")


def read_snapshot(root: Path | str, options: Options | None = None) -> RepoSnapshot:
    """Snapshot of a checkout: all paths, and the text of the files the planner needs."""
    return read_snapshot_checked(root, options)[0]


def read_snapshot_checked(root: Path | str, options: Options | None = None) -> tuple[RepoSnapshot, list[str]]:
    """The snapshot, and one line per file the planner wanted but could not read (path: why)."""
    root = Path(root)
    paths = list_paths(root)
    wanted = planner.paths_to_read(paths, options or Options())
    files = {p: t for p in wanted if (t := read_text(root, p)) is not None}
    unread = [f"{p}: {why_unreadable(root, p) or 'cannot be read'}" for p in wanted if p not in files]
    config_text = read_text(root, CONFIG_PATH) if CONFIG_PATH in paths else None
    return RepoSnapshot(paths=paths, files=files, config_text=config_text, repository=repository_name(root)), unread


_SECTION = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*$")
_URL = re.compile(r"^\s*url\s*=\s*(.+?)\s*$", re.IGNORECASE)


def repository_name(root: Path) -> str | None:
    """`owner/name` of the checkout's `origin` remote, else the checkout folder's name.

    The remote is read from `.git/config` as text: running git would run the checkout's own hooks and
    fsmonitor command. A symlinked `.git` or config is not followed.
    """
    origin = None
    if not (root / ".git").is_symlink() and why_unreadable(root, ".git/config") is None:
        section = ""
        for line in (read_text(root, ".git/config") or "").splitlines():
            header = _SECTION.match(line)
            if header:
                section = header.group(1)
                continue
            url = _URL.match(line)
            if url and section in ('remote "origin"', "remote 'origin'") and origin is None:
                origin = url.group(1).strip("\"'")
    if origin:
        parts = [p for p in re.split(r"[/:]", origin.rstrip("/")) if p]
        if parts:
            name = parts[-1].removesuffix(".git")
            owner = parts[-2] if len(parts) > 1 and "@" not in parts[-2] else None
            if name:
                return f"{owner}/{name}" if owner else name
    return root.resolve().name or None


def write_edits(root: Path | str, edits: tuple[FileEdit, ...]) -> list[str]:
    """Write every edit, all or nothing as far as the filesystem allows; return the paths written.

    Every target is checked and every new text written to a temp file beside it first; only then are the temp
    files renamed over the targets (each rename is atomic). A rename that still fails names what was written.
    """
    root = Path(root).resolve()
    staged: list[tuple[str, str, Path]] = []
    created_dirs = [d for e in edits for d in reversed((root / e.path).parents) if root in d.parents and not d.exists()]
    try:
        for edit in edits:
            target = root / edit.path
            if root not in target.resolve().parents or target.is_symlink():
                raise LocalRepoError(f"refusing to write {edit.path}: it is a symbolic link or outside {root}")
            if target.exists() and not target.is_file():
                raise LocalRepoError(f"refusing to write {edit.path}: it is not a regular file")
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
            fd, tmp = tempfile.mkstemp(prefix=".ecr-cache-", dir=target.parent)
            staged.append((edit.path, tmp, target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(edit.content.encode("utf-8", "surrogateescape"))
            os.chmod(tmp, mode)
    except BaseException:
        for _, tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        _remove_empty(created_dirs)
        raise
    written: list[str] = []
    for n, (path, tmp, target) in enumerate(staged):
        try:
            os.replace(tmp, target)
        except OSError as exc:
            for _, rest, _ in staged[n:]:
                Path(rest).unlink(missing_ok=True)
            kept = _roll_back(root, [e for e in edits if e.path in written])
            _remove_empty(created_dirs)
            state = (
                f"the files already written ({', '.join(kept)}) could not be restored"
                if kept
                else "nothing was changed"
            )
            raise LocalRepoError(f"could not write {path} ({exc.strerror}); {state}") from exc
        written.append(path)
    return written


def _roll_back(root: Path, edits: list[FileEdit]) -> list[str]:
    """Put back the original text of files already written (delete created ones); return those that failed."""
    failed = []
    for edit in edits:
        target = root / edit.path
        try:
            if edit.original is None:
                target.unlink()
            else:
                target.write_bytes(edit.original.encode("utf-8", "surrogateescape"))
        except OSError:
            failed.append(edit.path)
    return failed


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders the write created, deepest first, when they are still empty."""
    for folder in sorted(set(folders), key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (someone else wrote there) or already gone
            folder.rmdir()
