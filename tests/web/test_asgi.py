"""`bot.web.asgi`: answers exactly like the Flask app, takes only plain deliveries, and answers 202 only after the
loop's group commit made the jobs durable."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import COMMENT_BODY, INTAKE_CASES, PUSH_BODY, SECRET, options_for, sign
from werkzeug.test import Client

from bot.app.payloads import Job
from bot.queue.durable import HueyQueue, build_queue
from bot.queue.ledger import SubmitRequest
from bot.settings import Settings
from bot.web.asgi import FastAsgiWebhook
from bot.web.flask_app import create_app

PATH = "/api/github/webhooks"
Reply = tuple[int, bytes, str]


def _settings(tmp_path: Path, name: str) -> Settings:
    return Settings(webhook_secret=SECRET, data_dir=str(tmp_path / name), max_body_bytes=20_000)


def _flask(tmp_path: Path) -> Client:
    settings = _settings(tmp_path, "flask")
    return Client(create_app(settings, queue=build_queue(settings, None, options_for(tmp_path / "flask"))))


def _asgi(tmp_path: Path, runner: Any = None) -> tuple[FastAsgiWebhook, list[str]]:
    """The ASGI app on its own durable queue, and the paths of the requests that reached Flask."""
    settings = _settings(tmp_path, "asgi")
    app = create_app(settings, queue=build_queue(settings, runner, options_for(tmp_path / "asgi")))
    calls: list[str] = []
    inner = app.wsgi_app

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        calls.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    app.wsgi_app = counting  # type: ignore[method-assign]
    return FastAsgiWebhook(app, settings), calls


def _headers(event: str, delivery: str, body: bytes, signature: str | None, content_type: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature if signature is not None else sign(body),
        "Content-Type": content_type,
    }


async def _call(
    app: FastAsgiWebhook,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    chunk: int = 0,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> Reply:
    """One request through the ASGI app, as uvicorn delivers it (optionally in `chunk`-byte pieces)."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()] + list(extra)
    if method == "POST":
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": raw_headers,
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 50000),
    }
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    status, content_type, out = 0, "", []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            content_type = dict(message["headers"]).get(b"content-type", b"").decode()
        else:
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(out), content_type


def _post_asgi(
    app: FastAsgiWebhook,
    event: str,
    delivery: str,
    body: bytes,
    *,
    signature: str | None = None,
    content_type: str = "application/json",
    chunk: int = 0,
) -> Reply:
    headers = _headers(event, delivery, body, signature, content_type)
    return asyncio.run(_call(app, "POST", PATH, body, headers, chunk))


def _post_flask(
    client: Client,
    event: str,
    delivery: str,
    body: bytes,
    *,
    signature: str | None = None,
    content_type: str = "application/json",
) -> Reply:
    response = client.post(PATH, data=body, headers=_headers(event, delivery, body, signature, content_type))
    return response.status_code, response.get_data(), response.headers.get("Content-Type", "")


def _deliveries(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "asgi" / "queue.db") as conn:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


PUSH, COMMENT = PUSH_BODY, COMMENT_BODY


@pytest.mark.parametrize(
    ("event", "delivery", "body", "kwargs"),
    [*INTAKE_CASES, pytest.param("push", "d1b", PUSH_BODY, {"chunk": 1000}, id="push-in-chunks")],
)
def test_asgi_and_flask_answer_alike(
    tmp_path: Path, event: str, delivery: str, body: bytes, kwargs: dict[str, Any]
) -> None:
    app, _ = _asgi(tmp_path)
    chunk = kwargs.pop("chunk", 0)
    assert _post_asgi(app, event, delivery, body, chunk=chunk, **kwargs) == _post_flask(
        _flask(tmp_path), event, delivery, body, **kwargs
    )


