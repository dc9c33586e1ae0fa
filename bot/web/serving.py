"""What both gunicorn deployments share: read limits and deadlines, the raw refusal, the lazily built `app`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.web.intake import json_body

# Read deadlines of every request body in both deployments: a client that stalls, or trickles bytes, is
# answered 408 and cut off instead of holding a connection for as long as it likes (the ASGI event loop and
# `bot.web.gthread_worker`'s poller loop keep them; a thread only ever sees a whole request).
BODY_DEADLINE = 30.0  # seconds for a whole body, however fast it keeps coming
BODY_GRACE = 2.0  # seconds before the minimum rate applies
BODY_MIN_RATE = 16 * 1024  # bytes per second on average after the grace
# Heads (request line and headers): refused with 414/431 as soon as they pass these sizes, 408 when a started
# head is not complete in time. GitHub's deliveries send a short path and a few KiB of headers.
MAX_REQUEST_LINE = 8190
MAX_HEAD_BYTES = 64 * 1024
HEAD_DEADLINE = 10.0
TIMEOUT_ERROR = "request body not received in time"
REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}


def refusal(status: int, error: str) -> bytes:
    """The raw HTTP/1.1 answer both deployments send when they refuse a request before the app sees it:
    the error as JSON, nosniff, and the connection closed after it."""
    body = json_body({"error": error})
    return (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        "\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
    ).encode() + body


def body_due(started: float, received: int) -> float:
    """The monotonic time by which more of a body must have arrived (whole-body deadline and minimum rate)."""
    return started + min(BODY_DEADLINE, BODY_GRACE + received / BODY_MIN_RATE)


def lazy_app(build: Callable[[], Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that builds `app` on first access, so importing the module needs no environment."""
    built: list[Any] = []

    def module_getattr(name: str) -> Any:
        if name != "app":
            raise AttributeError(name)
        if not built:
            built.append(build())
        return built[0]

    return module_getattr
