"""End to end: the real Flask app, signed webhooks, the queue drained, the real planner, the stateful double.

Idempotence across events is checked on GitHub's state (branches, commits, PRs, comments), and the GitHub
requests each step costs are counted (the same numbers `bench/api_economy.py` prints).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from github_double import (
    BOT_EMAIL,
    AppHarness,
    GitHubDouble,
    Recorded,
    comment_payload,
    installation_payload,
    pr_closed_payload,
    push_payload,
)
from job_fixtures import context

from bot import identity
from bot.app import handlers as jobs
from bot.core import planner
from bot.core.model import Options, Plan, RepoSnapshot

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo/seed-app"
LOCK = (
    '{\n  "name": "seed-app",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n  "requires": true,\n'
    '  "packages": {\n    "": {\n      "name": "seed-app",\n      "version": "1.0.0",\n'
    '      "dependencies": {"express": "^4.19.2"}\n    }\n  }\n}\n'
)
PACKAGE = (
    '{\n  "name": "seed-app",\n  "version": "1.0.0",\n  "scripts": {"build": "tsc"},\n'
    '  "dependencies": {"express": "^4.19.2"}\n}\n'
)


def seed_files() -> dict[str, str]:
    """The tutorial's seed app from ../shared when present, else the repository's own Node example."""
    seed = ROOT.parent / "shared" / "examples" / "seed-app"
    if seed.is_dir():
        return {
            "buildspec.yml": (seed / "buildspec.before.yml").read_text(),
            "Dockerfile": (seed / "Dockerfile.before").read_text(),
            "package.json": PACKAGE,
            "package-lock.json": LOCK,
            "src/index.ts": "console.log('hi')\n",
            "README.md": "# seed app\n",
        }
    base = ROOT / "examples" / "node-service"
    files = {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}
    return {**files, "README.md": "# seed app\n"}


def expected_plan(double: GitHubDouble, branch: str = "main") -> Plan:
    """What the real planner decides for the files on ``branch`` (computed here, outside the App)."""
    files = double.branch_files(REPO, branch)
    paths = tuple(sorted(files))
    wanted = planner.paths_to_read(paths, Options())
    return planner.plan(
        RepoSnapshot(paths, {p: files[p] for p in wanted}, files.get(".github/ecr-cache.yml")), Options()
    )


def writes(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests if r.is_write]


@pytest.fixture
def harness() -> Iterator[AppHarness]:
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        double.add_repo(REPO, seed_files(), permissions={"maintainer": "maintain", "guest": "read"})
        yield AppHarness(double)


def assert_pr_matches_planner(h: AppHarness) -> Plan:
    plan = expected_plan(h.double)
    assert not plan.is_empty, "the real planner must change the seed app"
    main, branch = h.double.branch_files(REPO, "main"), h.double.branch_files(REPO, "ecr-cache/setup")
    for edit in plan.edits:
        assert branch[edit.path] == edit.content, edit.path
    untouched = set(main) - {e.path for e in plan.edits}
    assert {p: branch[p] for p in untouched} == {p: main[p] for p in untouched}
    assert set(branch) == set(main) | {e.path for e in plan.edits}
    (pull,) = [p for p in h.double.pulls_for(REPO) if p.state == "open"]
    assert identity.parse_fingerprint(pull.body) == plan.fingerprint
    head = h.double.objects[h.double.repos[REPO].refs["ecr-cache/setup"]]["data"]
    assert head["parents"] == [h.double.repos[REPO].refs["main"]] and head["verified"]
    assert head["author"]["email"] == BOT_EMAIL
    return plan


def test_install_push_command_merge_lifecycle(harness: AppHarness) -> None:
    h, gh = harness, harness.double
    repo = gh.repos[REPO]

    # 1. The App is installed: every repository is listed through the API and gets its PR.
    status, requests = h.deliver("installation", installation_payload(1, "octo"), delivery="install-1")
    assert status == 202
    assert [o.action for o in h.outcomes] == ["queued", "opened"]  # the install job, then the repository's
    plan = assert_pr_matches_planner(h)
    assert {e.path for e in plan.edits} >= {"buildspec.yml", "Dockerfile"}
    assert [str(r) for r in requests] == [
        "POST /app/installations/1/access_tokens",
        "GET /installation/repositories",
        f"GET /repos/{REPO}/git/trees/main",  # cold process: tree first, so the state query brings the blobs
        "POST /graphql EcrCacheState",
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"POST /repos/{REPO}/git/refs",
        f"POST /repos/{REPO}/pulls",
    ]
    assert len(requests) <= 8

    # 2. GitHub redelivers the same installation event: a duplicate, nothing runs.
    status, requests = h.deliver("installation", installation_payload(1, "octo"), delivery="install-1")
    assert status == 202 and requests == [] and h.outcomes == []

    # 3. A push that changes nothing relevant costs no GitHub request at all.
    before = repo.refs["main"]
    after = gh.commit_files(REPO, "main", {"README.md": "# seed app\nmore docs\n"})
    status, requests = h.deliver("push", push_payload(repo, before, after, ["README.md"]))
    assert status == 200 and requests == []

    # 4. A relevant push that does not change the plan: the PR is already up to date, zero writes.
    before = repo.refs["main"]
    after = gh.commit_files(REPO, "main", {"src/index.ts": "console.log('hello')\n", "package.json": PACKAGE})
    status, requests = h.deliver("push", push_payload(repo, before, after, ["package.json"]))
    assert status == 202 and [o.action for o in h.outcomes] == ["current"] and writes(requests) == []

    # 5. A push that changes the buildspec: the same PR and branch are updated in place.
    before = repo.refs["main"]
    spec = gh.file_text(REPO, "main", "buildspec.yml")
    assert spec is not None
    after = gh.commit_files(REPO, "main", {"buildspec.yml": spec + "# build notes: cache by ecr-cache-bot\n"})
    status, requests = h.deliver("push", push_payload(repo, before, after, ["buildspec.yml"]))
    assert status == 202 and [o.action for o in h.outcomes] == ["updated"]
    assert writes(requests) == [
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"PATCH /repos/{REPO}/git/refs/heads/ecr-cache/setup",
        f"PATCH /repos/{REPO}/pulls/1",
    ]
    plan = assert_pr_matches_planner(h)
    assert "# build notes: cache by ecr-cache-bot" in gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"]
    assert len(gh.pulls_for(REPO)) == 1

    # 6. A read-only user is refused once; a maintainer previews without creating anything.
    guest = gh.add_comment(REPO, 7, "/ecr-cache recreate", "guest")
    status, requests = h.deliver("issue_comment", comment_payload(repo, guest))
    assert status == 202 and [o.action for o in h.outcomes] == ["refused"]
    assert writes(requests) == [f"POST /repos/{REPO}/issues/7/comments"]
    preview = gh.add_comment(REPO, 7, "/ecr-cache preview", "maintainer")
    status, requests = h.deliver("issue_comment", comment_payload(repo, preview))
    assert writes(requests) == ["POST /graphql EcrCacheReply"]  # the reaction and the reply in one mutation
    assert preview.reactions == ["eyes"] and guest.reactions == []
    reply = gh.bot_comments(REPO, 7)[-1].body
    assert "```diff" in reply and "+++ b/buildspec.yml" in reply

    # 7. A human merges the PR; the merge push is planned on the bot's own output: nothing to do.
    gh.merge_pull(REPO, 1)
    status, _ = h.deliver("pull_request", pr_closed_payload(repo, gh.pulls_for(REPO)[0]))
    assert status == 202 and [o.action for o in h.outcomes] == ["merged"]
    before = gh.objects[repo.refs["main"]]["data"]["parents"][0]
    changed = [e.path for e in plan.edits]
    status, requests = h.deliver("push", push_payload(repo, before, repo.refs["main"], changed))
    assert status == 202 and [o.action for o in h.outcomes] == ["already"] and writes(requests) == []
    assert expected_plan(gh).is_empty  # the planner is idempotent on the merged result

    # 8. `/ecr-cache` on the set-up repository: one state read (with the permission), one reply mutation.
    ask = gh.add_comment(REPO, 8, "/ecr-cache", "maintainer")
    status, requests = h.deliver("issue_comment", comment_payload(repo, ask))
    assert status == 202 and [o.action for o in h.outcomes] == ["already"]
    assert len(requests) <= 4, [str(r) for r in requests]
    (reply_8,) = gh.bot_comments(REPO, 8)
    assert "already set up" in reply_8.body and "buildspec `buildspec.yml`" in reply_8.body
    assert len(gh.pulls_for(REPO)) == 1


def test_closed_pr_is_not_recreated_by_push_or_install_but_by_command(harness: AppHarness) -> None:
    h, gh = harness, harness.double
    repo = gh.repos[REPO]
    h.deliver("installation", installation_payload(1, "octo"))
    gh.close_pull(REPO, 1)
    status, _ = h.deliver("pull_request", pr_closed_payload(repo, gh.pulls_for(REPO)[0]))
    assert status == 202 and "ecr-cache/setup" not in repo.refs
    assert len(gh.bot_comments(REPO, 1)) == 1

    before = repo.refs["main"]
    after = gh.commit_files(
        REPO, "main", {"Dockerfile": "FROM node:22-alpine\nWORKDIR /app\nCOPY . .\nRUN npm ci\nRUN npm run build\n"}
    )
    status, requests = h.deliver("push", push_payload(repo, before, after, ["Dockerfile"]))
    assert [o.action for o in h.outcomes] == ["opted_out"] and writes(requests) == []
    h.deliver("installation_repositories", {**installation_payload(1, "octo"), "action": "added"})
    assert [o.action for o in h.outcomes] == ["queued", "opted_out"] and len(gh.pulls_for(REPO)) == 1

    ask = gh.add_comment(REPO, 3, "/ecr-cache", "maintainer")
    h.deliver("issue_comment", comment_payload(repo, ask))
    assert [o.action for o in h.outcomes] == ["opened"]
    assert [p.state for p in gh.pulls_for(REPO)] == ["closed", "open"]
    assert_pr_matches_planner(h)
    assert "/pull/2" in gh.bot_comments(REPO, 3)[0].body


def test_bot_senders_and_the_bots_own_branch_are_ignored(harness: AppHarness) -> None:
    h, gh = harness, harness.double
    repo = gh.repos[REPO]
    h.deliver("installation", installation_payload(1, "octo"))
    bot_push = push_payload(
        repo, "0" * 40, repo.refs["ecr-cache/setup"], ["buildspec.yml"], branch="ecr-cache/setup", sender_type="Bot"
    )
    status, requests = h.deliver("push", bot_push)
    assert status == 200 and requests == []
    by_bot = gh.add_comment(REPO, 4, "/ecr-cache recreate", "other-bot[bot]")
    status, requests = h.deliver("issue_comment", comment_payload(repo, by_bot, user_type="Bot"))
    assert status == 200 and requests == []


def _schema(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _check(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """The parts of JSON Schema the App's bodies touch: required, known properties, enums, item shapes."""
    schema = _schema(spec, schema)
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict) and "properties" in schema:
        problems += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        problems += [f"{where}: unknown {k}" for k in value if k not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                problems += _check(spec, schema["properties"][key], item, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += _check(spec, schema["items"], item, f"{where}[{i}]")
    return problems


def _operations(corpus: Path, history: list[Recorded]) -> set[str]:
    """Check every REST request against the OpenAPI subset; return the operation ids used."""
    spec = json.loads((corpus / "github-api" / "pr-bot-operations.openapi.json").read_text())
    templates = []
    for path, ops in spec["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        pattern = pattern.replace("/git/refs/[^/]+", "/git/refs/.+")  # `ref` is multi-segment
        templates += [
            (m.upper(), re.compile(f"^{pattern}$"), op)
            for m, op in ops.items()
            if m in ("get", "post", "patch", "put", "delete")
        ]
    graphql = pytest.importorskip("graphql")
    graphql_schema = graphql.build_schema((corpus / "github-api" / "github-graphql-subset.graphql").read_text())
    seen = set()
    for request in history:
        if request.path == "/graphql":
            document = graphql.parse(request.body["query"])
            assert graphql.validate(graphql_schema, document) == [], str(request)
            defined = {
                d.variable.name.value
                for op in document.definitions
                for d in getattr(op, "variable_definitions", None) or ()
            }  # fragments define none
            # Every variable sent is declared (unused blob slots are declared and left out).
            assert set(request.body["variables"]) <= defined, str(request)
            seen.add(f"graphql/{request.operation}")
            continue
        matches = [op for method, t, op in templates if method == request.method and t.match(request.path)]
        assert matches, f"{request} is not one of the 31 documented operations"
        seen.add(matches[0]["operationId"])
        if request.body is not None and "requestBody" in matches[0]:
            schema = matches[0]["requestBody"]["content"]["application/json"]["schema"]
            assert _check(spec, schema, request.body, str(request)) == []
    return seen


def test_lifecycle_requests_match_githubs_openapi_description(harness: AppHarness, corpus: Path) -> None:
    test_install_push_command_merge_lifecycle(harness)
    assert _operations(corpus, harness.double.history) >= {
        "git/get-tree",
        "git/create-tree",
        "git/create-commit",
        "git/create-ref",
        "git/update-ref",
        "pulls/create",
        "pulls/update",
        "issues/create-comment",
        "repos/get-collaborator-permission-level",
        "apps/create-installation-access-token",
        "apps/list-repos-accessible-to-installation",
        "graphql/EcrCacheState",
        "graphql/EcrCacheReply",
    }


def test_opt_out_requests_match_githubs_openapi_description(harness: AppHarness, corpus: Path) -> None:
    test_closed_pr_is_not_recreated_by_push_or_install_but_by_command(harness)
    assert "git/delete-ref" in _operations(corpus, harness.double.history)


def test_api_economy_bench_meets_its_goals() -> None:
    spec = importlib.util.spec_from_file_location("api_economy", ROOT / "bench" / "api_economy.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["api_economy"] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    rows = {row.step: row for row in bench.measure()}
    counts = {step: len(row.requests) for step, row in rows.items()}
    assert counts["first PR (push to default branch, cold process)"] <= 8
    assert counts["first PR via installation.created (1 repository)"] <= 8
    assert counts["push changing nothing relevant"] == 0
    assert rows["relevant push, plan unchanged (PR up to date)"].writes == 0
    assert counts["/ecr-cache on the set-up repository (warm)"] <= 4
    assert counts["/ecr-cache, set up by merging the bot's PR (warm)"] <= 4
    # A process that never saw the repository: token, tree, state with permission and blobs, reply mutation.
    assert counts["/ecr-cache, set up; new process (cold)"] <= 4
    refused = rows["/ecr-cache by a non-collaborator (refused, cold)"]
    assert refused.outcome == "refused" and not any("/git/trees" in r.path for r in refused.requests)


def test_command_that_fails_for_good_gets_a_reply_saying_why() -> None:
    # A tree too large to list is not a 4xx answer, yet nothing will retry it: the commenter is told.
    double = GitHubDouble(truncate_trees_over=50)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        files = seed_files() | {f"svc{i}/src/a.txt": "x\n" for i in range(310)}
        double.add_repo(REPO, files, permissions={"maintainer": "maintain"})
        h = AppHarness(double)
        ask = double.add_comment(REPO, 9, "/ecr-cache", "maintainer")
        with pytest.raises(Exception, match="too large"):  # the job fails for good; a queue dead-letters it
            h.deliver("issue_comment", comment_payload(double.repos[REPO], ask))
        (reply,) = double.bot_comments(REPO, 9)
        assert "could not finish" in reply.body and "too large" in reply.body


def test_added_repositories_are_synced_alone_without_preview() -> None:
    # A big installation gains one repository: only that one is synced, and it gets its PR (no preview mode).
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        for n in range(4):
            double.add_repo(f"octo/old-{n}", seed_files())
        double.add_repo("octo/new-one", seed_files())
        h = AppHarness(double)
        # As the worker runs jobs: with the installation's preview threshold (3, below its 5 repositories).
        h.queue.runner = lambda job: h.outcomes.extend(  # type: ignore[attr-defined]
            jobs.run(job, context(h.factory, submit=h.queue.submit, preview_threshold=3))
        )
        payload = {
            **installation_payload(1, "octo"),
            "action": "added",
            "repository_selection": "selected",
            "repositories_added": [{"full_name": "octo/new-one"}],
        }
        status, _ = h.deliver("installation_repositories", payload)
        assert status == 202
        assert [(o.repo, o.action) for o in h.outcomes] == [("octo/new-one", "queued"), ("octo/new-one", "opened")]
        assert [p.state for p in double.pulls_for("octo/new-one")] == ["open"]
        assert all(double.pulls_for(f"octo/old-{n}") == [] for n in range(4))
        # The same installation job without the added names would go into preview mode and open nothing.
        status, _ = h.deliver("installation", installation_payload(1, "octo"))
        assert all(double.pulls_for(f"octo/old-{n}") == [] for n in range(4))
        assert {o.action for o in h.outcomes if o.repo.startswith("octo/old-")} <= {"queued", "would_open"}
