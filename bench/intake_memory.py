"""Memory of unsigned deliveries (issue 14): peak and settled RSS of one `bot.web.asgi:app` gunicorn worker while
`--clients` parallel clients each POST an unsigned JSON body of `--size` bytes with a well-formed but wrong
`X-Hub-Signature-256` (the worst case: the body must be read to its end before the signature can fail).

    python bench/intake_memory.py                      # 40 clients x 20 MB
    python bench/intake_memory.py --clients 10 --size 5000000
    PYTHONPATH=/path/to/other/checkout python bench/intake_memory.py   # the same against another tree
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/github/webhooks"


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = children.read_text().split() if children.exists() else []
        if pids:
            return int(pids[0])
        time.sleep(0.1)
    raise SystemExit("no gunicorn worker started")


def _post(port: int, body: bytes, statuses: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(
        "POST",
        PATH,
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "mem",
            "X-Hub-Signature-256": "sha256=" + "0" * 64,
        },
    )
    response = conn.getresponse()
    response.read()
    statuses.append(response.status)


def main() -> int:
    """Run the server, send the bodies, print peak (VmHWM) and settled (VmRSS) memory of the worker."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--size", type=int, default=20_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from runtime_fixtures import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "WEBHOOK_SECRET": "bench-webhook-secret", "DATA_DIR": data, "LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "bot.web.asgi:app",
                "--worker-class",
                "bot.web.asgi.Worker",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            worker = _worker_pid(proc.pid)
            time.sleep(2)
            idle = _rss_kib(worker, "VmRSS")
            body = b'{"pad": "' + b"x" * (args.size - 11) + b'"}'
            statuses: list[int] = []
            started = time.monotonic()
            clients = [threading.Thread(target=_post, args=(port, body, statuses)) for _ in range(args.clients)]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            elapsed = time.monotonic() - started
            time.sleep(2)
            peak, settled = _rss_kib(worker, "VmHWM"), _rss_kib(worker, "VmRSS")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    print(
        f"{args.clients} x {args.size / 1e6:.0f} MB unsigned: statuses {sorted(set(statuses))}, "
        f"{elapsed:.1f} s; worker RSS idle {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
        f"settled {settled / 1024:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
