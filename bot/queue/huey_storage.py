"""The one place that touches huey's storage: `Storage` subclasses (huey's extension point) and its serializer.

The ledger commits a delivery's jobs and their queue messages together (`bot/queue/ledger.py`), so a message
must enter huey's queue inside the ledger's own SQLite transaction or Redis script. These subclasses say how,
next to huey's code they mirror; `tests/queue/test_huey_contract.py` fails when a huey upgrade changes it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.storage import RedisStorage, SqliteStorage


class LedgerSqliteStorage(SqliteStorage):
    """huey's SQLite storage whose `enqueue` can run inside the ledger's transaction (same file)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._joined = threading.local()
        super().__init__(*args, **kwargs)

    @contextmanager
    def db(self, commit: bool = False, close: bool = False) -> Iterator[Any]:
        """huey runs all its SQL here: on the ledger's cursor while `enqueue_in` lends it, else huey's own."""
        cursor = getattr(self._joined, "cursor", None)
        if cursor is None:
            with super().db(commit=commit, close=close) as own:
                yield own
            return
        yield cursor  # the ledger's transaction begins and commits; huey's BEGIN here would be an error

    def enqueue_in(self, cursor: sqlite3.Cursor, messages: Iterable[bytes]) -> None:
        """huey's own `enqueue` of each message, written in the transaction `cursor` has open."""
        self._joined.cursor = cursor
        try:
            for message in messages:
                self.enqueue(message)
        finally:
            self._joined.cursor = None


class LedgerRedisStorage(RedisStorage):
    """huey's Redis storage; the ledger's submit script pushes messages the way `enqueue` does."""

    # RedisStorage.enqueue is LPUSH onto `queue_key` and dequeue pops the other end (FIFO).
    ENQUEUE_COMMAND = "LPUSH"

    def enqueue_target(self) -> tuple[str, str]:
        """The Redis command and key a message is pushed with, for a Lua script that enqueues atomically."""
        return self.ENQUEUE_COMMAND, str(self.queue_key)


def sqlite_huey(name: str, filename: str, fsync: bool) -> Huey:
    """SqliteHuey on `filename` with the ledger's storage (results off, UTC, 30 s lock wait)."""
    # fsync=None keeps SQLite's WAL default (FULL) for huey's own connections; False would turn syncing off.
    return SqliteHuey(
        name,
        filename=filename,
        results=False,
        utc=True,
        timeout=30,
        fsync=True if fsync else None,
        storage_class=LedgerSqliteStorage,
    )


def redis_huey(name: str, url: str) -> Huey:
    """RedisHuey on `url` with the ledger's storage (results off, UTC)."""
    return RedisHuey(name, url=url, results=False, utc=True, storage_class=LedgerRedisStorage)


def waiting_args(huey: Huey, task_name: str) -> set[str]:
    """The first argument of every `task_name` message waiting in huey's schedule or queue, read back through
    huey's own deserializer (the schedule first: a message moving on to the queue meanwhile is found there)."""
    waiting: set[str] = set()
    for task in [*huey.scheduled(), *huey.pending()]:
        if task.name == task_name and task.args:
            waiting.add(str(task.args[0]))
    return waiting
