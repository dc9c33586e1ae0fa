"""Webhook intake benchmark against the real gunicorn deployments (`bot.web.asgi:app`, `bot.web.wsgi:app`), load: `wrk`.

Each request is a signed ~8 KB push delivery with a unique X-GitHub-Delivery, at concurrency 1, 16 and 64,
with keep-alive and with a new connection per request. After each run the durable queue is counted: every
delivery answered 202 must be in it. Prints a markdown table (`--out` also writes it to a file).

    python bench/intake.py                 # needs `wrk` (apt-get install -y wrk)
    python bench/intake.py --redis redis://127.0.0.1:6379/15 --duration 5
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from runtime_fixtures import free_port, push_payload  # noqa: E402

SECRET = "bench-webhook-secret"
PATH = "/api/github/webhooks"

LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
  counter, accepted, other = 0, 0, 0
end
function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json", ["X-GitHub-Event"] = "push",
                   ["X-GitHub-Delivery"] = prefix .. counter, ["X-Hub-Signature-256"] = SIG}
  if CLOSE then headers["Connection"] = "close" end
  return wrk.format("POST", PATH, headers, BODY)
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("accepted"); o = o + t:get("other") end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"accepted": %d, "other": %d, "errors": %d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), a, o, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Deployment:
    """One gunicorn configuration."""

    worker_class: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        if self.worker_class == "bot.web.asgi.Worker":
            return f"uvicorn {self.workers}x1"
        return f"{self.worker_class} {self.workers}x{self.threads}"


# `--deployment asgi:W:T` is the ASGI deployment (`bot.web.asgi:app` on uvicorn workers); anything else is gthread/sync
# with `--app` (default `bot.web.wsgi:app`).
ASGI = "asgi"


APPS = {"bot.web.wsgi:app": "bot.web.wsgi:app (FULL)", "bot.web.asgi:app": "bot.web.asgi:app (FULL)",
        "intake:normal_sync_app()": "synchronous=NORMAL"}


def normal_sync_app() -> Any:
    """`intake:normal_sync_app()`: the real app with SQLite `synchronous=NORMAL` (no fsync per commit)."""
    from bot.logs import configure_logging
    from bot.queue.durable import QueueOptions, build_queue
    from bot.settings import Settings
    from bot.web.flask_app import create_app

    settings = Settings.from_env()
    configure_logging(settings.log_level, secrets=(settings.webhook_secret,))
    return create_app(settings, queue=build_queue(settings, None, QueueOptions(fsync=False)))


def _script(tmp: Path, close: bool) -> Path:
    body = json.dumps(push_payload("octo-org/service-api", installation=7, pad_to=8192))
    signature = "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    script = tmp / f"intake-{'close' if close else 'keepalive'}.lua"
    script.write_text(f'BODY = [==[{body}]==]\nSIG = "{signature}"\nPATH = "{PATH}"\n'
                      f"CLOSE = {'true' if close else 'false'}\n" + LUA)
    return script


def _committed(data_dir: Path, redis_url: str | None) -> int:
    """Deliveries in the durable queue (the dedupe claims committed with their jobs)."""
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        return sum(1 for _ in client.scan_iter("ecr:delivery:*", count=10000))
    with sqlite3.connect(data_dir / "queue.db") as conn:
        (deliveries,) = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        (jobs,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
        (tasks,) = conn.execute("SELECT count(*) FROM task").fetchone()
    assert deliveries == jobs == tasks, (deliveries, jobs, tasks)  # one job and one huey message each
    return int(deliveries)


def _cpu_seconds(root_pid: int) -> float:
    """User + system CPU time of a process and its children (gunicorn master and workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _wait_healthy(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not become healthy")


def run_deployment(dep: Deployment, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """Start gunicorn with `dep`, run every (concurrency, connection mode), return one row each."""
    data_dir = tmp / f"data-{dep.worker_class}-{dep.workers}-{dep.threads}"
    shutil.rmtree(data_dir, ignore_errors=True)
    if args.redis:
        import redis

        client = redis.Redis.from_url(args.redis)
        # The default namespace only (tests on the same Redis use their own `ecr:<namespace>:` keys).
        for pattern in ("ecr:delivery:*", "ecr:job:*", "ecr:jobs:*", "ecr:gen:*", "ecr:counters",
                        "huey.*.ecrcachebot"):
            keys = list(client.scan_iter(pattern, count=10000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i:i + 1000])
    port = free_port()
    env = {**os.environ, "WEBHOOK_SECRET": SECRET, "DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench"), str(ROOT / "tests"),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    app = "bot.web.asgi:app" if dep.worker_class == "bot.web.asgi.Worker" else args.app
    argv = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
            "--worker-class", dep.worker_class, "--workers", str(dep.workers), "--threads", str(dep.threads),
            "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning"]
    log = (tmp / "gunicorn.log").open("ab")
    server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
    rows = []
    try:
        _wait_healthy(port)
        run = 0
        for close in (False, True):
            script = _script(tmp, close)
            for concurrency in args.concurrency:
                run += 1
                before = _committed(data_dir, args.redis) if run > 1 else 0
                threads = min(concurrency, args.wrk_threads)
                cpu_before = _cpu_seconds(server.pid)
                out = subprocess.run(
                    ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{args.duration}s", "--timeout", "5s",
                     "-s", str(script), f"http://127.0.0.1:{port}{PATH}", "--", f"r{run}-{time.time_ns()}"],
                    capture_output=True, text=True, check=True).stdout
                result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
                cpu = _cpu_seconds(server.pid) - cpu_before
                time.sleep(0.5)  # requests still in flight when wrk stopped may commit now
                committed = _committed(data_dir, args.redis) - before
                name = f"Redis queue, {app}" if args.redis else APPS.get(app, app)
                rows.append({"deployment": f"{dep.label}, {name}", "concurrency": concurrency,
                             "connection": "new per request" if close else "keep-alive",
                             "rps": result["requests"] / (result["duration_us"] / 1e6),
                             "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
                             "accepted": result["accepted"], "other": result["other"] + result["errors"],
                             "committed": committed,
                             "cpu_us": cpu / max(1, result["requests"]) * 1e6})
                print(_row(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return rows


def _row(r: dict[str, Any]) -> str:
    ok = "yes" if r["committed"] >= r["accepted"] else "**NO**"
    return (f"| {r['deployment']} | {r['concurrency']} | {r['connection']} | {r['rps']:,.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us']:.0f} | {r['accepted']:,} | {r['other']} | "
            f"{r['committed']:,} | {ok} |")


def queue_only(fsync: bool, count: int = 4000, threads: int = 16) -> float:
    """Deliveries/s `HueyQueue.submit` commits from `threads` threads in one process (no HTTP)."""
    import threading
    import uuid

    from bot.app.payloads import Job
    from bot.queue.durable import QueueOptions, build_queue
    from bot.settings import Settings

    with tempfile.TemporaryDirectory(prefix="intake-queue-") as tmp:
        queue = build_queue(Settings(webhook_secret=SECRET, data_dir=tmp), None, QueueOptions(fsync=fsync))
        job = [Job("sync", 7, "octo-org/service-api", "bench", {"trigger": "push"})]

        def work() -> None:
            for _ in range(count // threads):
                queue.submit(uuid.uuid4().hex, job)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        start = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return (count // threads * threads) / (time.perf_counter() - start)


def asgi_only(mode: str, count: int = 4000, concurrency: int = 16) -> tuple[float, float]:
    """(deliveries/s, CPU µs per delivery) of `bot.web.asgi` called in-process (no HTTP, no server).

    mode "batched": the deployed path (group commit on the event loop); "thread": one `queue.submit` per
    delivery in the thread pool (the queue's own group commit); "memory": in-memory queue (no commit)."""
    import asyncio
    import io

    from bot.logs import configure_logging
    from bot.queue.durable import InMemoryQueue
    from bot.settings import Settings
    from bot.web.asgi import FastAsgiWebhook
    from bot.web.flask_app import create_app

    body = json.dumps(push_payload("octo-org/service-api", installation=7, pad_to=8192)).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with tempfile.TemporaryDirectory(prefix="intake-asgi-") as tmp:
        settings = Settings(webhook_secret=SECRET, data_dir=tmp)
        configure_logging("INFO", stream=io.StringIO(), secrets=(SECRET,))  # the log line is built, not printed
        app = FastAsgiWebhook(create_app(settings, queue=InMemoryQueue() if mode == "memory" else None), settings)
        if mode == "thread":
            app.batcher = None
        left = iter(range(count))

        async def client() -> None:
            for i in left:
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                           (b"x-github-event", b"push"), (b"x-github-delivery", f"d{i}".encode()),
                           (b"x-hub-signature-256", signature.encode())]
                scope = {"type": "http", "path": PATH, "method": "POST", "headers": headers}
                status: list[int] = []

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: Any, status: list[int] = status) -> None:
                    if message["type"] == "http.response.start":
                        status.append(message["status"])

                await app(scope, receive, send)
                assert status == [202], status

        async def run() -> None:
            await asyncio.gather(*(client() for _ in range(concurrency)))

        import uvloop

        start, cpu = time.perf_counter(), time.process_time()
        uvloop.run(run())
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        app.pool.shutdown()
        return count / elapsed, cpu / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (cores are shared with gunicorn)")
    parser.add_argument("--deployment", action="append", default=None,
                        help="worker_class:workers:threads, repeatable; `asgi:W:1` = bot.web.asgi:app on uvicorn "
                             "(default asgi:1:1, asgi:2:1, gthread:1:32)")
    parser.add_argument("--redis", default=None, help="benchmark the Redis queue at this URL instead of SQLite")
    parser.add_argument("--app", default="bot.web.wsgi:app", help="WSGI app (default: the real deployment)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--queue-only", action="store_true", help="time `submit` in-process, no HTTP")
    parser.add_argument("--asgi-only", action="store_true", help="time `bot.web.asgi` in-process, no HTTP")
    args = parser.parse_args()
    if args.asgi_only:
        for mode in ("batched", "thread", "memory"):
            rate, cpu_us = asgi_only(mode)
            print(f"bot.web.asgi in-process, 16 concurrent, {mode}: {rate:,.0f} deliveries/s, {cpu_us:.0f} µs CPU each")
        return 0
    if args.queue_only:
        for fsync in (True, False):
            print(f"queue only, 16 threads, synchronous={'FULL' if fsync else 'NORMAL'}: "
                  f"{queue_only(fsync):,.0f} deliveries/s")
        return 0
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    deployments = [Deployment("bot.web.asgi.Worker" if c == ASGI else c, int(w), int(t)) for c, w, t in
                   (d.split(":") for d in (args.deployment or ["asgi:1:1", "asgi:2:1", "gthread:1:32"]))]
    header = ("| gunicorn | concurrency | connection | req/s | p50 ms | p99 ms | web CPU µs/req | 202 | other "
              "| in queue | all 202 queued |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
        for dep in deployments:
            rows += run_deployment(dep, args, Path(tmp))
    backend = f"Redis ({args.redis})" if args.redis else "SQLite (WAL, synchronous=FULL, group commit)"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"Queue: {backend}. Load average after the runs (1/5/15 min): {load} (the 2 cores are shared "
            f"with other work). Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
            f"{platform.python_version()}; wrk on the same cores; {args.duration} s per run; ~8 KB signed push "
            f"payload, unique delivery id per request.\n\n{header}\n" + "\n".join(_row(r) for r in rows) + "\n")
    if args.out:
        with args.out.open("a") as out:
            out.write(text + "\n")
    return 0 if all(r["committed"] >= r["accepted"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
