"""Issue 14, "one client must not stall everyone": stalled bodies, huge heads, chunked bodies, bounded logs and
counters, and the small exposures, against real gunicorn servers on 127.0.0.1 (both deployments)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import ROOT, SECRET, backend_settings, free_port, namespace_for, push_payload, sign, wait_until
from werkzeug.test import Client

from bot.cli.processes import gunicorn_argv
from bot.logs import configure_logging
from bot.queue import counters as metrics
from bot.queue.durable import build_queue
from bot.settings import Settings
from bot.web import asgi, gthread_worker
from bot.web.asgi import BoundedHttpToolsProtocol, FastAsgiWebhook, Worker
from bot.web.flask_app import create_app
from bot.web.gthread_worker import Worker as GthreadWorker

PATH = "/api/github/webhooks"
CAP = Settings(webhook_secret=SECRET).max_body_bytes  # the servers run with the default cap (25 MiB)
WEB = {
    "asgi": ["runtime_fixtures:asgi_app()", "--worker-class", "bot.web.asgi.Worker"],
    "gthread": ["runtime_fixtures:web_app()", "--worker-class", "bot.web.gthread_worker.Worker", "--threads", "32"],
}


@contextlib.contextmanager
def server(kind: str, tmp_path: Path) -> Iterator[int]:
    """One gunicorn worker of `kind` on a free port, killed (its whole session) afterwards."""
    settings = backend_settings("sqlite", tmp_path)
    env = {
        **os.environ,
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": settings.data_dir,
        "LOG_LEVEL": "INFO",
        "ECR_TEST_NAMESPACE": namespace_for(tmp_path),
        "PYTHONPATH": str(ROOT) + os.pathsep + str(ROOT / "tests") + os.pathsep + str(ROOT / "tests" / "web"),
    }
    env.pop("REDIS_URL", None)
    port = free_port()
    log = tmp_path / f"{kind}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                *WEB[kind],
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: _status(port, "GET", "/healthz", timeout=1) == 200, 20), log.read_text()[-2000:]
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _status(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 1.0
) -> int:
    """The status of one request on a fresh connection; 0 when no answer came within `timeout`."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return 0


def _signed(delivery: str, body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    body = body if body is not None else json.dumps(push_payload("o/app")).encode()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body),
    }


def _answered_fast(port: int, delivery: str) -> list[tuple[str, int, float]]:
    """(what, status, seconds) of /healthz, an unsigned delivery (401) and a signed one (202), one after another."""
    out = []
    body, headers = _signed(delivery)
    for what, method, path, data, hdrs in (
        ("healthz", "GET", "/healthz", b"", {}),
        ("unsigned", "POST", PATH, b"{}", {"Content-Type": "text/plain", "X-GitHub-Event": "ping"}),
        ("signed", "POST", PATH, body, headers),
    ):
        start = time.monotonic()
        status = _status(port, method, path, data, hdrs, timeout=2.0)
        out.append((what, status, round(time.monotonic() - start, 3)))
    return out


