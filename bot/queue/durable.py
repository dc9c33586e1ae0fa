"""Durable job queue on huey: SqliteHuey in `DATA_DIR` by default, RedisHuey when `REDIS_URL` is set.

`submit` commits the delivery-id claim, the jobs and huey's queue messages before the webhook is answered
(`bot/queue/ledger.py`), batching concurrent submits of a process into one commit. Workers run each job under its
repository lock, coalesce superseded pushes, classify failures (`bot/queue/retry.py`) and retry without sleeping;
the reaper re-enqueues jobs whose worker vanished (at-least-once, claimed once: exactly once in effect).

A run's lease (its ledger deadline and its repository lock) is renewed for as long as the thread running it
lives, however long that is: re-running a job whose first run still lives would run one repository twice at
once. A run past `max_runtime` is reported (a `job.overrun` warning and `OVERRUNS`) and keeps its repository
until it ends or its process exits; only then does the lease lapse and the reaper hand the job on.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from huey import Huey

from bot.app import fanout
from bot.app.payloads import AnyJob
from bot.logs import log_event
from bot.queue import counters as metrics
from bot.queue import heartbeat
from bot.queue.counters import RETRIES, Counters, RedisCounters, SqliteCounters
from bot.queue.dedupe import DEFAULT_TTL
from bot.queue.huey_storage import redis_huey, sqlite_huey, waiting_args
from bot.queue.ledger import Claimed, DeadLetter, Entry, Ledger, RedisLedger, SqliteLedger, SubmitRequest
from bot.queue.locks import Locks, RedisLocks, SqliteLocks
from bot.queue.pacing import PaceLimits, RedisPacer, SqlitePacer
from bot.queue.retry import RetryPolicy, classify_exception, rate_limit_remaining
from bot.queue.storage import KEY_PREFIX, SqliteDb, now, redis_client
from bot.settings import Settings

Runner = Callable[[AnyJob], object]

OVERRUNS = "ecr_cache_bot_job_overruns_total"
metrics.HELP.setdefault(OVERRUNS, "Job runs still going after max_runtime (their repository stays locked), by kind.")

HUEY_NAME = "ecr-cache-bot"
TASK_NAME = "ecr_cache_bot.run_job"
# huey names a message's task `<module of its function>.<name>`: the module the task lived in before bot/queue.py
# became a package, so that messages queued by either release are read by the other over a deploy.
TASK_MODULE = "bot.queue"


@dataclass(frozen=True)
class SubmitResult:
    """What happened to one delivery's jobs."""

    accepted: bool
    duplicate: bool = False
    job_ids: tuple[str, ...] = ()


