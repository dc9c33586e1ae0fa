"""What a job takes from its context (no module globals): claims, refusal counters, the pacer's budget, the retry
policy and the counters; on the in-memory GitHub."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fake_gateway import FakeGitHub
from github_double import appending_plan

from bot.app import handlers as jobs
from bot.app.context import JobContext, RefusalAnswer
from bot.app.payloads import Job
from bot.core import planner
from bot.github.gateway import GitHubError, RetryLater
from bot.logs import configure_logging

REPO = "octo/app"
FILES = {"buildspec.yml": "version: 0.2\n"}


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", appending_plan)


@pytest.fixture
def hub() -> FakeGitHub:
    hub = FakeGitHub()
    hub.add_repo(REPO, FILES, permissions={"dev": "write"})
    return hub


def command(hub: FakeGitHub, ctx: JobContext, user: str = "dev", name: str = "open") -> jobs.Outcome:
    comment = hub.add_comment(REPO, 5, f"/ecr-cache {name}", user)
    data = {"command": name, "unknown": None, "comment_id": comment.id, "issue_number": 5, "user": user}
    (outcome,) = jobs.run(Job("command", 1, REPO, f"c{comment.id}", data), ctx)
    return outcome


class Claims:
    """Comment ids another delivery already answers."""

    def __init__(self, taken: set[int]) -> None:
        self.taken = taken
        self.asked: list[tuple[int, int, str]] = []

    def claim(self, installation_id: int, comment_id: int, owner: str) -> bool:
        self.asked.append((installation_id, comment_id, owner))
        return comment_id not in self.taken


class Limiter:
    """Always the same answer."""

    def __init__(self, answer: RefusalAnswer) -> None:
        self.answer = answer
        self.asked: list[tuple[int, str, str, bool]] = []

    def take(self, installation_id: int, repo: str, user: str, *, budget_low: bool) -> RefusalAnswer:
        self.asked.append((installation_id, repo, user, budget_low))
        return self.answer


class Pacer:
    """A pacer whose request budget waits ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        self.wait = wait

    @property
    def limits(self) -> Any:
        return None

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        return 0.0

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        pass

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        return self.wait

    def progress(self, installation_id: int, key: str, total: int) -> int:
        return 1


def test_a_comment_claimed_by_another_delivery_is_not_answered(hub: FakeGitHub) -> None:
    claims = Claims(taken={1000})
    outcome = command(hub, JobContext(hub, claims=claims))
    assert outcome.action == "duplicate" and hub.writes == []
    assert claims.asked == [(1, 1000, "c1000")]
    assert command(hub, JobContext(hub, claims=claims)).action == "opened"  # comment 1001 is this job's


@pytest.mark.parametrize(("answer", "writes"), [("comment", ["comment"]), ("reaction", ["react"]), ("none", [])])
def test_the_refusal_limiter_of_the_context_decides_the_answer(
    hub: FakeGitHub, answer: RefusalAnswer, writes: list[str]
) -> None:
    limiter = Limiter(answer)
    outcome = command(hub, JobContext(hub, refusals=limiter, pacer=Pacer(wait=30.0)), user="stranger")
    assert outcome.action == "refused" and [w for w, *_ in hub.writes] == writes
    assert limiter.asked == [(1, REPO, "stranger", True)]  # the pacer's budget is low


def test_without_a_limiter_every_refusal_is_written(hub: FakeGitHub) -> None:
    assert command(hub, JobContext(hub), user="stranger").action == "refused"
    assert [w for w, *_ in hub.writes] == ["comment"]


def test_background_work_waits_for_the_pacers_budget_and_pushes_do_not(hub: FakeGitHub) -> None:
    ctx = JobContext(hub, pacer=Pacer(wait=100.0))
    background = Job("sync", 1, REPO, "i", {"trigger": "install", "default_branch": "main", "total": 1})
    with pytest.raises(RetryLater, match="budget") as info:
        jobs.run(background, ctx)
    assert 100.0 <= info.value.delay <= 131.0 and hub.writes == [] and hub.seen == set()
    (pushed,) = jobs.run(Job("sync", 1, REPO, "p", {"trigger": "push", "default_branch": "main"}), ctx)
    assert pushed.action == "opened"


@pytest.mark.parametrize(("final", "replied"), [(True, True), (False, False)])
def test_the_context_retry_policy_decides_whether_a_failure_is_explained(
    hub: FakeGitHub, final: bool, replied: bool
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise GitHubError(403, "Resource not accessible by integration")

    gateway = hub(1)
    gateway.commit = broken  # type: ignore[method-assign]
    ctx = JobContext(lambda installation_id, *, interactive=False: gateway, final=lambda exc: final)
    with pytest.raises(GitHubError):
        command(hub, ctx)
    assert (len(hub.bot_comments(REPO, 5)) == 1) is replied
    if replied:
        assert "GitHub answered **403**" in hub.bot_comments(REPO, 5)[0].body


def test_the_gateway_knows_whether_a_person_waits(hub: FakeGitHub) -> None:
    given: list[bool] = []

    def gateways(installation_id: int, *, interactive: bool = False) -> Any:
        given.append(interactive)
        return hub(installation_id, interactive=interactive)

    ctx = JobContext(gateways)
    jobs.run(Job("sync", 1, REPO, "p", {"trigger": "push", "default_branch": "main"}), ctx)
    jobs.run(Job("sync", 1, REPO, "i", {"trigger": "install", "default_branch": "main"}), ctx)
    command(hub, ctx, name="help")
    assert given == [True, False, True]


def test_preview_outcomes_are_counted_in_the_contexts_counters(hub: FakeGitHub) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)

    class Counters:
        def __init__(self) -> None:
            self.counts: dict[tuple[str, str], int] = {}

        def incr(self, name: str, amount: int = 1, **labels: str) -> None:
            key = (name, ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())))
            self.counts[key] = self.counts.get(key, 0) + amount

        def snapshot(self) -> dict[tuple[str, str], int]:
            return dict(self.counts)

    counters = Counters()
    job = Job(
        "sync",
        1,
        REPO,
        "inst",
        {"trigger": "install", "preview": True, "total": 1, "account": "octo", "default_branch": "main"},
    )
    (outcome,) = jobs.run(job, JobContext(hub, counters=counters))
    assert outcome.action == "would_open"
    assert list(counters.counts.values()) == [1] and 'result="would_open"' in next(iter(counters.counts))[1]
    (summary,) = [x for x in map(json.loads, stream.getvalue().splitlines()) if x["event"] == "install.preview_summary"]
    assert summary["outcomes"] == {"would_open": 1}
