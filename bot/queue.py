"""Durable job queue on huey: SqliteHuey in `DATA_DIR` by default, RedisHuey when `REDIS_URL` is set.

`submit` commits, in one transaction (SQLite) or one Lua script (Redis), the delivery-id claim, a ledger
row per job, the coalescing generation bump and huey's queue message, before the webhook is answered.
The ledger makes execution crash-safe: huey deletes a message when a worker pops it, so a worker killed
mid-job would lose it; instead each ledger row carries a deadline, and the reaper re-enqueues rows whose
worker vanished (at-least-once delivery, claimed once, on idempotent jobs: exactly once in effect).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from huey import Huey, RedisHuey, SqliteHuey

from bot import metrics, pacing
from bot.config import Settings
from bot.dedupe import DEFAULT_TTL, claim_many_in, redis_key
from bot.dedupe import SQLITE_DDL as DEDUPE_DDL
from bot.job import Job
from bot.locks import SQLITE_DDL as LOCKS_DDL
from bot.locks import Locks, RedisLocks, SqliteLocks, bump_in
from bot.logs import log_event
from bot.metrics import Counters, RedisCounters, SqliteCounters, incr_in, redis_field
from bot.pacing import PaceLimits, RedisPacer, SqlitePacer
from bot.retry import RetryPolicy, classify_exception, rate_limit_remaining
from bot.storage import KEY_PREFIX, SqliteDb, now, redis_client

Runner = Callable[[Job], object]

HUEY_NAME = "ecr-cache-bot"
TASK_NAME = "ecr_cache_bot.run_job"
DELIVERIES = "ecr_cache_bot_deliveries_total"
JOBS = "ecr_cache_bot_jobs_total"
RETRIES = "ecr_cache_bot_job_retries_total"


@dataclass(frozen=True)
class SubmitResult:
    """What happened to one delivery's jobs."""

    accepted: bool
    duplicate: bool = False
    job_ids: tuple[str, ...] = ()


class JobQueue(Protocol):
    """Durable queue: `submit` returns only after the jobs are committed."""

    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Queue the jobs of one delivery once (a repeated delivery id is a duplicate)."""
        ...


class InMemoryQueue:
    """Non-durable queue for tests: records jobs and runs them on `drain()`."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner
        self.pending: list[Job] = []
        self.seen: set[str] = set()

    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Record the jobs unless the delivery was seen before."""
        if delivery_id in self.seen:
            return SubmitResult(accepted=True, duplicate=True)
        self.seen.add(delivery_id)
        self.pending.extend(jobs)
        return SubmitResult(accepted=True, job_ids=tuple(f"{delivery_id}:{i}" for i in range(len(jobs))))

    def drain(self) -> int:
        """Run every pending job with the runner; return how many ran."""
        count = 0
        while self.pending:
            job = self.pending.pop(0)
            if self.runner is not None:
                self.runner(job)
            count += 1
        return count


@dataclass(frozen=True)
class QueueOptions:
    """Timing knobs (production defaults; tests shorten them)."""

    lease: float = 120.0  # renewed every lease/3 while a job runs; a killed worker's job is re-run after it
    max_runtime: float = 900.0  # a job still running after this (hung) stops being renewed and is re-run
    stale_after: float = 600.0  # a queued job nobody picked up by then is re-queued (lost pop)
    lock_retry: float = 1.0  # wait before retrying a job whose repository is busy
    dedupe_ttl: float = DEFAULT_TTL
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pace: PaceLimits = field(default_factory=PaceLimits)
    fsync: bool = True
    batch_max: int = 256
    coalesce_kinds: frozenset[str] = frozenset({"sync", "install"})
    namespace: str = ""  # isolates several deployments (or test runs) sharing one Redis


@dataclass(frozen=True)
class Claimed:
    """A ledger row a worker owns until it finishes, defers or buries it."""

    job_id: str
    job: Job
    gen: int
    ckey: str
    attempts: int
    token: str


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed permanently or exhausted its retries."""

    job_id: str
    job: Job
    attempts: int
    outcome: str
    error: str
    failed_at: float


@dataclass(frozen=True)
class _Entry:
    job_id: str
    payload: str
    ckey: str
    message: bytes


