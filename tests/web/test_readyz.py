"""`GET /readyz`: 200 only when the queue store takes a write, the templates load and a worker heartbeat is fresh;
503 with the reason otherwise, on both backends and on every served app (Flask, `bot.web.wsgi`, `bot.web.asgi`)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import redis
from jinja2 import FileSystemLoader
from runtime_fixtures import SECRET, backend_settings, free_port, namespace_for, options_for, require_redis
from werkzeug.test import Client

from bot.queue import heartbeat
from bot.queue.durable import HueyQueue, build_queue
from bot.render import templates
from bot.settings import Settings
from bot.web.asgi import FastAsgiWebhook
from bot.web.flask_app import create_app
from bot.web.wsgi import FlaskWsgi

BACKENDS = ["sqlite", "redis"]


def _app(settings: Settings, tmp_path: Path) -> tuple[Client, HueyQueue]:
    queue = build_queue(settings, None, options_for(tmp_path))
    return Client(create_app(settings, queue=queue)), queue


def _ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_data())


def _beat(queue: HueyQueue, age: float) -> heartbeat.Beat:
    assert queue.heartbeats is not None
    worker = heartbeat.this_worker(time.time() - age)
    queue.heartbeats.beat(worker, time.time() - age)
    return worker


@pytest.mark.parametrize("backend", BACKENDS)
def test_not_ready_until_a_worker_beats_then_ready_until_it_is_a_minute_silent(backend: str, tmp_path: Path) -> None:
    client, queue = _app(backend_settings(backend, tmp_path), tmp_path)
    status, body = _ready(client)
    assert status == 503 and body["status"] == "not ready"
    assert body["reasons"] == [
        "no worker has reported a heartbeat within 60 s (start `ecr-cache-bot worker`, or use `ecr-cache-bot serve`)"
    ]
    assert body["checks"]["queue_store"].startswith("ok") and body["checks"]["templates"] == "ok"

    _beat(queue, age=61)  # a worker that died a minute ago does not make the deployment ready
    assert _ready(client)[0] == 503
    fresh = _beat(queue, age=50)
    status, body = _ready(client)
    assert status == 200 and body["status"] == "ready" and "reasons" not in body
    assert re.fullmatch(r"1 live, last heartbeat 5\d\.\d s ago", body["checks"]["workers"]), body
    assert queue.heartbeats is not None
    queue.heartbeats.leave(fresh.worker_id)  # a worker that stops cleanly is gone at once
    assert _ready(client)[0] == 503
    assert client.get("/healthz").status_code == 200  # liveness is not readiness


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics_count_live_workers_and_show_each_heartbeat_age(backend: str, tmp_path: Path) -> None:
    client, queue = _app(backend_settings(backend, tmp_path), tmp_path)
    text = client.get("/metrics").get_data(as_text=True)
    assert "ecr_cache_bot_workers_live 0\n" in text and "heartbeat_age_seconds{" not in text
    live = _beat(queue, age=2)
    dead = _beat(queue, age=300)
    text = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE ecr_cache_bot_workers_live gauge\necr_cache_bot_workers_live 1\n" in text
    ages = {}
    for line in text.splitlines():
        if line.startswith("ecr_cache_bot_worker_heartbeat_age_seconds{"):
            labels, value = line.rsplit(" ", 1)
            ages[labels] = float(value)
    assert len(ages) == 2
    [live_age] = [v for k, v in ages.items() if f'worker="{live.worker_id}"' in k]
    [dead_age] = [v for k, v in ages.items() if f'worker="{dead.worker_id}"' in k and f'pid="{dead.pid}"' in k]
    assert 2 <= live_age < 10 and 300 <= dead_age < 310


def test_sqlite_store_gone_is_not_ready(tmp_path: Path) -> None:
    settings = backend_settings("sqlite", tmp_path)
    client, queue = _app(settings, tmp_path)
    _beat(queue, age=0)
    assert _ready(client)[0] == 200
    # The volume vanished under a running process: connections opened before keep "writing" into the deleted
    # file, so the probe has to notice on a fresh one.
    shutil.rmtree(settings.data_dir)
    status, body = _ready(client)
    assert status == 503
    assert "the queue store cannot be written: OperationalError: unable to open database file" in body["reasons"]
    assert not Path(settings.data_dir).exists()  # the probe did not create an empty store in its place


def test_sqlite_store_replaced_by_something_else_is_not_ready(tmp_path: Path) -> None:
    settings = backend_settings("sqlite", tmp_path)
    client, queue = _app(settings, tmp_path)
    _beat(queue, age=0)
    db = Path(settings.data_dir) / "queue.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"not a database, but a file someone copied over it" * 100)
    status, body = _ready(client)
    assert status == 503
    assert any(
        r.startswith("the queue store cannot be written: DatabaseError: file is not a database")
        for r in body["reasons"]
    ), body


def test_sqlite_store_locked_by_another_process_is_not_ready_within_seconds(tmp_path: Path) -> None:
    settings = backend_settings("sqlite", tmp_path)
    client, queue = _app(settings, tmp_path)
    _beat(queue, age=0)
    holder = sqlite3.connect(Path(settings.data_dir) / "queue.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a stuck writer holds the write lock
    try:
        start = time.monotonic()
        status, body = _ready(client)
        took = time.monotonic() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503 and took < 10
    assert "the queue store cannot be written: OperationalError: database is locked" in body["reasons"]
    assert _ready(client)[0] == 200  # and ready again once the lock is released


def test_redis_unreachable_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(
        webhook_secret=SECRET, data_dir=str(tmp_path / "data"), redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    client, _ = _app(settings, tmp_path)
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["queue_store"].startswith("ConnectionError: Error 111 connecting to 127.0.0.1")
    assert any(r.startswith("the queue store cannot be written: ConnectionError") for r in body["reasons"])
    assert any(r.startswith("the worker heartbeats cannot be read: ConnectionError") for r in body["reasons"])


@pytest.fixture
def read_only_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis URL whose user may read but not write (a read-only credential or replica)."""
    url = require_redis()
    admin = redis.Redis.from_url(url)
    user = f"readyz-{namespace_for(tmp_path)}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">read-only-pass", "~*", "&*", "+@all", "-@write")
    try:
        yield url.replace("redis://", f"redis://{user}:read-only-pass@", 1)
    finally:
        admin.execute_command("ACL", "DELUSER", user)


