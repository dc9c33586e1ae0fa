"""Organization defaults: `<owner>/.github/.github/ecr-cache.yml` under each repository's own file, key by key."""

from __future__ import annotations

from typing import Any

import pytest
from github_double import GitHubDouble, appending_plan
from job_fixtures import context

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.core import planner
from bot.core.model import Options, Plan, RepoSnapshot
from bot.core.repo_config import merge_configs
from bot.github.documents import document

ORG_PATH = "acme/.github:.github/ecr-cache.yml"
REPO = "acme/app"
FILES = {"buildspec.yml": "version: 0.2\n", "Dockerfile": "FROM alpine\n"}
SEEN: list[Options] = []


def fake_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """The shared stand-in planner, recording the options each plan got."""
    SEEN.append(options)
    return appending_plan(snapshot, options)


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    SEEN.clear()
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(planner, "paths_to_read", lambda paths, options: tuple(paths))


def sync(gh: GitHubDouble, repo: str = REPO) -> jobs.Outcome:
    (outcome,) = jobs.run(Job("sync", 1, repo, "d", {"trigger": "push", "default_branch": "main"}), context(gh))
    return outcome


# -- the merge (pure) -----------------------------------------------------------------------------------


def test_the_repository_overrides_the_organization_key_by_key() -> None:
    options, findings = merge_configs(
        "region: eu-west-1\nlifecycle_days: 30\nlabels: [infra]\n", "lifecycle_days: 7\n", ORG_PATH
    )
    assert findings == []
    assert (options.region, options.lifecycle_days, options.labels) == ("eu-west-1", 7, ("infra",))
    assert dict(options.sources) == {"region": ORG_PATH, "lifecycle_days": ".github/ecr-cache.yml", "labels": ORG_PATH}


def test_extends_false_ignores_the_organization_defaults() -> None:
    options, findings = merge_configs("region: eu-west-1\nlabels: [infra]\n", "extends: false\nmode: min\n", ORG_PATH)
    assert findings == [] and options.region is None and options.labels == () and options.mode == "min"
    assert dict(options.sources) == {"mode": ".github/ecr-cache.yml"}


def test_a_bad_organization_file_is_named_in_the_error() -> None:
    options, findings = merge_configs("region: Europe\n", "mode: min\n", ORG_PATH)
    assert options == Options()
    assert [(f.path, f.line, f.code) for f in findings] == [(ORG_PATH, 1, "config-invalid")]
    # ... unless the repository opts out of it
    assert merge_configs("region: Europe\n", "extends: false\n", ORG_PATH)[1] == []


def test_no_files_give_the_defaults_and_no_sources() -> None:
    assert merge_configs(None, None, ORG_PATH) == (Options(), [])


# -- the App ---------------------------------------------------------------------------------------------


def test_the_app_plans_with_the_organization_defaults_and_the_pr_says_where_each_came_from(gh: GitHubDouble) -> None:
    gh.add_repo("acme/.github", {".github/ecr-cache.yml": "region: eu-west-1\nlifecycle_days: 30\n"})
    gh.add_repo(REPO, {**FILES, ".github/ecr-cache.yml": "lifecycle_days: 7\n"})
    gh.reset_requests()
    assert sync(gh).action == "opened"
    assert (SEEN[-1].region, SEEN[-1].lifecycle_days) == ("eu-west-1", 7)
    # the defaults ride in the state query: no request of their own
    assert not any("/contents/" in r.path for r in gh.requests)
    assert not any("acme/.github" in r.path and "/git/" in r.path for r in gh.requests)
    assert [r.operation for r in gh.requests if r.path == "/graphql"] == ["EcrCacheState"]
    body = gh.pulls_for(REPO)[0].body
    settings = body.split("<summary>Settings", 1)[1].split("</details>", 1)[0]
    assert f"| `region` | `eu-west-1` | `{ORG_PATH}` |" in settings
    assert "| `lifecycle_days` | `7` | `.github/ecr-cache.yml` |" in settings


def test_without_a_github_repository_the_defaults_apply(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    assert sync(gh).action == "opened"
    assert SEEN[-1] == Options() and "<summary>Settings" not in gh.pulls_for(REPO)[0].body


def test_a_github_repository_of_another_installation_is_not_read(gh: GitHubDouble) -> None:
    gh.add_repo("acme/.github", {".github/ecr-cache.yml": "region: eu-west-1\n"}, installation_id=2)
    gh.add_repo(REPO, FILES)
    assert sync(gh).action == "opened" and SEEN[-1].region is None


def test_the_github_repository_itself_is_not_merged_with_itself(gh: GitHubDouble) -> None:
    gh.add_repo("acme/.github", {**FILES, ".github/ecr-cache.yml": "region: Europe\n"})
    outcome = sync(gh, "acme/.github")
    assert outcome.action == "config_error" and outcome.detail.count("Europe") == 1


def test_an_invalid_organization_file_blocks_planning_with_its_name(gh: GitHubDouble) -> None:
    gh.add_repo("acme/.github", {".github/ecr-cache.yml": "lifecycle_days: 0\n"})
    gh.add_repo(REPO, FILES)
    outcome = sync(gh)
    assert outcome.action == "config_error" and ORG_PATH in outcome.detail and SEEN == []


def test_the_state_query_with_the_organization_part_validates(corpus: Any) -> None:
    query = document("state")
    graphql = pytest.importorskip("graphql")
    schema = graphql.build_schema((corpus / "github-api" / "github-graphql-subset.graphql").read_text())
    assert "org: repository(owner: $owner, name: $orgRepo)" in query
    assert graphql.validate(schema, graphql.parse(query)) == []
