"""Process commands: `serve` (gunicorn web + embedded worker), `worker` (consumers only), `dead-letter`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from bot import wiring
from bot.cli import lifeline
from bot.logs import configure_logging, log_event
from bot.queue import heartbeat
from bot.queue.durable import HueyQueue, QueueOptions, Runner, build_queue
from bot.settings import Settings, SettingsError, process_env

# Measured on 2 cores (bench/RESULTS-intake.md): `bot.web.asgi:app` on uvicorn (C HTTP parser, group commit on the
# event loop) takes deliveries at about twice the rate of `bot.web.wsgi:app` on gthread for half the CPU; one web
# process batches every concurrent delivery into one SQLite commit and never waits for another process's write
# lock, and the other core runs the worker. `--web-server gthread` keeps the WSGI deployment selectable.
WEB_SERVERS = ("asgi", "gthread")
DEFAULT_WEB_SERVER = "asgi"
DEFAULT_WEB_WORKERS = 1
DEFAULT_WEB_THREADS = 32
DEFAULT_JOB_THREADS = 4


def add_runtime_commands(subparsers: Any) -> None:
    """Register `serve`, `worker` and `dead-letter` on the CLI's subparsers."""
    serve = subparsers.add_parser("serve", help="run the web app and an embedded worker (SQLite queue)")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default $PORT or 3000)")
    serve.add_argument("--web-workers", type=int, default=DEFAULT_WEB_WORKERS, help="gunicorn processes")
    serve.add_argument(
        "--web-threads", type=int, default=DEFAULT_WEB_THREADS, help="threads per web process (gthread only)"
    )
    serve.add_argument(
        "--web-server",
        choices=WEB_SERVERS,
        default=DEFAULT_WEB_SERVER,
        help="asgi: bot.web.asgi:app on uvicorn workers (default); gthread: bot.web.wsgi:app on threads "
        "that get only whole requests (bot.web.gthread_worker)",
    )
    serve.add_argument("--threads", type=int, default=DEFAULT_JOB_THREADS, help="job threads of the worker")
    serve.set_defaults(handler=serve_command)

    worker = subparsers.add_parser("worker", help="run job consumers only (any number, on any machine)")
    worker.add_argument("--threads", type=int, default=DEFAULT_JOB_THREADS, help="job threads")
    worker.set_defaults(handler=worker_command)

    dead = subparsers.add_parser("dead-letter", help="list or re-drive jobs that failed for good")
    dead_sub = dead.add_subparsers(dest="dead_letter_command", required=True)
    listing = dead_sub.add_parser("list", help="print the dead-letter list")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=dead_letter_command)
    redrive = dead_sub.add_parser("redrive", help="queue dead jobs again with a fresh retry budget")
    redrive.add_argument("job_ids", nargs="*", help="job ids (see `dead-letter list`)")
    redrive.add_argument("--all", action="store_true", help="re-drive every dead job")
    redrive.set_defaults(handler=dead_letter_command)


def _settings() -> Settings | None:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"ecr-cache-bot: {exc}\n")
        return None


def _logging(settings: Settings) -> None:
    configure_logging(settings.log_level, secrets=(settings.webhook_secret, settings.private_key))


def reap_forever(queue: HueyQueue, stop: threading.Event, interval: float | None = None) -> None:
    """Re-enqueue lost jobs periodically, and purge expired bookkeeping every ten minutes."""
    opts = queue.options
    interval = interval or max(0.2, min(30.0, opts.stale_after / 4, opts.lease / 4))
    last_purge = 0.0
    while not stop.wait(interval):
        try:
            queue.reap()
            if time.monotonic() - last_purge > 600:
                queue.ledger.purge(time.time())
                last_purge = time.monotonic()
        except Exception as exc:  # a storage hiccup must not kill the reaper; the next round retries
            log_event("queue.reaper_error", level="warning", error=f"{type(exc).__name__}: {exc}")


def run_worker(
    settings: Settings,
    runner: Runner | None = None,
    threads: int = DEFAULT_JOB_THREADS,
    options: QueueOptions | None = None,
    reap_interval: float | None = None,
) -> int:
    """Run huey consumer threads and the reaper until SIGINT/SIGTERM (default runner: GitHub, `bot.wiring`)."""
    queue = build_queue(settings, runner, options) if runner is not None else wiring.job_queue(settings, options)
    stop = threading.Event()
    reaper = threading.Thread(target=reap_forever, args=(queue, stop, reap_interval), name="reaper", daemon=True)
    reaper.start()
    me = heartbeat.this_worker()
    beats = threading.Thread(
        target=heartbeat.beat_forever,
        name="heartbeat",
        daemon=True,
        args=(queue.heartbeats, me, stop, queue.options.beat_interval),
    )
    if queue.heartbeats is not None:
        beats.start()
    backend = "redis" if settings.redis_url else "sqlite"
    log_event("worker.started", backend=backend, threads=threads, pid=os.getpid(), worker=me.worker_id)
    try:
        queue.consumer(workers=threads).run()
    finally:
        stop.set()
        if queue.heartbeats is not None:
            beats.join(15)  # its last beat must not land after the leave
            try:  # a clean stop leaves at once instead of aging out of /readyz
                queue.heartbeats.leave(me.worker_id)
            except Exception as exc:
                log_event("worker.leave_failed", level="warning", error=f"{type(exc).__name__}: {exc}")
    return 0


