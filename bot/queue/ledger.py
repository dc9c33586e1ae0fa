"""The job ledger behind the durable queue: one row (SQLite) or hash (Redis) per job, with a deadline.

Huey deletes a message when a worker pops it, so the ledger is what makes execution crash-safe: a job is
claimed (pending → running) with a token, renewed while its worker lives, and finished, deferred or buried
by that token; rows past their deadline are handed back for re-enqueueing. Submitting commits the delivery
claim, the ledger rows, the coalescing generations and huey's own queue messages in one transaction (SQLite)
or one Lua script per delivery (Redis).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.app.payloads import AnyJob, job_from_dict
from bot.queue import counters as metrics
from bot.queue.counters import DELIVERIES, JOBS, incr_in, redis_field
from bot.queue.dedupe import SQLITE_DDL as DEDUPE_DDL
from bot.queue.dedupe import claim_many_in, redis_key
from bot.queue.huey_storage import LedgerRedisStorage, LedgerSqliteStorage
from bot.queue.locks import SQLITE_DDL as LOCKS_DDL
from bot.queue.locks import bump_in
from bot.queue.storage import KEY_PREFIX, SqliteDb, now

Waiting = Callable[[], Collection[str]]  # ids of the jobs whose message waits in huey's queue or schedule


@dataclass(frozen=True)
class Claimed:
    """A ledger row a worker owns until it finishes, defers or buries it."""

    job_id: str
    job: AnyJob
    gen: int
    ckey: str
    attempts: int
    token: str


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed permanently or exhausted its retries."""

    job_id: str
    job: AnyJob
    attempts: int
    outcome: str
    error: str
    failed_at: float


@dataclass(frozen=True)
class Entry:
    """One job of a submission: its ledger row and its serialised huey message."""

    job_id: str
    payload: str
    ckey: str
    message: bytes


@dataclass(frozen=True)
class SubmitRequest:
    """One delivery's jobs, committed together or not at all."""

    delivery_id: str
    entries: tuple[Entry, ...]


class Ledger(Protocol):
    """Backend-specific bookkeeping of jobs (SQLite or Redis)."""

    def submit_many(self, requests: Sequence[SubmitRequest], at: float, ttl: float, stale: float) -> list[bool]:
        """Commit each request atomically; True = new delivery, False = duplicate."""
        ...

    def claim(self, job_id: str, at: float, lease: float) -> Claimed | None:
        """Pending → running for this worker, or None (already done, running, or not due)."""
        ...

    def finish(self, job_id: str, token: str, outcome: str) -> bool:
        """Delete the row and count the outcome."""
        ...

    def defer(self, job_id: str, token: str, eta: float, attempts: int, error: str, stale: float) -> bool:
        """Running → pending, due at `eta`."""
        ...

    def bury(self, job_id: str, token: str, outcome: str, error: str, attempts: int) -> bool:
        """Running → dead (the dead-letter list)."""
        ...

    def expired(self, at: float, stale: float, limit: int = 500) -> list[str]:
        """Rows past their deadline, reset to pending for re-enqueueing (a running one counts an attempt)."""
        ...

    def renew(self, job_id: str, token: str, deadline: float) -> bool:
        """Move a running job's deadline (its worker is alive)."""
        ...

    def dead(self, limit: int = 1000) -> list[DeadLetter]:
        """The dead-letter list, oldest first."""
        ...

    def revive(self, job_id: str, at: float, stale: float) -> bool:
        """Dead → pending with a fresh attempt budget."""
        ...

    def purge(self, at: float) -> None:
        """Drop expired bookkeeping."""
        ...

    def active_count(self) -> int:
        """Jobs queued, scheduled or running."""
        ...

    def dead_count(self) -> int:
        """Jobs in the dead-letter list (all of them, unlike `dead`, which pages)."""
        ...


_LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, payload TEXT NOT NULL, "
    "status TEXT NOT NULL, gen INTEGER NOT NULL, ckey TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "not_before REAL NOT NULL DEFAULT 0, deadline REAL NOT NULL, token TEXT, outcome TEXT, error TEXT, "
    "updated REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_status_deadline ON jobs (status, deadline)",
)


