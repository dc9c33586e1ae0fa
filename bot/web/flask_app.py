"""Flask app: the webhook route (an adapter over `bot.web.intake`), `/healthz`, the setup page and `/metrics`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from bot.app.context import Counters
from bot.github import credentials
from bot.logs import log_event
from bot.queue import counters as metrics
from bot.queue.durable import JobQueue, SubmitResult
from bot.settings import Settings
from bot.web import setup_page
from bot.web.intake import IN_MEMORY_OUTCOMES, Answer, Delivery, Rejection, log_fields, read_delivery
from bot.web.readiness import blueprint as readiness_blueprint


def _reply(code: int, **fields: Any) -> tuple[Response, int]:
    return jsonify(fields), code


def record(
    subject: Delivery | Rejection, answer: Answer, start: float, counters: Counters | None, job_ids: Sequence[str] = ()
) -> None:
    """Count and log one answered request to the webhook path (both intake paths)."""
    if answer.outcome in IN_MEMORY_OUTCOMES:  # batched in memory: no durable write per such request
        metrics.count_later(counters, metrics.DELIVERIES, outcome=answer.outcome)
    elif answer.outcome == "malformed" and counters is not None:  # queued ones are counted by the queue's commit
        counters.incr(metrics.DELIVERIES, outcome=answer.outcome)
    log_event(answer.log, level=answer.level, **log_fields(subject, answer, job_ids, (time.monotonic() - start) * 1000))


def settle(delivery: Delivery, result: SubmitResult | Exception, start: float, counters: Counters | None) -> Answer:
    """The answer to a delivery with jobs once `queue.submit` returned `result` (or raised it), recorded."""
    if isinstance(result, SubmitResult) and not result.accepted:
        result = RuntimeError("the queue did not accept the jobs")
    if isinstance(result, Exception):
        answer = delivery.not_queued(result)
        record(delivery, answer, start, counters)
        return answer
    answer = delivery.queued(result.duplicate)
    record(delivery, answer, start, counters, result.job_ids)
    return answer


def create_app(settings: Settings | None = None, queue: JobQueue | None = None) -> Flask:
    """Build the web app; settings come only from `Settings.from_env()` (a missing secret means setup mode)."""
    settings = settings or Settings.from_env()
    if queue is None:
        from bot.wiring import job_queue  # the composition root builds the default queue and its job runner

        queue = job_queue(settings)
    app = Flask(__name__)
    # One byte over the limit: Werkzeug stops a streamed (chunked) body at MAX_CONTENT_LENGTH without an error,
    # so reading up to limit + 1 bytes is how an over-long body without Content-Length is told apart.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1
    app.extensions["ecr_cache_bot.settings"] = settings
    app.extensions["ecr_cache_bot.queue"] = queue
    app.register_blueprint(readiness_blueprint)  # GET /readyz

    @app.get("/metrics")
    def exposition() -> Response:
        """Counters, queue gauges and worker heartbeats in Prometheus text format."""
        return Response(metrics.exposition(metrics.app_counters(app.extensions), queue), mimetype=metrics.CONTENT_TYPE)

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
        subject = read_delivery(
            dict(request.headers.items()),
            raw,
            credentials.webhook_secret(settings),
            limit=limit,
            size=size,
            complete=complete,
        )
        counters = metrics.app_counters(app.extensions)
        if isinstance(subject, Rejection) or not subject.jobs:
            answer = subject.answer
            record(subject, answer, start, counters)
        else:
            try:
                result: SubmitResult | Exception = queue.submit(subject.delivery_id, list(subject.jobs))
            except Exception as exc:  # not queued: the 503 lets GitHub show the failure and redeliver
                result = exc
            answer = settle(subject, result, start, counters)
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
