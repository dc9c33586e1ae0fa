"""`ecr-cache-bot worker` reports a heartbeat (worker id, pid, host, time) to the queue store while it runs, on
SQLite and Redis; a clean stop removes it, a killed worker's entry stays and ages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_fixtures import ROOT, backend_env, backend_settings, namespace_for, options_for, wait_until

from bot.queue import heartbeat
from bot.queue.durable import build_queue

pytestmark = pytest.mark.slow


def _start_worker(tmp_path: Path, backend: str) -> tuple[subprocess.Popen[bytes], heartbeat.Heartbeats]:
    settings = backend_settings(backend, tmp_path)
    store = build_queue(settings, None, options_for(tmp_path)).heartbeats
    assert store is not None
    env = backend_env(settings, QUEUE_NAMESPACE=namespace_for(tmp_path) if backend == "redis" else "")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "worker", "--threads", "1"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    log.close()
    return worker, store


def _mine(store: heartbeat.Heartbeats, pid: int) -> list[heartbeat.Beat]:
    return [b for b in store.all() if b.pid == pid]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_worker_beats_while_it_runs_and_leaves_when_stopped(backend: str, tmp_path: Path) -> None:
    worker, store = _start_worker(tmp_path, backend)
    try:
        assert wait_until(lambda: bool(_mine(store, worker.pid)), 30, 0.1), (tmp_path / "worker.log").read_text()
        [beat] = _mine(store, worker.pid)
        assert beat.host == socket.gethostname()
        assert beat.worker_id.startswith(f"{beat.host}:{worker.pid}:")
        assert abs(beat.seen - time.time()) < 30 and beat.started <= beat.seen
        assert heartbeat.live(store.all(), time.time()) != []
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(40) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert _mine(store, worker.pid) == []


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_killed_worker_keeps_its_last_heartbeat_which_ages(backend: str, tmp_path: Path) -> None:
    worker, store = _start_worker(tmp_path, backend)
    try:
        assert wait_until(lambda: bool(_mine(store, worker.pid)), 30, 0.1), (tmp_path / "worker.log").read_text()
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    [beat] = _mine(store, worker.pid)
    assert heartbeat.live([beat], beat.seen + heartbeat.LIVE_WITHIN) == [beat]
    assert heartbeat.live([beat], beat.seen + heartbeat.LIVE_WITHIN + 1) == []
