"""gunicorn entry point `bot.web.asgi:app` (worker class `uvicorn_worker.UvicornWorker`): the lean webhook path
of `bot.web.wsgi` on an event loop with a C HTTP parser (httptools, uvloop), the Flask app behind it.

A delivery that will be queued (POST, JSON, signed, routed to jobs) is answered here; every other request,
and every delivery that is not plainly acceptable, goes to the Flask app (through `a2wsgi`) with the body it
sent, so `bot/web/flask_app.py` stays the one place that decides errors (tests/test_asgi.py checks both answer alike).
A 202 is sent only after `queue.submit` returned, i.e. after the jobs are committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from flask import Flask
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from bot.app.events import route
from bot.app.payloads import Job
from bot.github.credentials import webhook_secret
from bot.logs import log_event
from bot.queue import counters as metrics
from bot.queue.durable import HueyQueue, JobQueue, SubmitResult
from bot.queue.ledger import SubmitRequest
from bot.queue.storage import now
from bot.settings import Settings
from bot.web.flask_app import delivery_fields
from bot.wiring import (
    HEAD_DEADLINE,
    MAX_HEAD_BYTES,
    MAX_REQUEST_LINE,
    TIMEOUT_ERROR,
    body_due,
    deployed,
    json_body,
    lazy_app,
    refusal,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Threads for queues without batch commit (tests' in-memory queue): enough that concurrent deliveries wait in
# `submit` together.
SUBMIT_THREADS = 16


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


SIGNATURE = re.compile(rb"sha256=[0-9a-f]{64}")


class HmacCheck:
    """`X-Hub-Signature-256` checked over the body as it streams in (what `bot.web.flask_app.signature_ok` computes)."""

    def __init__(self, secret: str, header: bytes) -> None:
        self.mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self.header = header

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the raw body."""
        self.mac.update(chunk)

    def holds(self) -> bool:
        """Constant-time comparison once the whole body went through."""
        return hmac.compare_digest(b"sha256=" + self.mac.hexdigest().encode(), self.header)


class Body:
    """One request body read on the event loop, under its deadline and the size cap."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.outcome = "read"  # or "timeout", "too_large", "gone" (the client left)
        self.signed = False
        self.complete = True  # False: the connection still carries unread body bytes (closed after the answer)

    async def read(self, receive: Receive, declared: int | None, cap: int, keep: bool,
                   mac: HmacCheck | None) -> None:
        """Read until the end (kept only when `keep`); `mac` sees every byte, `declared` is Content-Length.

        A body past `cap` is read on (up to twice `cap`, and its deadline) and dropped, so a client that sends
        the whole body before it reads an answer gets to read the 413."""
        started = time.monotonic()
        if declared is not None and declared > cap:
            self.outcome = "too_large"
            if declared > 2 * cap:  # not worth reading: answer now and close
                self.complete = False
                return
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, body_due(started, self.size) - time.monotonic()))
            except TimeoutError:
                self.complete = False
                if self.outcome != "too_large":
                    self.outcome = "timeout"
                return
            if message["type"] != "http.request":
                self.outcome = "gone"
                return
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > cap and self.outcome != "too_large":
                self.chunks.clear()
                self.outcome = "too_large"
            if self.size > 2 * cap:  # drained as much as a 413 is worth
                self.complete = False
                return
            if self.outcome == "read":
                if mac is not None:
                    mac.update(chunk)
                if keep and chunk:
                    self.chunks.append(chunk)
            if not message.get("more_body"):
                break
        self.signed = self.outcome == "read" and mac is not None and mac.holds()
        if mac is not None and not self.signed:
            self.chunks.clear()  # an unsigned body is never parsed nor handed on

    def take(self) -> bytes:
        """The body read, once."""
        raw = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        return raw


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    try:
        return int(headers[b"content-length"])
    except (KeyError, ValueError):
        return None


def _with_length(scope: Scope, length: int) -> Scope:
    """`scope` for Flask with the body already read: a Content-Length of `length`, no Transfer-Encoding.

    a2wsgi sets no `wsgi.input_terminated`, so without a length Werkzeug reads a chunked body as empty."""
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _hardened(send: Send, body: Body) -> Send:
    """`send` adding `X-Content-Type-Options: nosniff` to every answer, and closing a connection whose body
    was not read to its end."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            names = {k.lower() for k, _ in headers}
            if b"x-content-type-options" not in names:
                headers.append((b"x-content-type-options", b"nosniff"))
            if not body.complete and b"connection" not in names:
                headers.append((b"connection", b"close"))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body over first, then the client's later messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class LoopBatcher:
    """Group commit on the event loop: deliveries that arrive while a commit runs go together in the next one.

    One hand-off to a thread per batch instead of one per delivery and no threads waking each other under the
    GIL: 133–138 µs of CPU per delivery against 339–377 µs with `queue.submit` in a thread per delivery
    (`python bench/intake.py --asgi-only`). The commit is `HueyQueue`'s (`ledger.submit_many`, one transaction)."""

    def __init__(self, queue: HueyQueue, pool: ThreadPoolExecutor) -> None:
        self.queue = queue
        self.pool = pool
        self._pending: list[tuple[SubmitRequest, asyncio.Future[bool]]] = []
        self._draining: asyncio.Task[None] | None = None

    def request(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitRequest:
        """The ledger rows and huey messages of one delivery, as `HueyQueue.submit` builds them."""
        return self.queue.submit_request(delivery_id, jobs)

    async def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Return once the delivery's jobs are committed (or were committed before: a duplicate)."""
        request = self.request(delivery_id, jobs)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((request, future))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())  # kept: the loop holds only weak task references
        if not await future:
            return SubmitResult(accepted=True, duplicate=True)
        return SubmitResult(accepted=True, job_ids=tuple(e.job_id for e in request.entries))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await asyncio.sleep(0)  # let requests already parsed in this loop turn join the batch
                size = self.queue.options.batch_max
                batch, self._pending = self._pending[:size], self._pending[size:]
                try:
                    results = await loop.run_in_executor(self.pool, self._commit, [r for r, _ in batch])
                except Exception as exc:  # every delivery of the batch learns it was not queued
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), fresh in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(fresh)
        finally:
            self._draining = None

    def _commit(self, requests: list[SubmitRequest]) -> list[bool]:
        opts = self.queue.options
        return self.queue.ledger.submit_many(requests, now(), opts.dedupe_ttl, opts.stale_after)


