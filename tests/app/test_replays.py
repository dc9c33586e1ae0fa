"""A captured signed delivery sent again with a fresh X-GitHub-Delivery: each comment is answered at most once.

The signature covers the body, not the delivery header, so commands are deduplicated on what GitHub signs:
the comment's id (tests/test_dedupe.py covers deliveries)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import responses
from github_double import AppHarness, GitHubDouble, comment_payload
from job_fixtures import context, with_store
from runtime_fixtures import backend_settings, options_for, prefix_for, require_redis

from bot.app import handlers as jobs
from bot.app.events import route
from bot.queue.dedupe import RedisCommandClaims, SqliteCommandClaims
from bot.queue.durable import build_queue
from bot.queue.pacing import SqlitePacer
from bot.queue.storage import SqliteDb, redis_client

REPO = "octo/shop"
FILES = {
    "buildspec.yml": (
        "version: 0.2\nenv:\n  variables:\n    REGISTRY: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n"
        "phases:\n  pre_build:\n    commands:\n      - aws ecr get-login-password | docker login "
        "--username AWS --password-stdin $REGISTRY\n  build:\n    commands:\n"
        "      - docker build -t $REGISTRY/shop:latest .\n      - docker push $REGISTRY/shop:latest\n"
    ),
    "Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n",
    "requirements.txt": "flask\n",
}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[AppHarness]:
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        double.add_repo(REPO, FILES, permissions={"admin1": "admin", "guest": "read"})
        # As in a worker of the durable queue: the queue's store (SQLite here) is the jobs' shared store.
        h = AppHarness(double)
        with_store(h, SqlitePacer(SqliteDb(tmp_path / "queue.db", fsync=False)))
        yield h


def _commits(requests: Sequence[object]) -> int:
    return sum(1 for r in requests if str(r).endswith("/git/commits") and str(r).startswith("POST"))


def test_recreate_replayed_with_fresh_delivery_ids_runs_once(harness: AppHarness) -> None:
    h, gh = harness, harness.double
    comment = gh.add_comment(REPO, 3, "/ecr-cache recreate", "admin1")
    payload = comment_payload(gh.repos[REPO], comment)
    status, requests = h.deliver("issue_comment", payload, delivery="original")
    assert status == 202 and _commits(requests) == 1
    assert [o.action for o in h.outcomes] == ["opened"]
    for replay in ("replay-1", "replay-2", "replay-3"):
        status, requests = h.deliver("issue_comment", payload, delivery=replay)
        assert status == 202  # signed: accepted, but the job answers nothing
        assert requests == [], [str(r) for r in requests]
        assert [o.action for o in h.outcomes] == ["duplicate"]
    assert len(gh.pulls_for(REPO)) == 1 and len(gh.bot_comments(REPO, 3)) == 1
    assert comment.reactions == ["eyes"]


def test_a_redelivery_of_the_same_delivery_still_runs_its_job_again(harness: AppHarness) -> None:
    """A job re-run under its own delivery id (a retry, a redriven dead letter) is not a replay."""
    h, gh = harness, harness.double
    comment = gh.add_comment(REPO, 4, "/ecr-cache preview", "admin1")
    (job,) = route("issue_comment", comment_payload(gh.repos[REPO], comment), "first").jobs
    h.queue.submit("first", [job])
    h.queue.submit("first-again", [job])  # the same job (its delivery id "first") queued a second time
    h.queue.drain()
    assert [o.action for o in h.outcomes] == ["previewed", "previewed"]
    assert len(gh.bot_comments(REPO, 4)) == 1  # the reply is edited in place, never duplicated


def test_a_refusal_is_not_written_again_for_a_replay(harness: AppHarness) -> None:
    h, gh = harness, harness.double
    comment = gh.add_comment(REPO, 5, "/ecr-cache recreate", "guest")
    payload = comment_payload(gh.repos[REPO], comment, association="NONE")
    h.deliver("issue_comment", payload, delivery="g-1")
    assert [o.action for o in h.outcomes] == ["refused"]
    for replay in ("g-2", "g-3"):
        status, requests = h.deliver("issue_comment", payload, delivery=replay)
        assert requests == [] and [o.action for o in h.outcomes] == ["duplicate"]


def test_a_command_older_than_the_claims_last_is_not_run(harness: AppHarness) -> None:
    """Claims expire; a comment older than they last is never answered, so a late replay finds nothing."""
    h, gh = harness, harness.double
    comment = gh.add_comment(REPO, 6, "/ecr-cache recreate", "admin1")
    payload = comment_payload(gh.repos[REPO], comment)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    payload["comment"]["created_at"] = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    status, requests = h.deliver("issue_comment", payload, delivery="late")
    assert status == 202 and requests == [] and [o.action for o in h.outcomes] == ["stale"]
    payload["comment"]["created_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    h.deliver("issue_comment", payload, delivery="fresh")
    assert [o.action for o in h.outcomes] == ["opened"]


def _claims_contract(claims: SqliteCommandClaims | RedisCommandClaims, clock: list[float]) -> None:
    assert claims.claim(7, 101, "d1") is True
    assert claims.claim(7, 101, "d1") is True  # the owner's own retry
    assert claims.claim(7, 101, "d2") is False  # a replay
    assert claims.claim(8, 101, "d2") is True  # another installation's comment id space
    assert claims.claim(7, 102, "d2") is True


def test_sqlite_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_800_000_000.0]
    monkeypatch.setattr("bot.queue.dedupe.now", lambda: clock[0])
    claims = SqliteCommandClaims(SqliteDb(tmp_path / "q.db", fsync=False), ttl=100)
    _claims_contract(claims, clock)
    clock[0] += 101
    assert claims.claim(7, 101, "d3") is True  # expired: a new owner


def test_redis_claims(tmp_path: Path) -> None:
    client = redis_client(require_redis())
    claims = RedisCommandClaims(client, ttl=100, prefix=prefix_for(tmp_path))
    try:
        _claims_contract(claims, [0.0])
        assert 0 < int(client.ttl(f"{prefix_for(tmp_path)}command:7:101")) <= 100
    finally:
        client.delete(*client.keys(f"{prefix_for(tmp_path)}command:*"))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_durable_queue_answers_a_replayed_comment_once(backend: str, tmp_path: Path) -> None:
    """The claim lives in the queue's store, which every worker process and thread of a deployment shares."""
    settings = backend_settings(backend, tmp_path)
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        double.add_repo(REPO, FILES, permissions={"admin1": "admin"})
        app = AppHarness(double)  # only for its gateway factory (the double's App credentials)
        outcomes: list[jobs.Outcome] = []
        queue = build_queue(
            settings,
            lambda job: outcomes.extend(jobs.run(job, context(app.factory, pacer=queue.pacer, store=True))),
            options_for(tmp_path),
        )
        comment = double.add_comment(REPO, 9, "/ecr-cache recreate", "admin1")
        payload = comment_payload(double.repos[REPO], comment)
        ids: list[str] = []
        for delivery in ("orig", "again-1", "again-2"):
            result = queue.submit(delivery, route("issue_comment", payload, delivery).jobs)
            assert not result.duplicate  # fresh delivery ids pass the delivery dedupe ...
            ids += result.job_ids
        for job_id in ids:
            queue.execute(job_id)
    assert [o.action for o in outcomes] == ["opened", "duplicate", "duplicate"]  # ... the comment's claim does not
    assert len(double.pulls_for(REPO)) == 1 and len(double.bot_comments(REPO, 9)) == 1
