"""Worker heartbeats in the queue store (SQLite table or Redis hash): who consumes jobs, and when each last said so.

Every worker process (`serve`'s embedded one and each `ecr-cache-bot worker`) writes its beat every
`BEAT_INTERVAL` seconds; `/readyz` wants one within `LIVE_WITHIN` seconds and `/metrics` shows each one's age.
A worker that stops cleanly removes its entry; one that died keeps it (its age growing) for `FORGET_AFTER`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bot.logs import log_event
from bot.queue.storage import KEY_PREFIX, SqliteDb, now

BEAT_INTERVAL = 10.0
LIVE_WITHIN = 60.0
FORGET_AFTER = 3600.0
REDIS_KEY = "workers"  # under the key prefix
PROBE_KEY = "ready-probe"  # under the key prefix

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, "
    "started REAL NOT NULL, seen REAL NOT NULL)",
)


@dataclass(frozen=True)
class Beat:
    """One worker process and the time of its last heartbeat (wall clock, seconds)."""

    worker_id: str
    pid: int
    host: str
    started: float
    seen: float

    def age(self, at: float) -> float:
        """Seconds since the last heartbeat (0 when the worker's clock runs ahead of ours)."""
        return max(0.0, at - self.seen)


def this_worker(at: float | None = None) -> Beat:
    """A new identity for the calling process: host and pid, plus a suffix, since containers are all pid 1."""
    host = socket.gethostname()
    started = now() if at is None else at
    return Beat(f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}", os.getpid(), host, started, started)


def live(beats: list[Beat], at: float, within: float = LIVE_WITHIN) -> list[Beat]:
    """The workers heard from in the last `within` seconds, freshest first."""
    return sorted((b for b in beats if b.age(at) <= within), key=lambda b: b.age(at))


class Heartbeats(Protocol):
    """Where worker heartbeats are kept (the queue store), and whether that store takes writes."""

    def beat(self, worker: Beat, at: float) -> None:
        """Record that `worker` is alive at `at` (and forget workers silent for `FORGET_AFTER`)."""
        ...

    def leave(self, worker_id: str) -> None:
        """Remove a worker that stops cleanly."""
        ...

    def all(self) -> list[Beat]:
        """Every known worker with its last heartbeat."""
        ...

    def probe(self, at: float) -> None:
        """Write to the store now; raises when it refuses (read-only, gone, full, locked, unreachable)."""
        ...


class SqliteHeartbeats:
    """The `workers` table in the queue's SQLite file."""

    def __init__(self, db: SqliteDb, probe_timeout: float = 2.0) -> None:
        self.db = db
        self.probe_timeout = probe_timeout
        db.ensure("heartbeats", SQLITE_DDL)

    def beat(self, worker: Beat, at: float) -> None:
        """Upsert this worker's row."""
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO workers (id, pid, host, started, seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET seen = excluded.seen",
                (worker.worker_id, worker.pid, worker.host, worker.started, at),
            )
            cur.execute("DELETE FROM workers WHERE seen < ?", (at - FORGET_AFTER,))

    def leave(self, worker_id: str) -> None:
        """Delete its row."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def all(self) -> list[Beat]:
        """Every row."""
        rows = self.db.query("SELECT id, pid, host, started, seen FROM workers")
        return [Beat(str(i), int(p), str(h), float(s), float(t)) for i, p, h, s, t in rows]

    def probe(self, at: float) -> None:
        """A write through a fresh connection (see `SqliteDb.probe_write`)."""
        self.db.probe_write(at, self.probe_timeout)


class RedisHeartbeats:
    """One Redis hash: worker id -> JSON of its `Beat`."""

    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.key = prefix + REDIS_KEY
        self.probe_key = prefix + PROBE_KEY

    def beat(self, worker: Beat, at: float) -> None:
        """HSET this worker's entry; HDEL the long-silent ones."""
        entry = json.dumps({**asdict(worker), "seen": at}, separators=(",", ":"))
        self.client.hset(self.key, worker.worker_id, entry)
        gone = [b.worker_id for b in self.all() if b.seen < at - FORGET_AFTER]
        if gone:
            self.client.hdel(self.key, *gone)

    def leave(self, worker_id: str) -> None:
        """HDEL its entry."""
        self.client.hdel(self.key, worker_id)

    def all(self) -> list[Beat]:
        """HGETALL (entries that do not parse are skipped)."""
        beats = []
        for raw in self.client.hgetall(self.key).values():
            try:
                beats.append(Beat(**json.loads(raw)))
            except (TypeError, ValueError):
                continue
        return beats

    def probe(self, at: float) -> None:
        """SET with an expiry: a read-only replica, a full memory or a failing disk (MISCONF) refuses it."""
        self.client.set(self.probe_key, repr(at), ex=300)


def beat_forever(
    store: Heartbeats,
    worker: Beat,
    stop: threading.Event,
    interval: float = BEAT_INTERVAL,
    clock: Callable[[], float] = now,
) -> None:
    """Write a heartbeat now and every `interval` seconds until `stop` is set; a failed write is retried."""
    while True:
        try:
            store.beat(worker, clock())
        except Exception as exc:  # a storage hiccup must not stop the beats: /readyz turns 503 if they stay away
            log_event(
                "worker.heartbeat_failed",
                level="warning",
                worker=worker.worker_id,
                error=f"{type(exc).__name__}: {exc}",
            )
        if stop.wait(interval):
            return
