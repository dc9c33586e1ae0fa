"""Delivery dedupe: one winner per delivery id across threads and processes, expiry after the TTL."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from runtime_fixtures import backend_settings, prefix_for

from bot.queue.dedupe import Dedupe, RedisDedupe, SqliteDedupe
from bot.queue.storage import SqliteDb, redis_client


def _dedupe(backend: str, tmp_path: Path, ttl: float = 3600) -> Dedupe:
    settings = backend_settings(backend, tmp_path)
    if settings.redis_url:
        return RedisDedupe(redis_client(settings.redis_url), ttl, prefix_for(tmp_path))
    return SqliteDedupe(SqliteDb(Path(settings.data_dir) / "queue.db"), ttl)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_first_claim_wins_and_repeats_are_duplicates(backend: str, tmp_path: Path) -> None:
    dedupe = _dedupe(backend, tmp_path)
    assert dedupe.claim("a") is True
    assert dedupe.claim("a") is False
    assert dedupe.claim("b") is True


def test_concurrent_claims_have_exactly_one_winner(backend: str, tmp_path: Path) -> None:
    dedupe = _dedupe(backend, tmp_path)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: dedupe.claim(f"id-{i % 5}"), range(80)))
    assert results.count(True) == 5


def _claim_all(args: tuple[str, str, str | None, int]) -> list[str]:
    prefix, db_path, url, start = args
    dedupe: Dedupe = RedisDedupe(redis_client(url), prefix=prefix) if url else SqliteDedupe(SqliteDb(db_path))
    return [f"id-{i}" for i in range(start, start + 40) if dedupe.claim(f"id-{i % 30}")]


def test_claims_from_several_processes_have_one_winner_per_id(backend: str, tmp_path: Path) -> None:
    settings = backend_settings(backend, tmp_path)
    db_path = str(Path(settings.data_dir) / "queue.db")
    SqliteDb(db_path).ensure("x", ())
    jobs = [(prefix_for(tmp_path), db_path, settings.redis_url, start) for start in (0, 7, 13, 21)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        won = [claim for result in pool.map(_claim_all, jobs) for claim in result]
    assert len(won) == 30  # every one of the 30 ids was won once, by one process


def test_claim_expires_after_the_ttl(backend: str, tmp_path: Path) -> None:
    dedupe = _dedupe(backend, tmp_path, ttl=1)
    assert dedupe.claim("short") is True
    assert dedupe.claim("short") is False
    time.sleep(2.1)
    assert dedupe.claim("short") is True


def test_sqlite_purge_drops_only_expired_rows(tmp_path: Path) -> None:
    db = SqliteDb(tmp_path / "q.db")
    short, long = SqliteDedupe(db, ttl=0.2), SqliteDedupe(db, ttl=3600)
    short.claim("old")
    long.claim("new")
    time.sleep(0.3)
    assert short.purge() == 1
    assert long.claim("new") is False


def test_claims_and_limiter_live_on_the_queue_store_backend(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bot.queue.dedupe import RedisCommandClaims, SqliteCommandClaims, claims_in
    from bot.queue.refusals import RedisRefusals, SqliteRefusals, limiter_in

    db = SqliteDb(tmp_path / "queue.db")
    sqlite_store = SimpleNamespace(db=db)
    claims, limiter = claims_in(sqlite_store), limiter_in(sqlite_store)
    assert isinstance(claims, SqliteCommandClaims) and claims.db is db
    assert isinstance(limiter, SqliteRefusals) and limiter.db is db
    client = redis_client(str(backend_settings("redis", tmp_path).redis_url))
    redis_store = SimpleNamespace(client=client, prefix="p:")
    rclaims, rlimiter = claims_in(redis_store), limiter_in(redis_store)
    assert isinstance(rclaims, RedisCommandClaims) and rclaims.client is client and rclaims.prefix == "p:"
    assert isinstance(rlimiter, RedisRefusals) and rlimiter.client is client and rlimiter.prefix == "p:"
    assert claims_in(object()) is None and limiter_in(object()) is None
