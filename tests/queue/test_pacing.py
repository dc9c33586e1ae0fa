"""The pacer's store: content-creation windows per installation (80/min, 500/hour) and the request budget, shared
across processes; fan-out progress. How a gateway reserves its writes is tested in tests/github."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_fixtures import backend_settings, prefix_for

from bot.app.fanout import log_progress, preview_mode
from bot.logs import configure_logging
from bot.queue import pacing
from bot.queue.pacing import PaceLimits, RedisPacer, SqlitePacer, wait_for
from bot.queue.storage import SqliteDb, redis_client

LIMITS = PaceLimits(per_minute=80, per_hour=500, request_floor=100)


def _pacer(backend: str, tmp_path: Path, limits: PaceLimits = LIMITS) -> SqlitePacer | RedisPacer:
    settings = backend_settings(backend, tmp_path)
    if settings.redis_url:
        return RedisPacer(redis_client(settings.redis_url), limits, prefix_for(tmp_path))
    return SqlitePacer(SqliteDb(Path(settings.data_dir) / "queue.db"), limits)


def _beside(pacer: SqlitePacer | RedisPacer) -> SqlitePacer | RedisPacer:
    """A second pacer on the same store, as another process would build it."""
    if isinstance(pacer, RedisPacer):
        return RedisPacer(pacer.client, pacer.limits, pacer.prefix)
    return SqlitePacer(SqliteDb(pacer.db.path), pacer.limits)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_eighty_a_minute_then_wait_for_the_window(backend: str, tmp_path: Path) -> None:
    pacer = _pacer(backend, tmp_path)
    assert [pacer.reserve(7) for _ in range(80)] == [0.0] * 80
    wait = pacer.reserve(7)
    assert 55 < wait <= 60.01
    assert pacer.reserve(8) == 0.0  # another installation has its own budget


def test_two_pacers_on_one_store_share_the_budget(backend: str, tmp_path: Path) -> None:
    first, second = _pacer(backend, tmp_path), _pacer(backend, tmp_path)  # as two worker processes would
    assert first.reserve(1, cost=50) == 0.0
    assert second.reserve(1, cost=30) == 0.0
    assert first.reserve(1, cost=1) > 0
    assert second.reserve(1, cost=1) > 0


def test_hour_window_binds_when_the_minute_window_would_not(backend: str, tmp_path: Path) -> None:
    pacer = _pacer(backend, tmp_path, PaceLimits(per_minute=1000, per_hour=10))
    assert pacer.reserve(3, cost=10) == 0.0
    assert 3590 < pacer.reserve(3) <= 3600.01


def test_request_budget_below_the_floor_defers_background_work_until_reset(backend: str, tmp_path: Path) -> None:
    pacer = _pacer(backend, tmp_path)
    assert pacer.budget_wait(5) == 0.0  # nothing observed yet
    pacer.observe(5, 4000, time.time() + 900)
    assert pacer.budget_wait(5) == 0.0
    pacer.observe(5, 12, time.time() + 900)
    assert 890 < pacer.budget_wait(5) <= 901
    assert _beside(pacer).budget_wait(5) > 890  # another process sees the same budget
    assert pacer.budget_wait(6) == 0.0  # per installation
    pacer.observe(5, 12, time.time() - 1)
    assert pacer.budget_wait(5) == 0.0  # the reset has passed: the budget is whole again


def test_progress_is_counted_across_processes_and_logged(backend: str, tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    first, second = _pacer(backend, tmp_path), _pacer(backend, tmp_path)
    for i in range(10):
        log_progress(first if i % 2 else second, 9, "install-1", total=10, repo=f"o/r{i}", every=4)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["done"], x["total"]) for x in lines if x["event"] == "install.progress"] == [(4, 10), (8, 10), (10, 10)]


def test_a_second_fan_out_of_the_same_installation_counts_from_zero(backend: str, tmp_path: Path) -> None:
    pacer = _pacer(backend, tmp_path)
    assert [pacer.progress(9, "install-1", 3) for _ in range(3)] == [1, 2, 3]
    # `installation_repositories.added` later: its own count, the first one's untouched.
    assert [pacer.progress(9, "added-1", 2) for _ in range(2)] == [1, 2]
    assert pacer.progress(8, "install-1", 5) == 1  # another installation, same delivery id
    assert pacer.progress(9, "install-1", 3) == 4


def test_old_fan_out_counts_expire(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pacer = _pacer(backend, tmp_path)
    pacer.progress(9, "old", 10)
    if isinstance(pacer, RedisPacer):
        ttl = pacer.client.ttl(f"{pacer.prefix}progress:9:old")
        assert 0 < ttl <= pacing.PROGRESS_TTL
        return
    monkeypatch.setattr(pacing, "now", lambda: time.time() + pacing.PROGRESS_TTL + 60)
    pacer.progress(9, "new", 10)  # any later count sweeps the expired ones
    assert pacer.db.query("SELECT key FROM fanout_progress") == [("new",)]


def test_interactive_work_may_spend_the_floor_but_not_past_zero(backend: str, tmp_path: Path) -> None:
    pacer = _pacer(backend, tmp_path)
    reset = time.time() + 900
    pacer.observe(5, 12, reset)
    assert pacer.budget_wait(5, interactive=False) > 890  # a fan-out's sync waits for the reset
    assert pacer.budget_wait(5, interactive=True) == 0.0  # a push or a command goes ahead
    pacer.observe(5, 0, reset)
    assert pacer.budget_wait(5, interactive=True) > 890  # nothing left: GitHub would refuse it anyway


def test_preview_mode_threshold() -> None:
    assert preview_mode(201, threshold=200, opted_in=False) is True
    assert preview_mode(200, threshold=200, opted_in=False) is False
    assert preview_mode(5000, threshold=200, opted_in=True) is False


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5000), st.integers(1, 12)), max_size=120))
def test_following_the_waits_never_exceeds_either_window(requests: list[tuple[float, int]]) -> None:
    limits = PaceLimits(per_minute=20, per_hour=60)
    taken: list[tuple[float, int]] = []
    for at, cost in sorted(requests):
        recent = [(ts, w) for ts, w in taken if ts > at - 3600]
        wait = wait_for(recent, cost, limits, at)
        start = at + wait
        assert wait_for([(ts, w) for ts, w in taken if ts > start - 3600], cost, limits, start) == 0.0
        taken.append((start, cost))
        for window, limit in ((60, limits.per_minute), (3600, limits.per_hour)):
            assert sum(w for ts, w in taken if start - window < ts <= start) <= limit


def test_building_and_running_a_queue_leaves_no_pacer_or_counters_in_the_process(tmp_path: Path) -> None:
    """Jobs get the pacer and counters in their `JobContext` (bot/wiring.py): nothing is bound process-wide, so
    no test (and no second queue in one process) inherits another queue's store."""
    from runtime_fixtures import options_for, running_consumer, wait_until

    from bot.app.payloads import Job
    from bot.queue import counters
    from bot.queue.durable import build_queue

    ran: list[str] = []
    queue = build_queue(
        backend_settings("sqlite", tmp_path), lambda job: ran.append(job.delivery_id), options_for(tmp_path)
    )
    queue.submit("d", [Job("command", 1, "o/a", "d")])
    with running_consumer(queue):
        assert wait_until(lambda: ran == ["d"], 10)
    assert ran == ["d"]
    # Nothing a job could find without its context: no module of bot/ keeps a ContextVar or a bind().
    sources = {path: path.read_text() for path in Path(counters.__file__).parents[1].rglob("*.py")}
    assert not [str(path) for path, text in sources.items() if "ContextVar(" in text or "def bind(" in text]
