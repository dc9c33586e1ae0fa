"""Config errors people can see: one issue per repository, listing every error with its line; updated while the
errors change, closed once the file is fixed; never on a command, a preview or a dry run."""

from __future__ import annotations

import pytest
from github_double import GitHubDouble
from github_double import appending_plan as fake_plan
from job_fixtures import context, run_install
from job_fixtures import gateway_factory as factory

from bot.app import config_issue
from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.core import planner
from bot.github.client import GatewayFactory

REPO = "acme/app"
BAD = "region: us-east-1\nmode: turbo\n\nlifecycle_days: 0\n"


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(planner, "paths_to_read", lambda paths, options: tuple(paths))
    config_issue._clean.clear()


def sync(gh: GitHubDouble, f: GatewayFactory | None = None, trigger: str = "push", **data: object) -> jobs.Outcome:
    gh.reset_requests()
    job = Job("sync", 1, REPO, "d", {"trigger": trigger, "default_branch": "main", **data})
    (outcome,) = jobs.run(job, context(f or gh))
    return outcome


def push_config(gh: GitHubDouble, text: str) -> None:
    gh.commit_files(REPO, "main", {".github/ecr-cache.yml": text})


def test_a_bad_config_opens_one_issue_listing_every_error_with_its_line(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    assert sync(gh).action == "config_error"
    (issue,) = gh.open_issues(REPO)
    assert issue.title == "ecr-cache: the configuration needs a fix"
    assert "`.github/ecr-cache.yml` line 2: " in issue.body and "`mode`" in issue.body
    assert "`.github/ecr-cache.yml` line 4: " in issue.body and "`lifecycle_days`" in issue.body
    assert gh.pulls_for(REPO) == []
    # the same errors again: no new issue, no edit
    assert sync(gh).action == "config_error"
    assert len(gh.repos[REPO].issues) == 1
    assert not any(r.is_write for r in gh.requests)


def test_changed_errors_update_the_issue_and_a_fix_closes_it(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    f = factory(gh)
    sync(gh, f)
    push_config(gh, "region: Europe\n")
    sync(gh, f)
    (issue,) = gh.open_issues(REPO)
    assert "line 1" in issue.body and "Europe" in issue.body and "lifecycle_days" not in issue.body
    push_config(gh, "region: eu-west-1\n")
    assert sync(gh, f).action == "opened"
    assert gh.open_issues(REPO) == [] and gh.repos[REPO].issues[0].state_reason == "completed"
    # once known clean, a later push with the same config costs no issue lookup
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n# more\n"})
    sync(gh, f)
    assert not any(r.path == f"/repos/{REPO}/issues" for r in gh.requests)


def test_an_install_also_opens_the_issue(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    sync(gh, trigger="install")
    assert len(gh.open_issues(REPO)) == 1


def test_an_organization_file_error_gets_one_issue_in_the_github_repository(gh: GitHubDouble) -> None:
    gh.add_repo("acme/.github", {".github/ecr-cache.yml": "install: preview\nlabels: ci\n"})
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n"})
    gh.add_repo("acme/web", {"buildspec.yml": "version: 0.2\n"})
    f = factory(gh)
    assert sync(gh, f).action == "config_error"
    (issue,) = gh.open_issues("acme/.github")
    assert "`acme/.github:.github/ecr-cache.yml` line 2: " in issue.body and "`labels`" in issue.body
    assert gh.open_issues(REPO) == []
    gh.reset_requests()
    (other,) = jobs.run(Job("sync", 1, "acme/web", "d2", {"trigger": "push", "default_branch": "main"}), context(f))
    assert other.action == "config_error" and len(gh.repos["acme/.github"].issues) == 1
    assert gh.open_issues("acme/web") == [] and not any(r.is_write for r in gh.requests)
    # fixed in the organization: the next sync anywhere closes it
    gh.commit_files("acme/.github", "main", {".github/ecr-cache.yml": "labels: [ci]\n"})
    assert sync(gh, f).action == "opened" and gh.open_issues("acme/.github") == []
    assert gh.pulls_for(REPO) and gh.repos["acme/.github"].issues[0].state == "closed"


def test_a_preview_or_a_command_opens_no_issue(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    sync(gh, trigger="install", preview=True)
    sync(gh, trigger="command")
    assert gh.repos[REPO].issues == []


def test_a_dry_run_opens_or_edits_no_issue(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    f = factory(gh)
    job = Job("sync", 1, REPO, "d", {"trigger": "push", "default_branch": "main"})
    gh.reset_requests()
    (outcome,) = jobs.run(job, context(f, dry_run=True))
    assert outcome.action == "config_error" and gh.repos[REPO].issues == []
    sync(gh, f)
    push_config(gh, "region: Europe\n")
    gh.reset_requests()
    jobs.run(job, context(f, dry_run=True))
    assert not any(r.is_write for r in gh.requests)


def test_a_repository_without_a_config_file_costs_no_issue_lookup(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n"})
    assert sync(gh).action == "opened"
    assert not any(r.path == f"/repos/{REPO}/issues" for r in gh.requests)


def test_issues_turned_off_keep_the_log_line_and_the_job_succeeds(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    gh.fail_next.append(("POST", f"/repos/{REPO}/issues", 410, {"message": "Issues are disabled for this repo"}))
    assert sync(gh).action == "config_error" and gh.repos[REPO].issues == []


def test_an_issue_a_person_opened_with_the_same_title_is_not_touched(gh: GitHubDouble) -> None:
    from github_double import GhIssue

    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", ".github/ecr-cache.yml": BAD})
    gh.repos[REPO].issues.append(GhIssue(99, config_issue.TITLE, "me too", "octocat"))
    sync(gh)
    assert [i.body for i in gh.repos[REPO].issues if i.number == 99] == ["me too"]
    assert len(gh.open_issues(REPO)) == 2


# -- the large-install preview summary, as an issue in the organization's `.github` repository -----------------


def _organization(gh: GitHubDouble, with_github: bool) -> None:
    for i in range(4):
        gh.add_repo(f"octo/svc{i}", {"buildspec.yml": "version: 0.2\n"})
    for i in range(2):
        gh.add_repo(f"octo/lib{i}", {"README.md": "docs\n"})
    if with_github:
        gh.add_repo("octo/.github", {"profile/README.md": "hi\n"})


def test_the_preview_summary_becomes_one_issue_in_the_github_repository(gh: GitHubDouble) -> None:
    from bot.app import fanout

    _organization(gh, with_github=True)
    gh.reset_requests()
    run_install(gh, threshold=3)
    assert all(gh.pulls_for(r) == [] for r in gh.repos)
    (issue,) = gh.open_issues("octo/.github")
    assert issue.title == fanout.SUMMARY_TITLE
    assert "**7** repositories of **octo**" in issue.body and "**4** of them would get one" in issue.body
    assert "| `would_open` | 4 |" in issue.body and "`install: open-pull-requests`" in issue.body
    assert [str(r) for r in gh.requests if r.is_write] == ["POST /repos/octo/.github/issues"]
    # the same preview again (a new delivery): the issue is kept, not duplicated
    run_install(gh, threshold=3, delivery="install-2")
    assert len(gh.repos["octo/.github"].issues) == 1


def test_without_a_github_repository_the_summary_stays_a_log_line(gh: GitHubDouble) -> None:
    _organization(gh, with_github=False)
    gh.reset_requests()
    run_install(gh, threshold=3)
    assert [r for r in gh.requests if r.is_write] == []


def test_a_repository_that_opted_out_gets_no_issue(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n"})
    f = factory(gh)
    sync(gh, f)
    gh.close_pull(REPO, 1)
    push_config(gh, BAD)
    assert sync(gh, f).action == "config_error" and gh.repos[REPO].issues == []
