"""Classify GitHub failures into retry-later (with the delay GitHub asks for) or fail-once.

Rules from GitHub's REST docs, "Rate limits for the REST API" (best practices / exceeding the limit):
a response with `retry-after` means wait that many seconds; `x-ratelimit-remaining: 0` means wait until
`x-ratelimit-reset` (epoch seconds); a secondary limit without either header means wait at least one
minute, then back off exponentially. Other 4xx are permanent, except known races (422 "already exists").
"""

from __future__ import annotations

import http.client
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# A job's (or its gateway's write pacing's) deferral: one class, defined beside the gateway that raises it.
from bot.github.gateway import RetryLater as RetryLater
from bot.queue.storage import now

Action = Literal["retry", "fail"]
_RNG = random.Random()

# 422 messages that mean another writer got there first: re-running the idempotent job resolves them.
KNOWN_RACES = ("already exists", "not a fast forward", "reference update failed")


class PermanentFailure(Exception):
    """Raised by a job that must not be retried; the message is logged with the delivery id."""


@dataclass(frozen=True)
class Decision:
    """What to do about one failure."""

    action: Action
    reason: str
    delay: float = 0.0  # the least GitHub asked us to wait; the policy may wait longer
    counts: bool = True  # whether it uses up one of the job's attempts
    rate_limit_remaining: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; `max_attempts` failures put a job in the dead-letter list."""

    max_attempts: int = 8
    base: float = 2.0
    cap: float = 900.0
    secondary_min: float = 60.0
    # GitHub's primary limit resets within the hour; a longer Retry-After or reset is not believed.
    max_delay: float = 3900.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (1-based): half fixed, half random, capped."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return ceiling / 2 + (rng or _RNG).uniform(0, ceiling / 2)

    def delay(self, decision: Decision, attempt: int, rng: random.Random | None = None) -> float:
        """The wait for this retry: never shorter than what GitHub asked for."""
        if not decision.counts:
            return min(max(0.0, decision.delay), self.max_delay)
        return min(max(decision.delay, self.backoff(attempt, rng)), self.max_delay)

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` failures used up the budget."""
        return attempts >= self.max_attempts


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _message(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body
    if isinstance(body, Mapping):
        parts = [str(body.get("message") or "")]
        for error in body.get("errors") or ():
            parts.append(str(error.get("message") or error) if isinstance(error, Mapping) else str(error))
        return " ".join(p for p in parts if p)
    return str(body or "")


def rate_limit_remaining(headers: Mapping[str, Any] | None) -> int | None:
    """`x-ratelimit-remaining` as an int, when present."""
    value = _number(_header(headers, "x-ratelimit-remaining"))
    return int(value) if value is not None else None


def classify_response(
    status: int,
    headers: Mapping[str, Any] | None,
    body: Any = None,
    at: float | None = None,
    secondary_min: float = 60.0,
) -> Decision:
    """Decide from a GitHub HTTP error response."""
    at = now() if at is None else at
    remaining = rate_limit_remaining(headers)
    retry_after = _number(_header(headers, "retry-after"))
    reset = _number(_header(headers, "x-ratelimit-reset"))
    message = _message(body)
    lowered = message.lower()
    if status in (403, 429):
        if retry_after is not None:
            return Decision(
                "retry",
                f"secondary rate limit ({status}), retry-after {retry_after:g}s",
                delay=max(0.0, retry_after),
                rate_limit_remaining=remaining,
            )
        if remaining == 0 and reset is not None:
            return Decision(
                "retry",
                f"primary rate limit ({status}) until reset",
                delay=max(0.0, reset - at) + 1.0,
                counts=False,
                rate_limit_remaining=0,
            )
        if status == 429 or "rate limit" in lowered or "abuse" in lowered:
            return Decision(
                "retry", f"secondary rate limit ({status})", delay=secondary_min, rate_limit_remaining=remaining
            )
        return Decision("fail", f"forbidden (403): {message or 'no message'}", rate_limit_remaining=remaining)
    if status >= 500 or status in (408,):
        return Decision("retry", f"GitHub server error {status}", rate_limit_remaining=remaining)
    if status == 422 and any(race in lowered for race in KNOWN_RACES):
        return Decision("retry", f"known race (422): {message}", rate_limit_remaining=remaining)
    return Decision("fail", f"GitHub answered {status}: {message or 'no message'}", rate_limit_remaining=remaining)


_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
)


def _transient_library_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    try:
        import requests

        found += [requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError]
    except ImportError:  # pragma: no cover - requests ships with PyGithub
        pass
    try:
        import urllib3.exceptions

        found += [urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


def classify_exception(exc: BaseException, policy: RetryPolicy | None = None) -> Decision:
    """Decide from what a job raised: our own signals, PyGithub and requests errors, network errors."""
    policy = policy or RetryPolicy()
    if isinstance(exc, RetryLater):
        return Decision("retry", exc.reason, delay=exc.delay, counts=exc.counts)
    if isinstance(exc, PermanentFailure):
        return Decision("fail", str(exc) or type(exc).__name__)
    status = getattr(exc, "status", None)
    if isinstance(status, int):  # github.GithubException and its subclasses
        return classify_response(
            status, getattr(exc, "headers", None), getattr(exc, "data", None), secondary_min=policy.secondary_min
        )
    response = getattr(exc, "response", None)
    if response is not None and isinstance(getattr(response, "status_code", None), int):
        return classify_response(
            response.status_code, response.headers, getattr(response, "text", ""), secondary_min=policy.secondary_min
        )
    if isinstance(exc, _TRANSIENT + _transient_library_errors()):
        return Decision("retry", f"network error: {type(exc).__name__}: {exc}")
    return Decision("fail", f"unexpected error: {type(exc).__name__}: {exc}")
