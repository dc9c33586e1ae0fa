"""Flask app: the webhook route (an adapter over `bot.web.intake`), `/healthz`, the setup page and `/metrics`."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.github import credentials
from bot.github.client import GatewayFactory, GitHubGateway
from bot.logs import log_event
from bot.queue import counters as metrics
from bot.queue.durable import JobQueue, SubmitResult, create_queue
from bot.settings import Settings
from bot.web import setup_page
from bot.web.intake import IN_MEMORY_OUTCOMES, Answer, Delivery, Rejection, log_fields, read_delivery
from bot.web.readiness import blueprint as readiness_blueprint


def _reply(code: int, **fields: Any) -> tuple[Response, int]:
    return jsonify(fields), code


def record(subject: Delivery | Rejection, answer: Answer, start: float, job_ids: Sequence[str] = ()) -> None:
    """Count and log one answered request to the webhook path (both intake paths)."""
    if answer.outcome in IN_MEMORY_OUTCOMES:  # batched in memory: no durable write per such request
        metrics.count_unauthenticated(metrics.DELIVERIES, outcome=answer.outcome)
    elif answer.outcome == "malformed":  # queued and duplicate ones are counted by the queue, in its commit
        counters = metrics.current()
        if counters is not None:
            counters.incr(metrics.DELIVERIES, outcome=answer.outcome)
    log_event(answer.log, level=answer.level,
              **log_fields(subject, answer, job_ids, (time.monotonic() - start) * 1000))


def settle(delivery: Delivery, result: SubmitResult | Exception, start: float) -> Answer:
    """The answer to a delivery with jobs once `queue.submit` returned `result` (or raised it), recorded."""
    if isinstance(result, SubmitResult) and not result.accepted:
        result = RuntimeError("the queue did not accept the jobs")
    if isinstance(result, Exception):
        answer = delivery.not_queued(result)
        record(delivery, answer, start)
        return answer
    answer = delivery.queued(result.duplicate)
    record(delivery, answer, start, result.job_ids)
    return answer


class _LazyFactory:
    """Builds the gateway factory on first use, so the web process starts without App credentials."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._factory: GatewayFactory | None = None
        self._lock = threading.Lock()

    def __call__(self, installation_id: int) -> GitHubGateway:
        with self._lock:  # worker threads share one factory, hence one client per installation
            if self._factory is None:
                self._factory = GatewayFactory(credentials.effective(self._settings))  # stored App too
            factory = self._factory
        return factory(installation_id)


class JobRunner:
    """The queue's runner: `jobs.run` with the gateways of one `GatewayFactory` (bounded: see `MAX_GATEWAYS`).

    Set ``submit`` to the queue's `submit` once the queue exists, so installation jobs fan out into one
    sync job per repository; without it they sync every repository themselves."""

    def __init__(self, settings: Settings, submit: jobs.Submit | None = None) -> None:
        self._settings = settings
        self._factory = _LazyFactory(settings)
        self.submit = submit

    def __call__(self, job: Job) -> dict[str, Any]:
        """Run the job; the outcome and the last `x-ratelimit-remaining` GitHub sent go on the job's log line."""
        used: list[GitHubGateway] = []

        def factory(installation_id: int) -> GitHubGateway:
            gateway = self._factory(installation_id)
            used.append(gateway)
            return gateway

        outcomes = jobs.run(job, factory, dry_run=self._settings.dry_run, submit=self.submit,
                            preview_threshold=self._settings.preview_threshold)
        return {"outcome": ",".join(sorted({o.action for o in outcomes})) or "none",
                "rate_limit_remaining": jobs.rate_limit_remaining(used[-1]) if used else None}


def make_runner(settings: Settings, submit: jobs.Submit | None = None) -> JobRunner:
    """The runner `create_app` and the worker process give the queue."""
    return JobRunner(settings, submit)


def create_app(settings: Settings | None = None, queue: JobQueue | None = None) -> Flask:
    """Build the web app; settings come only from `Settings.from_env()` (a missing secret means setup mode)."""
    settings = settings or Settings.from_env()
    if queue is None:
        runner = make_runner(settings)
        queue = create_queue(settings, runner)
        runner.submit = queue.submit
    app = Flask(__name__)
    # One byte over the limit: Werkzeug stops a streamed (chunked) body at MAX_CONTENT_LENGTH without an error,
    # so reading up to limit + 1 bytes is how an over-long body without Content-Length is told apart.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.extensions["ecr_cache_bot.settings"] = settings
    app.extensions["ecr_cache_bot.queue"] = queue
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(readiness_blueprint)  # GET /readyz

    @app.post(settings.webhook_path)
    def webhook() -> Response:
        start = time.monotonic()
        limit = settings.max_body_bytes
        raw, size, complete = b"", None, True
        try:
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge:
            size = limit + 1
        except BadRequest:  # the client sent less than its Content-Length and hung up
            complete = False
        subject = read_delivery(dict(request.headers.items()), raw, credentials.webhook_secret(settings), limit=limit,
                                size=size, complete=complete)
        if isinstance(subject, Rejection) or not subject.jobs:
            answer = subject.answer
            record(subject, answer, start)
        else:
            try:
                result: SubmitResult | Exception = queue.submit(subject.delivery_id, list(subject.jobs))
            except Exception as exc:  # not queued: the 503 lets GitHub show the failure and redeliver
                result = exc
            answer = settle(subject, result, start)
        return Response(answer.body, answer.status, mimetype="application/json")

    @app.after_request
    def nosniff(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return _reply(200, status="ok")

    setup_page.register(app)
    return app
