"""Prometheus text counters, stored in the queue's SQLite or Redis so every process adds up, and the text of
`/metrics` (`exposition`); the web app serves it. No Flask here: the route is the web's."""

from __future__ import annotations

import atexit
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis

from bot.queue.heartbeat import LIVE_WITHIN, Beat, live
from bot.queue.storage import KEY_PREFIX, SqliteDb, now

CONTENT_TYPE = "text/plain; version=0.0.4"

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, labels TEXT NOT NULL, "
    "value INTEGER NOT NULL, PRIMARY KEY (name, labels))",
)
REDIS_KEY = "counters"  # under the key prefix
DELIVERIES = "ecr_cache_bot_deliveries_total"
JOBS = "ecr_cache_bot_jobs_total"
RETRIES = "ecr_cache_bot_job_retries_total"
INSTALL_PREVIEW = "ecr_cache_bot_install_preview_repositories_total"

HELP = {
    "ecr_cache_bot_deliveries_total": "Webhook deliveries by outcome (accepted, duplicate, ...).",
    "ecr_cache_bot_jobs_total": "Jobs finished by outcome (succeeded, coalesced, failed, dead, ...).",
    "ecr_cache_bot_job_retries_total": "Job runs deferred for a retry, by reason class.",
    INSTALL_PREVIEW: "Repositories of a preview-mode install (no pull request opened), by installation, "
    "fan-out delivery and what would have happened.",
}

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str]) -> str:
    parts = []
    for key in sorted(labels):
        value = str(labels[key]).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{key}="{value}"')
    return ",".join(parts)