class JobQueue(Protocol):
    """Durable queue: `submit` returns only after the jobs are committed."""

    def submit(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitResult:
        """Queue the jobs of one delivery once (a repeated delivery id is a duplicate)."""
        ...


class InMemoryQueue:
    """Non-durable queue for tests: records jobs and runs them on `drain()`."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner
        self.pending: list[AnyJob] = []
        self.seen: set[str] = set()

    def submit(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitResult:
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
    max_runtime: float = 900.0  # a run still going after this is reported as overrun; it keeps its lease
    stale_after: float = 600.0  # a queued job nobody picked up by then is re-queued (lost pop)
    lock_retry: float = 1.0  # wait before retrying a job whose repository is busy
    dedupe_ttl: float = DEFAULT_TTL
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pace: PaceLimits = field(default_factory=PaceLimits)
    fsync: bool = True
    batch_max: int = 256
    coalesce_kinds: frozenset[str] = frozenset({"sync", "install"})
    namespace: str = ""  # isolates several deployments (or test runs) sharing one Redis
    beat_interval: float = heartbeat.BEAT_INTERVAL  # seconds between a worker's heartbeats in the queue store


class _Slot:
    __slots__ = ("request", "done", "result", "error")

    def __init__(self, request: SubmitRequest) -> None:
        self.request = request
        self.done = False
        self.result = False
        self.error: BaseException | None = None


class GroupCommitter:
    """Batches concurrent submits of one process into one commit (one fsync / one round trip for many).

    Leader/follower: the first waiting request thread commits everything queued so far on its own thread
    while later arrivals queue up for the next batch; no extra committer thread to hand work to and back
    (under the GIL each such hand-off costs more than the SQL it saves)."""

    def __init__(self, commit: Callable[[Sequence[SubmitRequest]], list[bool]], batch_max: int) -> None:
        self._commit = commit
        self._batch_max = batch_max
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[_Slot] = []
        self._committing = False

    def submit(self, request: SubmitRequest, timeout: float = 30.0) -> bool:
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
                batch, self._pending = self._pending[: self._batch_max], self._pending[self._batch_max :]
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

    def __init__(
        self,
        huey: Huey,
        ledger: Ledger,
        locks: Locks,
        counters: Counters,
        pacer: SqlitePacer | RedisPacer,
        runner: Runner | None,
        options: QueueOptions | None = None,
        heartbeats: heartbeat.Heartbeats | None = None,
    ) -> None:
        self.huey = huey
        self.heartbeats = heartbeats  # where workers report (and whether the store takes writes: /readyz)
        self.ledger = ledger
        self.locks = locks
        self.counters = counters
        self.pacer = pacer
        self.runner = runner
        self.options = options or QueueOptions()
        self._rng = random.Random()
        self._running: dict[str, _Run] = {}  # job id -> the run holding its lease
        self._running_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_pid = 0
        self.task = huey.task(name=TASK_NAME)(self._task_function())
        self._committer = GroupCommitter(self._commit, self.options.batch_max)

    def _task_function(self) -> Callable[[str], None]:
        def run_job(job_id: str) -> None:
            self.execute(job_id)

        run_job.__module__ = TASK_MODULE
        return run_job

    def _commit(self, requests: Sequence[SubmitRequest]) -> list[bool]:
        return self.ledger.submit_many(requests, now(), self.options.dedupe_ttl, self.options.stale_after)

    def submit_request(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitRequest:
        """The ledger rows and huey messages of one delivery, ready for one atomic commit."""
        entries = []
        for job in jobs:
            job_id = uuid.uuid4().hex
            ckey = coalesce_key(job) if job.kind in self.options.coalesce_kinds else ""
            message = self.huey.serialize_task(self.task.s(job_id))
            entries.append(Entry(job_id, json.dumps(job.to_dict(), separators=(",", ":")), ckey, message))
        return SubmitRequest(delivery_id, tuple(entries))

    def submit(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitResult:
        """Claim the delivery id and commit its jobs and their queue messages atomically."""
        request = self.submit_request(delivery_id, jobs)
        if not self._committer.submit(request):
            return SubmitResult(accepted=True, duplicate=True)
        return SubmitResult(accepted=True, job_ids=tuple(e.job_id for e in request.entries))

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
        self._track(claimed, lock, threading.current_thread())
        try:
            if claimed.ckey and self.locks.current_generation(claimed.ckey) > claimed.gen:
                self._untrack(job_id)
                if self.ledger.finish(job_id, claimed.token, "coalesced"):
                    # A later job does this repository's work, but this fan-out still counts it as done (else
                    # its last progress line and its preview summary never come).
                    fanout.finished(job, "coalesced", pacer=self.pacer, counters=self.counters)
                log_event("job", outcome="coalesced", duration_ms=_ms(start), **fields)
                return
            try:
                # The runner gives the job this queue's pacer and counters in its JobContext (bot/wiring.py).
                result = self.runner(job) if self.runner is not None else None
            except Exception as exc:
                self._untrack(job_id)
                self._failed(claimed, exc, fields, start)
                return
            self._untrack(job_id)
            outcome, remaining = _result_fields(result)
            # Not ours any more when the lease lapsed (hung or paused) and another run took over.
            done = self.ledger.finish(job_id, claimed.token, "succeeded")
            log_event(
                "job",
                outcome="succeeded" if done else "superseded",
                result=outcome,
                duration_ms=_ms(start),
                rate_limit_remaining=remaining,
                attempts=claimed.attempts + 1,
                **fields,
            )
        finally:
            self._untrack(job_id)
            self.locks.release(job.repo_key, lock)

    def final(self, exc: BaseException) -> bool:
        """True when this queue will not run a job that raised `exc` again (the retry policy fails it)."""
        return classify_exception(exc, self.options.retry).action == "fail"

    def _track(self, claimed: Claimed, lock: str, thread: threading.Thread) -> None:
        with self._running_lock:
            self._running[claimed.job_id] = _Run(claimed, lock, thread, time.monotonic())
        if self._heartbeat is None or self._heartbeat_pid != os.getpid() or not self._heartbeat.is_alive():
            with self._running_lock:
                if self._heartbeat is None or self._heartbeat_pid != os.getpid() or not self._heartbeat.is_alive():
                    self._heartbeat_pid = os.getpid()
                    self._heartbeat = threading.Thread(target=self._renew_forever, name="lease-renewal", daemon=True)
                    self._heartbeat.start()

    def _untrack(self, job_id: str) -> None:
        """The run is over: no renewal after this (so finishing never races a renewal into a false alarm)."""
        with self._running_lock:
            run = self._running.pop(job_id, None)
        if run is not None:
            with run.guard:
                run.ended = True

    def _renew_forever(self) -> None:
        """Keep the leases (ledger deadline and repository lock) of this process's live runs alive."""
        lease = self.options.lease
        while True:
            time.sleep(lease / 3)
            with self._running_lock:
                running = list(self._running.values())
            for run in running:
                if not run.thread.is_alive():
                    continue  # no run behind it any more: let the lease lapse so the reaper hands the job on
                with run.guard:
                    if not run.ended:
                        self._renew(run, lease)

    def _renew(self, run: _Run, lease: float) -> None:
        claimed = run.claimed
        if not run.overrun and time.monotonic() - run.started > self.options.max_runtime:
            # Reported, not taken away: a second run beside a live first one is worse than a stuck repository.
            run.overrun = True
            fields = _job_fields(claimed)
            log_event(
                "job.overrun",
                level="warning",
                max_runtime_s=self.options.max_runtime,
                running_s=round(time.monotonic() - run.started, 1),
                thread=run.thread.name,
                **fields,
            )
            try:
                self.counters.incr(OVERRUNS, kind=claimed.job.kind)
            except Exception as exc:  # the report must not cost the lease
                log_event("queue.count_failed", level="warning", error=f"{type(exc).__name__}: {exc}")
        try:
            held = self.ledger.renew(claimed.job_id, claimed.token, now() + lease)
            locked = self.locks.extend(claimed.job.repo_key, run.lock, lease)
        except Exception as exc:  # the next round retries; the lease outlives two failed rounds
            log_event(
                "queue.renew_failed", level="warning", job_id=claimed.job_id, error=f"{type(exc).__name__}: {exc}"
            )
            return
        if not (held and locked) and not run.lost:
            run.lost = True  # renewed too late (a paused process): the job or its repository moved on
            log_event("queue.lease_lost", level="error", job=held, lock=locked, **_job_fields(claimed))

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
            self._bury(
                claimed, "dead", f"retries exhausted: {decision.reason}", attempts, fields, _ms(start), remaining
            )
        else:
            delay = policy.delay(decision, attempts, self._rng)
            self._defer(
                claimed,
                delay,
                attempts,
                decision.reason,
                fields,
                counts=decision.counts,
                duration_ms=_ms(start),
                rate_limit_remaining=remaining,
            )

    def _defer(
        self,
        claimed: Claimed,
        delay: float,
        attempts: int,
        reason: str,
        fields: dict[str, Any],
        counts: bool,
        **extra: Any,
    ) -> None:
        eta = now() + delay
        if self.ledger.defer(claimed.job_id, claimed.token, eta, attempts, reason, self.options.stale_after):
            self.huey.add_schedule(self.task.s(claimed.job_id, delay=delay))
            if counts or reason != "repository busy":
                self.counters.incr(RETRIES, reason=reason.split(" (")[0].split(":")[0])
                log_event(
                    "job",
                    outcome="retry",
                    reason=reason,
                    retry_in_s=round(delay, 3),
                    attempts=attempts,
                    **extra,
                    **fields,
                )

    def _bury(
        self,
        claimed: Claimed,
        outcome: str,
        reason: str,
        attempts: int,
        fields: dict[str, Any],
        duration_ms: float,
        remaining: int | None = None,
    ) -> None:
        self.ledger.bury(claimed.job_id, claimed.token, outcome, reason, attempts)
        log_event(
            "job",
            level="error",
            outcome=outcome,
            reason=reason,
            attempts=attempts,
            duration_ms=duration_ms,
            rate_limit_remaining=remaining,
            **fields,
        )

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
        revived: list[str] = []
        if job_ids is not None:
            for job_id in job_ids:
                if self._revive(job_id):
                    revived.append(job_id)
            return revived
        while True:  # the list is read a page at a time; revived jobs leave it
            page = [d.job_id for d in self.dead_letters() if d.job_id not in revived]
            done = [job_id for job_id in page if self._revive(job_id)]
            revived += done
            if not done:
                return revived

    def _revive(self, job_id: str) -> bool:
        """One dead job back on the queue with a fresh retry budget."""
        if not self.ledger.revive(job_id, now(), self.options.stale_after):
            return False
        self.huey.enqueue(self.task.s(job_id))
        return True

    def consumer(self, workers: int = 4, **options: Any) -> Any:
        """A huey consumer for this queue (threads; short polling so SQLite jobs start promptly)."""
        # SIGTERM (what Heroku-style platforms and `serve` send) lets running jobs finish for up to 20 s;
        # a job still running after that is re-run by the reaper once its lease ends.
        settings: dict[str, Any] = {
            "workers": workers,
            "worker_type": "thread",
            "periodic": False,
            "initial_delay": 0.05,
            "backoff": 1.5,
            "max_delay": 1.0,
            "check_worker_health": True,
            "graceful_signal": "TERM",
            "shutdown_timeout": 20,
        }
        settings.update(options)
        return self.huey.create_consumer(**settings)


@dataclass
class _Run:
    """One job running in this process: its claim, its repository lock and the thread running it."""

    claimed: Claimed
    lock: str
    thread: threading.Thread
    started: float
    overrun: bool = False
    lost: bool = False
    ended: bool = False
    guard: threading.Lock = field(default_factory=threading.Lock)


def coalesce_key(job: AnyJob) -> str:
    """Jobs sharing this key supersede each other (the latest runs). A preview job only decides and reports, so
    it never stands in for a sync that writes, nor the other way round."""
    key = f"{job.repo_key}:{job.kind}"
    added = job.data.get("added")
    if job.kind == "install" and isinstance(added, list):
        # An installation job for some added repositories stands in only for a job adding the same ones.
        key += ":added=" + ",".join(sorted(str(name).lower() for name in added))
    return f"{key}:preview" if job.data.get("preview") is True else key


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


_EVENT_OF_KIND = {"sync": "push", "command": "issue_comment", "pr_closed": "pull_request", "install": "installation"}


def _job_fields(claimed: Claimed) -> dict[str, Any]:
    job = claimed.job
    data = job.data
    return {
        "job_id": claimed.job_id,
        "delivery_id": job.delivery_id,
        "kind": job.kind,
        "event_name": data.get("event") or _EVENT_OF_KIND.get(job.kind, job.kind),
        "action": data.get("action") or data.get("command") or data.get("trigger"),
        "installation": job.installation_id,
        "repository": job.subject,
    }


def _result_fields(result: object) -> tuple[str | None, int | None]:
    if isinstance(result, Mapping):
        outcome, remaining = result.get("outcome"), result.get("rate_limit_remaining")
    else:
        outcome = getattr(result, "outcome", None)
        remaining = getattr(result, "rate_limit_remaining", None)
    return (
        str(outcome) if outcome is not None else None,
        int(remaining) if isinstance(remaining, int | float) else None,
    )


def build_queue(settings: Settings, runner: Runner | None, options: QueueOptions | None = None) -> HueyQueue:
    """The durable queue for these settings: Redis when `redis_url` is set, else SQLite in `data_dir`."""
    if options is None:
        # Optional settings (read when `Settings` has them): `queue_fsync` False (QUEUE_FSYNC=normal) keeps
        # commits safe from a killed process but not from a power cut; `queue_namespace` lets several
        # deployments share one Redis.
        options = QueueOptions(
            fsync=bool(getattr(settings, "queue_fsync", True)),
            namespace=str(getattr(settings, "queue_namespace", "") or ""),
        )
    if settings.redis_url:
        client = redis_client(settings.redis_url)
        prefix = f"{KEY_PREFIX}{options.namespace}:" if options.namespace else KEY_PREFIX
        name = f"{HUEY_NAME}-{options.namespace}" if options.namespace else HUEY_NAME
        huey = redis_huey(name, settings.redis_url)
        waiting = partial(waiting_args, huey, TASK_NAME)
        return HueyQueue(
            huey,
            RedisLedger(client, huey.storage, waiting, prefix),
            RedisLocks(client, prefix),
            RedisCounters(client, prefix),
            RedisPacer(client, options.pace, prefix),
            runner,
            options,
            heartbeat.RedisHeartbeats(client, prefix),
        )
    path = Path(settings.data_dir) / "queue.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    huey = sqlite_huey(HUEY_NAME, str(path), options.fsync)
    db = SqliteDb(path, fsync=options.fsync)
    waiting = partial(waiting_args, huey, TASK_NAME)
    return HueyQueue(
        huey,
        SqliteLedger(db, huey.storage, waiting),
        SqliteLocks(db),
        SqliteCounters(db),
        SqlitePacer(db, options.pace),
        runner,
        options,
        heartbeat.SqliteHeartbeats(db),
    )


def create_queue(settings: Settings, runner: Runner) -> JobQueue:
    """Return the durable queue for these settings (see `build_queue`)."""
    return build_queue(settings, runner)
