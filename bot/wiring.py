"""The composition root: builds the job runner, the gateway factory, the queue and the deployed app.

Nothing else wires them: `bot.cli` runs what this builds, and `bot.web` imports it (lazily) only for the
default app and queue. Each job gets a `JobContext` with the queue's pacer, counters, claims and retry policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

from bot.app import handlers
from bot.app.context import JobContext, Submit
from bot.app.payloads import AnyJob
from bot.github import client, credentials
from bot.github.dry_run import DryRunGateway
from bot.github.gateway import Gateway, GatewayFactory, WritePacer
from bot.logs import configure_logging
from bot.queue import dedupe, refusals
from bot.queue.durable import HueyQueue, QueueOptions, build_queue
from bot.settings import Settings
from bot.web.flask_app import create_app

T = TypeVar("T")


class LazyFactory:
    """Builds the gateway factory on first use, so the web process starts without App credentials."""

    def __init__(self, settings: Settings, pacer: WritePacer | None = None) -> None:
        self._settings = settings
        self._pacer = pacer
        self._factory: client.GatewayFactory | None = None
        self._lock = threading.Lock()

    def __call__(self, installation_id: int, *, interactive: bool = False) -> Gateway:
        """The gateway of one job (see `GatewayFactory`)."""
        with self._lock:  # worker threads share one factory, hence one client per installation
            if self._factory is None:  # the stored App too, registered after this process started
                self._factory = client.GatewayFactory(credentials.effective(self._settings), pacer=self._pacer)
            factory = self._factory
        return factory(installation_id, interactive=interactive)


class JobRunner:
    """The queue's runner: `handlers.run` with a `JobContext` per job, on the gateways of one `GatewayFactory`.

    Without a queue (``queue`` None) jobs run unpaced and count in this process; ``submit`` (default: the queue's)
    lets installation jobs fan out into one sync job per repository, else they sync every repository themselves."""

    def __init__(self, settings: Settings, submit: Submit | None = None, queue: HueyQueue | None = None) -> None:
        self._settings = settings
        self._queue = queue
        self._factory = LazyFactory(settings, queue.pacer if queue is not None else None)
        self.submit = submit if submit is not None or queue is None else queue.submit
        # The queue store's command claims and refusal counters, built once: every job shares them.
        self._claims = dedupe.claims_in(queue.pacer) if queue is not None else None
        self._refusals = refusals.limiter_in(queue.pacer) if queue is not None else None

    def context(self, gateways: GatewayFactory) -> JobContext:
        """One job's context: these gateways (dry-run wrappers when DRY_RUN is set), the queue's shared store and
        its retry policy."""
        settings, queue = self._settings, self._queue
        if settings.dry_run:
            gateways = _dry_run(gateways)
        if queue is None:
            return JobContext(gateways, submit=self.submit, preview_threshold=settings.preview_threshold)
        return JobContext(
            gateways,
            pacer=queue.pacer,
            counters=queue.counters,
            submit=self.submit,
            preview_threshold=settings.preview_threshold,
            claims=self._claims,
            refusals=self._refusals,
            final=queue.final,
        )

    def __call__(self, job: AnyJob) -> dict[str, Any]:
        """Run the job; the outcome and the last `x-ratelimit-remaining` GitHub sent go on the job's log line."""
        used: list[Gateway] = []

        def gateways(installation_id: int, *, interactive: bool = False) -> Gateway:
            gateway = self._factory(installation_id, interactive=interactive)
            used.append(gateway)
            return gateway

        outcomes = handlers.run(job, self.context(gateways))
        return {
            "outcome": ",".join(sorted({o.action for o in outcomes})) or "none",
            "rate_limit_remaining": handlers.rate_limit_remaining(used[-1]) if used else None,
        }


def _dry_run(gateways: GatewayFactory) -> GatewayFactory:
    """The same gateways wrapped so that they read but never write (each write is logged instead)."""

    def dry(installation_id: int, *, interactive: bool = False) -> Gateway:
        return DryRunGateway(gateways(installation_id, interactive=interactive))

    return dry


def make_runner(settings: Settings, submit: Submit | None = None, queue: HueyQueue | None = None) -> JobRunner:
    """The GitHub job runner (with ``queue``: on that queue's store, submitting to it)."""
    return JobRunner(settings, submit, queue)


def job_queue(settings: Settings, options: QueueOptions | None = None) -> HueyQueue:
    """The durable queue for these settings, running its jobs with the GitHub job runner."""
    queue = build_queue(settings, None, options)
    queue.runner = make_runner(settings, queue=queue)
    return queue


def deployed(wrap: Callable[[Flask, Settings], T], settings: Settings | None = None) -> T:
    """JSON logs, the Flask app, and the lean webhook path ``wrap`` puts in front of it."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, secrets=(settings.webhook_secret, settings.private_key))
    return wrap(create_app(settings, queue=job_queue(settings)), settings)
