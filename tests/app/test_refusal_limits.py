"""Refusals cannot spend an installation's write budget: written at most once per user and repository an hour
and a few per repository an hour, then a reaction, then nothing; a reaction only while the budget is low."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from github_double import AppHarness, GitHubDouble, Recorded, comment_payload
from job_fixtures import Clock, with_store
from runtime_fixtures import prefix_for, require_redis

from bot.app import refusals
from bot.app.refusals import RefusalLimits, decide
from bot.queue import refusals as refusal_store
from bot.queue.pacing import SqlitePacer
from bot.queue.refusals import RedisRefusals, SqliteRefusals
from bot.queue.storage import SqliteDb, redis_client

REPO = "octo/public"
OTHER = "octo/other"
SMALL = RefusalLimits(per_user=1, per_repo=2, per_installation=3, reactions_per_repo=3, reactions_per_installation=4)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(refusal_store, "now", fake)
    return fake


@pytest.fixture
def pacer(tmp_path: Path) -> SqlitePacer:
    return SqlitePacer(SqliteDb(tmp_path / "queue.db", fsync=False))  # the queue's store


@pytest.fixture
def harness(pacer: SqlitePacer, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppHarness]:
    monkeypatch.setattr(refusals, "LIMITS", SMALL)
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        for name in (REPO, OTHER):
            double.add_repo(name, {"README.md": "hi\n"}, permissions={"admin1": "admin"})
        h = AppHarness(double)
        with_store(h, pacer)
        yield h


def _writes(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests if r.is_write]


def _ask(h: AppHarness, user: str, issue: int, repo: str = REPO) -> tuple[list[str], str]:
    comment = h.double.add_comment(repo, issue, "/ecr-cache recreate", user)
    _, requests = h.deliver("issue_comment", comment_payload(h.double.repos[repo], comment, association="NONE"))
    (outcome,) = h.outcomes
    assert outcome.action == "refused"
    return _writes(requests), ",".join(comment.reactions)


def test_one_written_refusal_per_user_and_repository_then_reactions_then_nothing(harness: AppHarness) -> None:
    h = harness
    comment_write = f"POST /repos/{REPO}/issues/1/comments"
    assert _ask(h, "mallory", 1) == ([comment_write], "")
    # The same person again in the same hour, on other issues: a reaction, no comment.
    writes, reaction = _ask(h, "mallory", 2)
    assert reaction == "-1" and len(writes) == 1 and "/reactions" in writes[0]
    # Another person still gets the words once; then the repository's written refusals are spent.
    assert _ask(h, "trudy", 3)[0] == [f"POST /repos/{REPO}/issues/3/comments"]
    assert _ask(h, "eve", 4)[1] == "-1"
    assert _ask(h, "oscar", 5)[1] == "-1"  # third reaction of the repository
    # Reactions are capped too: past that, a refused command costs no write at all.
    assert _ask(h, "peggy", 6) == ([], "")
    assert len([c for c in h.double.bot_comments(REPO)]) == 2


def test_the_same_person_on_the_same_issue_is_not_answered_twice(harness: AppHarness) -> None:
    h = harness
    assert len(_ask(h, "mallory", 1)[0]) == 1
    assert _ask(h, "mallory", 1) == ([], "")  # the refusal on this issue already says it
    assert _ask(h, "mallory", 1) == ([], "")


def test_the_limits_are_per_installation_as_well(harness: AppHarness) -> None:
    h = harness
    for n, user in enumerate(["a1", "a2"], start=1):
        assert len(_ask(h, user, n)[0]) == 1 and not _ask(h, user, n + 10)[0][0].endswith("/comments")
    assert _ask(h, "b1", 1, OTHER)[0] == [f"POST /repos/{OTHER}/issues/1/comments"]  # third of the installation
    assert _ask(h, "b2", 2, OTHER)[1] == "-1"  # the installation's written refusals are spent


def test_a_low_request_budget_answers_with_a_reaction(harness: AppHarness, pacer: SqlitePacer) -> None:
    h = harness
    pacer.observe(1, remaining=pacer.limits.request_floor - 1, reset=time.time() + 3600)
    writes, reaction = _ask(h, "mallory", 1)
    assert reaction == "-1" and h.double.bot_comments(REPO) == [] and len(writes) == 1


def test_the_window_passes(tmp_path: Path, clock: Clock) -> None:
    limiter = SqliteRefusals(SqliteDb(tmp_path / "q.db", fsync=False), SMALL)
    assert limiter.take(1, REPO, "mallory", budget_low=False) == "comment"
    assert limiter.take(1, REPO, "Mallory", budget_low=False) == "reaction"  # logins are case-insensitive
    clock.at += 3600
    assert limiter.take(1, REPO, "mallory", budget_low=False) == "comment"


def _contract(limiter: SqliteRefusals | RedisRefusals) -> None:
    answers = [limiter.take(1, REPO, f"user{n}", budget_low=False) for n in range(6)]
    assert answers == ["comment", "comment", "reaction", "reaction", "reaction", "none"]
    assert limiter.take(2, REPO, "user0", budget_low=False) == "comment"  # another installation
    assert limiter.take(2, REPO, "user9", budget_low=True) == "reaction"


def test_sqlite_store(tmp_path: Path) -> None:
    _contract(SqliteRefusals(SqliteDb(tmp_path / "q.db", fsync=False), SMALL))


def test_redis_store(tmp_path: Path) -> None:
    client = redis_client(require_redis())
    prefix = prefix_for(tmp_path)
    try:
        _contract(RedisRefusals(client, SMALL, prefix))
        ttls = [int(client.ttl(key)) for key in client.keys(f"{prefix}refusal:*")]
        assert ttls and all(0 < t <= 3600 + 60 for t in ttls)  # nothing outlives its window for long
    finally:
        keys = client.keys(f"{prefix}refusal:*")
        if keys:
            client.delete(*keys)


@pytest.mark.parametrize(
    ("counts", "low", "expected"),
    [
        ((0, 0, 0, 0, 0), False, "comment"),
        ((1, 0, 0, 0, 0), False, "reaction"),
        ((0, 2, 0, 0, 0), False, "reaction"),
        ((0, 0, 3, 0, 0), False, "reaction"),
        ((0, 0, 0, 0, 0), True, "reaction"),
        ((1, 0, 0, 3, 0), False, "none"),
        ((1, 0, 0, 0, 4), False, "none"),
    ],
)
def test_decide(counts: tuple[int, int, int, int, int], low: bool, expected: str) -> None:
    assert decide(counts, SMALL, low) == expected