class FastAsgiWebhook:
    """ASGI app: accept plain deliveries directly, delegate everything else to the Flask app."""

    def __init__(self, app: Flask, settings: Settings, submit_threads: int = SUBMIT_THREADS) -> None:
        self.app = app
        self.settings = settings
        self.queue: JobQueue = app.extensions["ecr_cache_bot.queue"]
        # a2wsgi's precise ASGI types and ours (plain mappings) describe the same messages.
        self.wsgi = cast(AsgiApp, WSGIMiddleware(app))  # type: ignore[arg-type]
        self.pool = ThreadPoolExecutor(submit_threads, thread_name_prefix="submit")
        self.batcher = LoopBatcher(self.queue, self.pool) if isinstance(self.queue, HueyQueue) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.wsgi(scope, receive, send)
            return
        body = Body()
        send = _hardened(send, body)
        headers = dict(scope["headers"])
        webhook = scope["path"] == self.settings.webhook_path and scope["method"] == "POST"
        mac = self._mac(scope["headers"]) if webhook else None
        # Every body is read here, on the event loop, before a thread sees the request: a client that stalls
        # costs a coroutine, never one of a2wsgi's threads (issue 14).
        await body.read(receive, _declared_length(headers), self.settings.max_body_bytes,
                        keep=mac is not None or not webhook, mac=mac)
        if body.outcome == "gone":
            return
        if body.outcome == "timeout":
            if webhook:
                metrics.count_unauthenticated("ecr_cache_bot_deliveries_total", outcome="timeout")
            await _answer(send, 408, json_body({"error": TIMEOUT_ERROR}))
            return
        if body.outcome == "too_large":  # Flask answers it (413) from the declared length alone
            await self.wsgi(_with_length(scope, self.settings.max_body_bytes + 2), _replay(b"", receive), send)
            return
        if webhook and not body.signed:  # nothing to verify, or a wrong signature: Flask answers, without the body
            await self.wsgi(_with_length(scope, 0), _replay(b"", receive), send)
            return
        raw = body.take()
        if not webhook:
            await self.wsgi(_with_length(scope, len(raw)), _replay(raw, receive), send)
            return
        await self._delivery(scope, headers, raw, receive, send)

    def _mac(self, raw_headers: Sequence[tuple[bytes, bytes]]) -> HmacCheck | None:
        """The streaming signature check of a delivery, or None when no body could pass it."""
        secret = webhook_secret(self.settings)
        signatures = [v for k, v in raw_headers if k == b"x-hub-signature-256"]
        if not secret or len(signatures) != 1 or not SIGNATURE.fullmatch(signatures[0]):
            return None  # Flask answers 503 (no secret) or 401 whatever the body holds
        return HmacCheck(secret, signatures[0])

    async def _delivery(self, scope: Scope, headers: dict[bytes, bytes], raw: bytes, receive: Receive,
                        send: Send) -> None:
        """A signed delivery: queue it here when it is plainly acceptable, else let Flask answer."""
        flask_scope = _with_length(scope, len(raw))
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        event = headers.get(b"x-github-event", b"").decode("latin-1")
        delivery = headers.get(b"x-github-delivery", b"").decode("latin-1")
        if (len(headers) != len(scope["headers"])  # a repeated header: Flask decides how to join it
                or content_type != b"application/json" or not event or len(event) > 100 or not delivery
                or len(delivery) > 200):
            await self.wsgi(flask_scope, _replay(raw, receive), send)
            return
        start = time.monotonic()
        try:
            payload = json.loads(raw)
            routed = route(event, payload, delivery)
        except (ValueError, RecursionError):
            await self.wsgi(flask_scope, _replay(raw, receive), send)
            return
        if not routed.jobs:
            await self.wsgi(flask_scope, _replay(raw, receive), send)
            return
        try:
            result = await self._submit(delivery, list(routed.jobs))
            if not result.accepted:
                raise RuntimeError("the queue did not accept the jobs")
        except Exception as exc:  # not queued: a 503 lets GitHub show the failure and redeliver
            log_event("queue_failed", level="error", delivery=delivery, error=f"{type(exc).__name__}: {exc}",
                      **delivery_fields(event, delivery, payload, routed.jobs, (), "queue_failed", start))
            await _answer(send, 503, json_body({"error": "could not queue the delivery"}))
            return
        log_event("webhook_queued", delivery=delivery, jobs=len(routed.jobs), duplicate=result.duplicate,
                  **delivery_fields(event, delivery, payload, routed.jobs, result.job_ids,
                                    "duplicate" if result.duplicate else "queued", start))
        await _answer(send, 202, json_body({"status": "duplicate" if result.duplicate else "queued",
                                        "jobs": len(routed.jobs), "reason": routed.reason}))

    async def _submit(self, delivery: str, jobs: Sequence[Job]) -> SubmitResult:
        if self.batcher is not None:
            return await self.batcher.submit(delivery, jobs)
        # Any other queue: `submit` blocks until the jobs are committed, so off the event loop.
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.queue.submit, delivery, jobs)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=True)  # deliveries being committed finish before the process exits
                await send({"type": "lifespan.shutdown.complete"})
                return


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded heads: a request line past `MAX_REQUEST_LINE` bytes is refused
    with 414 and a head past `MAX_HEAD_BYTES` with 431, before the bytes reach the parser; a head not complete
    within `HEAD_DEADLINE` seconds of its first byte gets a 408.

    uvicorn has no such limit for httptools (`h11_max_incomplete_event_size` is h11's only), and the uvicorn
    worker class does not pass gunicorn's `--limit-request-*` settings on
    (https://www.uvicorn.org/settings/#http), so the count is kept here, on the raw bytes."""

    max_line = MAX_REQUEST_LINE
    max_head = MAX_HEAD_BYTES
    head_deadline = HEAD_DEADLINE
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection starts in a head."""
        super().connection_made(transport)
        self._head_reset(in_head=True)
        # A connection that sends nothing at all is closed at the head deadline too (uvicorn's keep-alive
        # timeout starts only after a first response).
        self._head_timer = self.loop.call_later(self.head_deadline, self._head_too_slow)

    def _head_reset(self, in_head: bool) -> None:
        self._in_head = in_head
        self._line_done = False
        self._line_bytes = 0
        self._head_bytes = 0
        self._tail = b""
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = None

    def data_received(self, data: bytes) -> None:
        """Count the bytes of a head before the parser buffers them."""
        if self._in_head:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_deadline, self._head_too_slow)
            seen = self._tail + data
            ends = [i + len(m) for m in (b"\r\n\r\n", b"\n\n") if (i := seen.find(m)) >= 0]
            # Bytes past the end of the head are body (or the next request): not the head's to count.
            self._head_bytes += len(data) if not ends else max(0, min(ends) - len(self._tail))
            self._tail = data[-3:]
            if not self._line_done:
                end = data.find(b"\n")
                self._line_bytes += len(data) if end < 0 else end
                self._line_done = end >= 0
                if self._line_bytes > self.max_line:
                    self._refuse(414, "request line too long")
                    return
            if self._head_bytes > self.max_head:
                self._refuse(431, "request headers too large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        """The head is whole: its limits end here."""
        self._head_reset(in_head=False)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The next bytes on this connection start another head."""
        super().on_message_complete()
        self._head_reset(in_head=True)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head timer with the connection."""
        self._head_reset(in_head=False)
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes:
            self._refuse(408, "request head not received in time")
        else:
            self.transport.close()

    def _refuse(self, status: int, error: str) -> None:
        self._head_reset(in_head=False)
        self.transport.write(refusal(status, error))
        self.transport.close()


class Worker(UvicornWorker):
    """gunicorn worker class `bot.web.asgi.Worker`: uvicorn on uvloop with the httptools (C) parser.

    Named outright rather than "auto", so a missing extension fails at start instead of silently serving on
    the pure-Python parser; lifespan "on" so the submit threads are shut down with the worker; heads bounded
    (`BoundedHttpToolsProtocol`); no `server: uvicorn` banner."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "uvloop", "http": BoundedHttpToolsProtocol, "lifespan": "on",
                                     "server_header": False}


def build(settings: Settings | None = None) -> FastAsgiWebhook:
    """The deployed ASGI app: JSON logs, the Flask app, the lean webhook path."""
    return deployed(FastAsgiWebhook, settings)


__getattr__ = lazy_app(build)