def test_redis_refusing_writes_is_not_ready(read_only_redis: str, tmp_path: Path) -> None:
    writable = backend_settings("redis", tmp_path)
    _, queue = _app(writable, tmp_path)
    _beat(queue, age=0)  # a worker is alive: only the store is at fault
    read_only = Settings(webhook_secret=SECRET, data_dir=writable.data_dir, redis_url=read_only_redis)
    client, _ = _app(read_only, tmp_path)
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["workers"].startswith("1 live")
    [reason] = body["reasons"]
    assert reason.startswith("the queue store cannot be written: NoPermissionError: ")
    assert "has no permissions to run the 'set' command" in reason


@pytest.mark.parametrize("backend", BACKENDS)
def test_templates_that_cannot_be_loaded_are_not_ready(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, queue = _app(backend_settings(backend, tmp_path), tmp_path)
    _beat(queue, age=0)
    assert _ready(client)[0] == 200
    # The install lost its templates package (the bug of a wheel built without them).
    monkeypatch.setattr(templates.env, "loader", templates.PackageTemplates("bot.no_such_templates"))
    status, body = _ready(client)
    assert status == 503
    assert body["reasons"] == [
        "the templates cannot be loaded: ModuleNotFoundError: No module named 'bot.no_such_templates'"
    ]
    # A folder with some templates missing, or one that does not compile.
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "pr_body.md.j2").write_text("{{ marker }}\n")
    monkeypatch.setattr(templates.env, "loader", FileSystemLoader(str(folder)))
    status, body = _ready(client)
    assert status == 503 and body["checks"]["templates"].startswith("TemplateNotFound: 'comment.md.j2' not found")
    for name in templates.TEMPLATES:
        (folder / name).write_text("{{ ok }}\n")
    (folder / "extra.md.j2").write_text("{% if %}\n")
    status, body = _ready(client)
    assert status == 503 and body["checks"]["templates"].startswith("TemplateSyntaxError: ")


def test_templates_of_this_install_all_load() -> None:
    assert templates.check_templates() is None
    assert set(templates.TEMPLATES) <= set(templates.env.list_templates())


async def _asgi_get(app: FastAsgiWebhook, path: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": [],
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 50000),
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await asyncio.wait_for(app(scope, receive, send), 30)
    return status, b"".join(chunks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_readyz_is_served_by_the_wsgi_and_the_asgi_app(backend: str, tmp_path: Path) -> None:
    settings = backend_settings(backend, tmp_path)
    queue = build_queue(settings, None, options_for(tmp_path))
    flask = create_app(settings, queue=queue)
    wsgi = Client(FlaskWsgi(flask, settings))
    asgi = FastAsgiWebhook(flask, settings)

    def both() -> list[tuple[int, str]]:
        response = wsgi.get("/readyz")
        status, raw = asyncio.run(_asgi_get(asgi, "/readyz"))
        return [(response.status_code, json.loads(response.get_data())["status"]), (status, json.loads(raw)["status"])]

    assert both() == [(503, "not ready")] * 2
    _beat(queue, age=0)
    assert both() == [(200, "ready")] * 2
    asgi.pool.shutdown()


def test_beat_forever_refreshes_until_stopped_and_survives_a_failed_write(tmp_path: Path) -> None:
    settings = backend_settings("sqlite", tmp_path)
    queue = build_queue(settings, None, options_for(tmp_path))
    store = queue.heartbeats
    assert store is not None
    worker = heartbeat.this_worker()
    clock = iter([100.0, 110.0, 120.0, 130.0, 140.0, 150.0])
    seen: list[float] = []
    failing = [True]

    class Flaky:
        def beat(self, beat: heartbeat.Beat, at: float) -> None:
            if at == 110.0 and failing[0]:
                failing[0] = False
                raise sqlite3.OperationalError("disk I/O error")
            assert store is not None
            store.beat(beat, at)
            seen.append(max(b.seen for b in store.all()))

    stop = threading.Event()
    thread = threading.Thread(target=heartbeat.beat_forever, args=(Flaky(), worker, stop, 0.01, lambda: next(clock)))
    thread.start()
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert seen[:3] == [100.0, 120.0, 130.0]  # the failed beat at 110 was logged, the next ones went on
    [row] = store.all()
    assert (row.worker_id, row.pid, row.host, row.started) == (
        worker.worker_id,
        worker.pid,
        worker.host,
        worker.started,
    )
