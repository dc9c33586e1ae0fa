"""Webhook intake benchmark against the real deployments, load: `wrk`, new connection per request by default.

Default run: the realistic mix (80% pushes that touch nothing we care about, 15% relevant pushes, 5% `/ecr-cache`
comments; every request validly signed, ~8 KB, unique X-GitHub-Delivery), plus ignored-only and relevant-only
runs, against our ASGI deployment (`gunicorn bot.web.asgi:app`, as the Procfile runs it) and a minimal Probot 14
app (bench/probot/, installed with npm into a cache directory outside the repository) in the same session, one
server at a time. After each run against ours the durable queue is counted: every delivery answered 202 must be
in it. Prints one markdown table (`--out` also appends it to a file).

    python bench/intake.py                      # needs `wrk` (apt-get install -y wrk), and node + npm for Probot
    python bench/intake.py --no-probot --duration 5
    python bench/intake.py --push-only          # the older matrix: relevant pushes only, several deployments
    python bench/intake.py --asgi-only          # in-process, no HTTP
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
import signal
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


APPS = {
    "bot.web.wsgi:app": "bot.web.wsgi:app (FULL)",
    "bot.web.asgi:app": "bot.web.asgi:app (FULL)",
    "intake:normal_sync_app()": "synchronous=NORMAL",
}

# The options every gunicorn this benchmark starts shares (keep-alive as the Procfile has it).
GUNICORN_TAIL = ["--keep-alive", "75", "--backlog", "2048", "--log-level", "warning"]


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
    """The wrk script of `--push-only`: the mix's, every request a relevant push."""
    return _mix_script(tmp, "push-only", (0, 1, 0), close)