class SqliteLedger:
    """Ledger tables in huey's SQLite file, so a submit and its huey messages are one transaction."""

    def __init__(self, db: SqliteDb, storage: LedgerSqliteStorage, waiting: Waiting) -> None:
        self.db = db
        self.storage = storage
        self.waiting = waiting
        db.ensure("ledger", (*_LEDGER_DDL, *DEDUPE_DDL, *LOCKS_DDL, *metrics.SQLITE_DDL))

    def submit_many(self, requests: Sequence[SubmitRequest], at: float, ttl: float, stale: float) -> list[bool]:
        """One transaction for the whole batch (group commit: one fsync for many webhooks)."""
        # A delivery id twice in one batch: the first is the claim, the rest are duplicates.
        distinct = list(dict.fromkeys(r.delivery_id for r in requests))
        with self.db.tx() as cur:
            won = claim_many_in(cur, distinct, ttl, at)
            results = []
            fresh_requests = []
            for request in requests:
                fresh = request.delivery_id in won
                won.discard(request.delivery_id)
                results.append(fresh)
                if fresh:
                    fresh_requests.append(request)
            entries = [(r, e) for r in fresh_requests for e in r.entries]
            per_key = Counter(e.ckey for _, e in entries if e.ckey)
            # Generations in submission order: bump each key once by its count, hand out the range.
            next_gen = {key: bump_in(cur, key, count) - count + 1 for key, count in per_key.items()}
            rows = []
            for request, entry in entries:
                gen = 0
                if entry.ckey:
                    gen = next_gen[entry.ckey]
                    next_gen[entry.ckey] += 1
                rows.append((entry.job_id, request.delivery_id, entry.payload, gen, entry.ckey, at + stale, at))
            cur.executemany(
                "INSERT INTO jobs (id, delivery_id, payload, status, gen, ckey, deadline, updated) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                rows,
            )
            self.storage.enqueue_in(cur, [e.message for _, e in entries])  # huey's enqueue, in our transaction
            accepted = sum(results)
            for outcome, count in (("accepted", accepted), ("duplicate", len(results) - accepted)):
                if count:
                    incr_in(cur, DELIVERIES, count, outcome=outcome)
        return results

    def claim(self, job_id: str, at: float, lease: float) -> Claimed | None:
        """Conditional update; the token proves ownership later."""
        token = uuid.uuid4().hex
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'running', token = ?, deadline = ?, updated = ? "
                "WHERE id = ? AND status = 'pending' AND not_before <= ? "
                "RETURNING payload, gen, ckey, attempts",
                (token, at + lease, at, job_id, at + 1.0),
            )
            row = cur.fetchone()
        if row is None:
            return None
        payload, gen, ckey, attempts = row
        return Claimed(job_id, job_from_dict(json.loads(payload)), int(gen), str(ckey), int(attempts), token)

    def finish(self, job_id: str, token: str, outcome: str) -> bool:
        """Delete the row; the outcome counter moves in the same commit."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM jobs WHERE id = ? AND token = ? AND status = 'running'", (job_id, token))
            done = cur.rowcount == 1
            if done:
                incr_in(cur, JOBS, outcome=outcome)
            return done

    def defer(self, job_id: str, token: str, eta: float, attempts: int, error: str, stale: float) -> bool:
        """Back to pending, not before `eta`."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'pending', not_before = ?, deadline = ?, attempts = ?, error = ?, "
                "token = NULL, updated = ? WHERE id = ? AND token = ? AND status = 'running'",
                (eta, eta + stale, attempts, error, now(), job_id, token),
            )
            return cur.rowcount == 1

    def bury(self, job_id: str, token: str, outcome: str, error: str, attempts: int) -> bool:
        """Keep the row as a dead letter."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'dead', outcome = ?, error = ?, attempts = ?, token = NULL, updated = ? "
                "WHERE id = ? AND token = ? AND status = 'running'",
                (outcome, error, attempts, now(), job_id, token),
            )
            done = cur.rowcount == 1
            if done:
                incr_in(cur, JOBS, outcome=outcome)
            return done

    def expired(self, at: float, stale: float, limit: int = 500) -> list[str]:
        """Reset overdue rows and return their ids; a pending job whose message still waits in huey's queue or
        schedule (a large backlog, not a lost pop) only gets a new deadline, so it is not queued twice."""
        # huey's messages are read before the transaction (huey's connection must not wait on our write lock);
        # at worst a message popped meanwhile is found by the next sweep.
        queued: Collection[str] = ()
        if self.db.query("SELECT 1 FROM jobs WHERE status = 'pending' AND deadline < ? LIMIT 1", (at,)):
            queued = self.waiting()
        with self.db.tx() as cur:
            cur.execute(
                "SELECT id, status FROM jobs WHERE status IN ('pending', 'running') AND deadline < ? LIMIT ?",
                (at, limit),
            )
            overdue = cur.fetchall()
            waiting = {str(i) for i, status in overdue if status == "pending" and i in queued}
            cur.executemany(
                "UPDATE jobs SET deadline = ? WHERE id = ? AND status = 'pending'", [(at + stale, i) for i in waiting]
            )
            lost = [(at + stale, at, str(i)) for i, _ in overdue if i not in waiting]
            cur.executemany(
                "UPDATE jobs SET attempts = attempts + (status = 'running'), status = 'pending', token = NULL, "
                "not_before = 0, deadline = ?, updated = ? WHERE id = ?",
                lost,
            )
            return [i for _, _, i in lost]

    def renew(self, job_id: str, token: str, deadline: float) -> bool:
        """Conditional deadline update."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET deadline = ? WHERE id = ? AND token = ? AND status = 'running'",
                (deadline, job_id, token),
            )
            return cur.rowcount == 1

    def dead(self, limit: int = 1000) -> list[DeadLetter]:
        """Rows with status dead."""
        rows = self.db.query(
            "SELECT id, payload, attempts, outcome, error, updated FROM jobs WHERE status = 'dead' "
            "ORDER BY updated LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(str(i), job_from_dict(json.loads(p)), int(a), str(o), str(e or ""), float(u))
            for i, p, a, o, e, u in rows
        ]

    def revive(self, job_id: str, at: float, stale: float) -> bool:
        """Dead → pending, as the newest job of its coalescing key (a redriven job must not count as superseded)."""
        with self.db.tx() as cur:
            cur.execute("SELECT ckey FROM jobs WHERE id = ? AND status = 'dead'", (job_id,))
            row = cur.fetchone()
            if row is None:
                return False
            gen = bump_in(cur, row[0]) if row[0] else 0
            cur.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, not_before = 0, deadline = ?, outcome = NULL, "
                "updated = ?, gen = ? WHERE id = ? AND status = 'dead'",
                (at + stale, at, gen, job_id),
            )
            return cur.rowcount == 1

    def purge(self, at: float) -> None:
        """Drop expired delivery ids and pacing entries older than the hour window."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM deliveries WHERE expires < ?", (at,))
            cur.execute("DELETE FROM pace WHERE ts < ?", (at - 3600,))
            # One generation per set of added repositories: forget it once no live job carries it (a missing
            # generation reads as 0, which can only cause an extra run).
            cur.execute(
                "DELETE FROM generations WHERE key LIKE '%:added=%' AND key NOT IN "
                "(SELECT ckey FROM jobs WHERE status != 'dead')"
            )

    def active_count(self) -> int:
        """Rows not dead."""
        return int(self.db.query("SELECT count(*) FROM jobs WHERE status != 'dead'")[0][0])

    def dead_count(self) -> int:
        """Rows dead."""
        return int(self.db.query("SELECT count(*) FROM jobs WHERE status = 'dead'")[0][0])


_SUBMIT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
  return 0
end
for i = 8, #ARGV, 4 do
  local id, payload, ckey, msg = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gen = 0
  if ckey ~= '' then
    gen = redis.call('INCR', ARGV[4] .. 'gen:' .. ckey)
    -- A lapsed generation reads as 0, which can only cause an extra run, never a dropped job.
    redis.call('EXPIRE', ARGV[4] .. 'gen:' .. ckey, 604800)
  end
  redis.call('HSET', ARGV[4] .. 'job:' .. id, 'payload', payload, 'status', 'pending', 'gen', gen,
             'ckey', ckey, 'attempts', 0, 'not_before', 0, 'deadline', ARGV[3], 'updated', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], id)
  redis.call(ARGV[7], KEYS[2], msg)  -- huey's enqueue (LedgerRedisStorage.enqueue_target)
end
redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
return 1
"""

