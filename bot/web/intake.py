"""The webhook decision, made once: size, signature, headers, payload, routing and the answer; no I/O.

`read_delivery` turns what a client sent into a `Delivery` (signed, well-formed, routed: its jobs, maybe none)
or a `Rejection` (its answer). The Flask route and the ASGI adapter read the body, call it, put a delivery's
jobs in the durable queue, and send `answer`; neither decides anything else (tests/web/test_intake.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs

from bot.app.events import MalformedPayload, Routed, route
from bot.app.payloads import AnyJob
from bot.logs import header_value

MAX_EVENT = 100  # characters of X-GitHub-Event
MAX_DELIVERY = 200  # characters of X-GitHub-Delivery
SIGNATURE = re.compile(rb"sha256=[0-9a-f]{64}")
FORM = "application/x-www-form-urlencoded"


def json_body(fields: Mapping[str, Any]) -> bytes:
    """Byte-for-byte the body Flask's `jsonify` sends (sorted keys, compact, trailing newline)."""
    return (json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class Answer:
    """What goes back to GitHub and into the log: status, JSON fields, outcome label, log line name and level."""

    status: int
    fields: Mapping[str, Any]
    outcome: str  # the `outcome` label of `ecr_cache_bot_deliveries_total` and of the log line
    log: str
    level: str = "info"
    detail: Mapping[str, Any] = field(default_factory=dict)  # the log line's own fields (reason, error, jobs)

    @property
    def body(self) -> bytes:
        """The JSON body."""
        return json_body(self.fields)


@dataclass(frozen=True)
class Rejection:
    """A request that yields no job and is not a plain ignored delivery: its answer and what it said."""

    answer: Answer
    event: str
    delivery_id: str
    payload: object = None  # the parsed JSON when the payload, not the request, was at fault


@dataclass(frozen=True)
class Delivery:
    """A signed, well-formed delivery and the jobs `route` made of it (none: ignored, answered 200)."""

    event: str
    delivery_id: str
    payload: Mapping[str, Any]
    routed: Routed  # `bot.app.events.route`'s jobs and reason, passed through as they are

    @property
    def jobs(self) -> tuple[AnyJob, ...]:
        """The jobs to commit before answering."""
        return self.routed.jobs

    @property
    def reason(self) -> str:
        """Why these jobs, or why none."""
        return self.routed.reason

    @property
    def answer(self) -> Answer:
        """The answer of a delivery without jobs; one with jobs is answered by `queued` or `not_queued`."""
        return Answer(
            200,
            {"status": "ignored", "reason": self.reason},
            "ignored",
            "webhook_ignored",
            detail={"reason": self.reason},
        )

    def queued(self, duplicate: bool) -> Answer:
        """The answer once the queue committed the jobs (or had them already: a redelivery)."""
        outcome = "duplicate" if duplicate else "queued"
        return Answer(
            202,
            {"status": outcome, "jobs": len(self.jobs), "reason": self.reason},
            outcome,
            "webhook_queued",
            detail={"jobs": len(self.jobs), "duplicate": duplicate},
        )

    def not_queued(self, exc: BaseException) -> Answer:
        """A 503 when the jobs are not committed, so GitHub shows a failure and the delivery can be redelivered."""
        return Answer(
            503,
            {"error": "could not queue the delivery"},
            "queue_failed",
            "queue_failed",
            "error",
            {"error": f"{type(exc).__name__}: {exc}"},
        )


def _rejected(status: int, message: str, outcome: str, log: str, **detail: str) -> Answer:
    return Answer(status, {"error": message}, outcome, log, "warning", detail)


def too_large(limit: int) -> Answer:
    """413: the body is over `limit` bytes (declared or sent)."""
    return _rejected(413, f"body larger than {limit} bytes", "too_large", "webhook_rejected", reason="body too large")


SHORT_BODY = _rejected(
    400, "body shorter than Content-Length", "malformed", "webhook_malformed", error="body shorter than Content-Length"
)
NOT_CONFIGURED = _rejected(
    503,
    "no webhook secret yet: register the GitHub App from this server's / page",
    "not_configured",
    "webhook_rejected",
    reason="no webhook secret yet",
)
BAD_SIGNATURE = _rejected(
    401, "missing or invalid X-Hub-Signature-256", "bad_signature", "webhook_rejected", reason="bad signature"
)
NO_HEADERS = _rejected(
    400,
    "X-GitHub-Event and X-GitHub-Delivery headers are required",
    "malformed",
    "webhook_malformed",
    error="missing or over-long GitHub headers",
)
# Counted in memory and written in batches (bot.queue.counters.count_later): nothing durable is owed
# to a request nobody signed, nor to an ignored delivery (no job, no dedupe record; GitHub already has its 200).
IN_MEMORY_OUTCOMES = frozenset({"too_large", "not_configured", "bad_signature", "ignored"})


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    """Constant-time check of `X-Hub-Signature-256` (HMAC-SHA256 of the raw body); never true without a secret."""
    if not secret:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").encode("utf-8", "replace"))


class HmacCheck:
    """`signature_ok` over a body as it streams in, so an unsigned body need not be kept."""

    def __init__(self, secret: str, header: bytes) -> None:
        self.mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self.header = header

    @classmethod
    def of(cls, secret: str | None, signatures: Sequence[bytes]) -> HmacCheck | None:
        """The check for these `X-Hub-Signature-256` values, or None when no body could pass it."""
        if not secret or len(signatures) != 1 or not SIGNATURE.fullmatch(signatures[0]):
            return None
        return cls(secret, signatures[0])

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the raw body."""
        self.mac.update(chunk)

    def holds(self) -> bool:
        """Constant-time comparison once the whole body went through."""
        return hmac.compare_digest(b"sha256=" + self.mac.hexdigest().encode(), self.header)


def _json_text(raw: bytes, content_type: str) -> bytes | str:
    """The JSON document of a delivery; webhooks set to `application/x-www-form-urlencoded` wrap it in `payload`."""
    if content_type == FORM:
        values = parse_qs(raw.decode("utf-8"), max_num_fields=10).get("payload")
        if not values:
            raise ValueError("form-encoded delivery without a `payload` field")
        return values[0]
    return raw


def read_delivery(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    *,
    limit: int,
    size: int | None = None,
    signed: bool | None = None,
    complete: bool = True,
) -> Delivery | Rejection:
    """Decide one webhook request: `headers` as sent (any case), `body` the raw bytes, `secret` None in setup mode.

    `size` is how many bytes the client sent when `body` does not hold them all (past `limit` they are not kept);
    `signed` is the verdict of an `HmacCheck` the caller ran over the body as it streamed in (an unsigned body
    need not be kept either); `complete` is False when the client hung up before the end of its Content-Length.
    The checks run in this order, so nothing unsigned is ever parsed."""
    named = {k.lower(): v for k, v in headers.items()}
    event = named.get("x-github-event", "")
    delivery = named.get("x-github-delivery", "")
    if not complete:
        return Rejection(SHORT_BODY, event, delivery)
    if (len(body) if size is None else size) > limit:
        return Rejection(too_large(limit), event, delivery)
    if secret is None:  # setup mode: nothing can be verified until the App is registered from `/`
        return Rejection(NOT_CONFIGURED, event, delivery)
    if not (signature_ok(secret, body, named.get("x-hub-signature-256")) if signed is None else signed):
        return Rejection(BAD_SIGNATURE, event, delivery)
    if not event or len(event) > MAX_EVENT or not delivery or len(delivery) > MAX_DELIVERY:
        return Rejection(NO_HEADERS, event, delivery)
    payload: object = None
    try:
        payload = json.loads(_json_text(body, named.get("content-type", "").split(";", 1)[0].strip().lower()))
        routed = route(event, payload, delivery)
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, MalformedPayload) else "body is not valid JSON"
        return Rejection(
            _rejected(400, message, "malformed", "webhook_malformed", error=message), event, delivery, payload
        )
    return Delivery(event, delivery, cast(Mapping[str, Any], payload), routed)  # `route` checked the shape


def log_fields(
    subject: Delivery | Rejection, answer: Answer, job_ids: Sequence[str], duration_ms: float
) -> dict[str, Any]:
    """The fields of every `webhook_*` log line: one delivery, what came of it, how long it took."""
    payload = subject.payload if isinstance(subject.payload, Mapping) else {}
    jobs = subject.jobs if isinstance(subject, Delivery) else ()
    first = jobs[0] if jobs else None
    installation = payload.get("installation")
    repository = payload.get("repository")
    action = payload.get("action")
    return {
        "delivery": header_value(subject.delivery_id),
        "delivery_id": header_value(subject.delivery_id),
        "event_name": header_value(subject.event),
        "action": action if isinstance(action, str) else None,
        "installation": first.installation_id
        if first is not None
        else (installation.get("id") if isinstance(installation, Mapping) else None),
        "repository": first.subject
        if first is not None
        else (repository.get("full_name") if isinstance(repository, Mapping) else None),
        "job_ids": list(job_ids),
        "outcome": answer.outcome,
        "duration_ms": round(duration_ms, 2),
        **answer.detail,
    }
