"""Large installations: every write is reserved with the shared pacer before it is sent, a full window
reschedules the job (`RetryLater`) instead of sleeping, rate-limit headers feed the request budget, and a
repository with nothing to plan costs one read."""

from __future__ import annotations

import heapq
import io
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from github_double import GitHubDouble, Recorded
from github_double import appending_plan as fake_plan
from job_fixtures import Clock, context

from bot.app import handlers as jobs
from bot.app.context import JobContext
from bot.app.payloads import AnyJob, InstallJob, Job
from bot.core import planner
from bot.github.gateway import RetryLater
from bot.logs import configure_logging
from bot.queue import pacing
from bot.queue.counters import SqliteCounters
from bot.queue.pacing import PaceLimits, SqlitePacer
from bot.queue.storage import SqliteDb

SPEC = {"buildspec.yml": "version: 0.2\n"}
PLAIN = {"README.md": "docs\n", "src/main.py": "print('hi')\n"}


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(pacing, "now", fake)
    return fake


class Worker:
    """A worker process's shared store: a pacer (and counters) with the given limits, and the job context over
    the double that passes them to every job."""

    def __init__(self, tmp_path: Path, gh: GitHubDouble) -> None:
        self.tmp_path, self.gh = tmp_path, gh
        self.pacer: SqlitePacer | None = None
        self.counters: SqliteCounters | None = None

    def bind(self, limits: PaceLimits) -> SqlitePacer:
        """Give the worker a pacer with ``limits``; returns it."""
        db = SqliteDb(self.tmp_path / "queue.db", fsync=False)
        self.pacer, self.counters = SqlitePacer(db, limits), SqliteCounters(db)
        return self.pacer

    def ctx(self, submit: Callable[[str, Sequence[AnyJob]], None] | None = None) -> JobContext:
        """The context of one job."""
        return context(self.gh, pacer=self.pacer, counters=self.counters, submit=submit)


@pytest.fixture
def worker(tmp_path: Path, gh: GitHubDouble) -> Worker:
    return Worker(tmp_path, gh)


class SimulatedQueue:
    """Runs jobs in due order; a `RetryLater` puts the job back at now + delay (as the durable queue does)."""

    def __init__(self, double: GitHubDouble, clock: Clock, w: Worker) -> None:
        self.double, self.clock, self.worker = double, clock, w
        self.due: list[tuple[float, int, AnyJob]] = []
        self.seq = itertools.count()
        self.retries: list[str] = []
        self.write_times: list[float] = []  # the clock at every write GitHub received
        self.outcomes: list[jobs.Outcome] = []

    def submit(self, delivery_id: str, batch: Sequence[AnyJob]) -> None:
        for job in batch:
            heapq.heappush(self.due, (self.clock.at, next(self.seq), job))

    def drain(self) -> None:
        while self.due:
            eta, _, job = heapq.heappop(self.due)
            self.clock.at = max(self.clock.at, eta)
            seen = len(self.double.history)
            try:
                self.outcomes.extend(jobs.run(job, self.worker.ctx(self.submit)))
            except RetryLater as exc:
                assert exc.counts is False  # waiting for the pacer never uses up an attempt
                self.retries.append(exc.reason)
                heapq.heappush(self.due, (self.clock.at + exc.delay, next(self.seq), job))
            self.write_times += [self.clock.at for r in self.double.history[seen:] if r.is_write]


def writes(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests if r.is_write]


def test_large_installation_is_paced_under_both_windows_and_every_repository_gets_its_pr(
    gh: GitHubDouble, clock: Clock, worker: Worker
) -> None:
    limits = PaceLimits(per_minute=8, per_hour=40, request_floor=10)  # two publishes a minute, ten an hour
    worker.bind(limits)
    eligible = {f"octo/svc{i:02}" for i in range(24)}
    for i in range(600):
        name = f"octo/svc{i:02}" if i < 24 else f"octo/lib{i:03}"
        gh.add_repo(name, SPEC if name in eligible else PLAIN)
    queue = SimulatedQueue(gh, clock, worker)
    queue.submit("install-1", [InstallJob(1, "octo", "install-1")])
    start = clock.at
    queue.drain()

    assert sum(1 for r in gh.history if r.path == "/installation/repositories") == 6  # 600 repositories, paged
    assert sum(1 for r in gh.history if r.path.startswith("/repos/octo/lib")) == 576  # one tree read each
    assert {r for r in gh.repos if len(gh.pulls_for(r)) == 1} == eligible
    assert all(len(gh.pulls_for(r)) <= 1 for r in gh.repos)
    assert len(queue.write_times) == 4 * len(eligible)  # tree, commit, ref, pull request: nothing else
    for t in queue.write_times:
        assert sum(1 for u in queue.write_times if t - 60 < u <= t) <= limits.per_minute
        assert sum(1 for u in queue.write_times if t - 3600 < u <= t) <= limits.per_hour
    assert queue.retries and set(queue.retries) == {"content-creation pacing"}
    # 96 writes at 40 an hour take more than two hours of (simulated) time, never a sleeping worker.
    assert clock.at - start > 2 * 3600


