"""Shared runtime storage handles: one SQLite file in `DATA_DIR` or one Redis, used by queue, locks, pacing, metrics."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis

KEY_PREFIX = "ecr:"
T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")


def now() -> float:
    """Wall-clock seconds (shared across processes and machines, unlike monotonic time)."""
    return time.time()


class SqliteDb:
    """Thread- and fork-safe access to one SQLite file in WAL mode."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.fsync = fsync
        self.timeout = timeout
        self._local = threading.local()
        self._ddl_done: set[str] = set()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: SQLite connections must not cross fork)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            self._wal(conn)
            conn.execute("PRAGMA busy_timeout=0")  # lock waits are ours: see `_retry`
            # FULL: a commit is on disk before the webhook is answered (survives power loss, not only SIGKILL).
            conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def ensure(self, name: str, ddl: Iterable[str]) -> None:
        """Run `ddl` once per process for the component `name`."""
        if name in self._ddl_done:
            return
        with self.tx() as cur:
            for statement in ddl:
                cur.execute(statement)
        self._ddl_done.add(name)

    def _retry(self, operation: Callable[[], T]) -> T:
        # SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries, which turns two processes
        # contending for the write lock into p99 spikes; poll at sub-millisecond steps instead.
        deadline = time.monotonic() + self.timeout
        pause = 0.0002
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 1.5, 0.005)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (BEGIN IMMEDIATE: take the write lock up front, no upgrade deadlocks)."""
        conn = self.connection()
        cur = conn.cursor()
        self._retry(lambda: cur.execute("BEGIN IMMEDIATE"))
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def probe_write(self, at: float, timeout: float = 2.0) -> None:
        """Commit one row through a fresh connection to the existing file; raise when SQLite refuses.

        Fresh, because a connection opened earlier keeps writing to a database file that was deleted or
        replaced (a vanished volume) without an error; `mode=rw` never creates an empty file in its place."""
        conn = sqlite3.connect(
            f"{Path(self.path).absolute().as_uri()}?mode=rw", uri=True, timeout=timeout, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS ready_probe (id INTEGER PRIMARY KEY, at REAL NOT NULL)")
            conn.execute("INSERT OR REPLACE INTO ready_probe (id, at) VALUES (1, ?)", (at,))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read rows outside a write transaction."""
        conn = self.connection()
        return self._retry(lambda: list(conn.execute(sql, params).fetchall()))


_redis_clients: dict[tuple[int, str], redis.Redis] = {}
_redis_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """One client (connection pool) per process and URL."""
    key = (os.getpid(), url)
    with _redis_lock:
        client = _redis_clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
            _redis_clients[key] = client
        return client


def in_store(
    store: object, on_sqlite: Callable[[SqliteDb], S], on_redis: Callable[[redis.Redis, str], R]
) -> S | R | None:
    """Build a component on a queue store's backend (its SQLite file, or its Redis and key prefix); None without one."""
    db = getattr(store, "db", None)
    if isinstance(db, SqliteDb):
        return on_sqlite(db)
    client = getattr(store, "client", None)
    if isinstance(client, redis.Redis):
        return on_redis(client, str(getattr(store, "prefix", KEY_PREFIX)))
    return None
