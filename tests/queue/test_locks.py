"""Per-repository locks: exclusive, owner-checked release, expiry for killed workers; generations."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from runtime_fixtures import backend_settings, prefix_for

from bot.queue.locks import RedisLocks, SqliteLocks
from bot.queue.storage import SqliteDb, redis_client


@pytest.fixture(params=["sqlite", "redis"])
def locks(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteLocks | RedisLocks:
    settings = backend_settings(str(request.param), tmp_path)
    if settings.redis_url:
        return RedisLocks(redis_client(settings.redis_url), prefix_for(tmp_path))
    return SqliteLocks(SqliteDb(Path(settings.data_dir) / "queue.db"))


def test_only_one_holder_at_a_time(locks: SqliteLocks | RedisLocks) -> None:
    with ThreadPoolExecutor(12) as pool:
        tokens = list(pool.map(lambda _: locks.acquire("1:o/app", 30), range(12)))
    holders = [t for t in tokens if t is not None]
    assert len(holders) == 1
    assert locks.acquire("1:o/other", 30) is not None  # other repositories are independent


def test_release_needs_the_owner_token(locks: SqliteLocks | RedisLocks) -> None:
    token = locks.acquire("k", 30)
    assert token is not None
    assert locks.release("k", "not-the-owner") is False
    assert locks.acquire("k", 30) is None
    assert locks.release("k", token) is True
    assert locks.acquire("k", 30) is not None


def test_a_dead_holders_lock_expires(locks: SqliteLocks | RedisLocks) -> None:
    stale = locks.acquire("k", 0.3)
    assert stale is not None
    assert locks.acquire("k", 30) is None
    time.sleep(0.4)
    fresh = locks.acquire("k", 30)
    assert fresh is not None
    assert locks.release("k", stale) is False  # the late original cannot release the new owner's lock
    assert locks.acquire("k", 30) is None


def test_generations_count_up_per_key(locks: SqliteLocks | RedisLocks) -> None:
    assert locks.current_generation("g") == 0
    with ThreadPoolExecutor(8) as pool:
        seen = sorted(pool.map(lambda _: locks.bump("g"), range(20)))
    assert seen == list(range(1, 21))
    assert locks.current_generation("g") == 20
    assert locks.current_generation("other") == 0


def test_owner_can_extend_a_lock_others_cannot(locks: SqliteLocks | RedisLocks) -> None:
    token = locks.acquire("k", 0.3)
    assert token is not None
    assert locks.extend("k", "intruder", 30) is False
    assert locks.extend("k", token, 30) is True
    time.sleep(0.4)
    assert locks.acquire("k", 30) is None  # still held: the extension moved the expiry
