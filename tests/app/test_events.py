"""Pure routing: GitHub's own payload examples, mutated into the cases the bot acts on, and hostile shapes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.app.comment_command import Command, parse_command
from bot.app.events import MAX_ADDED_SYNCS, MalformedPayload, is_relevant_path, route
from bot.app.payloads import InstallJob
from bot.identity import BOT_BRANCH


def _load(corpus: Path, name: str) -> dict[str, Any]:
    return json.loads((corpus / "webhooks" / name).read_text())


def test_installation_created_routes_one_install_job(corpus: Path) -> None:
    routed = route("installation", _load(corpus, "installation/created.payload.json"), "d-1")
    assert routed.jobs == (InstallJob(957387, "Codertocat", "d-1", {"trigger": "install"}),)  # an account


def test_installation_repositories_added_syncs_the_added_repositories(corpus: Path) -> None:
    payload = _load(corpus, "installation_repositories/added.payload.json")
    routed = route("installation_repositories", payload, "d-2")
    # One installation job that pages the repositories through the API and syncs only the added one.
    assert [(j.kind, j.installation_id, j.data.get("added")) for j in routed.jobs] == [
        ("install", 957387, ["Codertocat/Space"])
    ]
    # Nothing listed, or more than a handful: every repository, as a first install.
    for added in ([], [{"full_name": f"Codertocat/r{n}"} for n in range(MAX_ADDED_SYNCS + 1)]):
        routed = route("installation_repositories", {**payload, "repositories_added": added}, "d-3")
        assert [(j.kind, j.installation_id, j.data.get("added")) for j in routed.jobs] == [("install", 957387, None)]


@pytest.mark.parametrize(
    "name",
    [
        "installation/deleted.payload.json",
        "installation/suspend.payload.json",
        "installation_repositories/removed.payload.json",
        "installation/new_permissions_accepted.payload.json",
    ],
)
def test_other_installation_actions_are_ignored(corpus: Path, name: str) -> None:
    event = name.split("/")[0]
    assert route(event, _load(corpus, name), "d").jobs == ()


def test_push_of_readme_to_default_branch_is_ignored(corpus: Path) -> None:
    payload = _load(corpus, "push/with-new-branch.payload.json")
    assert payload["ref"] == "refs/heads/master" and payload["repository"]["default_branch"] == "master"
    assert route("push", payload, "d").jobs == ()


@pytest.mark.parametrize(
    "changed",
    [
        "Dockerfile",
        "services/api/Dockerfile.prod",
        "buildspec.yml",
        "ci/buildspec-test.yaml",
        "web/package-lock.json",
        "requirements-dev.txt",
        ".github/ecr-cache.yml",
        "app/.dockerignore",
        "src/App.csproj",
    ],
)
def test_push_touching_a_relevant_file_routes_sync(corpus: Path, changed: str) -> None:
    payload = _load(corpus, "push/with-new-branch.payload.json")
    payload["commits"][0]["modified"] = [changed]
    routed = route("push", payload, "d-9")
    assert not any(isinstance(j, InstallJob) for j in routed.jobs)
    assert [
        (j.kind, j.repo, j.installation_id, j.data["after"]) for j in routed.jobs if not isinstance(j, InstallJob)
    ] == [("sync", "Codertocat/Hello-World", 1, payload["after"])]


def test_force_push_re_plans_whatever_the_head_commit_lists(corpus: Path) -> None:
    # A force-push back to an older commit may drop a buildspec change the file lists do not show.
    payload = _load(corpus, "push/with-new-branch.payload.json")
    payload.update(forced=True, commits=[])
    assert payload["head_commit"] is not None
    payload["head_commit"]["modified"] = ["README.md"]
    assert [j.kind for j in route("push", payload, "d-f").jobs] == ["sync"]
    payload["forced"] = False
    assert route("push", payload, "d-g").jobs == ()


def test_push_to_other_branch_or_tag_or_by_bot_is_ignored(corpus: Path) -> None:
    payload = _load(corpus, "push/with-new-branch.payload.json")
    payload["commits"][0]["modified"] = ["Dockerfile"]
    other = copy.deepcopy(payload)
    other["ref"] = f"refs/heads/{BOT_BRANCH}"
    assert route("push", other, "d").jobs == ()
    tag = _load(corpus, "push/with-installation.payload.json")
    tag["commits"] = [{"modified": ["Dockerfile"]}]
    assert route("push", tag, "d").jobs == ()
    bot = copy.deepcopy(payload)
    bot["sender"]["type"] = "Bot"
    assert route("push", bot, "d").jobs == ()
    deleted = copy.deepcopy(payload)
    deleted["deleted"] = True
    assert route("push", deleted, "d").jobs == ()


def test_push_without_installation_is_ignored(corpus: Path) -> None:
    payload = _load(corpus, "push/payload.json")
    payload["ref"] = "refs/heads/" + payload["repository"]["default_branch"]
    payload["commits"] = [{"modified": ["Dockerfile"]}]
    assert route("push", payload, "d").reason == "no installation in payload"


def test_command_comment_routes_command_job(corpus: Path) -> None:
    payload = _load(corpus, "issue_comment/created.with-installation.payload.json")
    assert route("issue_comment", payload, "d").jobs == ()  # the example's body is not a command
    payload["comment"]["body"] = "/ecr-cache preview\nplease"
    (job,) = route("issue_comment", payload, "d-3").jobs
    assert job.kind == "command" and job.repo == "Codertocat/Hello-World"
    assert job.data == {
        "command": "preview",
        "unknown": None,
        "comment_id": 492700400,
        "issue_number": 1,
        "user": "Codertocat",
        "default_branch": "master",
        "comment_node_id": payload["comment"]["node_id"],
        "issue_node_id": payload["issue"]["node_id"],
        "association": "OWNER",
        "created_at": payload["comment"]["created_at"],
    }
    payload["comment"]["node_id"] = {"not": "a string"}  # optional: a wrong shape drops it, the job still runs
    (job,) = route("issue_comment", payload, "d-4").jobs
    assert job.data["comment_node_id"] is None


def test_edited_comment_and_bot_comment_are_ignored(corpus: Path) -> None:
    edited = _load(corpus, "issue_comment/edited.payload.json")
    edited["comment"]["body"] = "/ecr-cache"
    edited["installation"] = {"id": 1}
    assert route("issue_comment", edited, "d").jobs == ()
    bot = _load(corpus, "issue_comment/created.with-installation.payload.json")
    bot["comment"]["body"] = "/ecr-cache"
    bot["sender"]["type"] = "Bot"
    assert route("issue_comment", bot, "d").jobs == ()


def test_closed_bot_pull_request_routes_pr_closed(corpus: Path) -> None:
    payload = _load(corpus, "pull_request/closed.payload.json")
    assert route("pull_request", payload, "d").jobs == ()  # head `changes` is not the bot branch
    payload["pull_request"]["head"]["ref"] = BOT_BRANCH
    (job,) = route("pull_request", payload, "d-4").jobs
    assert (job.kind, job.data) == ("pr_closed", {"number": 2, "merged": False})
    fork = copy.deepcopy(payload)
    fork["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    assert route("pull_request", fork, "d").jobs == ()


@pytest.mark.parametrize(
    "payload, field",
    [
        ([], "JSON object"),
        ({"action": 3}, "action"),
        ({"installation": "x", "ref": "refs/heads/main"}, "installation"),
        ({"installation": {"id": "7"}, "ref": "refs/heads/main"}, "installation.id"),
        ({"installation": {"id": True}}, "installation.id"),
        ({"installation": {"id": 1}, "ref": "refs/heads/main", "repository": []}, "repository"),
        ({"installation": {"id": 1}, "ref": 5, "repository": {"full_name": "a/b", "default_branch": "main"}}, "ref"),
        (
            {
                "installation": {"id": 1},
                "ref": "refs/heads/main",
                "commits": {},
                "repository": {"full_name": "a/b", "default_branch": "main"},
            },
            "commits",
        ),
        (
            {
                "installation": {"id": 1},
                "ref": "refs/heads/main",
                "commits": [{"modified": "Dockerfile"}],
                "repository": {"full_name": "a/b", "default_branch": "main"},
            },
            "modified",
        ),
    ],
)
def test_hostile_push_shapes_raise_malformed(payload: Any, field: str) -> None:
    with pytest.raises(MalformedPayload, match=field):
        route("push", payload, "d")


def test_hostile_comment_shapes_raise_malformed() -> None:
    base: dict[str, Any] = {
        "action": "created",
        "installation": {"id": 1},
        "repository": {"full_name": "a/b"},
        "issue": {"number": 1},
        "comment": {"id": 5, "body": "/ecr-cache", "user": {"login": "u"}},
    }
    for path, value in [
        (("comment", "body"), ["x"]),
        (("issue", "number"), "1"),
        (("comment", "id"), None),
        (("comment", "user"), "u"),
    ]:
        bad = copy.deepcopy(base)
        bad[path[0]][path[1]] = value
        with pytest.raises(MalformedPayload):
            route("issue_comment", bad, "d")


def test_relevance_of_paths() -> None:
    # Every naming form discovery reads counts, so a push and `/ecr-cache` see the same files.
    for path in (
        "deploy-buildspec.yml",
        "ci/prod.buildspec.yaml",
        "Containerfile",
        "pnpm-workspace.yaml",
        "requirements/base.txt",
        "build.gradle.kts",
        "app.gemspec",
    ):
        assert is_relevant_path(path), path
    assert is_relevant_path("api/Tinyllama.Dockerfile")
    assert is_relevant_path("go.sum")
    assert not is_relevant_path("README.md")
    assert not is_relevant_path("src/index.js")
    assert not is_relevant_path(".github/workflows/ci.yml")


@pytest.mark.parametrize(
    "body, expected",
    [
        ("/ecr-cache", Command("open")),
        ("  /ecr-cache  \r\nthanks", Command("open")),
        ("/ecr-cache preview", Command("preview")),
        ("/ecr-cache RECREATE now", Command("recreate")),
        ("/ecr-cache help", Command("help")),
        ("/ecr-cache frobnicate", Command("help", unknown="frobnicate")),
        ("/ecr-cachex", None),
        ("please run /ecr-cache", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_parse_command(body: object, expected: Command | None) -> None:
    assert parse_command(body) == expected


def test_a_lone_surrogate_in_a_name_is_malformed_not_a_queue_failure(corpus: Path) -> None:
    payload = _load(corpus, "push/with-new-branch.payload.json")
    payload["repository"]["full_name"] = "o/\ud800x"
    payload["commits"][0]["modified"] = ["Dockerfile"]
    with pytest.raises(MalformedPayload, match="UTF-8"):
        route("push", payload, "d-s")