def test_a_publish_that_does_not_fit_sends_nothing(gh: GitHubDouble, clock: Clock, worker: Worker) -> None:
    pacer = worker.bind(PaceLimits(per_minute=8, per_hour=500))
    gh.add_repo("octo/app", SPEC)
    assert pacer.reserve(1, cost=5) == 0.0  # another worker took five of the eight writes of this minute
    with pytest.raises(RetryLater, match="pacing"):
        jobs.run(Job("sync", 1, "octo/app", "p1", {"default_branch": "main"}), worker.ctx())
    assert writes(gh.requests) == [] and gh.pulls_for("octo/app") == []
    clock.at += 61
    (outcome,) = jobs.run(Job("sync", 1, "octo/app", "p1", {"default_branch": "main"}), worker.ctx())
    assert outcome.action == "opened"


def test_a_write_outside_a_publish_reserves_its_own_slot(gh: GitHubDouble, clock: Clock, worker: Worker) -> None:
    pacer = worker.bind(PaceLimits(per_minute=4, per_hour=500))
    gh.add_repo("octo/app", SPEC)
    f = worker.ctx()
    jobs.run(Job("sync", 1, "octo/app", "s", {"default_branch": "main"}), f)  # 4 writes: the minute is full
    (pull,) = gh.pulls_for("octo/app")
    gh.close_pull("octo/app", pull.number)
    gh.reset_requests()
    closed = Job("pr_closed", 1, "octo/app", "c", {"number": pull.number, "merged": False})
    with pytest.raises(RetryLater):
        jobs.run(closed, f)
    assert writes(gh.requests) == [] and gh.bot_comments("octo/app") == []
    clock.at += 61
    jobs.run(closed, f)
    assert len(gh.bot_comments("octo/app")) == 1 and "ecr-cache/setup" not in gh.repos["octo/app"].refs
    # the comment and the branch deletion took one slot each: two of the four are free until the minute passes
    assert pacer.reserve(1, cost=3) == pytest.approx(60.0, abs=0.01) and pacer.reserve(1, cost=2) == 0.0


def test_without_a_pacer_jobs_write_as_before(gh: GitHubDouble, worker: Worker) -> None:
    assert worker.ctx().pacer is None
    gh.add_repo("octo/app", SPEC)
    (outcome,) = jobs.run(Job("sync", 1, "octo/app", "s", {"default_branch": "main"}), worker.ctx())
    assert outcome.action == "opened" and len(writes(gh.requests)) == 4


def test_rate_limit_headers_feed_the_budget_and_background_work_waits(
    gh: GitHubDouble, clock: Clock, worker: Worker
) -> None:
    pacer = worker.bind(PaceLimits(request_floor=100))
    for name in ("octo/a", "octo/b"):
        gh.add_repo(name, PLAIN)
    reset = str(int(clock.at) + 900)
    gh.response_headers = {"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": reset}
    jobs.run(Job("sync", 1, "octo/a", "s1", {"default_branch": "main"}), worker.ctx())
    assert pacer.budget_wait(1) == 0.0  # a healthy budget
    gh.response_headers = {"X-RateLimit-Remaining": "60", "X-RateLimit-Reset": reset}
    jobs.run(Job("sync", 1, "octo/a", "s2", {"default_branch": "main"}), worker.ctx())
    assert 890 < pacer.budget_wait(1) <= 901
    gh.reset_requests()
    background = Job(
        "sync", 1, "octo/b", "i/repositories", {"trigger": "install", "default_branch": "main", "total": 2}
    )
    with pytest.raises(RetryLater, match="budget"):
        jobs.run(background, worker.ctx())
    assert gh.requests == []  # not even the token: the floor is kept for pushes and commands
    (outcome,) = jobs.run(Job("sync", 1, "octo/b", "push", {"trigger": "push", "default_branch": "main"}), worker.ctx())
    assert outcome.action == "already"


@pytest.mark.parametrize("files", [PLAIN, {"docs/guide.md": "x\n", "package.json": "{}\n"}])
def test_a_repository_without_a_buildspec_costs_one_read(
    gh: GitHubDouble, files: dict[str, str], worker: Worker
) -> None:
    gh.add_repo("octo/plain", files)
    gh.reset_requests()
    (outcome,) = jobs.run(
        Job("sync", 1, "octo/plain", "d", {"trigger": "install", "default_branch": "main"}), worker.ctx()
    )
    assert outcome.action == "already"
    assert [str(r) for r in gh.requests] == [
        "POST /app/installations/1/access_tokens",
        "GET /repos/octo/plain/git/trees/main",
    ]


