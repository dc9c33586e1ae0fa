"""The image's health check: `/readyz` for a web process, this container's own heartbeat for a worker.

`python3 healthcheck.py [web|worker]`; without an argument the container's main process (PID 1) decides:
`ecr-cache-bot worker` has no HTTP server, so it is healthy while its heartbeat in the queue store is younger than
`heartbeat.LIVE_WITHIN`; anything else (`serve`, gunicorn) must answer 200 on `/readyz`. Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request


def mode_of(cmdline: list[str]) -> str:
    """`worker` when the main process is `ecr-cache-bot worker` (behind an init or not), else `web`."""
    for i, arg in enumerate(cmdline):
        if os.path.basename(arg) in ("ecr-cache-bot", "cli.py") or arg == "bot.cli.main":
            return "worker" if cmdline[i + 1 : i + 2] == ["worker"] else "web"
    return "web"


def main_process() -> list[str]:
    """PID 1's command line (empty when it cannot be read)."""
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            return [arg.decode(errors="replace") for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return []


def check_web(port: str) -> tuple[bool, str]:
    """GET /readyz on this container's port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=4) as answer:
            return answer.status == 200, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read().decode(errors='replace')}"
    except OSError as exc:
        return False, f"/readyz on port {port} did not answer: {exc}"


def check_worker() -> tuple[bool, str]:
    """A heartbeat of a worker on this host (this container) within `heartbeat.LIVE_WITHIN` seconds."""
    from bot.queue import heartbeat
    from bot.queue.durable import build_queue
    from bot.settings import Settings, SettingsError

    try:
        store = build_queue(Settings.from_env(), None).heartbeats
        if store is None:
            return False, "the queue keeps no heartbeats"
        beats = store.all()
    except SettingsError as exc:
        return False, str(exc)
    except Exception as exc:  # whatever the store raises (Redis down, file gone) is the reason
        return False, f"the heartbeats cannot be read: {type(exc).__name__}: {exc}"
    host = socket.gethostname()
    mine = [b for b in heartbeat.live(beats, time.time()) if b.host == host]
    if mine:
        return True, f"worker {mine[0].worker_id}: last heartbeat {mine[0].age(time.time()):.1f} s ago"
    return False, f"no heartbeat from a worker on {host} within {heartbeat.LIVE_WITHIN:.0f} s"


def main(argv: list[str]) -> int:
    """Run the check for the given or detected mode and print what was found."""
    mode = argv[0] if argv else mode_of(main_process())
    if mode not in ("web", "worker"):
        print(f"usage: healthcheck.py [web|worker], got {mode!r}")
        return 2
    healthy, detail = check_worker() if mode == "worker" else check_web(os.environ.get("PORT", "3000"))
    print(f"{mode}: {'healthy' if healthy else 'unhealthy'}: {detail}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
