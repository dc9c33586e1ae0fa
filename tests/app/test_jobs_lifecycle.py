"""Stateful property test: random event sequences against the in-memory GitHub keep the lifecycle rules.

Rules checked after every step, on GitHub's state: one open bot PR at most; a commit someone else pushed to
the bot branch stays on it until a `recreate`; a PR closed without merging is not reopened by pushes; the bot
never acts for a read-only commenter; every bot commit sits directly on the default branch; a hidden comment
key appears once per issue; an open, bot-only PR carries exactly the planner's edits of the current plan.
"""

from __future__ import annotations

import re

import pytest
from fake_gateway import BOT, FakeGitHub, FakePull, FakeRepo
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot import identity
from bot.app import handlers as jobs
from bot.app.context import JobContext
from bot.app.payloads import Job
from bot.core import planner
from bot.core.model import FileEdit, Options, Plan, RepoSnapshot

REPO = "octo/app"
BRANCH = "ecr-cache/setup"
MARK = "# ecr-cache\n"


def fake_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    spec = snapshot.text("buildspec.yml")
    if spec is None or spec.endswith(MARK):
        return Plan(buildspecs=("buildspec.yml",))
    return Plan(
        edits=(FileEdit("buildspec.yml", "modify", spec + MARK, spec, ("cache",)),), buildspecs=("buildspec.yml",)
    )


class Lifecycle(RuleBasedStateMachine):
    """One repository, one App process, humans doing things in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.gh = FakeGitHub()
        self.gh.add_repo(
            REPO,
            {"buildspec.yml": "version: 0.2\n", "README.md": "x\n"},
            permissions={"writer": "write", "reader": "read"},
        )
        self.ctx = JobContext(self.gh)
        self.version = 0
        self.human_commits: set[str] = set()
        self.opted_out = False
        self.issue = 100
        self.run(Job("sync", 1, REPO, "start"))
        assert len(self.open_pulls()) == 1, "the stand-in planner must be in effect"

    def run(self, job: Job) -> list[jobs.Outcome]:
        return jobs.run(job, self.ctx)

    @property
    def repo(self) -> FakeRepo:
        return self.gh.repo(REPO)

    def open_pulls(self) -> list[FakePull]:
        return self.gh.open_pulls(REPO)

    @rule()
    def push_relevant(self) -> None:
        self.version += 1
        self.gh.push(REPO, "main", {"buildspec.yml": f"version: 0.2\n# v{self.version}\n"})
        before = len(self.repo.pulls)
        self.run(Job("sync", 1, REPO, f"push-{self.version}", {"default_branch": "main"}))
        if self.opted_out:
            assert len(self.repo.pulls) == before, "a push reopened an opted-out PR"

    @rule()
    def push_irrelevant(self) -> None:
        self.version += 1
        self.gh.push(REPO, "main", {"README.md": f"v{self.version}\n"})

    @rule()
    def human_pushes_to_the_bot_branch(self) -> None:
        if BRANCH in self.repo.refs:
            self.human_commits.add(self.gh.push(REPO, BRANCH, {"notes.txt": "mine\n"}))

    @rule(merged=st.booleans())
    def human_closes_the_pr(self, merged: bool) -> None:
        pulls = self.open_pulls()
        if not pulls:
            return
        (pull,) = pulls
        if merged:
            self.gh.merge_pull(REPO, pull.number)
            self.human_commits.clear()  # merged into main: nothing left to protect on the branch
        else:
            self.gh.close_pull(REPO, pull.number)
            self.opted_out = True
        self.run(Job("pr_closed", 1, REPO, f"close-{pull.number}", {"number": pull.number, "merged": merged}))

    @rule(
        user=st.sampled_from(["writer", "reader"]),
        command=st.sampled_from(["open", "recreate", "preview"]),
        delivered=st.booleans(),
    )
    def someone_comments(self, user: str, command: str, delivered: bool) -> None:
        self.issue += 1
        body = "/ecr-cache" if command == "open" else f"/ecr-cache {command}"
        comment = self.gh.add_comment(REPO, self.issue, body, user)
        refs_before = dict(self.repo.refs)
        pulls_before = [(p.number, p.state, p.body) for p in self.repo.pulls]
        data = {
            "command": command,
            "unknown": None,
            "comment_id": comment.id,
            "issue_number": self.issue,
            "user": user,
            "default_branch": "main",
        }
        if delivered:  # what a fresh delivery carries: GraphQL ids (one mutation replies) and the association
            data.update(
                comment_node_id=comment.node_id, issue_node_id=f"I_{REPO}#{self.issue}", association="COLLABORATOR"
            )
        self.run(Job("command", 1, REPO, f"c-{comment.id}", data))
        if user == "reader" or command == "preview":
            assert self.repo.refs == refs_before
            assert [(p.number, p.state, p.body) for p in self.repo.pulls] == pulls_before
            assert comment.reactions == ([] if user == "reader" else ["eyes"])
        else:
            self.opted_out = False
            if command == "recreate":
                self.human_commits.clear()
        assert len(self.gh.bot_comments(REPO, self.issue)) == 1

    @invariant()
    def at_most_one_open_bot_pr(self) -> None:
        assert len(self.open_pulls()) <= 1

    @invariant()
    def human_commits_stay_on_the_branch(self) -> None:
        head = self.repo.refs.get(BRANCH)
        for sha in self.human_commits:
            assert head is not None and sha in self.gh.ancestors(head), "a human commit was overwritten"

    @invariant()
    def bot_commits_sit_on_the_default_branch(self) -> None:
        head = self.repo.refs.get(BRANCH)
        if head is None:
            return
        commit = self.gh.commits[head]
        if commit.author == BOT:
            assert commit.parent is not None and commit.parent in self.gh.ancestors(self.repo.refs["main"])

    @invariant()
    def comment_keys_are_unique_per_issue(self) -> None:
        seen: set[tuple[int, str]] = set()
        for comment in self.gh.bot_comments(REPO):
            for key in re.findall(r"<!-- ecr-cache-bot:comment=(\S+) -->", comment.body):
                assert (comment.issue, key) not in seen
                seen.add((comment.issue, key))

    @invariant()
    def an_open_bot_only_pr_matches_its_plan(self) -> None:
        pulls = self.open_pulls()
        head = self.repo.refs.get(BRANCH)
        if not pulls or head is None or self.gh.commits[head].author != BOT:
            return
        base = self.gh.commits[head].parent
        spec = self.gh.file(REPO, "main", "buildspec.yml") if base == self.repo.refs["main"] else None
        branch_spec = self.gh.file(REPO, BRANCH, "buildspec.yml")
        assert branch_spec is not None and branch_spec.endswith(MARK)
        marker = identity.parse_fingerprint(pulls[0].body)
        expected = fake_plan(RepoSnapshot(("buildspec.yml",), {"buildspec.yml": branch_spec[: -len(MARK)]}), Options())
        assert marker == expected.fingerprint
        if spec is not None:
            assert branch_spec == spec + MARK


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(
        planner, "paths_to_read", lambda paths, options: tuple(p for p in paths if p == "buildspec.yml")
    )


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=60, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