class Counters(Protocol):
    """Shared monotonically increasing counters."""

    def incr(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add `amount` to the counter `name{labels}`."""
        ...

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Every counter as {(name, rendered labels): value}."""
        ...


def incr_in(cur: sqlite3.Cursor, name: str, amount: int = 1, **labels: str) -> None:
    """Increment inside an open transaction (the queue counts in the same commit as the work)."""
    cur.execute(
        "INSERT INTO counters (name, labels, value) VALUES (?, ?, ?) "
        "ON CONFLICT(name, labels) DO UPDATE SET value = value + excluded.value",
        (name, _labels(labels), amount),
    )


def redis_field(name: str, **labels: str) -> str:
    """Hash field of one counter in Redis."""
    return f"{name}|{_labels(labels)}"


class SqliteCounters:
    """Counters table in the queue's SQLite file."""

    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure("counters", SQLITE_DDL)

    def incr(self, name: str, amount: int = 1, **labels: str) -> None:
        """Upsert-add."""
        with self.db.tx() as cur:
            incr_in(cur, name, amount, **labels)

    def snapshot(self) -> dict[tuple[str, str], int]:
        """All rows."""
        return {(n, lbl): int(v) for n, lbl, v in self.db.query("SELECT name, labels, value FROM counters")}


class RedisCounters:
    """One Redis hash, HINCRBY per counter."""

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.key = prefix + REDIS_KEY

    def incr(self, name: str, amount: int = 1, **labels: str) -> None:
        """HINCRBY."""
        self.client.hincrby(self.key, redis_field(name, **labels), amount)

    def snapshot(self) -> dict[tuple[str, str], int]:
        """HGETALL."""
        result: dict[tuple[str, str], int] = {}
        for field, value in self.client.hgetall(self.key).items():
            text = field.decode() if isinstance(field, bytes) else str(field)
            name, _, labels = text.partition("|")
            result[(name, labels)] = int(value)
        return result


# /metrics stays bounded whatever the store holds: labels that name one delivery are summed away (the
# install fan-out keeps them in the store to tally one install), and past MAX_SERIES label sets per counter the
# rest are summed into one `overflow="true"` series.
DROPPED_LABELS = frozenset({"delivery"})
MAX_SERIES = 200
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _exposed(labels: str) -> str:
    if not any(f'{name}="' in labels for name in DROPPED_LABELS):
        return labels
    return ",".join(m.group(0) for m in _LABEL.finditer(labels) if m.group(1) not in DROPPED_LABELS)


def render(snapshot: Mapping[tuple[str, str], int]) -> str:
    """Prometheus text exposition format 0.0.4, with bounded label sets."""
    series: dict[str, dict[str, int]] = {}
    for (name, labels), value in snapshot.items():
        exposed = series.setdefault(name, {})
        key = _exposed(labels)
        exposed[key] = exposed.get(key, 0) + value
    lines: list[str] = []
    for name in sorted(series):
        lines.append(f"# HELP {name} {HELP.get(name, name)}")
        lines.append(f"# TYPE {name} counter")
        ordered = sorted(series[name].items())
        kept, rest = ordered[:MAX_SERIES], ordered[MAX_SERIES:]
        if rest:
            kept.append(('overflow="true"', sum(v for _, v in rest)))
        for labels, value in kept:
            lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")
    return "\n".join(lines) + "\n" if lines else ""


# Unauthenticated rejections (bad signature, oversized, timed out) and ignored deliveries are counted in memory
# and written to the store at most once per FLUSH_EVERY seconds per process (and when /metrics is read, and at
# exit): each one must not cost a durable write, which anyone could otherwise make the service do at line rate.
FLUSH_EVERY = 10.0
_pending_lock = threading.Lock()
_pending: dict[int, tuple[Counters, Counter[tuple[str, Labels]]]] = {}
_last_flush = [time.monotonic()]


def count_later(counters: Counters | None, name: str, **labels: str) -> None:
    """Count one request in memory for `counters` (None: not counted); the store sees the sum on the next flush."""
    if counters is None:
        return
    with _pending_lock:
        _pending.setdefault(id(counters), (counters, Counter()))[1][(name, tuple(sorted(labels.items())))] += 1
        due = time.monotonic() - _last_flush[0] >= FLUSH_EVERY
    if due:
        flush_pending()


def flush_pending() -> None:
    """Write the in-memory counts to their stores (a failed write keeps them for the next flush)."""
    with _pending_lock:
        taken = list(_pending.values())
        _pending.clear()
        _last_flush[0] = time.monotonic()
    for counters, counts in taken:
        for (name, labels), amount in counts.items():
            try:
                counters.incr(name, amount, **dict(labels))
            except Exception:  # the store is down: keep the count, /readyz reports the store
                with _pending_lock:
                    _pending.setdefault(id(counters), (counters, Counter()))[1][(name, labels)] += amount


atexit.register(flush_pending)


def app_counters(extensions: Mapping[str, Any]) -> Counters | None:
    """A web app's counters (its `app.extensions`): its own `ecr_cache_bot.counters`, else its queue's."""
    found = extensions.get("ecr_cache_bot.counters")
    if found is None:  # the web app keeps its queue there; a durable queue carries its counters
        found = getattr(extensions.get("ecr_cache_bot.queue"), "counters", None)
    return found


def render_gauges(gauges: Mapping[str, tuple[str, int]]) -> str:
    """Gauges {name: (help, value)} in Prometheus text format."""
    lines = []
    for name, (text, value) in sorted(gauges.items()):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n" if lines else ""


def queue_gauges(queue: object) -> dict[str, tuple[str, int]]:
    """The queue's active and dead job counts as gauges (none without a durable queue, or when its store fails)."""
    ledger = getattr(queue, "ledger", None)
    if ledger is None:
        return {}
    try:
        return {
            "ecr_cache_bot_jobs_active": ("Jobs queued, scheduled or running.", ledger.active_count()),
            "ecr_cache_bot_jobs_dead": ("Jobs in the dead-letter list.", ledger.dead_count()),
        }
    except Exception:  # a storage hiccup must not break the counters; the gauges are simply left out
        return {}


WORKERS_LIVE = "ecr_cache_bot_workers_live"
HEARTBEAT_AGE = "ecr_cache_bot_worker_heartbeat_age_seconds"


def render_workers(beats: Sequence[Beat], at: float) -> str:
    """The live-worker count and each known worker's heartbeat age, in Prometheus text format."""
    lines = [
        f"# HELP {WORKERS_LIVE} Workers that reported a heartbeat in the last {LIVE_WITHIN:.0f} s.",
        f"# TYPE {WORKERS_LIVE} gauge",
        f"{WORKERS_LIVE} {len(live(list(beats), at))}",
    ]
    if beats:
        lines += [
            f"# HELP {HEARTBEAT_AGE} Seconds since each worker's last heartbeat (a stopped one leaves; "
            "a dead one ages).",
            f"# TYPE {HEARTBEAT_AGE} gauge",
        ]
        for beat in sorted(beats, key=lambda b: b.worker_id):
            labels = _labels({"worker": beat.worker_id, "host": beat.host, "pid": str(beat.pid)})
            lines.append(f"{HEARTBEAT_AGE}{{{labels}}} {beat.age(at):.3f}")
    return "\n".join(lines) + "\n"


def worker_gauges(queue: object) -> str:
    """The workers' heartbeats of the queue's store in Prometheus text ("" without one, or when it fails)."""
    store = getattr(queue, "heartbeats", None)
    if store is None:
        return ""
    try:
        return render_workers(store.all(), now())
    except Exception:  # a storage hiccup must not break the counters; the gauges are simply left out
        return ""


def exposition(counters: Counters | None, queue: object) -> str:
    """The body of `/metrics` (`CONTENT_TYPE`): the counters, after writing the in-memory counts to their stores,
    then the queue's gauges and its workers' heartbeats."""
    flush_pending()
    body = render(counters.snapshot()) if counters is not None else ""
    return body + render_gauges(queue_gauges(queue)) + worker_gauges(queue)
