"""Durable queue on SQLite and on a real Redis: dedupe, coalescing, per-repo serialisation, dead letters, reaper."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import (
    TEST_OPTIONS,
    FakeGitHub,
    backend_settings,
    github_runner,
    options_for,
    running_consumer,
    wait_until,
)

from bot.app.payloads import Job
from bot.queue.durable import HueyQueue, InMemoryQueue, build_queue, create_queue
from bot.queue.retry import PermanentFailure


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _queue(backend: str, tmp_path: Path, runner: Any) -> HueyQueue:
    return build_queue(backend_settings(backend, tmp_path), runner, options_for(tmp_path))


def test_create_queue_is_durable_and_picks_the_backend(backend: str, tmp_path: Path) -> None:
    queue = create_queue(backend_settings(backend, tmp_path), lambda job: None)
    assert isinstance(queue, HueyQueue)
    assert type(queue.ledger).__name__ == ("RedisLedger" if backend == "redis" else "SqliteLedger")
    if backend == "sqlite":
        assert (tmp_path / "data" / "queue.db").is_file()


def test_submit_commits_before_returning_and_survives_a_new_process_view(backend: str, tmp_path: Path) -> None:
    settings = backend_settings(backend, tmp_path)
    queue = build_queue(settings, None, options_for(tmp_path))
    result = queue.submit("d-1", [Job("sync", 1, "o/a", "d-1"), Job("command", 1, "o/b", "d-1", {"x": 1})])
    assert result.accepted and not result.duplicate and len(result.job_ids) == 2
    # A second queue object (as another process would build) sees both jobs and huey's messages.
    other = build_queue(settings, None, options_for(tmp_path))
    assert other.ledger.active_count() == 2
    assert other.huey.pending_count() == 2


def test_same_delivery_ten_times_concurrently_is_one_job(backend: str, tmp_path: Path) -> None:
    with FakeGitHub() as github:
        queue = _queue(backend, tmp_path, github_runner(github.url))
        job = Job("sync", 1, "o/app", "same-id")
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda _: queue.submit("same-id", [job]), range(10)))
        assert sum(not r.duplicate for r in results) == 1
        assert sum(r.duplicate for r in results) == 9
        with running_consumer(queue):
            assert wait_until(lambda: queue.ledger.active_count() == 0, 10)
        assert github.pr_creates == {"o/app": 1}
        assert github.count("POST", r"/repos/o/app/pulls") == 1
        assert github.count("GET", r"/repos/o/app") == 1  # one job's worth of reads


def test_ten_concurrent_pushes_to_one_repo_coalesce_into_one_run(backend: str, tmp_path: Path) -> None:
    runs: list[str] = []
    with FakeGitHub() as github:
        inner = github_runner(github.url)

        def runner(job: Job) -> Any:
            runs.append(job.delivery_id)
            return inner(job)

        queue = _queue(backend, tmp_path, runner)
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda i: queue.submit(f"push-{i}", [Job("sync", 1, "o/app", f"push-{i}")]), range(10)))
        with running_consumer(queue):
            assert wait_until(lambda: queue.ledger.active_count() == 0, 15)
        snapshot = queue.counters.snapshot()
    assert len(runs) == 1, runs  # nine found a newer generation pending and exited early
    assert github.pr_creates == {"o/app": 1}
    assert snapshot[("ecr_cache_bot_jobs_total", 'outcome="coalesced"')] == 9
    assert snapshot[("ecr_cache_bot_jobs_total", 'outcome="succeeded"')] == 1


def test_push_arriving_while_a_run_is_in_progress_runs_again_once(backend: str, tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def runner(job: Job) -> None:
        runs.append(job.delivery_id)
        if job.delivery_id == "p0":
            started.set()
            release.wait(5)

    queue = _queue(backend, tmp_path, runner)
    queue.submit("p0", [Job("sync", 1, "o/app", "p0")])
    with running_consumer(queue, workers=2):
        assert started.wait(5)
        for i in range(1, 6):
            queue.submit(f"p{i}", [Job("sync", 1, "o/app", f"p{i}")])
        release.set()
        assert wait_until(lambda: queue.ledger.active_count() == 0, 15)
    assert runs[0] == "p0" and runs[1:] == ["p5"]  # the newest push re-runs once; p1..p4 coalesced


def test_at_most_one_job_per_repository_runs_at_a_time(backend: str, tmp_path: Path) -> None:
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    lock = threading.Lock()
    done: list[str] = []

    def runner(job: Job) -> None:
        with lock:
            active[job.repo] += 1
            peak[job.repo] = max(peak[job.repo], active[job.repo])
        time.sleep(0.05)
        with lock:
            active[job.repo] -= 1
            done.append(job.delivery_id)

    queue = _queue(backend, tmp_path, runner)
    for i in range(12):  # commands are never coalesced: every one must run
        queue.submit(f"c{i}", [Job("command", 1, f"o/r{i % 2}", f"c{i}", {"issue_number": i})])
    with running_consumer(queue, workers=4):
        assert wait_until(lambda: len(done) == 12, 30)
    assert sorted(done) == sorted(f"c{i}" for i in range(12))
    assert peak == {"o/r0": 1, "o/r1": 1}


def test_permanent_failure_is_dead_lettered_once_and_redrive_runs_it(backend: str, tmp_path: Path) -> None:
    calls: list[str] = []
    broken = {"on": True}

    def runner(job: Job) -> None:
        calls.append(job.delivery_id)
        if broken["on"]:
            raise PermanentFailure("repository archived")

    queue = _queue(backend, tmp_path, runner)
    queue.submit("d-dead", [Job("command", 7, "o/gone", "d-dead")])
    with running_consumer(queue):
        assert wait_until(lambda: len(queue.dead_letters()) == 1, 10)
        time.sleep(1.5)  # would be long enough for a retry to show up
        assert calls == ["d-dead"]
        letter = queue.dead_letters()[0]
        assert (letter.outcome, letter.job.repo, letter.error) == ("failed", "o/gone", "repository archived")
        broken["on"] = False
        assert queue.redrive() == [letter.job_id]
        assert wait_until(lambda: len(calls) == 2 and queue.ledger.active_count() == 0, 10)
    assert queue.dead_letters() == []


def test_transient_failures_exhaust_into_the_dead_letter_list(backend: str, tmp_path: Path) -> None:
    calls: list[float] = []

    def runner(job: Job) -> None:
        calls.append(time.monotonic())
        raise ConnectionResetError("peer reset")

    queue = _queue(backend, tmp_path, runner)
    queue.submit("d-flaky", [Job("command", 1, "o/flaky", "d-flaky")])
    with running_consumer(queue):
        assert wait_until(lambda: len(queue.dead_letters()) == 1, 20)
    letter = queue.dead_letters()[0]
    assert letter.outcome == "dead" and letter.attempts == TEST_OPTIONS.retry.max_attempts
    assert len(calls) == TEST_OPTIONS.retry.max_attempts
    assert "network error" in letter.error


def test_reaper_rescues_a_job_whose_worker_died(backend: str, tmp_path: Path) -> None:
    ran: list[str] = []
    queue = _queue(backend, tmp_path, lambda job: ran.append(job.delivery_id))
    queue.submit("d-orphan", [Job("command", 1, "o/a", "d-orphan")])
    job_id = queue.huey.deserialize_task(queue.huey.storage.dequeue()).args[0]
    claimed = queue.ledger.claim(job_id, time.time(), TEST_OPTIONS.lease)  # the "worker" then vanishes
    assert claimed is not None
    assert queue.reap() == 0  # lease not over yet
    time.sleep(TEST_OPTIONS.lease + 0.1)
    assert queue.reap() == 1
    with running_consumer(queue):
        assert wait_until(lambda: ran == ["d-orphan"] and queue.ledger.active_count() == 0, 10)


def test_reaper_leaves_jobs_whose_message_still_waits_in_a_backlog(backend: str, tmp_path: Path) -> None:
    queue = _queue(backend, tmp_path, lambda job: None)
    ids = queue.submit("d-backlog", [Job("command", 1, f"o/r{i}", "d-backlog") for i in range(4)]).job_ids
    # One job was deferred: its message waits in huey's schedule, not in the queue.
    scheduled = queue.huey.deserialize_task(queue.huey.storage.dequeue()).args[0]
    queue.huey.add_schedule(queue.task.s(scheduled, delay=3600))
    time.sleep(TEST_OPTIONS.stale_after + 0.1)
    assert queue.reap() == 0  # a slow queue is not a lost message: nothing queued twice
    assert queue.huey.pending_count() == 3 and queue.huey.scheduled_count() == 1
    lost = queue.huey.deserialize_task(queue.huey.storage.dequeue()).args[0]  # popped by a worker that died
    time.sleep(TEST_OPTIONS.stale_after + 0.1)
    assert queue.ledger.expired(time.time(), TEST_OPTIONS.stale_after) == [lost]
    assert lost in ids and queue.huey.pending_count() == 2


def test_reaper_rescues_a_message_lost_between_pop_and_claim(backend: str, tmp_path: Path) -> None:
    ran: list[str] = []
    queue = _queue(backend, tmp_path, lambda job: ran.append(job.delivery_id))
    queue.submit("d-lost", [Job("command", 1, "o/a", "d-lost")])
    assert queue.huey.storage.dequeue() is not None  # popped by a worker killed before it claimed
    time.sleep(TEST_OPTIONS.stale_after + 0.1)
    assert queue.reap() == 1
    with running_consumer(queue):
        assert wait_until(lambda: ran == ["d-lost"], 10)


def test_duplicate_queue_messages_run_a_job_once(backend: str, tmp_path: Path) -> None:
    ran: list[str] = []
    queue = _queue(backend, tmp_path, lambda job: ran.append(job.delivery_id))
    result = queue.submit("d-twice", [Job("command", 1, "o/a", "d-twice")])
    for _ in range(3):  # e.g. the reaper re-enqueued while the original was still queued
        queue.huey.enqueue(queue.task.s(result.job_ids[0]))
    with running_consumer(queue):
        assert wait_until(lambda: queue.ledger.active_count() == 0 and queue.huey.pending_count() == 0, 10)
    assert ran == ["d-twice"]


def test_in_memory_queue_still_dedupes() -> None:
    ran: list[Job] = []
    queue = InMemoryQueue(ran.append)
    assert not queue.submit("x", [Job("sync", 1, "o/a", "x")]).duplicate
    assert queue.submit("x", [Job("sync", 1, "o/a", "x")]).duplicate
    assert queue.drain() == 1 and len(ran) == 1


def test_one_batch_claims_each_delivery_once_and_numbers_generations_in_order(backend: str, tmp_path: Path) -> None:
    from bot.queue.ledger import Entry, SubmitRequest

    queue = _queue(backend, tmp_path, None)

    def request(delivery: str, repo: str) -> SubmitRequest:
        job_id = f"{delivery}-{repo}".replace("/", "-")
        message = queue.huey.serialize_task(queue.task.s(job_id))
        payload = json.dumps(Job("sync", 1, repo, delivery).to_dict())
        return SubmitRequest(delivery, (Entry(job_id, payload, f"1:{repo}:sync", message),))

    batch = [request("A", "o/x"), request("A", "o/x"), request("B", "o/x"), request("C", "o/y")]
    assert queue.ledger.submit_many(batch, time.time(), 3600, 60) == [True, False, True, True]
    assert queue.ledger.submit_many([request("B", "o/x")], time.time(), 3600, 60) == [False]
    gens = {}
    for job_id in ("A-o-x", "B-o-x", "C-o-y"):
        claimed = queue.ledger.claim(job_id, time.time(), 60)
        assert claimed is not None
        gens[job_id] = claimed.gen
    assert gens == {"A-o-x": 1, "B-o-x": 2, "C-o-y": 1}
    assert queue.huey.pending_count() == 3  # one queue message per accepted job, none for the duplicate


def test_group_commit_batches_concurrent_submits_and_answers_each_its_own_result() -> None:
    from bot.queue.durable import GroupCommitter
    from bot.queue.ledger import SubmitRequest

    batches: list[int] = []

    def commit(requests: Any) -> list[bool]:
        batches.append(len(requests))
        time.sleep(0.01)  # an fsync: later arrivals pile up for the next batch
        return [r.delivery_id.endswith("new") for r in requests]

    committer = GroupCommitter(commit, batch_max=4)
    ids = [f"{i}-{'new' if i % 3 else 'dup'}" for i in range(40)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda d: committer.submit(SubmitRequest(d, ())), ids))
    assert results == [d.endswith("new") for d in ids]
    assert sum(batches) == 40 and max(batches) <= 4 and len(batches) < 40


def test_group_commit_failure_reaches_every_waiter_of_the_batch() -> None:
    from bot.queue.durable import GroupCommitter
    from bot.queue.ledger import SubmitRequest

    def commit(requests: Any) -> list[bool]:
        raise OSError("disk full")

    committer = GroupCommitter(commit, batch_max=8)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(committer.submit, SubmitRequest(str(i), ())) for i in range(8)]
    for future in futures:
        with pytest.raises(OSError, match="disk full"):
            future.result()


def test_a_job_longer_than_its_lease_keeps_it_while_its_worker_lives(backend: str, tmp_path: Path) -> None:
    runs: list[str] = []
    reaped: list[int] = []

    def runner(job: Job) -> None:
        runs.append(job.delivery_id)
        if job.delivery_id == "long":
            deadline = time.monotonic() + TEST_OPTIONS.lease * 1.7
            while time.monotonic() < deadline:  # meanwhile the reaper looks for dead workers' jobs
                reaped.append(queue.reap())
                time.sleep(0.3)

    queue = _queue(backend, tmp_path, runner)
    queue.submit("long", [Job("command", 1, "o/a", "long")])
    with running_consumer(queue, workers=2):
        assert wait_until(lambda: runs == ["long"], 5)
        queue.submit("next", [Job("command", 1, "o/a", "next")])  # same repository: must wait its turn
        assert wait_until(lambda: queue.ledger.active_count() == 0, 20)
    assert runs == ["long", "next"]
    assert sum(reaped) == 0


def test_a_hung_job_keeps_its_lease_until_it_ends(backend: str, tmp_path: Path) -> None:
    release = threading.Event()
    runs: list[str] = []

    def runner(job: Job) -> None:
        runs.append(threading.current_thread().name)
        if len(runs) == 1:
            release.wait(20)  # the first run hangs (a stalled connection without a timeout)

    queue = build_queue(backend_settings(backend, tmp_path), runner, options_for(tmp_path, lease=1.5, max_runtime=0.5))
    queue.submit("hang", [Job("command", 1, "o/a", "hang")])
    with running_consumer(queue, workers=2):
        assert wait_until(lambda: len(runs) == 1, 5)
        # Past max_runtime and three leases long: still renewed, since the thread running it lives.
        assert not wait_until(lambda: queue.reap() != 0, 4.5)
        release.set()
        assert wait_until(lambda: queue.ledger.active_count() == 0, 5)
    assert len(runs) == 1


def test_installation_jobs_for_different_added_repositories_do_not_supersede_each_other() -> None:
    from bot.queue.durable import coalesce_key

    def added(*names: str) -> Job:
        return Job("install", 1, "octo", "d", {"trigger": "install", "added": list(names)})

    assert coalesce_key(added("octo/a")) != coalesce_key(added("octo/b"))
    assert coalesce_key(added("octo/a", "octo/b")) == coalesce_key(added("octo/B", "octo/a"))
    assert coalesce_key(added("octo/a")) != coalesce_key(Job("install", 1, "octo", "d", {"trigger": "install"}))


def test_more_than_a_page_of_dead_jobs_is_counted_and_redriven(backend: str, tmp_path: Path) -> None:
    queue = _queue(backend, tmp_path, lambda job: None)
    ids: list[str] = []
    for n in range(1_050):  # more than one page of `dead()` (1,000)
        ids += queue.submit(f"d{n}", [Job("command", 1, f"o/r{n}", f"d{n}")]).job_ids
    for job_id in ids:
        claimed = queue.ledger.claim(job_id, time.time(), 60)
        assert claimed is not None
        assert queue.ledger.bury(job_id, claimed.token, "failed", "gone", 1)
    assert len(queue.dead_letters()) == 1_000 and queue.ledger.dead_count() == 1_050
    assert len(queue.redrive()) == 1_050
    assert queue.ledger.dead_count() == 0 and queue.ledger.active_count() == 1_050


def test_generations_do_not_pile_up(backend: str, tmp_path: Path) -> None:
    from bot.queue.durable import coalesce_key

    queue = _queue(backend, tmp_path, lambda job: None)
    job = Job("install", 1, "octo", "d-add", {"trigger": "install", "added": ["octo/a"]})
    (job_id,) = queue.submit("d-add", [job]).job_ids
    key = coalesce_key(job)
    if backend == "redis":
        ttl = queue.ledger.client.ttl(f"{queue.ledger.prefix}gen:{key}")  # type: ignore[attr-defined]
        assert 0 < ttl <= 7 * 86400
        return
    claimed = queue.ledger.claim(job_id, time.time(), 60)
    assert claimed is not None and queue.ledger.finish(job_id, claimed.token, "succeeded")
    db = queue.ledger.db  # type: ignore[attr-defined]
    assert db.query("SELECT count(*) FROM generations WHERE key = ?", (key,))[0][0] == 1
    queue.ledger.purge(time.time())
    assert db.query("SELECT count(*) FROM generations WHERE key = ?", (key,))[0][0] == 0


def test_a_redriven_job_runs_even_when_a_newer_job_of_its_repository_died_too(backend: str, tmp_path: Path) -> None:
    calls: list[str] = []
    broken = {"on": True}

    def runner(job: Job) -> None:
        calls.append(job.delivery_id)
        if broken["on"]:
            raise PermanentFailure("no access")

    queue = _queue(backend, tmp_path, runner)
    with running_consumer(queue):
        (first,) = queue.submit("d-a", [Job("sync", 1, "o/app", "d-a")]).job_ids
        assert wait_until(lambda: queue.ledger.dead_count() == 1, 10)
        queue.submit("d-b", [Job("sync", 1, "o/app", "d-b")])
        assert wait_until(lambda: queue.ledger.dead_count() == 2, 10)
        broken["on"] = False
        assert queue.redrive([first]) == [first]
        assert wait_until(lambda: calls.count("d-a") == 2, 10), calls