def test_a_repeated_header_is_joined_as_flask_joins_it(tmp_path: Path) -> None:
    app, calls = _asgi(tmp_path)
    flask = _flask(tmp_path)
    headers = _headers("push", "twice", PUSH, None, "application/json")
    asgi_reply = asyncio.run(
        _call(
            app,
            "POST",
            PATH,
            PUSH,
            {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
            extra=[(b"x-hub-signature-256", sign(PUSH).encode())],
        )
    )
    response = flask.post(PATH, data=PUSH, headers=[*headers.items(), ("X-Hub-Signature-256", "sha256=" + "0" * 64)])
    assert asgi_reply[:2] == (response.status_code, response.get_data()) and calls == []
    assert asgi_reply[0] == 401  # the joined header is no valid signature
    # A repeated event header is one value joined with "," as a2wsgi hands it to Flask (an event nobody handles).
    event_twice = asyncio.run(_call(app, "POST", PATH, PUSH, headers, extra=[(b"x-github-event", b"ping")]))
    assert json.loads(event_twice[1]) == {"reason": "unhandled event push,ping", "status": "ignored"}


def test_every_webhook_request_is_answered_without_flask_and_other_paths_reach_it(tmp_path: Path) -> None:
    app, calls = _asgi(tmp_path)
    flask = _flask(tmp_path)
    first = _post_asgi(app, "push", "same", PUSH)
    again = _post_asgi(app, "push", "same", PUSH)
    assert first == _post_flask(flask, "push", "same", PUSH) and first[0] == 202
    assert again == _post_flask(flask, "push", "same", PUSH) and b"duplicate" in again[1]
    assert _deliveries(tmp_path) == 1
    assert _post_asgi(app, "push", "x", PUSH, signature="sha256=" + "0" * 64)[0] == 401
    assert _post_asgi(app, "ping", "p", b'{"zen": "z"}')[0] == 200
    assert _post_asgi(app, "push", "big", b"x" * 20_001)[0] == 413
    assert calls == []
    assert asyncio.run(_call(app, "GET", "/healthz"))[0] == 200
    assert asyncio.run(_call(app, "GET", "/metrics"))[0] == 200
    assert calls == ["/healthz", "/metrics"]


def test_an_ignored_delivery_touches_no_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = _asgi(tmp_path)
    assert app.batcher is not None

    def no_commit(*args: Any) -> Any:
        raise AssertionError("an ignored delivery was committed")

    monkeypatch.setattr(app.batcher.queue.ledger, "submit_many", no_commit)
    monkeypatch.setattr(app.queue, "submit", no_commit)
    other_branch = json.dumps({**json.loads(PUSH), "ref": "refs/heads/feature"}).encode()
    status, body, _ = _post_asgi(app, "push", "i1", other_branch)
    assert status == 200 and json.loads(body)["status"] == "ignored"
    assert _deliveries(tmp_path) == 0


def test_concurrent_deliveries_share_commits_and_a_repeated_id_is_queued_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = _asgi(tmp_path)
    assert app.batcher is not None
    ledger = app.batcher.queue.ledger
    batches: list[int] = []
    real = ledger.submit_many

    def counting(requests: Sequence[SubmitRequest], *args: Any) -> list[bool]:
        batches.append(len(requests))
        return real(requests, *args)

    monkeypatch.setattr(ledger, "submit_many", counting)
    ids = [f"c{i}" for i in range(30)] + ["c0", "c1"]

    async def burst() -> list[Reply]:
        headers = [_headers("push", d, PUSH, None, "application/json") for d in ids]
        return list(await asyncio.gather(*(_call(app, "POST", PATH, PUSH, h) for h in headers)))

    replies = asyncio.run(burst())
    assert [r[0] for r in replies] == [202] * len(ids)
    assert sorted(json.loads(r[1])["status"] for r in replies) == ["duplicate"] * 2 + ["queued"] * 30
    assert sum(batches) == len(ids) and len(batches) < len(ids)  # grouped, every delivery committed once
    assert _deliveries(tmp_path) == 30


def test_no_answer_before_the_commit_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = _asgi(tmp_path)
    assert app.batcher is not None
    ledger = app.batcher.queue.ledger
    entered, release = threading.Event(), threading.Event()
    real = ledger.submit_many

    def slow(requests: Sequence[SubmitRequest], *args: Any) -> list[bool]:
        entered.set()
        assert release.wait(10)
        return real(requests, *args)

    monkeypatch.setattr(ledger, "submit_many", slow)

    async def scenario() -> Reply:
        task = asyncio.create_task(
            _call(app, "POST", PATH, PUSH, _headers("push", "w1", PUSH, None, "application/json"))
        )
        while not entered.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert not task.done() and _deliveries(tmp_path) == 0  # committing: no answer yet
        release.set()
        return await task

    status, body, _ = asyncio.run(scenario())
    assert status == 202 and json.loads(body)["status"] == "queued" and _deliveries(tmp_path) == 1


def test_commit_failure_is_a_503_like_flask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = _asgi(tmp_path)
    flask = _flask(tmp_path)

    def broken(*args: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    assert app.batcher is not None
    monkeypatch.setattr(app.batcher.queue.ledger, "submit_many", broken)
    flask_queue = flask.application.extensions["ecr_cache_bot.queue"]  # type: ignore[attr-defined]
    monkeypatch.setattr(flask_queue.ledger, "submit_many", broken)
    reply = _post_asgi(app, "push", "z", PUSH)
    assert reply == _post_flask(flask, "push", "z", PUSH) and reply[0] == 503
    assert _post_asgi(app, "push", "z2", PUSH)[0] == 503  # the batcher recovers for the next batch


def test_jobs_queued_by_the_asgi_path_run_like_submitted_ones(tmp_path: Path) -> None:
    ran: list[Job] = []
    app, _ = _asgi(tmp_path, runner=ran.append)
    queue = app.queue
    assert isinstance(queue, HueyQueue)
    assert _post_asgi(app, "issue_comment", "run-1", COMMENT)[0] == 202
    queue.submit("run-2", [Job("sync", 1, "o/app", "run-2", {"trigger": "push"})])
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
    assert [(j.kind, j.delivery_id, j.repo, j.installation_id) for j in ran] == [
        ("command", "run-1", "o/app", 1),
        ("sync", "run-2", "o/app", 1),
    ]


def test_lifespan_completes_and_shuts_the_pool_down(tmp_path: Path) -> None:
    app, _ = _asgi(tmp_path)
    sent: list[str] = []
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(RuntimeError):
        app.pool.submit(print)