@dataclass(frozen=True)
class _Request:
    delivery_id: str
    entries: tuple[_Entry, ...]


class Ledger(Protocol):
    """Backend-specific bookkeeping of jobs (SQLite or Redis)."""

    def submit_many(self, requests: Sequence[_Request], at: float, ttl: float, stale: float) -> list[bool]:
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


_LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, payload TEXT NOT NULL, "
    "status TEXT NOT NULL, gen INTEGER NOT NULL, ckey TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "not_before REAL NOT NULL DEFAULT 0, deadline REAL NOT NULL, token TEXT, outcome TEXT, error TEXT, "
    "updated REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_status_deadline ON jobs (status, deadline)",
)


class SqliteLedger:
    """Ledger tables next to huey's `task` table in one SQLite file (so a submit is one transaction)."""

    def __init__(self, db: SqliteDb, huey_queue_name: str) -> None:
        self.db = db
        self.huey_queue_name = huey_queue_name
        db.ensure("ledger", (*_LEDGER_DDL, *DEDUPE_DDL, *LOCKS_DDL, *metrics.SQLITE_DDL))

    def submit_many(self, requests: Sequence[_Request], at: float, ttl: float, stale: float) -> list[bool]:
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
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)", rows)
            # huey's own table (SqliteStorage schema), written in our transaction.
            cur.executemany("INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)",
                            [(self.huey_queue_name, e.message) for _, e in entries])
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
        return Claimed(job_id, Job.from_dict(json.loads(payload)), int(gen), str(ckey), int(attempts), token)

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
        """Reset overdue rows and return their ids."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET attempts = attempts + (status = 'running'), status = 'pending', token = NULL, "
                "not_before = 0, deadline = ?, updated = ? WHERE id IN (SELECT id FROM jobs "
                "WHERE status IN ('pending', 'running') AND deadline < ? LIMIT ?) RETURNING id",
                (at + stale, at, at, limit),
            )
            return [str(row[0]) for row in cur.fetchall()]

    def renew(self, job_id: str, token: str, deadline: float) -> bool:
        """Conditional deadline update."""
        with self.db.tx() as cur:
            cur.execute("UPDATE jobs SET deadline = ? WHERE id = ? AND token = ? AND status = 'running'",
                        (deadline, job_id, token))
            return cur.rowcount == 1

    def dead(self, limit: int = 1000) -> list[DeadLetter]:
        """Rows with status dead."""
        rows = self.db.query(
            "SELECT id, payload, attempts, outcome, error, updated FROM jobs WHERE status = 'dead' "
            "ORDER BY updated LIMIT ?", (limit,))
        return [DeadLetter(str(i), Job.from_dict(json.loads(p)), int(a), str(o), str(e or ""), float(u))
                for i, p, a, o, e, u in rows]

    def revive(self, job_id: str, at: float, stale: float) -> bool:
        """Dead → pending."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, not_before = 0, deadline = ?, outcome = NULL, "
                "updated = ? WHERE id = ? AND status = 'dead'", (at + stale, at, job_id))
            return cur.rowcount == 1

    def purge(self, at: float) -> None:
        """Drop expired delivery ids and pacing entries older than the hour window."""
        with self.db.tx() as cur:
            cur.execute("DELETE FROM deliveries WHERE expires < ?", (at,))
            cur.execute("DELETE FROM pace WHERE ts < ?", (at - 3600,))

    def active_count(self) -> int:
        """Rows not dead."""
        return int(self.db.query("SELECT count(*) FROM jobs WHERE status != 'dead'")[0][0])



_SUBMIT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
  return 0
end
for i = 7, #ARGV, 4 do
  local id, payload, ckey, msg = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gen = 0
  if ckey ~= '' then gen = redis.call('INCR', ARGV[4] .. 'gen:' .. ckey) end
  redis.call('HSET', ARGV[4] .. 'job:' .. id, 'payload', payload, 'status', 'pending', 'gen', gen,
             'ckey', ckey, 'attempts', 0, 'not_before', 0, 'deadline', ARGV[3], 'updated', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], id)
  redis.call('LPUSH', KEYS[2], msg)
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
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. 'job:' .. id
  local st = redis.call('HGET', key, 'status')
  if st == 'running' or st == 'pending' then
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
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempts', 0, 'not_before', 0, 'deadline', ARGV[2],
           'outcome', '', 'updated', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


