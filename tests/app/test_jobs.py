"""Job-level rules: which failures the queue may retry, config gates, per-repository isolation, replies.

Decisions and replies run on the in-memory GitHub (`fake_gateway.py`); failures GitHub answers with a status,
and what goes over the wire, on the HTTP double."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import responses
from fake_gateway import FakeGateway, FakeGitHub
from github_double import GitHubDouble
from job_fixtures import context
from job_fixtures import gateway_factory as factory

from bot.app import handlers as jobs
from bot.app.context import JobContext
from bot.app.payloads import AnyJob, InstallJob, Job
from bot.core import planner
from bot.core.findings import Code
from bot.core.model import BuildLink, FileEdit, Finding, Options, Plan, RepoSnapshot
from bot.github.gateway import Gateway, GitHubError
from bot.identity import BOT_BRANCH
from bot.queue.retry import classify_exception
from bot.settings import Settings

REPO = "octo/app"
FILES = {"buildspec.yml": "version: 0.2\n", "Dockerfile": "FROM alpine\n"}


def fake_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    spec = snapshot.text("buildspec.yml")
    if spec is None:
        none = Finding(".", "warning", Code.NOT_A_BUILDSPEC, "no CodeBuild buildspec runs docker build")
        return Plan(findings=(none,))
    if spec.endswith("# cached\n"):
        return Plan(buildspecs=("buildspec.yml",))
    return Plan(
        edits=(FileEdit("buildspec.yml", "modify", spec + "# cached\n", spec, ("cache",)),),
        buildspecs=("buildspec.yml",),
    )


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(planner, "paths_to_read", lambda paths, options: tuple(paths))


@pytest.fixture
def hub() -> FakeGitHub:
    return FakeGitHub()


def command(gh: GitHubDouble | FakeGitHub, body: str, user: str = "dev") -> list[jobs.Outcome]:
    comment = gh.add_comment(REPO, 5, body, user)
    words = body.split()
    data: dict[str, Any] = {
        "command": words[1] if len(words) > 1 else "open",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": 5,
        "user": user,
    }
    ctx = JobContext(gh) if isinstance(gh, FakeGitHub) else context(gh)
    return jobs.run(Job("command", 1, REPO, f"c{comment.id}", data), ctx)


def test_the_fake_is_a_gateway(hub: FakeGitHub) -> None:
    """mypy checks only bot/, so the fake's fit to the Protocol is checked here: every member, same signature."""
    members = {name for name in vars(Gateway) if not name.startswith("_")}
    assert members <= set(vars(FakeGateway))
    methods = [name for name in members if callable(getattr(Gateway, name)) and name != "paced"]
    assert len(methods) > 20
    assert {n: inspect.signature(getattr(FakeGateway, n)) for n in methods} == {
        n: inspect.signature(getattr(Gateway, n)) for n in methods
    }
    gw: Gateway = hub(1, interactive=True)
    assert gw.installation_id == 1 and gw.rate_limit_remaining is None


