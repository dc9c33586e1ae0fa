"""gunicorn entry point `bot.web.wsgi:app`: the Flask app behind a lean WSGI path for the common webhook.

A delivery that will be queued (POST, JSON, signed, routed to jobs) is handled here without Flask's request
machinery, which costs more CPU than the rest of the intake together (bench/RESULTS-intake.md). Every other
request, and every delivery that is not plainly acceptable, goes to the Flask app untouched, so `bot/web/flask_app.py`
stays the one place that decides errors; tests/test_queue_wsgi.py checks both paths answer alike.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from bot.app.events import route
from bot.github.credentials import webhook_secret
from bot.logs import log_event
from bot.settings import Settings
from bot.web.flask_app import delivery_fields, signature_ok
from bot.wiring import deployed, json_body, lazy_app

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _json(status: str, fields: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    body = json_body(fields)
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("X-Content-Type-Options", "nosniff")])
    return [body]


def _has_body(environ: dict[str, Any]) -> bool:
    return bool(environ.get("wsgi.input_terminated")) or str(environ.get("CONTENT_LENGTH") or "0") != "0"


def _with_body(environ: dict[str, Any], raw: bytes, length: int) -> None:
    """`environ` with `raw` as its body and a Content-Length of `length`: Werkzeug ignores the length of a
    chunked request, so its framing goes."""
    environ["wsgi.input"] = io.BytesIO(raw)  # Flask reads it from here
    environ["CONTENT_LENGTH"] = str(length)
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def read_body(environ: dict[str, Any], cap: int) -> str:
    """Read the whole body, up to `cap` bytes, and put it back as `wsgi.input` with its length.

    Returns "read" or "too_large". The worker class `bot.web.gthread_worker.Worker` hands a request to a thread
    only once all of it is buffered (it answers a body past the cap itself, and cuts stalled clients at their
    deadlines), so this reads bytes already in memory; it also gives Flask a chunked body as one of known
    length."""
    if not _has_body(environ):
        return "read"
    try:
        declared = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        declared = -1
    if declared > cap:
        return "too_large"
    raw = environ["wsgi.input"].read(cap + 1)
    if len(raw) > cap:
        return "too_large"
    _with_body(environ, raw, len(raw))
    return "read"


class FastWebhook:
    """WSGI middleware: accept plain deliveries directly, delegate everything else to the Flask app."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.queue = app.extensions["ecr_cache_bot.queue"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if read_body(environ, self.settings.max_body_bytes) == "too_large":
            _with_body(environ, b"", self.settings.max_body_bytes + 2)  # Flask answers it (413) from the length
            return self.app.wsgi_app(environ, start_response)
        if environ.get("PATH_INFO") != self.settings.webhook_path or environ.get("REQUEST_METHOD") != "POST":
            return self.app.wsgi_app(environ, start_response)
        content_type = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return self.app.wsgi_app(environ, start_response)
        raw = environ["wsgi.input"].getvalue() if isinstance(environ["wsgi.input"], io.BytesIO) else b""
        event = environ.get("HTTP_X_GITHUB_EVENT", "")
        delivery = environ.get("HTTP_X_GITHUB_DELIVERY", "")
        if (not event or len(event) > 100 or not delivery or len(delivery) > 200
                or not signature_ok(webhook_secret(self.settings), raw, environ.get("HTTP_X_HUB_SIGNATURE_256"))):
            return self.app.wsgi_app(environ, start_response)
        start = time.monotonic()
        try:
            payload = json.loads(raw)
            routed = route(event, payload, delivery)
        except (ValueError, RecursionError):
            return self.app.wsgi_app(environ, start_response)
        if not routed.jobs:
            return self.app.wsgi_app(environ, start_response)
        try:
            result = self.queue.submit(delivery, list(routed.jobs))
            if not result.accepted:
                raise RuntimeError("the queue did not accept the jobs")
        except Exception as exc:  # not queued: a 503 lets GitHub show the failure and redeliver
            log_event("queue_failed", level="error", delivery=delivery, error=f"{type(exc).__name__}: {exc}",
                      **delivery_fields(event, delivery, payload, routed.jobs, (), "queue_failed", start))
            return _json("503 SERVICE UNAVAILABLE", {"error": "could not queue the delivery"}, start_response)
        log_event("webhook_queued", delivery=delivery, jobs=len(routed.jobs), duplicate=result.duplicate,
                  **delivery_fields(event, delivery, payload, routed.jobs, result.job_ids,
                                    "duplicate" if result.duplicate else "queued", start))
        return _json("202 ACCEPTED", {"status": "duplicate" if result.duplicate else "queued",
                                      "jobs": len(routed.jobs), "reason": routed.reason}, start_response)


def build(settings: Settings | None = None) -> FastWebhook:
    """The deployed WSGI app: JSON logs, the Flask app, the lean webhook path."""
    return deployed(FastWebhook, settings)


__getattr__ = lazy_app(build)