class RedisLedger:
    """Ledger as one hash per job, a deadline-sorted set of active jobs and a dead-letter sorted set."""

    def __init__(self, client: Any, huey_queue_key: str, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.huey_queue_key = huey_queue_key
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

    def submit_many(self, requests: Sequence[_Request], at: float, ttl: float, stale: float) -> list[bool]:
        """One pipelined round trip; each delivery is one atomic script."""
        pipe = self.client.pipeline(transaction=False)
        for request in requests:
            args: list[Any] = [int(max(1, ttl)), at, at + stale, self.prefix,
                               redis_field(DELIVERIES, outcome="accepted"),
                               redis_field(DELIVERIES, outcome="duplicate")]
            for entry in request.entries:
                args += [entry.job_id, entry.payload, entry.ckey, entry.message]
            self._submit(keys=[redis_key(request.delivery_id, self.prefix), self.huey_queue_key, self._active,
                               self._counters], args=args, client=pipe)
        return [bool(r) for r in pipe.execute()]

    def claim(self, job_id: str, at: float, lease: float) -> Claimed | None:
        """Conditional claim in Lua."""
        token = uuid.uuid4().hex
        row = self._claim(keys=[self._job + job_id, self._active], args=[at, lease, token, job_id])
        if not row:
            return None
        payload, gen, ckey, attempts = (v.decode() if isinstance(v, bytes) else v for v in row)
        return Claimed(job_id, Job.from_dict(json.loads(payload)), int(gen), str(ckey), int(attempts), token)

    def finish(self, job_id: str, token: str, outcome: str) -> bool:
        """Delete and count."""
        return bool(self._finish(keys=[self._job + job_id, self._active, self._counters],
                                 args=[token, job_id, redis_field(JOBS, outcome=outcome)]))

    def defer(self, job_id: str, token: str, eta: float, attempts: int, error: str, stale: float) -> bool:
        """Back to pending."""
        return bool(self._defer(keys=[self._job + job_id, self._active],
                                args=[token, job_id, eta, eta + stale, attempts, error, now()]))

    def bury(self, job_id: str, token: str, outcome: str, error: str, attempts: int) -> bool:
        """Into the dead-letter set."""
        return bool(self._bury(keys=[self._job + job_id, self._active, self._dead, self._counters],
                               args=[token, job_id, outcome, error, attempts, now(),
                                     redis_field(JOBS, outcome=outcome)]))

    def expired(self, at: float, stale: float, limit: int = 500) -> list[str]:
        """Reset overdue jobs in Lua."""
        ids = self._expired(keys=[self._active], args=[at, stale, limit, self.prefix])
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
            letters.append(DeadLetter(job_id, Job.from_dict(json.loads(payload)), int(attempts or 0),
                                      outcome, error, float(updated or 0)))
        return letters

    def revive(self, job_id: str, at: float, stale: float) -> bool:
        """Dead → pending."""
        return bool(self._revive(keys=[self._job + job_id, self._active, self._dead], args=[job_id, at + stale, at]))

    def purge(self, at: float) -> None:
        """Nothing to do: Redis expires delivery ids and pacing windows itself."""

    def active_count(self) -> int:
        """Size of the active set."""
        return int(self.client.zcard(self._active))


class _Slot:
    __slots__ = ("request", "done", "result", "error")

    def __init__(self, request: _Request) -> None:
        self.request = request
        self.done = False
        self.result = False
        self.error: BaseException | None = None


class GroupCommitter:
    """Batches concurrent submits of one process into one commit (one fsync / one round trip for many).

    Leader/follower: the first waiting request thread commits everything queued so far on its own thread
    while later arrivals queue up for the next batch; no extra committer thread to hand work to and back
    (under the GIL each such hand-off costs more than the SQL it saves)."""

    def __init__(self, commit: Callable[[Sequence[_Request]], list[bool]], batch_max: int) -> None:
        self._commit = commit
        self._batch_max = batch_max
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[_Slot] = []
        self._committing = False

    def submit(self, request: _Request, timeout: float = 30.0) -> bool:
        """Wait until this request's batch is committed; True = new delivery."""
        slot = _Slot(request)
        deadline = time.monotonic() + timeout
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while self._committing and not slot.done:
                    if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError("queue commit timed out")
                if slot.done:
                    break
                # Nobody is committing: lead the next batch (ours is in it unless more than a batch waits).
                self._committing = True
                batch, self._pending = self._pending[:self._batch_max], self._pending[self._batch_max:]
            self._lead(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _lead(self, batch: list[_Slot]) -> None:
        try:
            results = self._commit([s.request for s in batch])
            for one, result in zip(batch, results, strict=True):
                one.result = result
        except BaseException as exc:  # every waiter of this batch must learn of the failure
            for one in batch:
                one.error = exc
        with self._cond:
            for one in batch:
                one.done = True
            self._committing = False
            self._cond.notify_all()


class HueyQueue:
    """The durable queue: web processes `submit`, huey consumers call `execute` through the registered task."""

    def __init__(self, huey: Huey, ledger: Ledger, locks: Locks, counters: Counters,
                 pacer: SqlitePacer | RedisPacer, runner: Runner | None,
                 options: QueueOptions | None = None) -> None:
        self.huey = huey
        self.ledger = ledger
        self.locks = locks
        self.counters = counters
        self.pacer = pacer
        self.runner = runner
        self.options = options or QueueOptions()
        self._rng = random.Random()
        self._running: dict[str, tuple[Claimed, str, float]] = {}  # job id -> (claim, lock token, start)
        self._running_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_pid = 0
        self.task = huey.task(name=TASK_NAME)(self.execute)
        self._committer = GroupCommitter(self._commit, self.options.batch_max)
        metrics.bind(counters)
        pacing.bind(pacer)

    def _commit(self, requests: Sequence[_Request]) -> list[bool]:
        return self.ledger.submit_many(requests, now(), self.options.dedupe_ttl, self.options.stale_after)

    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Claim the delivery id and commit its jobs and their queue messages atomically."""
        entries = []
        for job in jobs:
            job_id = uuid.uuid4().hex
            ckey = f"{job.repo_key}:{job.kind}" if job.kind in self.options.coalesce_kinds else ""
            message = self.huey.serialize_task(self.task.s(job_id))
            entries.append(_Entry(job_id, json.dumps(job.to_dict(), separators=(",", ":")), ckey, message))
        fresh = self._committer.submit(_Request(delivery_id, tuple(entries)))
        if not fresh:
            return SubmitResult(accepted=True, duplicate=True)
        return SubmitResult(accepted=True, job_ids=tuple(e.job_id for e in entries))

    def execute(self, job_id: str) -> None:
        """Run one job under its repository lock; classify failures; never sleep for a retry."""
        opts = self.options
        claimed = self.ledger.claim(job_id, now(), opts.lease)
        if claimed is None:
            return  # a duplicate message: the job is done, running elsewhere, or not yet due
        job = claimed.job
        fields = _job_fields(claimed)
        if opts.retry.exhausted(claimed.attempts):
            self._bury(claimed, "dead", "worker lost the job too many times", claimed.attempts, fields, 0.0)
            return
        lock = self.locks.acquire(job.repo_key, opts.lease)
        if lock is None:
            delay = opts.lock_retry * (0.5 + self._rng.random())
            self._defer(claimed, delay, claimed.attempts, "repository busy", fields, counts=False)
            return
        start = time.monotonic()
        self._track(claimed, lock)
        try:
            if claimed.ckey and self.locks.current_generation(claimed.ckey) > claimed.gen:
                self.ledger.finish(job_id, claimed.token, "coalesced")
                log_event("job", outcome="coalesced", duration_ms=_ms(start), **fields)
                return
            try:
                result = self.runner(job) if self.runner is not None else None
            except Exception as exc:
                self._failed(claimed, exc, fields, start)
                return
            outcome, remaining = _result_fields(result)
            # Not ours any more when the lease lapsed (hung or paused) and another run took over.
            done = self.ledger.finish(job_id, claimed.token, "succeeded")
            log_event("job", outcome="succeeded" if done else "superseded", result=outcome,
                      duration_ms=_ms(start), rate_limit_remaining=remaining, attempts=claimed.attempts + 1,
                      **fields)
        finally:
            with self._running_lock:
                self._running.pop(job_id, None)
            self.locks.release(job.repo_key, lock)

    def _track(self, claimed: Claimed, lock: str) -> None:
        with self._running_lock:
            self._running[claimed.job_id] = (claimed, lock, time.monotonic())
        if self._heartbeat is None or self._heartbeat_pid != os.getpid() or not self._heartbeat.is_alive():
            with self._running_lock:
                if self._heartbeat is None or self._heartbeat_pid != os.getpid() or not self._heartbeat.is_alive():
                    self._heartbeat_pid = os.getpid()
                    self._heartbeat = threading.Thread(target=self._renew_forever, name="lease-renewal",
                                                       daemon=True)
                    self._heartbeat.start()

    def _renew_forever(self) -> None:
        """Keep the leases (ledger deadline and repository lock) of this process's running jobs alive."""
        lease = self.options.lease
        while True:
            time.sleep(lease / 3)
            with self._running_lock:
                running = list(self._running.values())
            for claimed, lock, started in running:
                if time.monotonic() - started > self.options.max_runtime:
                    continue  # hung: let the lease lapse so the reaper hands the job to a live thread
                try:
                    self.ledger.renew(claimed.job_id, claimed.token, now() + lease)
                    self.locks.extend(claimed.job.repo_key, lock, lease)
                except Exception as exc:  # the next round retries; a lapse only risks a harmless re-run
                    log_event("queue.renew_failed", level="warning", job_id=claimed.job_id,
                              error=f"{type(exc).__name__}: {exc}")

    def _failed(self, claimed: Claimed, exc: Exception, fields: dict[str, Any], start: float) -> None:
        policy = self.options.retry
        decision = classify_exception(exc, policy)
        remaining = decision.rate_limit_remaining
        if remaining is None:
            remaining = rate_limit_remaining(getattr(exc, "headers", None))
        attempts = claimed.attempts + (1 if decision.counts else 0)
        if decision.action == "fail":
            self._bury(claimed, "failed", decision.reason, attempts, fields, _ms(start), remaining)
        elif policy.exhausted(attempts):
            self._bury(claimed, "dead", f"retries exhausted: {decision.reason}", attempts, fields, _ms(start),
                       remaining)
        else:
            delay = policy.delay(decision, attempts, self._rng)
            self._defer(claimed, delay, attempts, decision.reason, fields, counts=decision.counts,
                        duration_ms=_ms(start), rate_limit_remaining=remaining)

    def _defer(self, claimed: Claimed, delay: float, attempts: int, reason: str, fields: dict[str, Any],
               counts: bool, **extra: Any) -> None:
        eta = now() + delay
        if self.ledger.defer(claimed.job_id, claimed.token, eta, attempts, reason, self.options.stale_after):
            self.huey.add_schedule(self.task.s(claimed.job_id, delay=delay))
            if counts or reason != "repository busy":
                self.counters.incr(RETRIES, reason=reason.split(" (")[0].split(":")[0])
                log_event("job", outcome="retry", reason=reason, retry_in_s=round(delay, 3), attempts=attempts,
                          **extra, **fields)

    def _bury(self, claimed: Claimed, outcome: str, reason: str, attempts: int, fields: dict[str, Any],
              duration_ms: float, remaining: int | None = None) -> None:
        self.ledger.bury(claimed.job_id, claimed.token, outcome, reason, attempts)
        log_event("job", level="error", outcome=outcome, reason=reason, attempts=attempts,
                  duration_ms=duration_ms, rate_limit_remaining=remaining, **fields)

    def reap(self) -> int:
        """Re-enqueue jobs whose worker died or whose queue message was lost; return how many."""
        ids = self.ledger.expired(now(), self.options.stale_after)
        for job_id in ids:
            self.huey.enqueue(self.task.s(job_id))
        if ids:
            log_event("queue.reaped", count=len(ids), level="warning")
        return len(ids)

    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """Jobs that failed permanently or exhausted their retries."""
        return self.ledger.dead(limit)

    def redrive(self, job_ids: Sequence[str] | None = None) -> list[str]:
        """Put dead jobs (all when `job_ids` is None) back on the queue with a fresh retry budget."""
        targets = [d.job_id for d in self.dead_letters()] if job_ids is None else list(job_ids)
        revived = []
        for job_id in targets:
            if self.ledger.revive(job_id, now(), self.options.stale_after):
                self.huey.enqueue(self.task.s(job_id))
                revived.append(job_id)
        return revived

    def consumer(self, workers: int = 4, **options: Any) -> Any:
        """A huey consumer for this queue (threads; short polling so SQLite jobs start promptly)."""
        # SIGTERM (what Heroku-style platforms and `serve` send) lets running jobs finish for up to 20 s;
        # a job still running after that is re-run by the reaper once its lease ends.
        settings: dict[str, Any] = {"workers": workers, "worker_type": "thread", "periodic": False,
                                    "initial_delay": 0.05, "backoff": 1.5, "max_delay": 1.0,
                                    "check_worker_health": True, "graceful_signal": "TERM",
                                    "shutdown_timeout": 20}
        settings.update(options)
        return self.huey.create_consumer(**settings)


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


_EVENT_OF_KIND = {"sync": "push", "command": "issue_comment", "pr_closed": "pull_request",
                  "install": "installation"}


def _job_fields(claimed: Claimed) -> dict[str, Any]:
    job = claimed.job
    data = job.data
    return {"job_id": claimed.job_id, "delivery_id": job.delivery_id, "kind": job.kind,
            "event_name": data.get("event") or _EVENT_OF_KIND.get(job.kind, job.kind),
            "action": data.get("action") or data.get("command") or data.get("trigger"),
            "installation": job.installation_id, "repository": job.repo}


def _result_fields(result: object) -> tuple[str | None, int | None]:
    if isinstance(result, Mapping):
        outcome, remaining = result.get("outcome"), result.get("rate_limit_remaining")
    else:
        outcome = getattr(result, "outcome", None)
        remaining = getattr(result, "rate_limit_remaining", None)
    return (str(outcome) if outcome is not None else None,
            int(remaining) if isinstance(remaining, int | float) else None)


def build_queue(settings: Settings, runner: Runner | None, options: QueueOptions | None = None) -> HueyQueue:
    """The durable queue for these settings: Redis when `redis_url` is set, else SQLite in `data_dir`."""
    if options is None:
        # Optional settings (read when `Settings` has them): `queue_fsync` False (QUEUE_FSYNC=normal) keeps
        # commits safe from a killed process but not from a power cut; `queue_namespace` lets several
        # deployments share one Redis.
        options = QueueOptions(fsync=bool(getattr(settings, "queue_fsync", True)),
                               namespace=str(getattr(settings, "queue_namespace", "") or ""))
    if settings.redis_url:
        client = redis_client(settings.redis_url)
        prefix = f"{KEY_PREFIX}{options.namespace}:" if options.namespace else KEY_PREFIX
        name = f"{HUEY_NAME}-{options.namespace}" if options.namespace else HUEY_NAME
        huey: Huey = RedisHuey(name, url=settings.redis_url, results=False, utc=True)
        return HueyQueue(huey, RedisLedger(client, huey.storage.queue_key, prefix), RedisLocks(client, prefix),
                         RedisCounters(client, prefix), RedisPacer(client, options.pace, prefix), runner, options)
    path = Path(settings.data_dir) / "queue.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    # fsync=None keeps SQLite's WAL default (FULL) for huey's own connections; False would turn syncing off.
    huey = SqliteHuey(HUEY_NAME, filename=str(path), results=False, utc=True, timeout=30,
                      fsync=True if options.fsync else None)
    db = SqliteDb(path, fsync=options.fsync)
    return HueyQueue(huey, SqliteLedger(db, huey.storage.name), SqliteLocks(db), SqliteCounters(db),
                     SqlitePacer(db, options.pace), runner, options)


def create_queue(settings: Settings, runner: Runner) -> JobQueue:
    """Return the durable queue for these settings (see `build_queue`)."""
    return build_queue(settings, runner)
