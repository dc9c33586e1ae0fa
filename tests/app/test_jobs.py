"""Job-level rules: which failures the queue may retry, config gates, per-repository isolation, replies."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from github_double import GitHubDouble
from job_fixtures import gateway_factory as factory

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.core import planner
from bot.core.model import BuildLink, FileEdit, Finding, Options, Plan, RepoSnapshot
from bot.github.client import GitHubError
from bot.queue.retry import classify_exception
from bot.settings import Settings

REPO = "octo/app"
FILES = {"buildspec.yml": "version: 0.2\n", "Dockerfile": "FROM alpine\n"}


def fake_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    spec = snapshot.text("buildspec.yml")
    if spec is None:
        return Plan(findings=(Finding(".", "warning", "no-buildspec", "no CodeBuild buildspec runs docker build"),))
    if spec.endswith("# cached\n"):
        return Plan(buildspecs=("buildspec.yml",))
    return Plan(edits=(FileEdit("buildspec.yml", "modify", spec + "# cached\n", spec, ("cache",)),),
                buildspecs=("buildspec.yml",))


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(planner, "paths_to_read", lambda paths, options: tuple(paths))


def command(gh: GitHubDouble, body: str, user: str = "dev") -> list[jobs.Outcome]:
    comment = gh.add_comment(REPO, 5, body, user)
    words = body.split()
    data: dict[str, Any] = {"command": words[1] if len(words) > 1 else "open", "unknown": None,
                            "comment_id": comment.id, "issue_number": 5, "user": user}
    return jobs.run(Job("command", 1, REPO, f"c{comment.id}", data), factory(gh))


def test_server_errors_are_raised_so_the_queue_retries(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.fail_next.append(("POST", "/graphql", 502, {"message": "Bad Gateway"}))
    with pytest.raises(GitHubError) as info:
        jobs.run(Job("sync", 1, REPO, "d"), factory(gh))
    assert info.value.status == 502
    assert classify_exception(info.value).action == "retry"


def test_client_errors_fail_once(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    with pytest.raises(GitHubError) as info:
        jobs.run(Job("sync", 1, "octo/gone", "d"), factory(gh))
    assert info.value.status == 404
    assert classify_exception(info.value).action == "fail"


def test_rate_limit_carries_retry_after_to_the_queue(gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    gh.add_repo(REPO, FILES)
    real = gh._callback

    def limited(request: Any) -> Any:
        if request.url.endswith("/git/commits"):
            return 403, {"Retry-After": "37", "Content-Type": "application/json"}, (
                '{"message": "You have exceeded a secondary rate limit"}')
        return real(request)

    monkeypatch.setattr(gh, "_callback", limited)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh.activate(mock)
        with pytest.raises(GitHubError) as info:
            jobs.run(Job("sync", 1, REPO, "d"), factory(gh))
    decision = classify_exception(info.value)
    assert (decision.action, decision.delay) == ("retry", 37.0)


def test_one_failing_repository_does_not_stop_the_installation(gh: GitHubDouble) -> None:
    gh.add_repo("octo/a", FILES)
    gh.add_repo("octo/b", FILES)
    gh.fail_next.append(("GET", "/repos/octo/a/git/trees/main", 500, {"message": "boom"}))
    outcomes = jobs.run(Job("install", 1, "octo", "d"), factory(gh))
    assert {(o.repo, o.action) for o in outcomes} == {("octo/a", "error"), ("octo/b", "opened")}
    assert gh.pulls_for("octo/a") == [] and len(gh.pulls_for("octo/b")) == 1


def test_disabled_by_repo_config_reads_no_tree_and_writes_nothing(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, ".github/ecr-cache.yml": "enabled: false\n"})
    gh.reset_requests()
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), factory(gh))
    assert outcome.action == "disabled"
    assert [str(r) for r in gh.requests] == ["POST /app/installations/1/access_tokens",
                                             "POST /graphql EcrCacheState"]


def test_invalid_repo_config_is_reported_not_guessed(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, ".github/ecr-cache.yml": "region: [1]\n"}, permissions={"dev": "write"})
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), factory(gh))
    assert outcome.action == "config_error" and "region" in outcome.detail
    assert gh.pulls_for(REPO) == []
    (outcome,) = command(gh, "/ecr-cache")
    assert outcome.action == "config_error"
    (reply,) = gh.bot_comments(REPO, 5)
    assert "No change could be made" in reply.body and "config-invalid" in reply.body and "region" in reply.body


def test_command_reply_names_the_findings_that_prevented_a_change(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"Dockerfile": "FROM alpine\n"}, permissions={"dev": "admin"})
    (outcome,) = command(gh, "/ecr-cache")
    assert outcome.action == "already"
    (reply,) = gh.bot_comments(REPO, 5)
    assert "no CodeBuild buildspec runs docker build" in reply.body and "no-buildspec" in reply.body


def test_command_reply_when_a_human_owns_the_branch(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    jobs.run(Job("sync", 1, REPO, "d"), factory(gh))
    gh.commit_files(REPO, "ecr-cache/setup", {"x": "1"})
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (outcome,) = command(gh, "/ecr-cache")
    assert outcome.action == "human_edits"
    (reply,) = gh.bot_comments(REPO, 5)
    assert "/ecr-cache recreate" in reply.body and "/pull/1" in reply.body


def test_archived_and_fork_repositories_are_skipped_on_command(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, fork=True, permissions={"dev": "write"})
    (outcome,) = command(gh, "/ecr-cache")
    assert (outcome.action, outcome.detail) == ("skipped", "a fork")
    assert "a fork" in gh.bot_comments(REPO, 5)[0].body


def test_command_replies_are_upserted_per_command_comment(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    comment = gh.add_comment(REPO, 5, "/ecr-cache", "dev")
    data = {"command": "open", "unknown": None, "comment_id": comment.id, "issue_number": 5, "user": "dev"}
    f = factory(gh)
    jobs.run(Job("command", 1, REPO, "a", data), f)
    jobs.run(Job("command", 1, REPO, "a-retry", data), f)  # the same command run twice (a queue retry)
    assert len(gh.bot_comments(REPO, 5)) == 1
    assert len(gh.pulls_for(REPO)) == 1


def test_a_final_failure_during_a_command_is_explained_under_it(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    gh.fail_next.append(("POST", f"/repos/{REPO}/git/trees", 403,
                         {"message": "Resource not accessible by integration"}))
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
    submitted: list[tuple[str, list[Job]]] = []
    f = factory(gh)
    outcomes = jobs.run(Job("install", 1, "octo", "inst-1"), f,
                        submit=lambda delivery, batch: submitted.append((delivery, list(batch))))
    assert [str(r) for r in gh.requests] == ["POST /app/installations/1/access_tokens",
                                             "GET /installation/repositories"]
    (delivery, batch), = submitted
    assert delivery == "inst-1/repositories"
    assert [(j.kind, j.repo, j.data["default_branch"]) for j in batch] == [
        ("sync", "octo/a", "main"), ("sync", "octo/b", "trunk")]
    assert {(o.repo, o.action) for o in outcomes} == {("octo/a", "queued"), ("octo/b", "queued"),
                                                      ("octo/old", "skipped"), ("octo/copy", "skipped")}
    for job in batch:
        jobs.run(job, f)
    assert len(gh.pulls_for("octo/a")) == 1 and len(gh.pulls_for("octo/b")) == 1
    assert gh.pulls_for("octo/b")[0].base == "trunk"


def test_web_runner_binds_the_queue_submit_for_fan_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.queue.durable import InMemoryQueue
    from bot.web import flask_app as web

    created: list[Any] = []

    def fake_create_queue(settings: Settings, runner: Any) -> InMemoryQueue:
        queue = InMemoryQueue(runner)
        created.append(queue)
        return queue

    monkeypatch.setattr(web, "create_queue", fake_create_queue)
    web.create_app(Settings(webhook_secret="s"))
    (queue,) = created
    assert queue.runner.submit == queue.submit


def test_already_set_up_reply_keeps_the_planners_warnings(gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    warning = Finding("buildspec.yml", "warning", "two-writers", "two builds share the cache tag `cache`")
    build = BuildLink("buildspec.yml", "build", 0, 3, "Dockerfile", ".", "cache")
    monkeypatch.setattr(planner, "plan", lambda snapshot, options: Plan(findings=(warning,), builds=(build,),
                                                                        buildspecs=("buildspec.yml",)))
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    (outcome,) = command(gh, "/ecr-cache")
    assert outcome.action == "already"
    (reply,) = gh.bot_comments(REPO, 5)
    assert "already set up" in reply.body and "Notes:" in reply.body
    assert "two builds share the cache tag `cache`" in reply.body


def test_a_buildspec_without_a_docker_build_is_never_called_set_up(gh: GitHubDouble,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", lambda snapshot, options: Plan(buildspecs=("buildspec.yml",)))
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    command(gh, "/ecr-cache")
    (reply,) = gh.bot_comments(REPO, 5)
    assert "already set up" not in reply.body and "No change could be made" in reply.body
