"""Flask app: the signed webhook endpoint, `/healthz`, the setup page and `/metrics`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from bot.app import handlers as jobs
from bot.app.events import MalformedPayload, route
from bot.app.payloads import Job
from bot.github import credentials
from bot.github.client import GatewayFactory, GitHubGateway
from bot.logs import header_value, log_event
from bot.queue import counters as metrics
from bot.queue.durable import JobQueue, create_queue
from bot.settings import Settings
from bot.web import setup_page
from bot.web.readiness import blueprint as readiness_blueprint


def _reply(code: int, **fields: Any) -> tuple[Response, int]:
    return jsonify(fields), code


UNAUTHENTICATED = frozenset({"too_large", "not_configured", "bad_signature"})


def _count(outcome: str) -> None:
    """Count a delivery the queue never sees (the queue counts accepted and duplicate ones)."""
    if outcome in UNAUTHENTICATED:  # in memory, batched: no durable write per unsigned request
        metrics.count_unauthenticated("ecr_cache_bot_deliveries_total", outcome=outcome)
        return
    counters = metrics.current()
    if counters is not None:
        counters.incr("ecr_cache_bot_deliveries_total", outcome=outcome)


def _json_text(raw: bytes, mimetype: str) -> bytes | str:
    """The JSON document of a delivery; webhooks set to `application/x-www-form-urlencoded` wrap it in `payload`."""
    if mimetype == "application/x-www-form-urlencoded":
        values = parse_qs(raw.decode("utf-8"), max_num_fields=10).get("payload")
        if not values:
            raise ValueError("form-encoded delivery without a `payload` field")
        return values[0]
    return raw


def delivery_fields(event: str | None, delivery: str | None, payload: object, routed_jobs: Sequence[Job],
                    job_ids: Sequence[str], outcome: str, start: float) -> dict[str, Any]:
    """The fields of every `webhook_*` log line (both intake paths): one delivery, what came of it, how long."""
    body = payload if isinstance(payload, Mapping) else {}
    first = routed_jobs[0] if routed_jobs else None
    installation = body.get("installation")
    repository = body.get("repository")
    action = body.get("action")
    return {
        "delivery_id": header_value(delivery), "event_name": header_value(event),
        "action": action if isinstance(action, str) else None,
        "installation": first.installation_id if first is not None else (
            installation.get("id") if isinstance(installation, Mapping) else None),
        "repository": first.repo if first is not None else (
            repository.get("full_name") if isinstance(repository, Mapping) else None),
        "job_ids": list(job_ids), "outcome": outcome, "duration_ms": round((time.monotonic() - start) * 1000, 2),
    }


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    """Constant-time check of `X-Hub-Signature-256` (HMAC-SHA256 of the raw body); never true without a secret."""
    if not secret:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").encode("utf-8", "replace"))


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
    def webhook() -> tuple[Response, int]:
        start = time.monotonic()
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")

        def log(name: str, outcome: str, payload: object = None, routed_jobs: Sequence[Job] = (),
                job_ids: Sequence[str] = (), level: str = "info", **extra: Any) -> None:
            log_event(name, level=level, delivery=header_value(delivery), **extra,
                      **delivery_fields(event, delivery, payload, routed_jobs, job_ids, outcome, start))

        try:
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge:
            _count("too_large")
            log("webhook_rejected", "too_large", level="warning", reason="body too large")
            return _reply(413, error=f"body larger than {settings.max_body_bytes} bytes")
        except BadRequest:  # the client sent less than its Content-Length and hung up
            _count("malformed")
            log("webhook_malformed", "malformed", level="warning", error="body shorter than Content-Length")
            return _reply(400, error="body shorter than Content-Length")
        if len(raw) > settings.max_body_bytes:
            _count("too_large")
            log("webhook_rejected", "too_large", level="warning", reason="body too large")
            return _reply(413, error=f"body larger than {settings.max_body_bytes} bytes")
        secret = credentials.webhook_secret(settings)
        if secret is None:  # setup mode: nothing can be verified until the App is registered from `/`
            _count("not_configured")
            log("webhook_rejected", "not_configured", level="warning", reason="no webhook secret yet")
            return _reply(503, error="no webhook secret yet: register the GitHub App from this server's / page")
        if not signature_ok(secret, raw, request.headers.get("X-Hub-Signature-256")):
            log("webhook_rejected", "bad_signature", level="warning", reason="bad signature")
            _count("bad_signature")
            return _reply(401, error="missing or invalid X-Hub-Signature-256")
        if not event or len(event) > 100 or not delivery or len(delivery) > 200:
            _count("malformed")
            log("webhook_malformed", "malformed", level="warning", error="missing or over-long GitHub headers")
            return _reply(400, error="X-GitHub-Event and X-GitHub-Delivery headers are required")
        payload: object = None
        try:
            payload = json.loads(_json_text(raw, request.mimetype))
            routed = route(event, payload, delivery)
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, MalformedPayload) else "body is not valid JSON"
            log("webhook_malformed", "malformed", payload, level="warning", error=message)
            _count("malformed")
            return _reply(400, error=message)
        if not routed.jobs:
            log("webhook_ignored", "ignored", payload, reason=routed.reason)
            _count("ignored")
            return _reply(200, status="ignored", reason=routed.reason)
        try:
            result = queue.submit(delivery, list(routed.jobs))
            if not result.accepted:
                raise RuntimeError("the queue did not accept the jobs")
        except Exception as exc:  # the delivery is not queued: make GitHub show a failure so it can redeliver
            log("queue_failed", "queue_failed", payload, routed.jobs, level="error",
                error=f"{type(exc).__name__}: {exc}")
            return _reply(503, error="could not queue the delivery")
        outcome = "duplicate" if result.duplicate else "queued"
        log("webhook_queued", outcome, payload, routed.jobs, result.job_ids, jobs=len(routed.jobs),
            duplicate=result.duplicate)
        return _reply(202, status=outcome, jobs=len(routed.jobs), reason=routed.reason)

    @app.after_request
    def nosniff(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return _reply(200, status="ok")

    setup_page.register(app)
    return app
