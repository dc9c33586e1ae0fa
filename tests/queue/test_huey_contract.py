"""What the durable queue relies on in huey: fails on a huey upgrade that changes any of it.

The queue touches huey only through `bot/queue/huey_storage.py` (Storage subclasses, huey's extension point) and
huey's public API (task, serialize_task/deserialize_task, enqueue, add_schedule, pending, scheduled,
create_consumer). A durability bug would be silent, so each thing we rely on is pinned here.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
import time
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import redis
from huey import Huey
from huey.storage import RedisStorage, SqliteStorage
from packaging.requirements import Requirement
from runtime_fixtures import backend_settings, flush_redis, namespace_for, options_for, require_redis

from bot.queue.durable import TASK_NAME, build_queue
from bot.queue.huey_storage import (
    LedgerRedisStorage,
    LedgerSqliteStorage,
    redis_huey,
    sqlite_huey,
    waiting_args,
)
from bot.queue.storage import SqliteDb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
def huey(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Huey]:
    """A huey with the ledger's storage on either backend."""
    if request.param == "redis":
        url = require_redis()
        namespace = namespace_for(tmp_path)
        flush_redis(url, namespace)
        yield redis_huey(f"ecr-cache-bot-{namespace}", url)
        flush_redis(url, namespace)
    else:
        yield sqlite_huey("ecr-cache-bot", str(tmp_path / "queue.db"), fsync=False)


def _run_job(huey: Huey) -> Any:
    """Our task registered on `huey` the way `HueyQueue` registers it."""
    return huey.task(name=TASK_NAME)(lambda job_id: None)


def test_installed_huey_is_inside_the_range_pyproject_pins() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [Requirement(d) for d in dependencies if Requirement(d).name == "huey"]
    assert pin.specifier, "huey must be pinned to the range this contract was tested with"
    assert pin.specifier.contains(version("huey")), (version("huey"), str(pin.specifier))
    assert any(s.operator == "<" for s in pin.specifier), "an upper bound: a new minor must be tested first"


def test_huey_builds_its_storage_from_storage_class(tmp_path: Path) -> None:
    sqlite = sqlite_huey("n", str(tmp_path / "q.db"), fsync=True)
    assert type(sqlite.storage) is LedgerSqliteStorage and isinstance(sqlite.storage, SqliteStorage)
    assert sqlite.storage.filename == str(tmp_path / "q.db") and sqlite.storage.name == "n"
    # Our queue settings reach huey's storage: 30 s lock wait, FULL sync of huey's own connections.
    assert sqlite.storage.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert sqlite.storage.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert issubclass(LedgerRedisStorage, RedisStorage)
    assert not sqlite.results and sqlite.utc


