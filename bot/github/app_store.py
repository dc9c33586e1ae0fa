"""Files in `DATA_DIR` of the manifest flow: the registered App's credentials and the one-time `state` values."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

APP_DIR = "github-app"
APP_FILE = "app.json"
KEY_FILE = "private-key.pem"
STATE_DIR = "manifest-states"
# GitHub's manifest `code` is valid for an hour; a state older than that cannot lead to a conversion.
STATE_TTL = 3600.0
MAX_PENDING_STATES = 1000


class AppStoreError(Exception):
    """The stored App files exist but cannot be used; the message says which and why."""


@dataclass(frozen=True)
class StoredApp:
    """What the manifest conversion returned that the bot keeps."""

    app_id: str
    private_key: str
    webhook_secret: str
    slug: str = ""
    name: str = ""
    html_url: str = ""


def _app_dir(data_dir: str) -> Path:
    return Path(data_dir) / APP_DIR


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600) from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def save_app(data_dir: str, app: StoredApp) -> None:
    """Store the App: the key first, the JSON last, so a present `app.json` always has its key beside it."""
    folder = _app_dir(data_dir)
    write_private(folder / KEY_FILE, app.private_key)
    record = {
        "id": app.app_id,
        "slug": app.slug,
        "name": app.name,
        "html_url": app.html_url,
        "webhook_secret": app.webhook_secret,
    }
    write_private(folder / APP_FILE, json.dumps(record, indent=2) + "\n")


def load_app(data_dir: str) -> StoredApp | None:
    """The stored App, or None when the manifest flow has not stored one."""
    folder = _app_dir(data_dir)
    try:
        text = (folder / APP_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AppStoreError(f"{folder / APP_FILE} cannot be read: {exc}") from exc
    try:
        record = json.loads(text)
        app_id, secret = str(record["id"]), record["webhook_secret"]
        if not app_id or not isinstance(secret, str) or not secret:
            raise ValueError("empty id or webhook secret")
    except (ValueError, KeyError, TypeError) as exc:
        raise AppStoreError(f"{folder / APP_FILE} is not a stored App: {exc}") from exc
    try:
        key = (folder / KEY_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AppStoreError(f"{folder / KEY_FILE} cannot be read: {exc}") from exc
    return StoredApp(
        app_id,
        key,
        secret,
        str(record.get("slug") or ""),
        str(record.get("name") or ""),
        str(record.get("html_url") or ""),
    )


class StateStore:
    """One-time `state` values of the manifest flow: one file each, named by its hash, gone once used."""

    def __init__(self, data_dir: str, ttl: float = STATE_TTL) -> None:
        self.folder = Path(data_dir) / STATE_DIR
        self.ttl = ttl

    def _path(self, state: str) -> Path:
        return self.folder / hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()

    def mint(self, now: float | None = None) -> str:
        """A fresh random state, recorded with its expiry."""
        now = time.time() if now is None else now
        self.purge(now)
        state = secrets.token_urlsafe(32)
        write_private(self._path(state), f"{now + self.ttl}\n")
        return state

    def consume(self, state: str, now: float | None = None) -> bool:
        """True exactly once for a minted, unexpired state; removing the file is what makes it single-use."""
        now = time.time() if now is None else now
        if not state or len(state) > 200:
            return False
        path = self._path(state)
        try:
            expires = float(path.read_text(encoding="ascii").strip() or 0)
            path.unlink()  # of two concurrent redirects with the same state, only one unlinks it
        except (OSError, ValueError):
            return False
        return now < expires

    def purge(self, now: float) -> None:
        """Drop expired states; past MAX_PENDING_STATES drop the oldest too, so the folder stays small."""
        aged: list[tuple[float, Path]] = []
        try:
            for path in self.folder.iterdir():
                with contextlib.suppress(OSError):  # another process may consume it meanwhile
                    aged.append((path.stat().st_mtime, path))
        except OSError:
            return
        entries = [path for _, path in sorted(aged)]
        for index, path in enumerate(entries):
            with contextlib.suppress(OSError, ValueError):
                if len(entries) - index >= MAX_PENDING_STATES or float(path.read_text().strip()) <= now:
                    path.unlink()
