"""Prometheus counters shared by every process (stored in SQLite/Redis) and served at /metrics."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from runtime_fixtures import SECRET, backend_settings, options_for, prefix_for, push_payload, sign

from bot.app.payloads import Job
from bot.queue.counters import Counters, RedisCounters, SqliteCounters, render
from bot.queue.durable import build_queue
from bot.queue.storage import SqliteDb, redis_client
from bot.settings import Settings


def _counters(db_path: str, url: str | None, prefix: str) -> Counters:
    return RedisCounters(redis_client(url), prefix) if url else SqliteCounters(SqliteDb(db_path))


def _bump(args: tuple[str, str | None, str]) -> None:
    counters = _counters(*args)
    for i in range(100):
        counters.incr("ecr_cache_bot_jobs_total", outcome="succeeded" if i % 4 else "failed")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_counts_from_several_processes_add_up(backend: str, tmp_path: Path) -> None:
    settings = backend_settings(backend, tmp_path)
    db_path = str(Path(settings.data_dir) / "queue.db")
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_bump, [(db_path, settings.redis_url, prefix_for(tmp_path))] * 3)
    snapshot = _counters(db_path, settings.redis_url, prefix_for(tmp_path)).snapshot()
    assert snapshot == {
        ("ecr_cache_bot_jobs_total", 'outcome="succeeded"'): 225,
        ("ecr_cache_bot_jobs_total", 'outcome="failed"'): 75,
    }


def test_render_is_prometheus_text_with_escaped_labels() -> None:
    text = render(
        {
            ("ecr_cache_bot_jobs_total", 'outcome="failed"'): 3,
            ("ecr_cache_bot_jobs_total", 'outcome="succeeded"'): 10,
            ("ecr_cache_bot_job_retries_total", 'reason="a \\"quoted\\" reason"'): 1,
        }
    )
    assert text.splitlines() == [
        "# HELP ecr_cache_bot_job_retries_total Job runs deferred for a retry, by reason class.",
        "# TYPE ecr_cache_bot_job_retries_total counter",
        'ecr_cache_bot_job_retries_total{reason="a \\"quoted\\" reason"} 1',
        "# HELP ecr_cache_bot_jobs_total Jobs finished by outcome (succeeded, coalesced, failed, dead, ...).",
        "# TYPE ecr_cache_bot_jobs_total counter",
        'ecr_cache_bot_jobs_total{outcome="failed"} 3',
        'ecr_cache_bot_jobs_total{outcome="succeeded"} 10',
    ]


def test_label_values_are_escaped_when_counted(tmp_path: Path) -> None:
    counters = SqliteCounters(SqliteDb(tmp_path / "q.db"))
    counters.incr("x_total", reason='say "hi"\nback\\slash')
    assert render(counters.snapshot()).splitlines()[-1] == 'x_total{reason="say \\"hi\\"\\nback\\\\slash"} 1'


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_metrics_endpoint_counts_deliveries_of_every_web_process(backend: str, tmp_path: Path) -> None:
    from bot.web.flask_app import create_app

    settings = backend_settings(backend, tmp_path)
    settings = Settings(webhook_secret=SECRET, data_dir=settings.data_dir, redis_url=settings.redis_url)
    apps = [create_app(settings, queue=build_queue(settings, None, options_for(tmp_path))) for _ in range(2)]
    body = json.dumps(push_payload("o/app")).encode()
    for i, delivery in enumerate(["a", "b", "a"]):  # the third is a duplicate, seen by the other "process"
        response = (
            apps[i % 2]
            .test_client()
            .post(
                settings.webhook_path,
                data=body,
                headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)},
            )
        )
        assert response.status_code == 202
    for app in apps:
        response = app.test_client().get("/metrics")
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
        text = response.get_data(as_text=True)
        assert 'ecr_cache_bot_deliveries_total{outcome="accepted"} 2' in text
        assert 'ecr_cache_bot_deliveries_total{outcome="duplicate"} 1' in text
        assert "# TYPE ecr_cache_bot_deliveries_total counter" in text
        assert "ecr_cache_bot_jobs_active 2\n" in text  # two accepted pushes wait for a worker
        assert "ecr_cache_bot_jobs_dead 0\n" in text


def test_job_outcomes_are_counted_with_the_work(tmp_path: Path) -> None:
    from runtime_fixtures import running_consumer, wait_until

    from bot.queue.retry import PermanentFailure

    def runner(job: Job) -> None:
        if job.subject == "o/bad":
            raise PermanentFailure("nope")

    queue = build_queue(backend_settings("sqlite", tmp_path), runner, options_for(tmp_path))
    queue.submit("1", [Job("command", 1, "o/good", "1"), Job("command", 1, "o/bad", "1")])
    with running_consumer(queue):
        assert wait_until(lambda: queue.ledger.active_count() == 0, 10)
    snapshot = queue.counters.snapshot()
    assert snapshot[("ecr_cache_bot_jobs_total", 'outcome="succeeded"')] == 1
    assert snapshot[("ecr_cache_bot_jobs_total", 'outcome="failed"')] == 1


def test_counts_kept_in_memory_reach_the_store_they_were_counted_for_on_exposition(tmp_path: Path) -> None:
    from bot.queue.counters import DELIVERIES, count_later, exposition

    queue = build_queue(backend_settings("sqlite", tmp_path), None, options_for(tmp_path))
    other = SqliteCounters(SqliteDb(tmp_path / "other.db"))
    for _ in range(3):
        count_later(queue.counters, DELIVERIES, outcome="bad_signature")
    count_later(other, DELIVERIES, outcome="ignored")
    count_later(None, DELIVERIES, outcome="ignored")  # no store: not counted anywhere
    assert (DELIVERIES, 'outcome="bad_signature"') not in queue.counters.snapshot()  # no write per request
    text = exposition(queue.counters, queue)
    assert 'ecr_cache_bot_deliveries_total{outcome="bad_signature"} 3' in text and "ignored" not in text
    assert "ecr_cache_bot_jobs_active 0\n" in text and "ecr_cache_bot_workers_live 0\n" in text
    assert other.snapshot() == {(DELIVERIES, 'outcome="ignored"'): 1}  # flushed to its own store
    assert exposition(None, None) == ""  # no queue: no counters, no gauges


def test_the_queue_modules_import_without_flask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bot.queue.counters, bot.queue.durable, bot.queue.ledger, bot.queue.pacing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
