"""Per-repository serialisation: expiring locks and coalescing generations, shared across workers."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Protocol

import redis

from bot.queue.storage import KEY_PREFIX, SqliteDb, now

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, gen INTEGER NOT NULL)",
)

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Locks(Protocol):
    """Expiring mutual exclusion by key."""

    def acquire(self, key: str, ttl: float) -> str | None:
        """Return an owner token, or None while another owner holds an unexpired lock."""
        ...

    def release(self, key: str, token: str) -> bool:
        """Release if `token` still owns the lock."""
        ...

    def extend(self, key: str, token: str, ttl: float) -> bool:
        """Push the expiry of a lock `token` still owns to `ttl` seconds from now."""
        ...

    def current_generation(self, key: str) -> int:
        """The latest generation bumped for `key` (0 when never bumped)."""
        ...


def bump_in(cur: sqlite3.Cursor, key: str, by: int = 1) -> int:
    """Add `by` to the generation of `key` inside an open transaction; return the new value."""
    cur.execute(
        "INSERT INTO generations (key, gen) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET gen = gen + excluded.gen RETURNING gen",
        (key, by),
    )
    row = cur.fetchone()
    return int(row[0])


def lock_key(key: str, prefix: str = KEY_PREFIX) -> str:
    """Redis key of a lock."""
    return f"{prefix}lock:{key}"


def gen_key(key: str, prefix: str = KEY_PREFIX) -> str:
    """Redis key of a generation counter."""
    return f"{prefix}gen:{key}"


class SqliteLocks:
    """Locks and generations in the queue's SQLite file."""

    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure("locks", SQLITE_DDL)

    def acquire(self, key: str, ttl: float) -> str | None:
        """Take the lock when absent or expired (a killed worker's lock lapses after `ttl`)."""
        token = uuid.uuid4().hex
        at = now()
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO locks (key, owner, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
                "WHERE locks.expires < ?",
                (key, token, at + ttl, at),
            )
            return token if cur.rowcount == 1 else None

    def release(self, key: str, token: str) -> bool:
        """Delete the lock row if `token` owns it."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM locks WHERE key = ? AND owner = ?", (key, token))
            return cur.rowcount == 1

    def extend(self, key: str, token: str, ttl: float) -> bool:
        """Move the expiry if `token` still owns the lock."""
        with self.db.tx() as cur:
            cur.execute("UPDATE locks SET expires = ? WHERE key = ? AND owner = ?", (now() + ttl, key, token))
            return cur.rowcount == 1

    def bump(self, key: str) -> int:
        """Increment the generation of `key`."""
        with self.db.tx() as cur:
            return bump_in(cur, key)

    def current_generation(self, key: str) -> int:
        """Read the generation of `key`."""
        rows = self.db.query("SELECT gen FROM generations WHERE key = ?", (key,))
        return int(rows[0][0]) if rows else 0


class RedisLocks:
    """`SET NX PX` locks released by compare-and-delete; `INCR` generations."""

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE_LUA)
        self._extend = client.register_script(_EXTEND_LUA)

    def acquire(self, key: str, ttl: float) -> str | None:
        """SET NX PX with a random owner token."""
        token = uuid.uuid4().hex
        ok = self.client.set(lock_key(key, self.prefix), token.encode(), nx=True, px=max(1, int(ttl * 1000)))
        return token if ok else None

    def release(self, key: str, token: str) -> bool:
        """Delete only when still owned (an expired lock may belong to someone else now)."""
        return bool(self._release(keys=[lock_key(key, self.prefix)], args=[token.encode()]))

    def extend(self, key: str, token: str, ttl: float) -> bool:
        """PEXPIRE only when still owned."""
        return bool(self._extend(keys=[lock_key(key, self.prefix)], args=[token.encode(), max(1, int(ttl * 1000))]))

    def bump(self, key: str) -> int:
        """INCR the generation of `key`."""
        return int(self.client.incr(gen_key(key, self.prefix)))

    def current_generation(self, key: str) -> int:
        """GET the generation of `key`."""
        value = self.client.get(gen_key(key, self.prefix))
        return int(value) if value is not None else 0
