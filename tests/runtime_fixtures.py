"""Runtime test helpers: a fake GitHub over real HTTP (with fault injection), a runner that talks to it,
backends (SQLite in a temp dir, a real Redis), signed webhook payloads, and subprocess entry points.

Run as a script for the crash test's worker: `python tests/runtime_fixtures.py worker`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # when run as a script by the crash test
    sys.path.insert(0, str(ROOT))

from bot.app.payloads import Job  # noqa: E402
from bot.queue.durable import HueyQueue, QueueOptions, build_queue  # noqa: E402
from bot.queue.retry import RetryPolicy  # noqa: E402
from bot.settings import Settings  # noqa: E402

SECRET = "whsec-test-9f2c1d7e5b3a"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

# Short timings so crash and fault tests finish in seconds (huey's scheduler still ticks once a second).
TEST_OPTIONS = QueueOptions(
    lease=3.0,
    stale_after=3.0,
    lock_retry=0.2,
    retry=RetryPolicy(max_attempts=6, base=0.05, cap=0.3, secondary_min=0.2),
)


# --- backends -------------------------------------------------------------------------------------------


def redis_url() -> str:
    """REDIS_URL from the environment, or the local test database."""
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def require_redis() -> str:
    """The Redis URL when a server answers; skip locally without one, fail under CI (CI must run them)."""
    import redis

    url = redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but no Redis answers at {url} ({exc}); .ci/redis.sh should start one")
        pytest.skip(f"no Redis server answers at {url} ({exc}); run .ci/redis.sh or set REDIS_URL")
    return url


def namespace_for(tmp_path: Path) -> str:
    """A namespace unique to one test of one pytest run (runs may share a Redis on a shared machine)."""
    return hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12]


def options_for(tmp_path: Path, **changes: Any) -> QueueOptions:
    """TEST_OPTIONS in this test's namespace."""
    return dataclasses.replace(TEST_OPTIONS, namespace=namespace_for(tmp_path), **changes)


def prefix_for(tmp_path: Path) -> str:
    """Redis key prefix of this test's namespace (for building Redis primitives directly)."""
    return f"ecr:{namespace_for(tmp_path)}:"