def _stall(port: int, path: str = PATH, content_type: str = "text/plain") -> socket.socket:
    """A client that sends the head and one byte of a 1000-byte body, then goes quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        "X-GitHub-Event: push\r\nContent-Length: 1000\r\n\r\nx".encode()
    )
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing `sock` (b"" if it did not close within `seconds`)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        return data if data else b""
    return data


@pytest.mark.parametrize(("kind", "stalled"), [("asgi", 32), ("gthread", 32), ("gthread", 40)])
def test_stalled_bodies_neither_hold_the_server_nor_stay(kind: str, stalled: int, tmp_path: Path) -> None:
    with server(kind, tmp_path) as port:
        socks = [_stall(port, path) for path in [PATH] * stalled + ["/healthz", "/"]]
        time.sleep(0.3)
        try:
            # The event loop (asgi) or the worker's poller loop (gthread) reads every body: nothing waits for
            # the stalled ones at all.
            replies = _answered_fast(port, "stall-1")
            assert [(w, s) for w, s, _ in replies] == [("healthz", 200), ("unsigned", 401), ("signed", 202)]
            assert all(seconds < 1.0 for _, _, seconds in replies), replies
            # A stalled body is cut at its read deadline (2 s grace, then a minimum rate) with a 408.
            start = time.monotonic()
            answers = [_closed_within(sock, 6) for sock in socks]
            assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
            assert time.monotonic() - start < 6
            replies = _answered_fast(port, "stall-2")
            assert [(w, s) for w, s, _ in replies] == [("healthz", 200), ("unsigned", 401), ("signed", 202)]
            assert all(seconds < 1.0 for _, _, seconds in replies), replies
        finally:
            for sock in socks:
                sock.close()


def _huge_head(port: int, line: bool) -> tuple[bytes, int]:
    """Send up to 50 MB of request line (`line`) or of one header; return the answer and the bytes sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sent = 0
    answer = b""
    try:
        sock.sendall(b"GET /" if line else b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        piece = b"a" * 65536
        sock.settimeout(0.0)
        while sent < 50_000_000:
            try:
                sent += sock.send(piece)
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:
                break
            with contextlib.suppress(BlockingIOError, OSError):
                answer += sock.recv(65536)
            if answer:
                break
        sock.settimeout(3)
        with contextlib.suppress(OSError):
            answer += sock.recv(65536)
    finally:
        sock.close()
    return answer, sent


@pytest.mark.parametrize("kind", ["asgi", "gthread"])
def test_huge_request_lines_and_headers_are_refused_before_they_are_buffered(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path) as port:
        answer, sent = _huge_head(port, line=True)
        assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
        assert sent < 5_000_000
        answer, sent = _huge_head(port, line=False)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert sent < 5_000_000
        replies = _answered_fast(port, "head-1")
        assert [(w, s) for w, s, _ in replies] == [("healthz", 200), ("unsigned", 401), ("signed", 202)]
        assert all(seconds < 1.0 for _, _, seconds in replies), replies


@pytest.mark.parametrize("kind", ["asgi", "gthread"])
def test_a_huge_head_in_flight_stalls_nobody(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path) as port:
        answers: list[tuple[bytes, int]] = []
        sender = threading.Thread(target=lambda: answers.append(_huge_head(port, line=False)))
        sender.start()
        try:
            replies = _answered_fast(port, "head-2")
            assert [(w, s) for w, s, _ in replies] == [("healthz", 200), ("unsigned", 401), ("signed", 202)]
            assert all(seconds < 1.0 for _, _, seconds in replies), replies
        finally:
            sender.join(30)
        assert answers and answers[0][0].startswith(b"HTTP/1.1 431")


class QuickHeads(BoundedHttpToolsProtocol):
    """The deployed protocol with a 1 s head deadline (10 s deployed), so the test stays short."""

    head_deadline = 1.0


class QuickHeadsWorker(Worker):
    """`bot.web.asgi.Worker` serving `QuickHeads`."""

    CONFIG_KWARGS = {**Worker.CONFIG_KWARGS, "http": QuickHeads}


class QuickHeadsThreadWorker(GthreadWorker):
    """`bot.web.gthread_worker.Worker` with a 1 s head deadline (10 s deployed)."""

    def run(self) -> None:
        """Patch the deadline in this worker process only."""
        gthread_worker.HEAD_DEADLINE = 1.0
        super().run()


QUICK_HEADS = {
    "asgi": ["runtime_fixtures:asgi_app()", "--worker-class", "test_intake_hardening.QuickHeadsWorker"],
    "gthread": [
        "runtime_fixtures:web_app()",
        "--worker-class",
        "test_intake_hardening.QuickHeadsThreadWorker",
        "--threads",
        "32",
    ],
}


@pytest.mark.parametrize("kind", ["asgi", "gthread"])
def test_stalled_heads_are_cut_at_their_deadline_and_stall_nobody(kind: str, tmp_path: Path) -> None:
    WEB["quick-heads"] = QUICK_HEADS[kind]
    with server("quick-heads", tmp_path) as port:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
        try:
            for sock in socks:
                sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n")
            replies = _answered_fast(port, "heads-1")
            assert [(w, s) for w, s, _ in replies] == [("healthz", 200), ("unsigned", 401), ("signed", 202)]
            assert all(seconds < 1.0 for _, _, seconds in replies), replies
            answers = [_closed_within(sock, 4) for sock in socks]
            assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
            for sock in silent:  # a connection that never sent a byte is closed, not kept
                sock.settimeout(4)
                assert sock.recv(1) == b""
        finally:
            for sock in socks + silent:
                sock.close()


def _responses(sock: socket.socket, count: int) -> list[int]:
    """The statuses of `count` responses read off one connection (each with a Content-Length)."""
    sock.settimeout(5)
    data, statuses = b"", []
    while len(statuses) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            data += sock.recv(65536)
            continue
        head = data[:head_end].decode()
        length = next(
            int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length")
        )
        if len(data) < head_end + 4 + length:
            data += sock.recv(65536)
            continue
        statuses.append(int(head.split()[1]))
        data = data[head_end + 4 + length :]
    return statuses


def test_gthread_keeps_connections_alive_pipelined_and_expecting_100_continue(tmp_path: Path) -> None:
    with server("gthread", tmp_path) as port:
        body, headers = _signed("keep-1")
        signed = (
            f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode() + body
        health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(health)  # one request, then the next on the same connection
            assert _responses(sock, 1) == [200]
            sock.sendall(health + signed.replace(b"keep-1", b"keep-2") + health)  # three at once, pipelined
            assert _responses(sock, 3) == [200, 202, 200]
            head, payload = signed.replace(b"keep-1", b"keep-3").split(b"\r\n\r\n", 1)
            sock.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
            assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # sent once, before the body
            sock.sendall(payload)
            assert _responses(sock, 1) == [202]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),  # smuggling shape
        (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
        (b"Content-Length: x\r\n\r\n", b"400"),
        (b"Content-Length: %d\r\n\r\n{" % (CAP + 1), b"413"),  # answered from the declared length, at once
    ],
)
def test_gthread_answers_bad_framing_itself(request_bytes: bytes, status: bytes, tmp_path: Path) -> None:
    with server("gthread", tmp_path) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n" + request_bytes)
        assert sock.recv(65536).startswith(b"HTTP/1.1 " + status)


