"""Delivery dedupe on `X-GitHub-Delivery`, and command dedupe on the signed comment id: atomic, with a TTL,
shared across processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Protocol

import redis

from bot.app.comment_command import MAX_AGE
from bot.queue.storage import KEY_PREFIX, SqliteDb, in_store, now

# GitHub never redelivers by itself, but an operator can redeliver a delivery for 3 days (GitHub.com) or
# 7 days (GitHub Enterprise Server): docs.github.com/webhooks/testing-and-troubleshooting-webhooks/
# redelivering-webhooks. Remembering ids that long makes redelivering an accepted delivery a no-op.
# An hour past the age after which a command comment is not answered at all (`comment_command.MAX_AGE`), so a
# replay after its claim expired finds nothing to do.
DEFAULT_TTL = int(MAX_AGE) + 3600

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, expires REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries (expires)",
)


class Dedupe(Protocol):
    """Claim a delivery id once per TTL."""

    def claim(self, delivery_id: str) -> bool:
        """True for the first claim of `delivery_id` within the TTL, False for a duplicate."""
        ...


def claim_in(cur: sqlite3.Cursor, delivery_id: str, ttl: float, at: float) -> bool:
    """Claim inside an open transaction (so the queue can claim and enqueue atomically)."""
    cur.execute(
        "INSERT INTO deliveries (id, expires) VALUES (?, ?) "
        "ON CONFLICT(id) DO UPDATE SET expires = excluded.expires WHERE deliveries.expires < ?",
        (delivery_id, at + ttl, at),
    )
    return cur.rowcount == 1


def claim_many_in(cur: sqlite3.Cursor, delivery_ids: Sequence[str], ttl: float, at: float) -> set[str]:
    """Claim distinct ids in one statement inside an open transaction; return the ids this call won."""
    if not delivery_ids:
        return set()
    values = ",".join("(?, ?)" for _ in delivery_ids)
    params: list[object] = []
    for delivery_id in delivery_ids:
        params += [delivery_id, at + ttl]
    cur.execute(
        f"INSERT INTO deliveries (id, expires) VALUES {values} "
        "ON CONFLICT(id) DO UPDATE SET expires = excluded.expires WHERE deliveries.expires < ? RETURNING id",
        [*params, at],
    )
    return {str(row[0]) for row in cur.fetchall()}


def redis_key(delivery_id: str, prefix: str = KEY_PREFIX) -> str:
    """Redis key of one delivery id."""
    return f"{prefix}delivery:{delivery_id}"


class SqliteDedupe:
    """Dedupe table in the queue's SQLite file."""

    def __init__(self, db: SqliteDb, ttl: float = DEFAULT_TTL) -> None:
        self.db = db
        self.ttl = ttl
        db.ensure("dedupe", SQLITE_DDL)

    def claim(self, delivery_id: str) -> bool:
        """Insert-if-absent (an expired row counts as absent)."""
        with self.db.tx() as cur:
            return claim_in(cur, delivery_id, self.ttl, now())

    def purge(self) -> int:
        """Delete expired rows; return how many."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM deliveries WHERE expires < ?", (now(),))
            return cur.rowcount


class RedisDedupe:
    """`SET NX EX` per delivery id; Redis expires the keys."""

    def __init__(self, client: redis.Redis, ttl: float = DEFAULT_TTL, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.ttl = ttl
        self.prefix = prefix

    def claim(self, delivery_id: str) -> bool:
        """SET NX EX: only the first caller within the TTL gets True."""
        return bool(self.client.set(redis_key(delivery_id, self.prefix), b"1", nx=True, ex=max(1, int(self.ttl))))


# Commands are deduplicated on what GitHub signs, not on `X-GitHub-Delivery`: the signature covers only the body
# (docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries), so a captured delivery can be sent
# again under a fresh delivery id. The comment's id is in the signed body; the first job to claim it owns it.
COMMAND_DDL = (
    "CREATE TABLE IF NOT EXISTS command_claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS command_claims_expires ON command_claims (expires)",
)


def command_key(installation_id: int, comment_id: int) -> str:
    """Key of one command comment (ids are per GitHub host; the installation keeps hosts apart)."""
    return f"command:{installation_id}:{comment_id}"


class CommandClaims(Protocol):
    """Which job (by its delivery id) answers a command comment."""

    def claim(self, installation_id: int, comment_id: int, owner: str) -> bool:
        """True when `owner` is the first to claim the comment within the TTL, or already owns it."""
        ...


class SqliteCommandClaims:
    """Command claims in the queue's SQLite file."""

    def __init__(self, db: SqliteDb, ttl: float = DEFAULT_TTL) -> None:
        self.db = db
        self.ttl = ttl
        db.ensure("command_claims", COMMAND_DDL)

    def claim(self, installation_id: int, comment_id: int, owner: str) -> bool:
        """Insert-if-absent (an expired row counts as absent), then compare the owner, in one transaction."""
        at = now()
        key = command_key(installation_id, comment_id)
        with self.db.tx() as cur:
            cur.execute("DELETE FROM command_claims WHERE expires < ?", (at,))
            cur.execute(
                "INSERT INTO command_claims (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING",
                (key, owner, at + self.ttl),
            )
            cur.execute("SELECT owner FROM command_claims WHERE key = ?", (key,))
            row = cur.fetchone()
        return row is not None and str(row[0]) == owner


class RedisCommandClaims:
    """`SET NX EX` then `GET` in one transaction: the value is the owner."""

    def __init__(self, client: redis.Redis, ttl: float = DEFAULT_TTL, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.ttl = ttl
        self.prefix = prefix

    def claim(self, installation_id: int, comment_id: int, owner: str) -> bool:
        """Only the first owner within the TTL (and that owner again) gets True."""
        key = f"{self.prefix}{command_key(installation_id, comment_id)}"
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, owner.encode(), nx=True, ex=max(1, int(self.ttl)))
        pipe.get(key)
        value = pipe.execute()[1]
        return isinstance(value, bytes) and value.decode("utf-8", "replace") == owner


def claims_in(store: object) -> CommandClaims | None:
    """The command claims kept in a queue store (a pacer's SQLite file or Redis); None without one."""
    return in_store(store, SqliteCommandClaims, lambda client, prefix: RedisCommandClaims(client, prefix=prefix))
