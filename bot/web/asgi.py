"""gunicorn entry point `bot.web.asgi:app` (worker class `bot.web.asgi.Worker`): uvicorn on uvloop with a C HTTP
parser (httptools), the webhook path answered here, every other path by the Flask app (through `a2wsgi`).

The webhook path is a thin adapter over `bot.web.intake.read_delivery`, like the Flask route: read the body on the
event loop (checking its signature as it streams in, so an unsigned body is never kept), let `read_delivery`
decide, commit a delivery's jobs (`LoopBatcher`), answer. A 202 is sent only after the jobs are committed; an
ignored delivery is answered without touching the queue (tests/web/test_asgi.py checks both paths answer alike).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from flask import Flask
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from bot.app.payloads import AnyJob
from bot.github.credentials import webhook_secret
from bot.queue import counters as metrics
from bot.queue.durable import HueyQueue, JobQueue, SubmitResult
from bot.queue.ledger import SubmitRequest
from bot.queue.storage import now
from bot.settings import Settings
from bot.web.flask_app import record, settle
from bot.web.intake import HmacCheck, Rejection, json_body, read_delivery
from bot.web.serving import HEAD_DEADLINE, MAX_HEAD_BYTES, MAX_REQUEST_LINE, TIMEOUT_ERROR, body_due, lazy_app, refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Threads for queues without batch commit (tests' in-memory queue): enough that concurrent deliveries wait in
# `submit` together.
SUBMIT_THREADS = 16


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Body:
    """One request body read on the event loop, under its deadline and the size cap."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.outcome = "read"  # or "timeout", "too_large", "gone" (the client left)
        self.signed = False
        self.complete = True  # False: the connection still carries unread body bytes (closed after the answer)

    async def read(self, receive: Receive, declared: int | None, cap: int, keep: bool, mac: HmacCheck | None) -> None:
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
                # asyncio.timeout, not wait_for: no task per message (wait_for wraps the coroutine in one)
                async with asyncio.timeout(max(0.0, body_due(started, self.size) - time.monotonic())):
                    message = await receive()
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


def _declared_length(raw_headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in raw_headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _named(raw_headers: Sequence[tuple[bytes, bytes]]) -> Mapping[str, str]:
    """The headers as the WSGI side sees them (a2wsgi, Werkzeug): `_` read as `-`, repeats joined with `,`."""
    named: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name, value = raw_name.decode("latin-1").lower().replace("_", "-"), raw_value.decode("latin-1")
        named[name] = f"{named[name]},{value}" if name in named else value
    return named


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

    def request(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitRequest:
        """The ledger rows and huey messages of one delivery, as `HueyQueue.submit` builds them."""
        return self.queue.submit_request(delivery_id, jobs)

    async def submit(self, delivery_id: str, jobs: Sequence[AnyJob]) -> SubmitResult:
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
    """ASGI app: the webhook path over `read_delivery`, everything else to the Flask app."""

    def __init__(self, app: Flask, settings: Settings, submit_threads: int = SUBMIT_THREADS) -> None:
        self.app = app
        self.settings = settings
        self.queue: JobQueue = app.extensions["ecr_cache_bot.queue"]
        self.counters = metrics.app_counters(app.extensions)
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
        webhook = scope["path"] == self.settings.webhook_path and scope["method"] == "POST"
        secret = webhook_secret(self.settings) if webhook else None
        mac = HmacCheck.of(secret, [v for k, v in scope["headers"] if k == b"x-hub-signature-256"]) if webhook else None
        cap = self.settings.max_body_bytes
        # Every body is read here, on the event loop, before a thread sees the request: a client that stalls
        # costs a coroutine, never one of a2wsgi's threads (issue 14).
        await body.read(receive, _declared_length(scope["headers"]), cap, keep=mac is not None or not webhook, mac=mac)
        if body.outcome == "gone":
            return
        if body.outcome == "timeout":
            if webhook:
                metrics.count_later(self.counters, metrics.DELIVERIES, outcome="timeout")
            await _answer(send, 408, json_body({"error": TIMEOUT_ERROR}))
            return
        if webhook:
            await self._delivery(scope["headers"], body, secret, send)
        elif body.outcome == "too_large":  # Flask answers it (413) from the declared length alone
            await self.wsgi(_with_length(scope, cap + 2), _replay(b"", receive), send)
        else:
            raw = body.take()
            await self.wsgi(_with_length(scope, len(raw)), _replay(raw, receive), send)

    async def _delivery(
        self, raw_headers: Sequence[tuple[bytes, bytes]], body: Body, secret: str | None, send: Send
    ) -> None:
        """One request to the webhook path, read: decide, commit a delivery's jobs, answer."""
        start = time.monotonic()
        cap = self.settings.max_body_bytes
        subject = read_delivery(
            _named(raw_headers),
            body.take(),
            secret,
            limit=cap,
            size=cap + 1 if body.outcome == "too_large" else body.size,
            signed=body.signed,
        )
        if isinstance(subject, Rejection) or not subject.jobs:
            answer = subject.answer
            record(subject, answer, start, self.counters)
        else:
            try:
                result: SubmitResult | Exception = await self._submit(subject.delivery_id, list(subject.jobs))
            except Exception as exc:  # not queued: the 503 lets GitHub show the failure and redeliver
                result = exc
            answer = settle(subject, result, start, self.counters)
        await _answer(send, answer.status, answer.body)

    async def _submit(self, delivery: str, jobs: Sequence[AnyJob]) -> SubmitResult:
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

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": BoundedHttpToolsProtocol,
        "lifespan": "on",
        "server_header": False,
    }


def build(settings: Settings | None = None) -> FastAsgiWebhook:
    """The deployed ASGI app: JSON logs, the Flask app, the webhook path in front of it."""
    from bot.wiring import deployed  # the composition root builds the default app and queue

    return deployed(FastAsgiWebhook, settings)


__getattr__ = lazy_app(build)