_CLAIM_LUA = """
local at = tonumber(ARGV[1])
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'pending' then return false end
if tonumber(redis.call('HGET', KEYS[1], 'not_before') or '0') > at + 1 then return false end
local deadline = at + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'running', 'token', ARGV[3], 'deadline', deadline, 'updated', ARGV[1])
redis.call('ZADD', KEYS[2], deadline, ARGV[4])
return redis.call('HMGET', KEYS[1], 'payload', 'gen', 'ckey', 'attempts')
"""

_FINISH_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return 1
"""

_DEFER_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'not_before', ARGV[3], 'deadline', ARGV[4],
           'attempts', ARGV[5], 'error', ARGV[6], 'token', '', 'updated', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
"""

_BURY_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'dead', 'outcome', ARGV[3], 'error', ARGV[4], 'attempts', ARGV[5],
           'token', '', 'updated', ARGV[6])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[2])
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
return 1
"""

_EXPIRED_LUA = """
local at, stale = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local waiting = {}
for i = 5, #ARGV do waiting[ARGV[i]] = true end
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. 'job:' .. id
  local st = redis.call('HGET', key, 'status')
  if st == 'pending' and waiting[id] then
    redis.call('HSET', key, 'deadline', at + stale)
    redis.call('ZADD', KEYS[1], at + stale, id)
  elseif st == 'running' or st == 'pending' then
    if st == 'running' then redis.call('HINCRBY', key, 'attempts', 1) end
    redis.call('HSET', key, 'status', 'pending', 'token', '', 'not_before', 0, 'deadline', at + stale,
               'updated', ARGV[1])
    redis.call('ZADD', KEYS[1], at + stale, id)
    table.insert(out, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

_RENEW_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'deadline', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

_REVIVE_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'dead' then return 0 end
local ckey = redis.call('HGET', KEYS[1], 'ckey') or ''
local gen = 0
if ckey ~= '' then
  -- The redriven job becomes the newest of its key, so it is not dropped as superseded.
  gen = redis.call('INCR', ARGV[4] .. 'gen:' .. ckey)
  redis.call('EXPIRE', ARGV[4] .. 'gen:' .. ckey, 604800)
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempts', 0, 'not_before', 0, 'deadline', ARGV[2],
           'outcome', '', 'updated', ARGV[3], 'gen', gen)
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


