"""`ecr-cache-bot serve` (gunicorn + embedded worker, one command) and `dead-letter list|redrive`, end to end."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_fixtures import ROOT, SECRET, comment_payload, free_port, post_webhook, wait_until

pytestmark = pytest.mark.slow


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def _dead(env: dict[str, str]) -> list[dict[str, object]]:
    result = _cli(env, "dead-letter", "list", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("web_server", ["asgi", "gthread"])
def test_serve_then_dead_letter_list_and_redrive(web_server: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "DRY_RUN")
    }
    env.update(WEBHOOK_SECRET=SECRET, DATA_DIR=str(tmp_path / "data"), PORT=str(port), PYTHONPATH=str(ROOT))
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--web-workers",
            "1",
            "--web-threads",
            "4",
            "--threads",
            "2",
            "--web-server",
            web_server,
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            try:
                return _get(port, "/healthz")[0] == 200
            except OSError:
                return False

        assert wait_until(healthy, 30), (tmp_path / "serve.log").read_text()[-3000:]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        payload = comment_payload("o/app", issue=5, comment_id=9)
        assert post_webhook(conn, "/api/github/webhooks", "issue_comment", "serve-1", payload) == 202
        assert post_webhook(conn, "/api/github/webhooks", "issue_comment", "serve-1", payload) == 202
        # No App credentials in this environment: the embedded worker runs the job, which fails for good.
        assert wait_until(lambda: len(_dead(env)) == 1, 30), (tmp_path / "serve.log").read_text()[-3000:]
        [letter] = _dead(env)
        assert letter["delivery_id"] == "serve-1" and letter["outcome"] == "failed"
        assert "APP_ID" in str(letter["error"])
        status, text = _get(port, "/metrics")
        assert status == 200
        assert 'ecr_cache_bot_deliveries_total{outcome="accepted"} 1' in text
        assert 'ecr_cache_bot_deliveries_total{outcome="duplicate"} 1' in text
        assert 'ecr_cache_bot_jobs_total{outcome="failed"} 1' in text
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(40) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-g", str(serve.pid)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == ""  # gunicorn and the worker stopped with it
    logs = (tmp_path / "serve.log").read_text()
    assert SECRET not in logs and '"outcome": "failed"' in logs

    listing = _cli(env, "dead-letter", "list")
    assert "1 dead job(s)" in listing.stdout and "o/app" in listing.stdout
    assert _cli(env, "dead-letter", "redrive").returncode == 2  # needs ids or --all
    wrong = _cli(env, "dead-letter", "redrive", "no-such-job")
    assert wrong.returncode == 1 and "no-such-job" in wrong.stderr
    redriven = _cli(env, "dead-letter", "redrive", "--all")
    assert redriven.returncode == 0 and "re-queued 1 job(s)" in redriven.stdout
    assert _dead(env) == []


def test_worker_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), APP_ID="1")
    result = _cli(env, "worker")
    assert result.returncode == 2 and "WEBHOOK_SECRET" in result.stderr
