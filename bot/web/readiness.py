"""`GET /readyz`: 200 when this deployment can do its work, 503 with the reasons (JSON) when it cannot.

Ready means: the queue store (SQLite file or Redis) takes a write, the templates load, and at least one worker
reported a heartbeat within `heartbeat.LIVE_WITHIN` seconds. `/healthz` stays the liveness check (the process
answers), so an orchestrator restarts a hung process but only stops routing to one that is not ready.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from bot.queue import heartbeat
from bot.queue.storage import now
from bot.render import templates

blueprint = Blueprint("readiness", __name__)


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def check(queue: object, at: float) -> tuple[dict[str, str], list[str]]:
    """({check name: what was found}, [reasons for not being ready]); never raises."""
    checks: dict[str, str] = {}
    reasons: list[str] = []
    store: heartbeat.Heartbeats | None = getattr(queue, "heartbeats", None)
    if store is None:
        checks["queue_store"] = checks["workers"] = f"not checked: {type(queue).__name__} is not durable"
    else:
        try:
            store.probe(at)
            checks["queue_store"] = "ok: a write was committed"
        except Exception as exc:  # whatever the backend raises is the reason
            checks["queue_store"] = _error(exc)
            reasons.append(f"the queue store cannot be written: {_error(exc)}")
        try:
            live = heartbeat.live(store.all(), at)
            if live:
                checks["workers"] = f"{len(live)} live, last heartbeat {live[0].age(at):.1f} s ago"
            else:
                checks["workers"] = f"no worker heartbeat in the last {heartbeat.LIVE_WITHIN:.0f} s"
                reasons.append(
                    f"no worker has reported a heartbeat within {heartbeat.LIVE_WITHIN:.0f} s "
                    "(start `ecr-cache-bot worker`, or use `ecr-cache-bot serve`)"
                )
        except Exception as exc:
            checks["workers"] = _error(exc)
            reasons.append(f"the worker heartbeats cannot be read: {_error(exc)}")
    problem = templates.check_templates()
    checks["templates"] = "ok" if problem is None else problem
    if problem is not None:
        reasons.append(f"the templates cannot be loaded: {problem}")
    return checks, reasons


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 {"status": "ready", "checks"} or 503 {"status": "not ready", "reasons", "checks"}."""
    checks, reasons = check(current_app.extensions.get("ecr_cache_bot.queue"), now())
    body: dict[str, Any] = {"status": "not ready" if reasons else "ready", "checks": checks}
    if reasons:
        body["reasons"] = reasons
    return jsonify(body), 503 if reasons else 200