class RedisLedger:
    """Ledger as one hash per job, a deadline-sorted set of active jobs and a dead-letter sorted set."""

    def __init__(self, client: Any, storage: LedgerRedisStorage, waiting: Waiting, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.storage = storage
        self.waiting = waiting
        self.prefix = prefix
        self._job = prefix + "job:"
        self._active = prefix + "jobs:active"
        self._dead = prefix + "jobs:dead"
        self._counters = prefix + metrics.REDIS_KEY
        self._submit = client.register_script(_SUBMIT_LUA)
        self._claim = client.register_script(_CLAIM_LUA)
        self._finish = client.register_script(_FINISH_LUA)
        self._defer = client.register_script(_DEFER_LUA)
        self._bury = client.register_script(_BURY_LUA)
        self._expired = client.register_script(_EXPIRED_LUA)
        self._revive = client.register_script(_REVIVE_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    def submit_many(self, requests: Sequence[SubmitRequest], at: float, ttl: float, stale: float) -> list[bool]:
        """One pipelined round trip; each delivery is one atomic script."""
        command, queue_key = self.storage.enqueue_target()
        pipe = self.client.pipeline(transaction=False)
        for request in requests:
            args: list[Any] = [
                int(max(1, ttl)),
                at,
                at + stale,
                self.prefix,
                redis_field(DELIVERIES, outcome="accepted"),
                redis_field(DELIVERIES, outcome="duplicate"),
                command,
            ]
            for entry in request.entries:
                args += [entry.job_id, entry.payload, entry.ckey, entry.message]
            self._submit(
                keys=[redis_key(request.delivery_id, self.prefix), queue_key, self._active, self._counters],
                args=args,
                client=pipe,
            )
        return [bool(r) for r in pipe.execute()]

    def claim(self, job_id: str, at: float, lease: float) -> Claimed | None:
        """Conditional claim in Lua."""
        token = uuid.uuid4().hex
        row = self._claim(keys=[self._job + job_id, self._active], args=[at, lease, token, job_id])
        if not row:
            return None
        payload, gen, ckey, attempts = (v.decode() if isinstance(v, bytes) else v for v in row)
        return Claimed(job_id, job_from_dict(json.loads(payload)), int(gen), str(ckey), int(attempts), token)

    def finish(self, job_id: str, token: str, outcome: str) -> bool:
        """Delete and count."""
        return bool(
            self._finish(
                keys=[self._job + job_id, self._active, self._counters],
                args=[token, job_id, redis_field(JOBS, outcome=outcome)],
            )
        )

    def defer(self, job_id: str, token: str, eta: float, attempts: int, error: str, stale: float) -> bool:
        """Back to pending."""
        return bool(
            self._defer(
                keys=[self._job + job_id, self._active], args=[token, job_id, eta, eta + stale, attempts, error, now()]
            )
        )

    def bury(self, job_id: str, token: str, outcome: str, error: str, attempts: int) -> bool:
        """Into the dead-letter set."""
        return bool(
            self._bury(
                keys=[self._job + job_id, self._active, self._dead, self._counters],
                args=[token, job_id, outcome, error, attempts, now(), redis_field(JOBS, outcome=outcome)],
            )
        )

    def expired(self, at: float, stale: float, limit: int = 500) -> list[str]:
        """Reset overdue jobs in Lua; one whose message still waits in huey's list or schedule gets a new
        deadline instead (read first: at worst a message popped meanwhile is found by the next sweep)."""
        waiting: list[str] = []
        overdue = self.client.zrangebyscore(self._active, "-inf", f"({at}", start=0, num=limit)
        if overdue:
            queued = self.waiting()
            waiting = [i for i in (o.decode() if isinstance(o, bytes) else str(o) for o in overdue) if i in queued]
        ids = self._expired(keys=[self._active], args=[at, stale, limit, self.prefix, *waiting])
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    def renew(self, job_id: str, token: str, deadline: float) -> bool:
        """Conditional deadline update in Lua."""
        return bool(self._renew(keys=[self._job + job_id, self._active], args=[token, deadline, job_id]))

    def dead(self, limit: int = 1000) -> list[DeadLetter]:
        """Read the dead-letter set."""
        letters = []
        for raw in self.client.zrange(self._dead, 0, limit - 1):
            job_id = raw.decode()
            fields = self.client.hmget(self._job + job_id, "payload", "attempts", "outcome", "error", "updated")
            if fields[0] is None:
                continue
            payload, attempts, outcome, error, updated = (f.decode() if f else "" for f in fields)
            letters.append(
                DeadLetter(
                    job_id, job_from_dict(json.loads(payload)), int(attempts or 0), outcome, error, float(updated or 0)
                )
            )
        return letters

    def revive(self, job_id: str, at: float, stale: float) -> bool:
        """Dead → pending."""
        return bool(
            self._revive(
                keys=[self._job + job_id, self._active, self._dead], args=[job_id, at + stale, at, self.prefix]
            )
        )

    def purge(self, at: float) -> None:
        """Nothing to do: Redis expires delivery ids and pacing windows itself."""

    def active_count(self) -> int:
        """Size of the active set."""
        return int(self.client.zcard(self._active))

    def dead_count(self) -> int:
        """Size of the dead set."""
        return int(self.client.zcard(self._dead))
