"""Crash test: real gunicorn + worker processes, 500 signed deliveries, SIGKILL of the worker and of the web
server mid-burst, restarts; every delivery answered 202 takes effect exactly once at the fake GitHub."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import (
    ROOT,
    SECRET,
    SUBPROCESS_OPTIONS,
    FakeGitHub,
    backend_env,
    backend_settings,
    comment_payload,
    free_port,
    namespace_for,
    options_for,
    post_webhook,
    push_payload,
    wait_until,
)

from bot.queue.durable import build_queue

pytestmark = pytest.mark.slow

N = 500
REPOS = 40
WEBHOOK_PATH = "/api/github/webhooks"


class Proc:
    """A restartable child process in its own session (SIGKILL takes its whole process group)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
            )

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _deliveries() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for i in range(N):
        repo = f"org/r{i % REPOS}"
        if i % 5 < 3:
            out.append((f"push-{i}", "push", push_payload(repo)))
        else:
            out.append((f"cmd-{i}", "issue_comment", comment_payload(repo, issue=1000 + i, comment_id=i)))
    return out


# Both web deployments: `bot.web.wsgi` on gthread `serve` deploys and `bot.web.asgi` on uvicorn (the default).
WEB = {
    "gthread": ["runtime_fixtures:web_app()", "--worker-class", "bot.web.gthread_worker.Worker", "--threads", "8"],
    "asgi": ["runtime_fixtures:asgi_app()", "--worker-class", "bot.web.asgi.Worker"],
}


@pytest.mark.parametrize("web_server", list(WEB))
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkill_of_worker_and_web_mid_burst_loses_and_duplicates_nothing(
    backend: str, web_server: str, tmp_path: Path
) -> None:
    settings = backend_settings(backend, tmp_path)
    deliveries = _deliveries()
    statuses: dict[str, int] = {}
    with FakeGitHub(latency=0.002) as github:
        env = backend_env(settings, FAKE_GITHUB_URL=github.url, ECR_TEST_NAMESPACE=namespace_for(tmp_path))
        port = free_port()
        web = Proc(
            [
                sys.executable,
                "-m",
                "gunicorn",
                *WEB[web_server],
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            env,
            tmp_path / "web.log",
        )
        worker = Proc(
            [sys.executable, str(ROOT / "tests" / "runtime_fixtures.py"), "worker"], env, tmp_path / "worker.log"
        )
        try:
            web.start()
            worker.start()
            assert wait_until(lambda: _healthy(port), 20), (tmp_path / "web.log").read_text()[-3000:]

            lock = threading.Lock()
            cursor = iter(range(N))
            posted = [0]

            def client() -> None:
                conn: http.client.HTTPConnection | None = None
                while True:
                    with lock:
                        index = next(cursor, None)
                    if index is None:
                        break
                    delivery, event, payload = deliveries[index]
                    try:
                        conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                        statuses[delivery] = post_webhook(conn, WEBHOOK_PATH, event, delivery, payload)
                    except (OSError, http.client.HTTPException):
                        statuses[delivery] = 0  # no answer: GitHub would show a failed delivery
                        conn = None
                        time.sleep(0.05)
                    with lock:
                        posted[0] += 1
                    time.sleep(0.02)  # a burst of a few seconds, so the kills land in the middle of it

            def killer() -> None:
                wait_until(lambda: posted[0] >= N // 4, 30, 0.005)
                worker.kill()  # mid-job: some jobs claimed, some messages popped
                worker.start()
                wait_until(lambda: posted[0] >= N // 2, 30, 0.005)
                web.kill()  # mid-request: some submits committed but never answered
                web.start()

            threads = [threading.Thread(target=client) for _ in range(8)] + [threading.Thread(target=killer)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert wait_until(lambda: _healthy(port), 20)

            refused = [d for d, s in statuses.items() if s != 202]
            assert refused, "the web kill should have cost at least one answer"
            assert set(statuses.values()) <= {0, 202}
            # GitHub's "redeliver" for what got no 202; a repeat of accepted ones must be a no-op duplicate.
            by_id = {d: (e, p) for d, e, p in deliveries}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for delivery in refused + [d for d, _, _ in deliveries[:50]]:
                event, payload = by_id[delivery]
                assert post_webhook(conn, WEBHOOK_PATH, event, delivery, payload) == 202

            pushed = {p["repository"]["full_name"] for d, e, p in deliveries if e == "push"}
            commands = {
                (p["repository"]["full_name"], p["issue"]["number"], d)
                for d, e, p in deliveries
                if e == "issue_comment"
            }

            def complete() -> bool:
                state = github.state()
                replies = sum(len(v) for v in state["comments"].values())
                return set(state["pulls"]) >= pushed and replies >= len(commands)

            assert wait_until(complete, 40, 0.2), json.dumps(github.state())[:2000]
            time.sleep(SUBPROCESS_OPTIONS.lease + 1)  # let any re-run of a killed job finish: it must change nothing
            state = github.state()
        finally:
            worker.kill()
            web.kill()

    assert state["pr_creates"] == {repo: 1 for repo in pushed}  # one PR per repository
    for repo, issue, delivery in commands:
        assert state["comment_creates"].get(f"{repo}#{issue}") == 1, (repo, issue, delivery)
        [body] = state["comments"][f"{repo}#{issue}"]
        assert delivery in body
    queue = build_queue(settings, None, options_for(tmp_path))
    assert queue.dead_letters() == []
    assert queue.ledger.active_count() == 0
    logs = (tmp_path / "web.log").read_text() + (tmp_path / "worker.log").read_text()
    assert SECRET not in logs
    assert '"outcome": "succeeded"' in logs
