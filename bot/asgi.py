"""gunicorn entry point `bot.asgi:app` (worker class `uvicorn_worker.UvicornWorker`): the lean webhook path
of `bot.wsgi` on an event loop with a C HTTP parser (httptools, uvloop), the Flask app behind it.

A delivery that will be queued (POST, JSON, signed, routed to jobs) is answered here; every other request,
and every delivery that is not plainly acceptable, goes to the Flask app (through `a2wsgi`) with the body it
sent, so `bot/web.py` stays the one place that decides errors (tests/test_asgi.py checks both answer alike).
A 202 is sent only after `queue.submit` returned, i.e. after the jobs are committed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from flask import Flask
from uvicorn_worker import UvicornWorker

from bot.config import Settings
from bot.credentials import webhook_secret
from bot.entrypoint import deployed, lazy_app
from bot.events import route
from bot.job import Job
from bot.ledger import SubmitRequest
from bot.logs import log_event
from bot.queue import HueyQueue, JobQueue, SubmitResult
from bot.storage import now
from bot.web import delivery_fields, signature_ok

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Threads for queues without batch commit (tests' in-memory queue): enough that concurrent deliveries wait in
# `submit` together.
SUBMIT_THREADS = 16


def _json(fields: dict[str, Any]) -> bytes:
    # Byte-for-byte what Flask's `jsonify` sends (sorted keys, compact, trailing newline).
    return (json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n").encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


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
        if scope["type"] != "http" or scope["path"] != self.settings.webhook_path or scope["method"] != "POST":
            await self.wsgi(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if len(headers) != len(scope["headers"]):  # a repeated header: Flask decides how to join it
            await self.wsgi(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        try:
            length = int(headers.get(b"content-length") or -1)
        except ValueError:
            length = -1
        if content_type != b"application/json" or not 0 <= length <= self.settings.max_body_bytes:
            await self.wsgi(scope, receive, send)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body") or size > length:
                break
        raw = b"".join(chunks)
        event = headers.get(b"x-github-event", b"").decode("latin-1")
        delivery = headers.get(b"x-github-delivery", b"").decode("latin-1")
        signature = headers.get(b"x-hub-signature-256", b"").decode("latin-1")
        if (len(raw) != length or not event or len(event) > 100 or not delivery or len(delivery) > 200
                or not signature_ok(webhook_secret(self.settings), raw, signature)):
            await self.wsgi(scope, _replay(raw, receive), send)
            return
        start = time.monotonic()
        try:
            payload = json.loads(raw)
            routed = route(event, payload, delivery)
        except (ValueError, RecursionError):
            await self.wsgi(scope, _replay(raw, receive), send)
            return
        if not routed.jobs:
            await self.wsgi(scope, _replay(raw, receive), send)
            return
        try:
            result = await self._submit(delivery, list(routed.jobs))
            if not result.accepted:
                raise RuntimeError("the queue did not accept the jobs")
        except Exception as exc:  # not queued: a 503 lets GitHub show the failure and redeliver
            log_event("queue_failed", level="error", delivery=delivery, error=f"{type(exc).__name__}: {exc}",
                      **delivery_fields(event, delivery, payload, routed.jobs, (), "queue_failed", start))
            await _answer(send, 503, _json({"error": "could not queue the delivery"}))
            return
        log_event("webhook_queued", delivery=delivery, jobs=len(routed.jobs), duplicate=result.duplicate,
                  **delivery_fields(event, delivery, payload, routed.jobs, result.job_ids,
                                    "duplicate" if result.duplicate else "queued", start))
        await _answer(send, 202, _json({"status": "duplicate" if result.duplicate else "queued",
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


class Worker(UvicornWorker):
    """gunicorn worker class `bot.asgi.Worker`: uvicorn on uvloop with the httptools (C) parser.

    Named outright rather than "auto", so a missing extension fails at start instead of silently serving on
    the pure-Python parser; lifespan "on" so the submit threads are shut down with the worker."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "lifespan": "on"}


def build(settings: Settings | None = None) -> FastAsgiWebhook:
    """The deployed ASGI app: JSON logs, the Flask app, the lean webhook path."""
    return deployed(FastAsgiWebhook, settings)


__getattr__ = lazy_app(build)
