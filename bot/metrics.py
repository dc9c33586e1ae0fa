"""Prometheus text counters at /metrics (stub: the observability work fills this in)."""

from __future__ import annotations

from flask import Blueprint, Response

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Expose counters in Prometheus text format."""
    return Response("", mimetype="text/plain; version=0.0.4")