def worker_command(args: argparse.Namespace) -> int:
    """`ecr-cache-bot worker`."""
    settings = _settings()
    if settings is None:
        return 2
    _logging(settings)
    parent = lifeline.parent_from_env()
    if parent is not None:  # started by `serve`: stop when it is gone, however it went
        lifeline.watch_parent(parent)
    return run_worker(settings, threads=args.threads)


def gunicorn_argv(host: str, port: int, workers: int, threads: int, server: str = DEFAULT_WEB_SERVER) -> list[str]:
    """The gunicorn command line of the web process (`server`: "asgi" or "gthread")."""
    if server == "asgi":
        app = ["bot.web.asgi:app", "--worker-class", "bot.web.asgi.Worker"]
    elif server == "gthread":
        app = ["bot.web.wsgi:app", "--worker-class", "bot.web.gthread_worker.Worker", "--threads", str(threads)]
    else:
        raise ValueError(f"unknown web server {server!r} (one of {', '.join(WEB_SERVERS)})")
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *app,
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--keep-alive",
        "75",
        "--graceful-timeout",
        "20",
        "--log-level",
        "warning",
    ]


def serve_command(args: argparse.Namespace) -> int:
    """`ecr-cache-bot serve`: gunicorn and one worker as child processes, stopped together."""
    settings = _settings()
    if settings is None:
        return 2
    _logging(settings)
    port = args.port or settings.port
    # Spawned from this (main) thread: the kernel's parent-death signal follows the thread that forked.
    me = os.getpid()
    env = {**process_env(), lifeline.PARENT_ENV: str(me)}
    children = [
        subprocess.Popen(
            gunicorn_argv(args.host, port, args.web_workers, args.web_threads, args.web_server),
            preexec_fn=lifeline.die_with_parent(me),
        ),
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "worker", "--threads", str(args.threads)],
            env=env,
            preexec_fn=lifeline.die_with_parent(me),
        ),
    ]
    log_event(
        "serve.started",
        port=port,
        backend="redis" if settings.redis_url else "sqlite",
        web=args.web_server,
        pids=[c.pid for c in children],
    )
    return supervise(children)


def supervise(children: Sequence[subprocess.Popen[bytes]]) -> int:
    """Forward SIGINT/SIGTERM to the children; when one exits, stop the others and return its code."""

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    asked: list[int] = []

    def stop(signum: int, frame: object) -> None:
        asked.append(signum)
        forward(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while True:
        exited = [c for c in children if c.poll() is not None]
        if exited:
            code = exited[0].returncode or 0
            if asked and code == -signal.SIGTERM:
                code = 0  # it died of the stop we forwarded, before its own handler was in place
            break
        time.sleep(0.2)
    forward(signal.SIGTERM, None)
    deadline = time.monotonic() + 25
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return code


def dead_letter_command(args: argparse.Namespace) -> int:
    """`ecr-cache-bot dead-letter list|redrive`."""
    settings = _settings()
    if settings is None:
        return 2
    queue = build_queue(settings, runner=None)
    if args.dead_letter_command == "list":
        letters = queue.dead_letters()
        for letter in letters:
            row = {
                "job_id": letter.job_id,
                "outcome": letter.outcome,
                "attempts": letter.attempts,
                "repository": letter.job.subject,
                "kind": letter.job.kind,
                "delivery_id": letter.job.delivery_id,
                "error": letter.error,
                "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.failed_at)),
            }
            if args.json:
                sys.stdout.write(json.dumps(row) + "\n")
            else:
                sys.stdout.write(
                    "{job_id}  {failed_at}  {outcome:<6} {attempts:>2}x  {repository}  {kind}  {error}\n".format(**row)
                )
        if not args.json:
            total = queue.ledger.dead_count()
            more = f" (the {total - len(letters)} newer ones are not listed)" if total > len(letters) else ""
            sys.stdout.write(f"{total} dead job(s){more}\n")
        return 0
    if not args.all and not args.job_ids:
        sys.stderr.write("ecr-cache-bot: give job ids or --all\n")
        return 2
    revived = queue.redrive(None if args.all else args.job_ids)
    missing = [] if args.all else sorted(set(args.job_ids) - set(revived))
    sys.stdout.write(f"re-queued {len(revived)} job(s)\n")
    for job_id in missing:
        sys.stderr.write(f"not in the dead-letter list: {job_id}\n")
    return 1 if missing else 0
