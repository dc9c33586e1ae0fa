"""`labels`, `reviewers`, `team_reviewers`, `assignees` and `draft` reach the pull request; nobody's additions are
removed; a reviewer GitHub refuses (422) never fails the job."""

from __future__ import annotations

import io
import json

import pytest
from github_double import BOT_LOGIN, GitHubDouble
from github_double import appending_plan as fake_plan
from job_fixtures import context
from job_fixtures import gateway_factory as factory

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.core import planner
from bot.core.model import Options
from bot.logs import configure_logging

REPO = "acme/app"
CONFIG = (
    "labels: [dependencies, ci]\nreviewers: [alice]\nteam_reviewers: [acme/platform]\nassignees: [bob]\ndraft: true\n"
)


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(planner, "paths_to_read", lambda paths, options: tuple(paths))


def sync(gh: GitHubDouble, dry_run: bool = False) -> jobs.Outcome:
    gh.reset_requests()
    (outcome,) = jobs.run(
        Job("sync", 1, REPO, "d", {"trigger": "push", "default_branch": "main"}), context(gh, dry_run=dry_run)
    )
    return outcome


def repo(gh: GitHubDouble, config: str = CONFIG) -> None:
    gh.add_repo(
        REPO,
        {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": config},
        permissions={"alice": "write", "bob": "write"},
    )
    gh.repos[REPO].teams.add("platform")


def test_an_opened_pull_request_gets_every_setting(gh: GitHubDouble) -> None:
    repo(gh)
    outcome = sync(gh)
    assert outcome.action == "opened" and outcome.detail == ""
    (pull,) = gh.pulls_for(REPO)
    assert pull.draft is True
    assert pull.labels == ["dependencies", "ci"] and pull.assignees == ["bob"]
    assert (pull.requested_reviewers, pull.requested_teams) == (["alice"], ["platform"])
    # exactly the requests `pr_settings.writes` reserved with the publish
    settings = ("/labels", "/assignees", "/requested_reviewers")
    sent = [r.path for r in gh.requests if r.is_write and r.path.endswith(settings)]
    assert len(sent) == 3


def test_an_update_adds_missing_labels_and_assignees_and_keeps_the_ones_people_added(gh: GitHubDouble) -> None:
    repo(gh)
    sync(gh)
    (pull,) = gh.pulls_for(REPO)
    pull.labels, pull.assignees, pull.requested_reviewers = ["needs-review"], ["carol"], []  # people's edits
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n# changed\n"})
    assert sync(gh).action == "updated"
    assert pull.labels == ["needs-review", "dependencies", "ci"] and pull.assignees == ["carol", "bob"]
    # a review is asked for once, when the pull request is opened: an update never asks again
    assert pull.requested_reviewers == []
    assert not any(r.path.endswith("/requested_reviewers") for r in gh.requests)


def test_without_settings_no_extra_request_is_made(gh: GitHubDouble) -> None:
    repo(gh, "region: us-east-1\n")
    sync(gh)
    assert not any(r.path.endswith(("/labels", "/assignees", "/requested_reviewers")) for r in gh.requests)
    assert gh.pulls_for(REPO)[0].draft is False


def test_a_reviewer_who_is_no_collaborator_is_logged_and_the_job_succeeds(gh: GitHubDouble) -> None:
    repo(gh, "labels: [ci]\nreviewers: [stranger]\n")
    stream = io.StringIO()
    configure_logging(stream=stream)
    outcome = sync(gh)
    assert outcome.action == "opened" and "reviewers:" in outcome.detail
    assert gh.pulls_for(REPO)[0].labels == ["ci"]
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    (refused,) = [e for e in events if e["event"] == "pr_settings_refused"]
    assert refused["status"] == 422 and refused["setting"] == "reviewers"


def test_the_bot_itself_as_a_reviewer_is_a_422_too(gh: GitHubDouble) -> None:
    from bot.app import pr_settings
    from bot.core.model import Options as O

    repo(gh, "region: us-east-1\n")
    sync(gh)
    gw = factory(gh)(1)
    refused = pr_settings.apply(gw, REPO, 1, O(reviewers=(BOT_LOGIN,)), opened=True)
    assert refused and "author" in refused[0]


def test_dry_run_sends_none_of_the_settings(gh: GitHubDouble) -> None:
    repo(gh)
    assert sync(gh, dry_run=True).action == "opened"
    assert [r for r in gh.requests if r.is_write] == []


def test_the_settings_are_reserved_with_the_publish() -> None:
    from bot.app import pr_settings

    assert pr_settings.writes(Options(labels=("a",), assignees=("b",), reviewers=("c",)), opened=True) == 3
    assert pr_settings.writes(Options(labels=("a",), assignees=("b",), reviewers=("c",)), opened=False) == 2