def test_sqlite_enqueue_in_commits_and_rolls_back_with_the_ledger_transaction(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    huey = sqlite_huey("n", str(path), fsync=False)
    task = huey.task(name=TASK_NAME)(lambda job_id: None)
    db = SqliteDb(path, fsync=False)
    with pytest.raises(RuntimeError), db.tx() as cur:
        huey.storage.enqueue_in(cur, [huey.serialize_task(task.s("rolled-back"))])
        raise RuntimeError("the ledger's transaction fails after the messages went in")
    assert huey.pending_count() == 0
    started = time.monotonic()
    with db.tx() as cur:  # holds SQLite's write lock: huey's own connection would have to wait for it
        huey.storage.enqueue_in(cur, [huey.serialize_task(task.s(f"job-{i}")) for i in range(3)])
    assert time.monotonic() - started < 5  # ran on our cursor, not on huey's connection behind our lock
    assert [t.args for t in huey.pending()] == [("job-0",), ("job-1",), ("job-2",)]
    assert huey.dequeue().args == ("job-0",)  # huey's consumer takes them in order
    # Outside `enqueue_in` huey's storage uses its own connection again.
    huey.enqueue(task.s("own"))
    assert [t.args for t in huey.pending()] == [("job-1",), ("job-2",), ("own",)]


def test_sqlite_enqueue_in_writes_the_row_hueys_enqueue_writes(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    huey = sqlite_huey("n", str(path), fsync=False)
    huey.storage.enqueue(b"from-huey")
    with SqliteDb(path, fsync=False).tx() as cur:
        huey.storage.enqueue_in(cur, [b"from-ledger"])
    rows = sqlite3.connect(path).execute("SELECT queue, data, priority FROM task ORDER BY id").fetchall()
    assert rows == [("n", b"from-huey", 0.0), ("n", b"from-ledger", 0.0)]
    assert huey.storage.dequeue() == b"from-huey" and huey.storage.dequeue() == b"from-ledger"
    assert huey.storage.dequeue() is None and huey.storage.queue_size() == 0  # a pop deletes the message


def test_redis_enqueue_target_pushes_like_hueys_enqueue(tmp_path: Path) -> None:
    url = require_redis()
    namespace = namespace_for(tmp_path)
    flush_redis(url, namespace)
    storage = redis_huey(f"ecr-cache-bot-{namespace}", url).storage
    command, key = storage.enqueue_target()
    client = redis.Redis.from_url(url)
    storage.enqueue(b"from-huey")
    client.eval("return redis.call(ARGV[1], KEYS[1], ARGV[2])", 1, key, command, b"from-ledger")
    assert storage.queue_size() == 2 and storage.enqueued_items() == [b"from-huey", b"from-ledger"]
    assert storage.dequeue() == b"from-huey" and storage.dequeue() == b"from-ledger"  # FIFO, popped = gone
    assert storage.queue_size() == 0
    flush_redis(url, namespace)


def test_serializer_round_trip_keeps_the_job_id_and_task_name(huey: Huey) -> None:
    run = _run_job(huey)
    job_id = "0123456789abcdef0123456789abcdef"
    message = huey.serialize_task(run.s(job_id))
    assert isinstance(message, bytes)  # what the ledger commits beside its row, byte for byte
    task = huey.deserialize_task(message)
    assert type(task) is run.task_class and task.name == TASK_NAME and task.args == (job_id,)
    other = huey.task(name="other")(lambda job_id: None)
    assert huey.deserialize_task(huey.serialize_task(other.s(job_id))).name == "other"


def test_waiting_args_finds_queued_and_scheduled_messages_and_forgets_popped_ones(huey: Huey) -> None:
    run = _run_job(huey)
    other = huey.task(name="other")(lambda job_id: None)
    for job_id in ("queued-1", "queued-2", "popped"):
        huey.enqueue(run.s(job_id))
    huey.enqueue(other.s("not-ours"))
    huey.add_schedule(run.s("deferred", delay=3600))  # a deferred job waits in huey's schedule (`_defer`)
    assert huey.scheduled_count() == 1 and huey.pending_count() == 4
    assert huey.dequeue().args == ("queued-1",)  # FIFO: the first one is popped by a worker
    assert waiting_args(huey, TASK_NAME) == {"queued-2", "popped", "deferred"}
    assert huey.dequeue().args == ("queued-2",)
    assert waiting_args(huey, TASK_NAME) == {"popped", "deferred"}


def _later(huey: Huey) -> datetime.datetime:
    """An hour from now, in huey's clock (naive UTC with `utc=True`, as `task.s(delay=...)` computes it)."""
    assert huey.utc
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=1)


def test_a_due_schedule_entry_is_read_once_and_leaves_the_schedule(huey: Huey) -> None:
    huey.add_schedule(_run_job(huey).s("soon", eta=_later(huey)))
    assert huey.read_schedule(_later(huey) - datetime.timedelta(minutes=1)) == []
    [due] = huey.read_schedule(_later(huey) + datetime.timedelta(seconds=1))
    assert due.args == ("soon",) and huey.scheduled_count() == 0 and waiting_args(huey, TASK_NAME) == set()


def test_the_queue_registers_its_task_and_builds_its_consumer_with_our_options(tmp_path: Path) -> None:
    queue = build_queue(backend_settings("sqlite", tmp_path), None, options_for(tmp_path))
    assert queue.task.task_class.__name__ == TASK_NAME
    assert queue.huey.deserialize_task(queue.huey.serialize_task(queue.task.s("j"))).name == TASK_NAME
    consumer = queue.consumer(workers=2)  # huey refuses options it does not know
    assert (consumer.workers, consumer.worker_type, consumer.periodic) == (2, "thread", False)
    assert (consumer.graceful_signal, consumer.shutdown_timeout, consumer.max_delay) == ("TERM", 20, 1.0)


HUEY_PRIVATE = re.compile(
    r"\b(?:INTO|FROM|UPDATE)\s+(?:task|schedule|kv)\b|huey\.(?:redis|schedule)\.|\.queue_key\b|\.schedule_key\b"
    r"|\.storage\.(?:conn|db|sql)\b|from huey\.storage import",
    re.IGNORECASE,
)


def test_only_huey_storage_knows_hueys_tables_keys_and_connections() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.name != "huey_storage.py" and HUEY_PRIVATE.search(path.read_text())
    ]
    assert offenders == []


def test_messages_queued_by_the_release_before_the_package_split_still_run(tmp_path: Path) -> None:
    """A message names its task as `<module>.<name>`; until bot/queue.py became a package, that module was
    `bot.queue`. A consumer that cannot resolve the name drops the message, so the name must not move with the
    code (else every delivery in flight over a deploy waits for the reaper)."""
    from huey.registry import Message

    queue = build_queue(backend_settings("sqlite", tmp_path), None, options_for(tmp_path))
    before = queue.huey.serializer.serialize(
        Message(
            "id-1",
            f"bot.queue.{TASK_NAME}",
            None,
            0,
            0,
            None,
            ("0123abcd",),
            {},
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    )
    task = queue.huey.deserialize_task(before)
    assert type(task) is queue.task.task_class and task.args == ("0123abcd",)
    assert (
        queue.huey.serializer.deserialize(queue.huey.serialize_task(queue.task.s("j"))).name == f"bot.queue.{TASK_NAME}"
    )
