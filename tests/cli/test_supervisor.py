"""`serve` killed with SIGKILL (as the OOM killer does): gunicorn and the worker die with it, the port comes free."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from runtime_fixtures import ROOT, SECRET, free_port, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"),
]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(root: int) -> set[int]:
    """Every process below `root` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The ones still running (a zombie waiting for a reaper that never comes counts as gone)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] not in ("Z", "X")}


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _serve(port: int, tmp_path: Path, log: IO[bytes], web_server: str) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "DRY_RUN")
    }
    env.update(WEBHOOK_SECRET=SECRET, DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
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


@pytest.fixture
def cleanup() -> Iterator[set[int]]:
    """Pids this test started; whatever still lives at the end is killed (a failed test leaves nothing)."""
    pids: set[int] = set()
    yield pids
    for pid in alive(pids):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("web_server", ["asgi", "gthread"])
def test_children_die_with_a_killed_supervisor_and_a_restart_binds_the_port(
    web_server: str, tmp_path: Path, cleanup: set[int]
) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    first = _serve(port, tmp_path, log, web_server)
    cleanup.add(first.pid)
    assert wait_until(lambda: healthy(port), 30), (tmp_path / "serve.log").read_text()[-3000:]
    children = descendants(first.pid)
    cleanup.update(children)
    assert len(children) >= 3  # gunicorn master, its web worker, the job worker
    first.kill()  # SIGKILL: no handler runs, nothing is forwarded
    first.wait(5)
    started = time.monotonic()
    assert wait_until(lambda: not alive(children), 10), (
        f"left running: {sorted(alive(children))}\n" + (tmp_path / "serve.log").read_text()[-3000:]
    )
    gone_after = time.monotonic() - started
    second = _serve(port, tmp_path, log, web_server)
    cleanup.add(second.pid)
    try:
        assert wait_until(lambda: healthy(port), 30), (tmp_path / "serve.log").read_text()[-3000:]
        assert second.poll() is None  # it bound the port (gunicorn exits when it cannot)
        cleanup.update(descendants(second.pid))
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(40) == 0
        log.close()
    print(f"children gone {gone_after:.2f} s after the SIGKILL")
    assert gone_after < 10


_MIDDLE = """
import os, subprocess, sys, time
from bot.cli import lifeline
mode = sys.argv[1]
code = "import time; time.sleep(60)"
if mode == "watch":  # no kernel help: the process notices by itself
    code = "import os, time; from bot.cli import lifeline; lifeline.watch_parent(os.getppid(), interval=0.1); " + code
child = subprocess.Popen([sys.executable, "-c", code],
                         preexec_fn=lifeline.die_with_parent(os.getpid()) if mode == "pdeathsig" else None)
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["pdeathsig", "watch"])
def test_each_layer_alone_stops_a_child_whose_parent_was_killed(mode: str, cleanup: set[int]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, mode], env=env, stdout=subprocess.PIPE, start_new_session=True
    )
    cleanup.add(middle.pid)
    assert middle.stdout is not None
    child = int(middle.stdout.readline())
    cleanup.add(child)
    time.sleep(0.5)  # the child is up (and, in "watch" mode, watching)
    assert alive({child}) == {child}
    middle.kill()
    middle.wait(5)
    assert wait_until(lambda: not alive({child}), 5)


def test_a_child_that_dies_of_the_forwarded_stop_counts_as_a_clean_stop() -> None:
    """SIGTERM to `serve` while a child is still starting (no handler yet): the stop was asked for, exit 0."""
    script = (
        "import subprocess, sys; from bot.cli.processes import supervise; "
        "sys.exit(supervise([subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])]))"
    )
    serve = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True
    )
    try:
        time.sleep(1.0)  # supervise's handlers are in place
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(10) == 0
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