def flush_redis(url: str, namespace: str) -> None:
    """Delete one namespace's keys (ours and huey's) from the test database."""
    import redis

    client = redis.Redis.from_url(url)
    for pattern in (f"ecr:{namespace}:*", f"huey.*ecrcachebot{namespace}*"):
        keys = list(client.scan_iter(pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def backend_settings(backend: str, tmp_path: Path) -> Settings:
    """Settings for `sqlite` (a fresh DATA_DIR) or `redis` (a flushed test database)."""
    if backend == "redis":
        url = require_redis()
        flush_redis(url, namespace_for(tmp_path))
        return Settings(webhook_secret=SECRET, data_dir=str(tmp_path / "data"), redis_url=url)
    return Settings(webhook_secret=SECRET, data_dir=str(tmp_path / "data"))


def backend_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess using these settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATA_DIR")}
    env.update(
        WEBHOOK_SECRET=settings.webhook_secret,
        DATA_DIR=settings.data_dir,
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT) + os.pathsep + str(ROOT / "tests"),
        **extra,
    )
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return env


@contextlib.contextmanager
def running_consumer(queue: HueyQueue, workers: int = 4) -> Iterator[Any]:
    """A real huey consumer in this process (its start() installs signal handlers: restore them after)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer = queue.consumer(workers=workers)
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- fake GitHub ----------------------------------------------------------------------------------------


@dataclass
class Fault:
    """Answer `times` matching requests with a failure instead of the real handler."""

    method: str
    path: str  # regex on the path
    times: int
    status: int = 0  # 0 with reset=True: drop the connection
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0  # sleep first; with status 0 and reset False, then serve normally (slow response)
    reset: bool = False


class FakeGitHub:
    """Just enough of GitHub's REST API for a PR-per-repo job, over real HTTP on 127.0.0.1."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.missing: set[str] = set()
        self.pulls: dict[str, list[dict[str, Any]]] = {}
        self.comments: dict[str, list[str]] = {}
        self.pr_creates: Counter[str] = Counter()
        self.comment_creates: Counter[str] = Counter()
        self.log: list[tuple[str, str, int]] = []
        self.faults: list[Fault] = []
        self.remaining = 5000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A client that timed out leaves a broken pipe behind: expected here, not worth a traceback.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_fault(self, fault: Fault) -> None:
        """Inject a failure for the next `fault.times` matching requests."""
        with self.lock:
            self.faults.append(fault)

    def count(self, method: str, pattern: str) -> int:
        """How many requests matched."""
        with self.lock:
            return sum(1 for m, p, _ in self.log if m == method and re.fullmatch(pattern, p))

    def state(self) -> dict[str, Any]:
        """Effects so far (what GitHub would hold)."""
        with self.lock:
            return {
                "pulls": {k: len(v) for k, v in self.pulls.items()},
                "pr_creates": dict(self.pr_creates),
                "comments": {k: list(v) for k, v in self.comments.items()},
                "comment_creates": dict(self.comment_creates),
                "requests": len(self.log),
            }

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                with fake.lock:
                    fake.remaining = max(0, fake.remaining - 1)
                    remaining = fake.remaining
                merged = {
                    "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(int(time.time()) + 3600),
                    **(headers or {}),
                }
                for key, value in merged.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null") if length else None
                if path == "/_state":
                    self._send(200, fake.state())
                    return
                fault = fake._take_fault(method, path)
                if fake.latency:
                    time.sleep(fake.latency)
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.reset:
                        with fake.lock:
                            fake.log.append((method, path, 0))
                        # RST instead of FIN: the client sees "connection reset by peer".
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.close_connection = True
                        return
                    if fault.status:
                        with fake.lock:
                            fake.log.append((method, path, fault.status))
                        self._send(fault.status, fault.body or {"message": "fault"}, fault.headers)
                        return
                status, body = fake._route(method, path, parse_qs(parts.query), payload)
                with fake.lock:
                    fake.log.append((method, path, status))
                self._send(status, body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        return Handler

    def _route(self, method: str, path: str, query: dict[str, list[str]], payload: Any) -> tuple[int, Any]:
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not match:
            return 404, {"message": "Not Found"}
        repo, rest = match.group(1), match.group(2) or ""
        with self.lock:
            if repo in self.missing:
                return 404, {"message": "Not Found"}
            if rest == "" and method == "GET":
                return 200, {"full_name": repo, "default_branch": "main"}
            if rest == "/pulls" and method == "GET":
                return 200, self.pulls.get(repo, [])
            if rest == "/pulls" and method == "POST":
                if self.pulls.get(repo):
                    return 422, {
                        "message": "Validation Failed",
                        "errors": [{"message": f"A pull request already exists for {repo}."}],
                    }
                number = len(self.pulls.get(repo, [])) + 1
                self.pulls.setdefault(repo, []).append({"number": number, "head": "ecr-cache/setup"})
                self.pr_creates[repo] += 1
                return 201, {"number": number}
            issue = re.fullmatch(r"/issues/(\d+)/comments", rest)
            if issue:
                key = f"{repo}#{issue.group(1)}"
                if method == "GET":
                    return 200, [{"body": b} for b in self.comments.get(key, [])]
                body = str((payload or {}).get("body", ""))
                self.comments.setdefault(key, []).append(body)
                self.comment_creates[key] += 1
                return 201, {"id": len(self.comments[key])}
        return 404, {"message": "Not Found"}


# --- a runner that talks to the fake over HTTP ---------------------------------------------------------


def github_runner(base_url: str, timeout: float = 2.0) -> Callable[[Job], dict[str, Any]]:
    """Read → write idempotently: one PR per repo (sync/install), one marked comment per command delivery."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = "token ghs_FAKEINSTALLATIONTOKEN0123456789abcd"
        return local.session

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        response = session().request(method, base_url + path, timeout=timeout, **kwargs)
        response.raise_for_status()
        return response

    def run(job: Job) -> dict[str, Any]:
        response = call("GET", f"/repos/{job.repo}")
        if job.kind == "command":
            issue = job.data.get("issue_number", 1)
            marker = f"<!-- ecr-cache-bot reply to {job.delivery_id} -->"
            existing = call("GET", f"/repos/{job.repo}/issues/{issue}/comments").json()
            if any(marker in c["body"] for c in existing):
                return {"outcome": "already replied"}
            response = call("POST", f"/repos/{job.repo}/issues/{issue}/comments", json={"body": f"{marker}\nDone."})
            return {"outcome": "replied", "rate_limit_remaining": int(response.headers["X-RateLimit-Remaining"])}
        if call("GET", f"/repos/{job.repo}/pulls", params={"head": "ecr-cache/setup"}).json():
            return {"outcome": "current", "rate_limit_remaining": int(response.headers["X-RateLimit-Remaining"])}
        response = call("POST", f"/repos/{job.repo}/pulls", json={"head": "ecr-cache/setup", "base": "main"})
        return {"outcome": "opened", "rate_limit_remaining": int(response.headers["X-RateLimit-Remaining"])}

    return run


# --- webhook payloads -----------------------------------------------------------------------------------


def sign(body: bytes, secret: str = SECRET) -> str:
    """X-Hub-Signature-256 of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _repository(full_name: str) -> dict[str, Any]:
    owner = full_name.split("/")[0]
    return {
        "id": abs(hash(full_name)) % 10**9,
        "name": full_name.split("/")[1],
        "full_name": full_name,
        "private": True,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "default_branch": "main",
        "html_url": f"https://github.com/{full_name}",
    }


def push_payload(full_name: str, installation: int = 1, pad_to: int = 0) -> dict[str, Any]:
    """A push to the default branch touching a Dockerfile (routed to a `sync` job)."""
    commits = [
        {
            "id": f"{i:040x}",
            "message": "Update Dockerfile",
            "added": [],
            "removed": [],
            "modified": ["Dockerfile"],
            "author": {"name": "dev", "email": "dev@example.com"},
        }
        for i in range(1, 3)
    ]
    payload: dict[str, Any] = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": "a" * 40,
        "forced": False,
        "deleted": False,
        "repository": _repository(full_name),
        "installation": {"id": installation},
        "sender": {"login": "dev", "type": "User"},
        "commits": commits,
        "head_commit": commits[-1],
    }
    return _pad(payload, pad_to)


def comment_payload(
    full_name: str, issue: int, comment_id: int, installation: int = 1, pad_to: int = 0
) -> dict[str, Any]:
    """An `/ecr-cache` comment (routed to a `command` job)."""
    payload: dict[str, Any] = {
        "action": "created",
        "repository": _repository(full_name),
        "installation": {"id": installation},
        "issue": {"number": issue, "title": "Slow builds"},
        "comment": {"id": comment_id, "body": "/ecr-cache", "user": {"login": "dev", "type": "User"}},
        "sender": {"login": "dev", "type": "User"},
    }
    return _pad(payload, pad_to)


def _pad(payload: dict[str, Any], size: int) -> dict[str, Any]:
    # Real deliveries are mostly repository/sender/commit metadata; pad with a comparable blob.
    if size:
        filler = size - len(json.dumps(payload))
        if filler > 0:
            payload["repository"]["description"] = "x" * filler
    return payload


def post_webhook(
    conn: http.client.HTTPConnection,
    path: str,
    event: str,
    delivery: str,
    payload: dict[str, Any] | bytes,
    secret: str = SECRET,
) -> int:
    """POST one signed delivery on `conn`; return the status."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    conn.request(
        "POST",
        path,
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(body, secret),
        },
    )
    response = conn.getresponse()
    response.read()
    return response.status


# --- subprocess entry points ----------------------------------------------------------------------------


def web_app() -> Any:
    """gunicorn factory (`runtime_fixtures:web_app()`): the deployed app (as `bot.web.wsgi`) with test timings."""
    from bot.logs import configure_logging
    from bot.web.flask_app import create_app
    from bot.web.wsgi import FlaskWsgi

    settings = Settings.from_env()
    configure_logging("INFO", secrets=(settings.webhook_secret,))
    return FlaskWsgi(create_app(settings, queue=build_queue(settings, None, _subprocess_options())), settings)


def asgi_app() -> Any:
    """gunicorn factory (`runtime_fixtures:asgi_app()`, worker class `bot.web.asgi.Worker`): `bot.web.asgi` with test
    timings."""
    from bot.logs import configure_logging
    from bot.web.asgi import FastAsgiWebhook
    from bot.web.flask_app import create_app

    settings = Settings.from_env()
    configure_logging("INFO", secrets=(settings.webhook_secret,))
    return FastAsgiWebhook(create_app(settings, queue=build_queue(settings, None, _subprocess_options())), settings)


# The subprocess deployments run on a loaded machine (gunicorn, a worker and a burst of 500 deliveries on two
# cores): a 3 s lease can lapse while its job is still running there, and a lapsed lease re-runs the job by
# design (a slow worker looks like a dead one). 8 s keeps the kill tests about kills.
SUBPROCESS_OPTIONS = dataclasses.replace(TEST_OPTIONS, lease=8.0, stale_after=8.0)


def _subprocess_options() -> QueueOptions:
    return dataclasses.replace(SUBPROCESS_OPTIONS, namespace=os.environ.get("ECR_TEST_NAMESPACE", ""))


def _worker_main() -> int:
    from bot.cli.processes import run_worker
    from bot.logs import configure_logging

    settings = Settings.from_env()
    configure_logging("INFO", secrets=(settings.webhook_secret,))
    # A client timeout on a POST the fake GitHub still completes would re-run a non-idempotent write: under a
    # loaded machine 2 s is too short for that, and the crash test is about kills, not slow answers.
    runner = github_runner(os.environ["FAKE_GITHUB_URL"], timeout=15.0)
    return run_worker(settings, runner=runner, threads=4, options=_subprocess_options(), reap_interval=0.5)


if __name__ == "__main__":
    if sys.argv[1:] == ["worker"]:
        sys.exit(_worker_main())
    sys.exit(f"usage: {sys.argv[0]} worker")


PUSH_BODY = json.dumps(push_payload("o/app")).encode()
COMMENT_BODY = json.dumps(comment_payload("o/app", 4, 44)).encode()
# Every intake path (Flask, the lean WSGI path, the ASGI path) must answer each of these alike:
# (event, delivery id, body, keyword arguments of the test's post helper), with ids.
INTAKE_CASES = [
    pytest.param("push", "d1", PUSH_BODY, {}, id="push"),
    pytest.param("issue_comment", "d2", COMMENT_BODY, {}, id="comment"),
    pytest.param("push", "d3", PUSH_BODY, {"signature": "sha256=" + "0" * 64}, id="bad-signature"),
    pytest.param("push", "d4", PUSH_BODY, {"signature": ""}, id="no-signature"),
    pytest.param("push", "", PUSH_BODY, {}, id="no-delivery"),
    pytest.param("", "d5", PUSH_BODY, {}, id="no-event"),
    pytest.param("push", "d6", b"{not json", {}, id="bad-json"),
    pytest.param("push", "d7", b"[1, 2]", {}, id="not-an-object"),
    pytest.param("ping", "d8", b'{"zen": "Keep it logically awesome."}', {}, id="ping"),
    pytest.param(
        "push", "d9", json.dumps({**push_payload("o/app"), "ref": "refs/heads/feature"}).encode(), {}, id="other-branch"
    ),
    pytest.param(
        "push",
        "d10",
        urlencode({"payload": PUSH_BODY.decode()}).encode(),
        {"content_type": "application/x-www-form-urlencoded"},
        id="form-encoded",
    ),
    pytest.param("push", "d11", b"x" * 20_001, {}, id="too-large"),
]