@pytest.mark.parametrize("extra", [{"Dockerfile": "FROM alpine\n"}, {".github/ecr-cache.yml": "region: eu-west-1\n"}])
def test_a_dockerfile_or_repo_config_still_gets_the_state_read(
    gh: GitHubDouble, extra: dict[str, str], worker: Worker
) -> None:
    gh.add_repo("octo/app", {**PLAIN, **extra})
    gh.reset_requests()
    jobs.run(Job("sync", 1, "octo/app", "d", {"trigger": "install", "default_branch": "main"}), worker.ctx())
    assert "POST /graphql EcrCacheState" in [str(r) for r in gh.requests]


def test_fan_out_progress_is_logged_with_done_and_total(gh: GitHubDouble, clock: Clock, worker: Worker) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    worker.bind(PaceLimits())
    for i in range(120):
        gh.add_repo(f"octo/r{i:03}", SPEC if i % 40 == 0 else PLAIN)
    queue = SimulatedQueue(gh, clock, worker)
    queue.submit("inst", [InstallJob(1, "octo", "inst")])
    queue.drain()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    progress = [(x["done"], x["total"]) for x in lines if x["event"] == "install.progress"]
    assert progress == [(50, 120), (100, 120), (120, 120)]
    (fan,) = [x for x in lines if x["event"] == "install.fanout"]
    assert (fan["repositories"], fan["preview"]) == (120, False)


def test_the_loop_without_a_queue_logs_progress_too(gh: GitHubDouble, worker: Worker) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    for i in range(3):
        gh.add_repo(f"octo/r{i}", PLAIN)
    started = time.monotonic()
    jobs.run(InstallJob(1, "octo", "loop-1"), worker.ctx())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["done"], x["total"]) for x in lines if x["event"] == "install.progress"] == [(3, 3)]
    assert time.monotonic() - started < 5


def test_a_graphql_mutation_is_a_write_and_a_graphql_query_is_not(
    gh: GitHubDouble, clock: Clock, worker: Worker
) -> None:
    pacer = worker.bind(PaceLimits(per_minute=4, per_hour=500))
    gh.add_repo("octo/app", SPEC, permissions={"dev": "write"})
    comment = gh.add_comment("octo/app", 5, "/ecr-cache help", "dev")
    data = {
        "command": "help",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": 5,
        "user": "dev",
        "comment_node_id": comment.node_id,
        "issue_node_id": "I_octo/app#5",
    }
    assert pacer.reserve(1, cost=4) == 0.0  # the minute is full
    with pytest.raises(RetryLater):
        jobs.run(Job("command", 1, "octo/app", "h", data), worker.ctx())
    assert "POST /graphql EcrCacheState" in [str(r) for r in gh.requests]  # reads went out
    assert writes(gh.requests) == [] and gh.bot_comments("octo/app") == [] and comment.reactions == []
    clock.at += 61
    jobs.run(Job("command", 1, "octo/app", "h", data), worker.ctx())
    assert [str(r) for r in gh.requests if r.is_write] == ["POST /graphql EcrCacheReply"]
    assert len(gh.bot_comments("octo/app", 5)) == 1 and comment.reactions == ["eyes"]


def test_under_the_budget_floor_pushes_and_commands_write_and_fan_out_syncs_wait(
    gh: GitHubDouble, clock: Clock, worker: Worker
) -> None:
    pacer = worker.bind(PaceLimits(request_floor=200))
    for name in ("octo/a", "octo/b", "octo/c"):
        gh.add_repo(name, SPEC, permissions={"dev": "write"})
    gh.response_headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "60",
        "X-RateLimit-Reset": str(int(clock.at) + 900),
    }
    (pushed,) = jobs.run(Job("sync", 1, "octo/a", "p", {"trigger": "push", "default_branch": "main"}), worker.ctx())
    assert pushed.action == "opened" and len(gh.pulls_for("octo/a")) == 1
    assert pacer.budget_wait(1) == 901.0  # the reads recorded a budget under the floor, reset in 900 s
    comment = gh.add_comment("octo/b", 5, "/ecr-cache", "dev")
    data = {
        "command": "open",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": 5,
        "user": "dev",
        "comment_node_id": comment.node_id,
        "issue_node_id": "I_octo/b#5",
    }
    (commanded,) = jobs.run(Job("command", 1, "octo/b", "c", data), worker.ctx())
    assert commanded.action == "opened" and len(gh.bot_comments("octo/b", 5)) == 1
    background = Job("sync", 1, "octo/c", "i", {"trigger": "install", "default_branch": "main", "total": 1})
    with pytest.raises(RetryLater, match="budget"):
        jobs.run(background, worker.ctx())
    assert gh.pulls_for("octo/c") == []
    gh.response_headers = {**gh.response_headers, "X-RateLimit-Remaining": "0"}
    gh.commit_files("octo/a", "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    with pytest.raises(RetryLater, match="budget"):  # nothing left at all: even a push waits for the reset
        jobs.run(Job("sync", 1, "octo/a", "p2", {"trigger": "push", "default_branch": "main"}), worker.ctx())