def test_the_gthread_reader_finds_the_end_of_a_chunked_body_however_it_arrives() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
    after = b"GET /healthz HTTP/1.1\r\n\r\n"
    assert gthread_worker._framing(head) == (0, True, False)
    for split in range(len(body)):  # the body in two reads, cut at every byte
        conn = types.SimpleNamespace(buf=bytearray(head), head_end=len(head), pos=len(head), chunk_left=-1, end=-1)
        conn.buf += body[:split]
        gthread_worker._chunks(conn)  # type: ignore[arg-type]
        assert conn.end == -1, split
        conn.buf += body[split:] + after
        gthread_worker._chunks(conn)  # type: ignore[arg-type]
        assert bytes(conn.buf[conn.end :]) == after, split
    with pytest.raises(gthread_worker.BadFraming):
        gthread_worker._framing(head.replace(b"gzip, chunked", b"chunked, gzip"))


def test_serve_runs_gthread_with_the_worker_that_reads_whole_requests() -> None:
    argv = gunicorn_argv("127.0.0.1", 3000, 1, 8, "gthread")
    assert argv[argv.index("--worker-class") + 1] == "bot.web.gthread_worker.Worker"
    assert WEB["gthread"][WEB["gthread"].index("--worker-class") + 1] == "bot.web.gthread_worker.Worker"


def _chunked(port: int, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
    conn.request("POST", PATH, body=pieces, headers=headers, encode_chunked=True)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


@pytest.mark.parametrize("kind", ["asgi", "gthread"])
def test_chunked_deliveries_are_answered_alike_by_both_deployments(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path) as port:
        body, headers = _signed("chunked-1")
        assert _chunked(port, body, headers) == 202
        big, big_headers = _signed("chunked-2", json.dumps(push_payload("o/app", pad_to=CAP + 10)).encode())
        assert _chunked(port, big, big_headers) == 413
        assert _chunked(port, body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}) == 401


@pytest.mark.parametrize("kind", ["asgi", "gthread"])
def test_every_response_says_nosniff_and_no_server_banner(kind: str, tmp_path: Path) -> None:
    with server(kind, tmp_path) as port:
        body, headers = _signed("hdr-1")
        for method, path, data, hdrs in (
            ("GET", "/healthz", b"", {}),
            ("GET", "/", b"", {}),
            ("GET", "/metrics", b"", {}),
            ("GET", "/nowhere", b"", {}),
            ("POST", PATH, b"{}", {"Content-Type": "application/json"}),
            ("POST", PATH, body, headers),
        ):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path, body=data or None, headers=hdrs)
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.getheader("X-Content-Type-Options") == "nosniff", (method, path)
            assert response.getheader("Server") in (None, "gunicorn"), (method, path, response.getheader("Server"))
            assert "uvicorn" not in str(response.getheader("Server"))


