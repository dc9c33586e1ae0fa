"""The composition root: every job gets a `JobContext` built from the queue that runs it, and the gateway factory
paces with that queue's pacer; nothing is found in module globals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from github_double import GitHubDouble, private_key_pem
from runtime_fixtures import SECRET, backend_settings, options_for

from bot import wiring
from bot.app import handlers
from bot.app.context import JobContext
from bot.app.payloads import Job
from bot.github.client import GitHubGateway
from bot.github.dry_run import DryRunGateway
from bot.github.gateway import RetryLater
from bot.queue.dedupe import SqliteCommandClaims
from bot.queue.refusals import SqliteRefusals
from bot.queue.retry import PermanentFailure
from bot.settings import Settings


def _contexts(monkeypatch: pytest.MonkeyPatch) -> list[JobContext]:
    seen: list[JobContext] = []

    def run(job: Any, ctx: JobContext) -> list[handlers.Outcome]:
        seen.append(ctx)
        return [handlers.Outcome(job.subject, "noop")]

    monkeypatch.setattr(handlers, "run", run)
    return seen


def test_each_job_runs_with_the_queues_store_submit_and_retry_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _contexts(monkeypatch)
    settings = backend_settings("sqlite", tmp_path)
    queue = wiring.job_queue(settings, options_for(tmp_path))
    assert isinstance(queue.runner, wiring.JobRunner)
    assert queue.runner(Job("command", 1, "o/a", "d")) == {"outcome": "noop", "rate_limit_remaining": None}
    queue.runner(Job("sync", 1, "o/b", "e"))
    first, second = seen
    assert first is not second  # one context per job
    assert first.pacer is queue.pacer and first.counters is queue.counters and first.submit == queue.submit
    assert isinstance(first.claims, SqliteCommandClaims) and first.claims.db is queue.pacer.db
    assert isinstance(first.refusals, SqliteRefusals) and first.refusals.db is queue.pacer.db
    assert first.final(PermanentFailure("archived")) and first.final(ValueError("a bug"))
    assert not first.final(RetryLater(5, "content-creation pacing")) and not first.final(TimeoutError())
    assert first.preview_threshold == settings.preview_threshold


def test_a_runner_without_a_queue_runs_unpaced_and_counts_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _contexts(monkeypatch)
    queued: list[object] = []
    runner = wiring.make_runner(backend_settings("sqlite", tmp_path), submit=lambda d, jobs: queued.extend(jobs))
    runner(Job("sync", 1, "o/a", "d"))
    [ctx] = seen
    assert (ctx.pacer, ctx.counters, ctx.claims, ctx.refusals) == (None, None, None, None)
    assert ctx.final(TimeoutError()) and not ctx.final(RetryLater(1))  # nothing would run it again
    assert ctx.submit is runner.submit


def test_the_gateways_pace_with_the_queues_pacer_and_carry_the_interactive_flag(
    tmp_path: Path, gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _contexts(monkeypatch)
    settings = Settings(
        webhook_secret=SECRET,
        app_id="7",
        private_key=private_key_pem(),
        github_api_url=gh.base_url,
        data_dir=str(tmp_path / "data"),
    )
    queue = wiring.job_queue(settings, options_for(tmp_path))
    queue.runner(Job("command", 1, "o/a", "d"))
    gateway = seen[0].gateways(1, interactive=True)
    assert isinstance(gateway, GitHubGateway) and gateway.pacer is queue.pacer and gateway.interactive
    assert seen[0].gateways(1).interactive is False  # background work by default


def test_a_dry_run_hands_out_gateways_that_never_write(
    tmp_path: Path, gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _contexts(monkeypatch)
    settings = Settings(
        webhook_secret=SECRET,
        app_id="7",
        private_key=private_key_pem(),
        github_api_url=gh.base_url,
        data_dir=str(tmp_path / "data"),
        dry_run=True,
    )
    wiring.job_queue(settings, options_for(tmp_path)).runner(Job("sync", 1, "o/a", "d"))
    assert isinstance(seen[0].gateways(1), DryRunGateway)


def test_the_factory_needs_the_app_only_when_a_job_asks_for_a_gateway(tmp_path: Path) -> None:
    lazy = wiring.LazyFactory(backend_settings("sqlite", tmp_path))  # a web process in setup mode starts fine
    with pytest.raises(ValueError, match="APP_ID"):
        lazy(1)


def test_the_deployed_app_submits_to_a_queue_that_runs_github_jobs(tmp_path: Path) -> None:
    settings = backend_settings("sqlite", tmp_path)
    app = wiring.deployed(lambda flask_app, _settings: flask_app, settings)
    queue = app.extensions["ecr_cache_bot.queue"]
    assert isinstance(queue.runner, wiring.JobRunner) and queue.runner.submit == queue.submit