def test_server_errors_are_raised_so_the_queue_retries(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.fail_next.append(("POST", "/graphql", 502, {"message": "Bad Gateway"}))
    with pytest.raises(GitHubError) as info:
        jobs.run(Job("sync", 1, REPO, "d"), context(gh))
    assert info.value.status == 502
    assert classify_exception(info.value).action == "retry"


def test_client_errors_fail_once(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    with pytest.raises(GitHubError) as info:
        jobs.run(Job("sync", 1, "octo/gone", "d"), context(gh))
    assert info.value.status == 404
    assert classify_exception(info.value).action == "fail"


def test_rate_limit_carries_retry_after_to_the_queue(gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    gh.add_repo(REPO, FILES)
    real = gh._callback

    def limited(request: Any) -> Any:
        if request.url.endswith("/git/commits"):
            return (
                403,
                {"Retry-After": "37", "Content-Type": "application/json"},
                ('{"message": "You have exceeded a secondary rate limit"}'),
            )
        return real(request)

    monkeypatch.setattr(gh, "_callback", limited)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh.activate(mock)
        with pytest.raises(GitHubError) as info:
            jobs.run(Job("sync", 1, REPO, "d"), context(gh))
    decision = classify_exception(info.value)
    assert (decision.action, decision.delay) == ("retry", 37.0)


def test_one_failing_repository_does_not_stop_the_installation(gh: GitHubDouble) -> None:
    gh.add_repo("octo/a", FILES)
    gh.add_repo("octo/b", FILES)
    gh.fail_next.append(("GET", "/repos/octo/a/git/trees/main", 500, {"message": "boom"}))
    outcomes = jobs.run(InstallJob(1, "octo", "d"), context(gh))
    assert {(o.repo, o.action) for o in outcomes} == {("octo/a", "error"), ("octo/b", "opened")}
    assert gh.pulls_for("octo/a") == [] and len(gh.pulls_for("octo/b")) == 1


def test_disabled_by_repo_config_reads_no_tree_and_writes_nothing(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, {**FILES, ".github/ecr-cache.yml": "enabled: false\n"})
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), JobContext(hub))
    assert outcome.action == "disabled"
    assert REPO not in hub.seen and hub.writes == []


def test_invalid_repo_config_is_reported_not_guessed(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, {**FILES, ".github/ecr-cache.yml": "region: [1]\n"}, permissions={"dev": "write"})
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), JobContext(hub))
    assert outcome.action == "config_error" and "region" in outcome.detail
    assert hub.repo(REPO).pulls == [] and BOT_BRANCH not in hub.repo(REPO).refs
    (outcome,) = command(hub, "/ecr-cache")
    assert outcome.action == "config_error"
    (reply,) = hub.bot_comments(REPO, 5)
    assert "No change could be made" in reply.body and "config-invalid" in reply.body and "region" in reply.body


def test_command_reply_names_the_findings_that_prevented_a_change(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, {"Dockerfile": "FROM alpine\n"}, permissions={"dev": "admin"})
    (outcome,) = command(hub, "/ecr-cache")
    assert outcome.action == "already"
    (reply,) = hub.bot_comments(REPO, 5)
    assert "no CodeBuild buildspec runs docker build" in reply.body and "not-a-buildspec" in reply.body


