"""A run keeps its lease (ledger row and repository lock) for as long as it lives, past `max_runtime` too."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import backend_settings, options_for, running_consumer, wait_until

from bot import logs
from bot.app.payloads import Job
from bot.cli.processes import reap_forever
from bot.queue.durable import OVERRUNS, build_queue


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_job_past_max_runtime_keeps_its_repository_and_is_not_run_twice(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    real_log = logs.log_event
    monkeypatch.setattr(
        "bot.queue.durable.log_event", lambda name, **f: (events.append((name, f)), real_log(name, **f))[-1]
    )
    guard = threading.Lock()
    inside: dict[str, int] = {}
    most = {"o/a": 0}
    runs: list[str] = []

    def runner(job: Job) -> None:
        with guard:
            runs.append(job.delivery_id)
            inside[job.repo] = inside.get(job.repo, 0) + 1
            most[job.repo] = max(most.get(job.repo, 0), inside[job.repo])
        try:
            time.sleep(5.0 if job.delivery_id == "long" else 0.1)  # "long" runs 2.5x max_runtime
        finally:
            with guard:
                inside[job.repo] -= 1

    queue = build_queue(backend_settings(backend, tmp_path), runner, options_for(tmp_path, lease=1.5, max_runtime=2.0))
    stop = threading.Event()
    reaper = threading.Thread(target=reap_forever, args=(queue, stop, 0.2), daemon=True)
    reaper.start()
    try:
        queue.submit("long", [Job("command", 1, "o/a", "long")])
        with running_consumer(queue, workers=4):
            assert wait_until(lambda: runs == ["long"], 5)
            queue.submit("next", [Job("command", 1, "o/a", "next")])  # same repository: waits its turn
            assert wait_until(lambda: queue.ledger.active_count() == 0, 20)
    finally:
        stop.set()
        reaper.join(5)
    assert runs == ["long", "next"]
    assert most["o/a"] == 1
    assert not [f for name, f in events if name in ("queue.reaped", "queue.lease_lost")]
    overruns = [f for name, f in events if name == "job.overrun"]
    assert len(overruns) == 1 and overruns[0]["delivery_id"] == "long" and overruns[0]["level"] == "warning"
    assert overruns[0]["max_runtime_s"] == 2.0
    counted = {labels: n for (name, labels), n in queue.counters.snapshot().items() if name == OVERRUNS}
    assert counted == {'kind="command"': 1}
    jobs = {labels: n for (name, labels), n in queue.counters.snapshot().items() if name == "ecr_cache_bot_jobs_total"}
    assert jobs == {'outcome="succeeded"': 2}


def test_a_run_whose_process_is_gone_is_rerun_after_its_lease(backend: str, tmp_path: Path) -> None:
    queue = build_queue(backend_settings(backend, tmp_path), None, options_for(tmp_path, lease=1.0))
    job_id = queue.submit("d", [Job("command", 1, "o/a", "d")]).job_ids[0]
    claimed = queue.ledger.claim(job_id, time.time(), 1.0)  # as a worker would, which then dies: no renewal
    assert claimed is not None and queue.locks.acquire("o/a", 1.0) is not None
    assert queue.reap() == 0
    assert wait_until(lambda: queue.reap() == 1, 5)
    assert queue.locks.acquire("o/a", 1.0) is not None  # the dead run's repository lock lapsed too


def test_renewal_stops_with_the_run_thread(backend: str, tmp_path: Path) -> None:
    """An entry left behind by a run thread that is gone is not renewed (its lease must lapse)."""
    queue = build_queue(backend_settings(backend, tmp_path), None, options_for(tmp_path, lease=0.6))
    job_id = queue.submit("d", [Job("command", 1, "o/a", "d")]).job_ids[0]
    claimed = queue.ledger.claim(job_id, time.time(), 0.6)
    lock = queue.locks.acquire("o/a", 0.6)
    assert claimed is not None and lock is not None
    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    queue._track(claimed, lock, gone)
    assert wait_until(lambda: queue.reap() == 1, 5)


def test_a_lease_taken_over_while_the_run_lives_is_reported(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that renews too late (its process was paused) finds the job moved on, and says so."""
    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr("bot.queue.durable.log_event", lambda name, **f: events.append((name, f)))
    release = threading.Event()
    started = threading.Event()

    def runner(job: Job) -> None:
        started.set()
        release.wait(10)

    queue = build_queue(backend_settings(backend, tmp_path), runner, options_for(tmp_path, lease=0.6))
    queue.submit("d", [Job("command", 1, "o/a", "d")])
    with running_consumer(queue, workers=1):
        assert started.wait(5)
        assert queue.ledger.expired(time.time() + 60, 600)  # as a reaper would once the lease had lapsed
        assert wait_until(lambda: any(name == "queue.lease_lost" for name, _ in events), 5)
        release.set()
    [lost] = [f for name, f in events if name == "queue.lease_lost"]
    assert lost["delivery_id"] == "d" and lost["job"] is False and lost["level"] == "error"