# --- in-process: what the ASGI path hands to Flask, logs and counters --------------------------------------


def _flask(tmp_path: Path) -> Client:
    settings = Settings(webhook_secret=SECRET, data_dir=str(tmp_path / "data"), max_body_bytes=CAP)
    return Client(create_app(settings, queue=build_queue(settings, None)))


def test_unauthenticated_log_lines_are_bounded_and_validated(tmp_path: Path) -> None:
    client = _flask(tmp_path)
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    try:
        for i in range(3):
            client.post(
                PATH,
                data=b"{}",
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "p" * 40_000 + str(i),
                    "X-GitHub-Delivery": "\x1b[31m<script>" * 3_000,
                },
            )
        client.post(
            PATH,
            data=b"{}",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            },
        )
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 4
    assert all(len(json.dumps(line)) < 1000 for line in lines), [len(json.dumps(line)) for line in lines]
    assert "<script>" not in out.getvalue() and "\\u001b" not in out.getvalue()
    assert lines[-1]["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958" and lines[-1]["event_name"] == "push"


def test_unauthenticated_rejections_cost_no_store_write_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _flask(tmp_path)
    writes: list[str] = []
    original = metrics.SqliteCounters.incr

    def counting(self: metrics.SqliteCounters, name: str, amount: int = 1, **labels: str) -> None:
        writes.append(name)
        original(self, name, amount, **labels)

    monkeypatch.setattr(metrics.SqliteCounters, "incr", counting)
    for _ in range(50):
        assert client.post(PATH, data=b"{}", headers={"Content-Type": "application/json"}).status_code == 401
    assert len(writes) <= 1
    exposition = client.get("/metrics").get_data(as_text=True)
    assert 'ecr_cache_bot_deliveries_total{outcome="bad_signature"} 50' in exposition


def test_metrics_label_sets_are_bounded() -> None:
    snapshot = {
        (
            metrics.INSTALL_PREVIEW,
            metrics._labels({"installation": "7", "delivery": f"d{i}", "result": "would_open"}),
        ): 1
        for i in range(5000)
    }
    snapshot.update({(metrics.DELIVERIES, metrics._labels({"outcome": f"o{i}"})): 1 for i in range(5000)})
    text = metrics.render(snapshot)
    assert "delivery=" not in text
    assert f'{metrics.INSTALL_PREVIEW}{{installation="7",result="would_open"}} 5000' in text
    assert len(text.splitlines()) < 2 * (metrics.MAX_SERIES + 5)
    assert f'{metrics.DELIVERIES}{{overflow="true"}}' in text


def test_an_unsigned_body_is_checked_as_it_streams_and_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(webhook_secret=SECRET, data_dir=str(tmp_path / "data"))
    flask = create_app(settings, queue=build_queue(settings, None))
    seen: list[str] = []
    inner = flask.wsgi_app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ.get("CONTENT_LENGTH", ""))
        return inner(environ, start_response)

    flask.wsgi_app = recording  # type: ignore[method-assign]
    app = FastAsgiWebhook(flask, settings)
    decided: list[tuple[int, bool | None]] = []
    real = asgi.read_delivery

    def deciding(headers: Any, raw: bytes, secret: str | None, **kwargs: Any) -> Any:
        decided.append((len(raw), kwargs.get("signed")))
        return real(headers, raw, secret, **kwargs)

    monkeypatch.setattr(asgi, "read_delivery", deciding)
    body = b'{"pad": "' + b"x" * 2_000_000 + b'"}'
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    async def post(signature: str) -> int:
        messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
        status = [0]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        scope = {
            "type": "http",
            "method": "POST",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "scheme": "http",
            "http_version": "1.1",
            "server": ("127.0.0.1", 3000),
            "client": ("127.0.0.1", 5),
            "headers": [
                (b"content-type", b"application/json"),
                (b"transfer-encoding", b"chunked"),
                (b"x-github-event", b"ping"),
                (b"x-github-delivery", b"m-1"),
                (b"x-hub-signature-256", signature.encode()),
            ],
        }
        await app(scope, receive, send)
        return status[0]

    assert asyncio.run(post("sha256=" + "0" * 64)) == 401
    assert asyncio.run(post(sign(body))) == 200  # the same body signed is read whole (a ping: ignored)
    assert decided == [(0, False), (len(body), True)]  # nothing of the unsigned body was kept
    assert seen == []  # the webhook path is answered without Flask