def test_command_reply_when_a_human_owns_the_branch(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES, permissions={"dev": "write"})
    jobs.run(Job("sync", 1, REPO, "d"), JobContext(hub))
    (pull,) = hub.open_pulls(REPO)
    mine = hub.push(REPO, BOT_BRANCH, {"x": "1"})
    hub.push(REPO, "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (outcome,) = command(hub, "/ecr-cache")
    assert outcome.action == "human_edits"
    assert hub.repo(REPO).refs[BOT_BRANCH] == mine  # the person's commit stays
    (reply,) = hub.bot_comments(REPO, 5)
    assert "/ecr-cache recreate" in reply.body and f"/pull/{pull.number}" in reply.body
    (note,) = hub.bot_comments(REPO, pull.number)  # and the pull request says why it is not refreshed
    assert "/ecr-cache recreate" in note.body


@pytest.mark.parametrize(("fork", "why"), [(True, "a fork"), (False, "archived")])
def test_archived_and_fork_repositories_are_skipped_on_command(hub: FakeGitHub, fork: bool, why: str) -> None:
    hub.add_repo(REPO, FILES, permissions={"dev": "write"}, fork=fork, archived=not fork)
    (outcome,) = command(hub, "/ecr-cache")
    assert (outcome.action, outcome.detail) == ("skipped", why)
    assert why in hub.bot_comments(REPO, 5)[0].body
    assert REPO not in hub.seen and [w for w, *_ in hub.writes] == ["react", "comment"]


def test_command_replies_are_upserted_per_command_comment(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES, permissions={"dev": "write"})
    comment = hub.add_comment(REPO, 5, "/ecr-cache", "dev")
    data = {"command": "open", "unknown": None, "comment_id": comment.id, "issue_number": 5, "user": "dev"}
    ctx = JobContext(hub)
    jobs.run(Job("command", 1, REPO, "a", data), ctx)
    jobs.run(Job("command", 1, REPO, "a-retry", data), ctx)  # the same command run twice (a queue retry)
    assert len(hub.bot_comments(REPO, 5)) == 1
    assert len(hub.repo(REPO).pulls) == 1


def test_a_final_failure_during_a_command_is_explained_under_it(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    gh.fail_next.append(
        ("POST", f"/repos/{REPO}/git/trees", 403, {"message": "Resource not accessible by integration"})
    )
    with pytest.raises(GitHubError):
        command(gh, "/ecr-cache")
    (reply,) = gh.bot_comments(REPO, 5)
    assert "GitHub answered **403** (Resource not accessible by integration)" in reply.body
    assert "needs read and write access" in reply.body
    assert gh.pulls_for(REPO) == []


def test_a_validation_failure_is_not_blamed_on_the_apps_permissions(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    gh.fail_next.append(("POST", f"/repos/{REPO}/pulls", 422, {"message": "Validation Failed"}))
    with pytest.raises(GitHubError):
        command(gh, "/ecr-cache")
    (reply,) = gh.bot_comments(REPO, 5)
    assert "GitHub answered **422** (Validation Failed)" in reply.body and "access" not in reply.body


def test_a_server_error_during_a_command_is_left_to_the_queue_retry(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    gh.fail_next.append(("POST", f"/repos/{REPO}/git/trees", 500, {"message": "oops"}))
    with pytest.raises(GitHubError):
        command(gh, "/ecr-cache")
    assert gh.bot_comments(REPO, 5) == []


def test_installation_fans_out_one_sync_job_per_repository(gh: GitHubDouble) -> None:
    gh.add_repo("octo/a", FILES)
    gh.add_repo("octo/b", FILES, default_branch="trunk")
    gh.add_repo("octo/old", FILES, archived=True)
    gh.add_repo("octo/copy", FILES, fork=True)
    submitted: list[tuple[str, list[AnyJob]]] = []
    f = factory(gh)
    outcomes = jobs.run(
        InstallJob(1, "octo", "inst-1"),
        context(f, submit=lambda delivery, batch: submitted.append((delivery, list(batch)))),
    )
    assert [str(r) for r in gh.requests] == [
        "POST /app/installations/1/access_tokens",
        "GET /installation/repositories",
    ]
    ((delivery, batch),) = submitted
    assert delivery == "inst-1/repositories"
    assert [(j.kind, j.repo, j.data["default_branch"]) for j in batch] == [
        ("sync", "octo/a", "main"),
        ("sync", "octo/b", "trunk"),
    ]
    assert {(o.repo, o.action) for o in outcomes} == {
        ("octo/a", "queued"),
        ("octo/b", "queued"),
        ("octo/old", "skipped"),
        ("octo/copy", "skipped"),
    }
    for job in batch:
        jobs.run(job, context(f))
    assert len(gh.pulls_for("octo/a")) == 1 and len(gh.pulls_for("octo/b")) == 1
    assert gh.pulls_for("octo/b")[0].base == "trunk"


def test_the_wired_runner_fans_out_through_its_own_queue(tmp_path: Path) -> None:
    from bot import wiring

    queue = wiring.job_queue(Settings(webhook_secret="s", data_dir=str(tmp_path)))
    assert isinstance(queue.runner, wiring.JobRunner)
    assert queue.runner.submit == queue.submit


def test_already_set_up_reply_keeps_the_planners_warnings(hub: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    warning = Finding("buildspec.yml", "warning", Code.CACHE_TAG_SHARED, "two builds share the cache tag `cache`")
    build = BuildLink("buildspec.yml", "build", 0, 3, "Dockerfile", ".", "cache")
    monkeypatch.setattr(
        planner,
        "plan",
        lambda snapshot, options: Plan(findings=(warning,), builds=(build,), buildspecs=("buildspec.yml",)),
    )
    hub.add_repo(REPO, FILES, permissions={"dev": "write"})
    (outcome,) = command(hub, "/ecr-cache")
    assert outcome.action == "already"
    (reply,) = hub.bot_comments(REPO, 5)
    assert "already set up" in reply.body and "Notes:" in reply.body
    assert "two builds share the cache tag `cache`" in reply.body


def test_a_buildspec_without_a_docker_build_is_never_called_set_up(
    hub: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "plan", lambda snapshot, options: Plan(buildspecs=("buildspec.yml",)))
    hub.add_repo(REPO, FILES, permissions={"dev": "write"})
    command(hub, "/ecr-cache")
    (reply,) = hub.bot_comments(REPO, 5)
    assert "already set up" not in reply.body and "No change could be made" in reply.body


def test_a_sync_opens_then_refreshes_then_leaves_the_pull_request_alone(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES)
    ctx = JobContext(hub)
    push = Job("sync", 1, REPO, "p1", {"trigger": "push", "default_branch": "main"})
    (opened,) = jobs.run(push, ctx)
    assert opened.action == "opened" and hub.writes_to(REPO) == ["commit", "create_branch", "create_pull"]
    assert hub.reserved == [4]  # the whole publish reserved at once
    hub.writes.clear()
    hub.push(REPO, "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (updated,) = jobs.run(push, ctx)
    assert (updated.action, updated.pr_url) == ("updated", opened.pr_url)
    assert hub.writes_to(REPO) == ["commit", "move_branch", "update_pull"]
    (pull,) = hub.open_pulls(REPO)
    assert hub.file(REPO, BOT_BRANCH, "buildspec.yml") == "version: 0.2\n# v2\n# cached\n"
    hub.writes.clear()
    (current,) = jobs.run(push, ctx)
    assert (current.action, current.pr_url, hub.writes) == ("current", opened.pr_url, [])
    assert pull.head_oid == hub.repo(REPO).refs[BOT_BRANCH]


def test_a_preview_sync_decides_and_writes_nothing(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES)
    job = Job("sync", 1, REPO, "i/repositories", {"trigger": "install", "preview": True, "default_branch": "main"})
    (outcome,) = jobs.run(job, JobContext(hub))
    assert outcome.action == "would_open" and hub.writes == [] and hub.reserved == []


def test_a_pull_request_closed_unmerged_is_noted_and_its_branch_deleted(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES)
    ctx = JobContext(hub)
    jobs.run(Job("sync", 1, REPO, "p1", {"default_branch": "main"}), ctx)
    (pull,) = hub.open_pulls(REPO)
    hub.close_pull(REPO, pull.number)
    hub.writes.clear()
    (outcome,) = jobs.run(Job("pr_closed", 1, REPO, "c", {"number": pull.number, "merged": False}), ctx)
    assert outcome.action == "opted_out_noted" and hub.writes_to(REPO) == ["comment", "delete_branch"]
    assert BOT_BRANCH not in hub.repo(REPO).refs
    # a push after that opens nothing
    hub.push(REPO, "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (pushed,) = jobs.run(Job("sync", 1, REPO, "p2", {"trigger": "push", "default_branch": "main"}), ctx)
    assert pushed.action == "opted_out" and hub.open_pulls(REPO) == []


def test_a_lost_race_reads_again_and_decides_on_what_won(hub: FakeGitHub) -> None:
    hub.add_repo(REPO, FILES)
    gateway = hub(1)
    real_commit = gateway.commit

    def raced(*args: Any, **kwargs: Any) -> str:
        sha = real_commit(*args, **kwargs)
        if BOT_BRANCH not in hub.repo(REPO).refs:  # another worker publishes the same plan first
            jobs.run(Job("sync", 1, REPO, "other", {"default_branch": "main"}), JobContext(hub))
        return sha

    gateway.commit = raced  # type: ignore[method-assign]
    (outcome,) = jobs.run(
        Job("sync", 1, REPO, "mine", {"default_branch": "main"}),
        JobContext(lambda installation_id, *, interactive=False: gateway),
    )
    assert outcome.action == "current" and len(hub.repo(REPO).pulls) == 1
    assert [w for w, *_ in hub.writes].count("create_branch") == 2  # the losing attempt's, then nothing more