def _committed(data_dir: Path, redis_url: str | None) -> int:
    """Deliveries in the durable queue (the dedupe claims committed with their jobs)."""
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        return sum(1 for _ in client.scan_iter("ecr:delivery:*", count=10000))
    if not (data_dir / "queue.db").exists():
        return 0
    with sqlite3.connect(data_dir / "queue.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (deliveries,) = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        if "jobs" in tables:  # one job per delivery in these runs, committed with its claim
            (jobs,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
            assert deliveries == jobs, (deliveries, jobs)
    return int(deliveries)


def _wrk(threads: int, connections: int, seconds: int, script: Path, port: int, tag: str) -> dict[str, Any]:
    """One wrk run against the webhook path; the RESULT line its Lua script prints, as a dict."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script)]
    command += [f"http://127.0.0.1:{port}{PATH}", "--", f"{tag}-{time.time_ns()}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.split("RESULT ", 1)[1].splitlines()[0]))


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
        for pattern in ("ecr:delivery:*", "ecr:job:*", "ecr:jobs:*", "ecr:gen:*", "ecr:counters", "huey.*.ecrcachebot"):
            keys = list(client.scan_iter(pattern, count=10000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
    port = free_port()
    env = {
        **os.environ,
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    app = "bot.web.asgi:app" if dep.worker_class == "bot.web.asgi.Worker" else args.app
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        dep.worker_class,
        "--workers",
        str(dep.workers),
        "--threads",
        str(dep.threads),
        *GUNICORN_TAIL,
    ]
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
                result = _wrk(threads, concurrency, args.duration, script, port, f"r{run}")
                cpu = _cpu_seconds(server.pid) - cpu_before
                time.sleep(0.5)  # requests still in flight when wrk stopped may commit now
                committed = _committed(data_dir, args.redis) - before
                name = f"Redis queue, {app}" if args.redis else APPS.get(app, app)
                rows.append(
                    {
                        "deployment": f"{dep.label}, {name}",
                        "concurrency": concurrency,
                        "connection": "new per request" if close else "keep-alive",
                        "rps": result["requests"] / (result["duration_us"] / 1e6),
                        "p50_ms": result["p50_us"] / 1000,
                        "p99_ms": result["p99_us"] / 1000,
                        "accepted": result["accepted"],
                        "other": result["ok"] + result["other"] + result["errors"],
                        "committed": committed,
                        "cpu_us": cpu / max(1, result["requests"]) * 1e6,
                    }
                )
                print(_row(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return rows


def _row(r: dict[str, Any]) -> str:
    ok = "yes" if r["committed"] >= r["accepted"] else "**NO**"
    return (
        f"| {r['deployment']} | {r['concurrency']} | {r['connection']} | {r['rps']:,.0f} | "
        f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us']:.0f} | {r['accepted']:,} | {r['other']} | "
        f"{r['committed']:,} | {ok} |"
    )


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
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-github-event", b"push"),
                    (b"x-github-delivery", f"d{i}".encode()),
                    (b"x-hub-signature-256", signature.encode()),
                ]
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


# --- the realistic mix, against ours and Probot ------------------------------------------------------------

MIX_LUA = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  prefix = args[1] .. "-" .. tid .. "-"
  counter, accepted, ok, other = 0, 0, 0, 0
end
function request()
  counter = counter + 1
  local k = PLAN[(counter - 1) % #PLAN + 1]
  local headers = {["Content-Type"] = "application/json", ["X-GitHub-Event"] = EVENTS[k],
                   ["X-GitHub-Delivery"] = prefix .. counter, ["X-Hub-Signature-256"] = SIGS[k]}
  if CLOSE then headers["Connection"] = "close" end
  return wrk.format("POST", PATH, headers, BODIES[k])
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 elseif status == 200 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, k, o = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("accepted"); k = k + t:get("ok"); o = o + t:get("other") end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"accepted": %d, "ok": %d, "other": %d, "errors": %d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), a, k, o, e.connect + e.read + e.write + e.timeout))
end
"""

# Of every 20 deliveries: (ignored pushes, relevant pushes, `/ecr-cache` comments).
MIXES = {
    "80/15/5 ignored/relevant/comment": (16, 3, 1),
    "ignored pushes only": (20, 0, 0),
    "relevant pushes only": (0, 20, 0),
}
PAD = 8192


def _deliveries() -> list[tuple[str, bytes]]:
    """(event, body) of the three kinds: a default-branch push touching only files no plan reads, a push
    touching a Dockerfile, an `/ecr-cache` comment."""
    from runtime_fixtures import comment_payload

    relevant = push_payload("octo-org/service-api", installation=7, pad_to=PAD)
    ignored = json.loads(json.dumps(relevant))
    for commit in [*ignored["commits"], ignored["head_commit"]]:
        commit["modified"] = ["src/service/handlers.py", "README.md"]
    comment = comment_payload("octo-org/service-api", 12, 3456, installation=7, pad_to=PAD)
    return [
        ("push", json.dumps(ignored).encode()),
        ("push", json.dumps(relevant).encode()),
        ("issue_comment", json.dumps(comment).encode()),
    ]


def _plan(counts: tuple[int, int, int]) -> list[int]:
    """The kinds (Lua indexes 1..3) of 20 deliveries in a spread order with these counts."""
    plan: list[int] = []
    for i in range(sum(counts)):
        want = [c * (i + 1) / sum(counts) - plan.count(k + 1) for k, c in enumerate(counts)]
        plan.append(want.index(max(want)) + 1)
    return plan


def _mix_script(tmp: Path, name: str, counts: tuple[int, int, int], close: bool) -> Path:
    kinds = _deliveries()

    def lua_list(values: list[str]) -> str:
        return "{" + ", ".join(values) + "}"

    bodies = lua_list([f"[==[{body.decode()}]==]" for _, body in kinds])
    sigs = lua_list([f'"sha256={hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}"' for _, body in kinds])
    events = lua_list([f'"{event}"' for event, _ in kinds])
    script = tmp / f"mix-{'-'.join(map(str, counts))}-{'close' if close else 'keepalive'}.lua"
    script.write_text(
        f"BODIES = {bodies}\nSIGS = {sigs}\nEVENTS = {events}\n"
        f'PLAN = {lua_list([str(k) for k in _plan(counts)])}\nPATH = "{PATH}"\n'
        f"CLOSE = {'true' if close else 'false'}\n" + MIX_LUA
    )
    return script


def _wait_answering(port: int, timeout: float = 60) -> None:
    """Until a signed ping is answered 200 (both servers answer it without a queue)."""
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request(
                "POST",
                PATH,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "ping",
                    "X-GitHub-Delivery": "ready",
                    "X-Hub-Signature-256": signature,
                },
            )
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def probot_install(cache: Path) -> Path:
    """The Probot CLI (`probot.js`) from `cache`, installed with npm on first use (never into the repository)."""
    spec = json.loads((ROOT / "bench" / "probot" / "package.json").read_text())["dependencies"]["probot"]
    prefix = cache / "probot"
    cli = prefix / "node_modules" / "probot" / "bin" / "probot.js"
    if not cli.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"probot@{spec}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return cli


def _private_key(tmp: Path) -> Path:
    """A throwaway App key for Probot's start (it never calls GitHub here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp / "probot-key.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@dataclass(frozen=True)
class Server:
    """One server under test: how to start it, and where its durable queue is (None: it has none)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    data_dir: Path | None


def _ours(args: argparse.Namespace, tmp: Path, port: int) -> Server:
    data_dir = tmp / "data-mix"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {
        **os.environ,
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    env.pop("REDIS_URL", None)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "bot.web.asgi:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "bot.web.asgi.Worker",
        "--workers",
        str(args.workers),
        *GUNICORN_TAIL,
    ]
    return Server(f"ours: bot.web.asgi, uvicorn {args.workers}x1, SQLite FULL", argv, env, ROOT, data_dir)


def _baseline(args: argparse.Namespace, tmp: Path, port: int) -> Server:
    """Ours from an older tree (`--baseline DIR`, e.g. `git archive <commit> | tar -x -C DIR`), same settings."""
    server = _ours(args, tmp, port)
    tree = args.baseline.resolve()
    env = {**server.env, "PYTHONPATH": str(tree), "DATA_DIR": str(tmp / "data-baseline")}
    shutil.rmtree(tmp / "data-baseline", ignore_errors=True)
    return Server(f"{tree.name} tree: {server.name.split(': ', 1)[1]}", server.argv, env, tree, tmp / "data-baseline")


def _probot(args: argparse.Namespace, tmp: Path, port: int) -> Server:
    cli = probot_install(args.probot_cache)
    env = {
        **os.environ,
        "APP_ID": "1",
        "PRIVATE_KEY_PATH": str(_private_key(tmp)),
        "WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "NODE_ENV": "production",
    }
    version = json.loads((cli.parent.parent / "package.json").read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return Server(
        f"Probot {version} (node {node}, 1 process, no queue)",
        ["node", str(cli), "run", "./app.js"],
        env,
        ROOT / "bench" / "probot",
        None,
    )


def run_mix(server: Server, port: int, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """Start `server`, run every mix against it with wrk, stop it; one row per mix."""
    log = (tmp / "servers.log").open("ab")
    proc = subprocess.Popen(server.argv, env=server.env, cwd=server.cwd, stdout=log, stderr=log, start_new_session=True)
    rows = []
    try:
        _wait_answering(port)
        if args.warmup:  # first requests pay for imports, first opens and (node) compilation: not measured
            warm = _mix_script(tmp, "warm-up", next(iter(MIXES.values())), close=not args.keep_alive)
            subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.mix_concurrency}",
                    f"-d{args.warmup}s",
                    "-s",
                    str(warm),
                    f"http://127.0.0.1:{port}{PATH}",
                    "--",
                    f"w-{time.time_ns()}",
                ],
                capture_output=True,
                check=True,
            )
            time.sleep(0.5)
        for run, (mix, counts) in enumerate(MIXES.items()):
            script = _mix_script(tmp, mix, counts, close=not args.keep_alive)
            before = _committed(server.data_dir, None) if server.data_dir else 0
            cpu_before = _cpu_seconds(proc.pid)
            result = _wrk(args.wrk_threads, args.mix_concurrency, args.duration, script, port, f"m{run}")
            cpu = _cpu_seconds(proc.pid) - cpu_before
            time.sleep(0.5)  # requests still in flight when wrk stopped may commit now
            committed = _committed(server.data_dir, None) - before if server.data_dir else None
            rows.append(
                {
                    "server": server.name,
                    "mix": mix,
                    "rps": result["requests"] / (result["duration_us"] / 1e6),
                    "p50_ms": result["p50_us"] / 1000,
                    "p99_ms": result["p99_us"] / 1000,
                    "ok": result["ok"],
                    "accepted": result["accepted"],
                    "non2xx": result["other"] + result["errors"],
                    "committed": committed,
                    "cpu_us": cpu / max(1, result["requests"]) * 1e6,
                }
            )
            print(_mix_row(rows[-1]), flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
    return rows


MIX_HEADER = (
    "| server | mix | req/s | p50 ms | p99 ms | non-2xx | 200 / 202 | CPU µs/req | relevant jobs in queue "
    "| accepted deliveries durable |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _mix_row(r: dict[str, Any]) -> str:
    if r["committed"] is None:
        queued, durable = "n/a", "n/a (no queue)"
    else:
        queued, durable = f"{r['committed']:,}", "yes" if r["committed"] >= r["accepted"] else "**NO**"
    return (
        f"| {r['server']} | {r['mix']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
        f"{r['non2xx']} | {r['ok']:,} / {r['accepted']:,} | {r['cpu_us']:.0f} | {queued} | {durable} |"
    )


def mix_main(args: argparse.Namespace) -> int:
    """Ours and Probot, one after the other, every mix each; one table."""
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(MIX_HEADER, flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="intake-mix-") as name:
        tmp = Path(name)
        starts = [_ours, *([_baseline] if args.baseline else []), *([] if args.no_probot else [_probot])]
        for start in starts:
            port = free_port()
            rows += run_mix(start(args, tmp, port), port, args, tmp)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    connection = "keep-alive" if args.keep_alive else "new connection per request (`Connection: close`)"
    text = (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. wrk -t{args.wrk_threads} "
        f"-c{args.mix_concurrency}, {args.duration} s per run after {args.warmup} s of warm-up per server, "
        f"{connection}; ~{PAD // 1024} KB signed "
        f"deliveries, unique delivery ids. Machine: {os.cpu_count()} cores (shared by wrk and the server), "
        f"{platform.platform()}, Python {platform.python_version()}. Load average (1/5/15 min) before: "
        f"{load_before}, after: {load}.\n\n{MIX_HEADER}\n" + "\n".join(_mix_row(r) for r in rows) + "\n"
    )
    print(text)
    if args.out:
        with args.out.open("a") as out:
            out.write(text + "\n")
    return 0 if all(r["committed"] is None or r["committed"] >= r["accepted"] for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="with --push-only")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (cores are shared with gunicorn)")
    parser.add_argument(
        "--deployment",
        action="append",
        default=None,
        help="worker_class:workers:threads, repeatable; `asgi:W:1` = bot.web.asgi:app on uvicorn "
        "(default asgi:1:1, asgi:2:1, gthread:1:32)",
    )
    parser.add_argument("--redis", default=None, help="benchmark the Redis queue at this URL instead of SQLite")
    parser.add_argument("--app", default="bot.web.wsgi:app", help="WSGI app (default: the real deployment)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--queue-only", action="store_true", help="time `submit` in-process, no HTTP")
    parser.add_argument("--asgi-only", action="store_true", help="time `bot.web.asgi` in-process, no HTTP")
    parser.add_argument(
        "--push-only",
        action="store_true",
        help="the older matrix: relevant pushes only, --deployment x --concurrency x connection mode",
    )
    parser.add_argument("--no-probot", action="store_true", help="the mix against ours only")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also run the mix against ours from this older tree (a `git archive` of a commit)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured seconds of the mix before the runs")
    parser.add_argument("--keep-alive", action="store_true", help="the mix on kept-alive connections")
    parser.add_argument("--mix-concurrency", type=int, default=16, help="wrk connections for the mix (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of ours for the mix (Procfile: 2)")
    parser.add_argument(
        "--probot-cache",
        type=Path,
        default=Path.home() / ".cache" / "ecr-cache-bot-bench",
        help="where npm installs Probot (outside the repository)",
    )
    args = parser.parse_args()
    if args.asgi_only:
        for mode in ("batched", "thread", "memory"):
            rate, cpu_us = asgi_only(mode)
            print(f"bot.web.asgi in-process, 16 concurrent, {mode}: {rate:,.0f} deliveries/s, {cpu_us:.0f} µs CPU each")
        return 0
    if args.queue_only:
        for fsync in (True, False):
            print(
                f"queue only, 16 threads, synchronous={'FULL' if fsync else 'NORMAL'}: "
                f"{queue_only(fsync):,.0f} deliveries/s"
            )
        return 0
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if not args.push_only:
        return mix_main(args)
    deployments = [
        Deployment("bot.web.asgi.Worker" if c == ASGI else c, int(w), int(t))
        for c, w, t in (d.split(":") for d in (args.deployment or ["asgi:1:1", "asgi:2:1", "gthread:1:32"]))
    ]
    header = (
        "| gunicorn | concurrency | connection | req/s | p50 ms | p99 ms | web CPU µs/req | 202 | other "
        "| in queue | all 202 queued |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="intake-") as tmp:
        for dep in deployments:
            rows += run_deployment(dep, args, Path(tmp))
    backend = f"Redis ({args.redis})" if args.redis else "SQLite (WAL, synchronous=FULL, group commit)"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (
        f"Queue: {backend}. Load average after the runs (1/5/15 min): {load} (the 2 cores are shared "
        f"with other work). Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; wrk on the same cores; {args.duration} s per run; ~8 KB signed push "
        f"payload, unique delivery id per request.\n\n{header}\n" + "\n".join(_row(r) for r in rows) + "\n"
    )
    if args.out:
        with args.out.open("a") as out:
            out.write(text + "\n")
    return 0 if all(r["committed"] >= r["accepted"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
