"""The gateway and the lifecycle rules against the stateful GitHub double: exact request sequences and bodies."""

from __future__ import annotations

import time
from typing import Any

import pytest
import responses
from github_double import BOT_EMAIL, WEB_FLOW_EMAIL, GitHubDouble, Recorded, issue_node_id, private_key_pem
from job_fixtures import context

from bot import identity
from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.core import planner
from bot.core.model import BuildLink, FileEdit, Options, Plan, RepoSnapshot
from bot.github.client import GatewayFactory, git_blob_sha
from bot.github.gateway import GitHubError
from bot.queue.retry import classify_exception
from bot.settings import Settings

REPO = "octo/app"
SPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n"
FILES = {
    "buildspec.yml": SPEC,
    "Dockerfile": "FROM node:20\nCOPY . .\nRUN npm ci\n",
    "README.md": "hi\n",
    "src/index.js": "console.log(1)\n",
}
MARK = "# ecr-cache\n"


def fake_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """A deterministic, idempotent stand-in planner: appends one line to the buildspec once."""
    spec = snapshot.text("buildspec.yml")
    if spec is None or spec.endswith(MARK):
        # Set up: the build it found already uses the cache.
        built = (BuildLink("buildspec.yml", "build", 0, 5, "Dockerfile", ".", "cache"),) if spec else ()
        return Plan(buildspecs=("buildspec.yml",) if spec else (), builds=built)
    return Plan(
        edits=(FileEdit("buildspec.yml", "modify", spec + MARK, spec, ("adds the cache",)),),
        buildspecs=("buildspec.yml",),
        dockerfiles=("Dockerfile",),
    )


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)
    monkeypatch.setattr(
        planner, "paths_to_read", lambda paths, options: tuple(p for p in paths if p in ("buildspec.yml", "Dockerfile"))
    )


def factory(double: GitHubDouble) -> GatewayFactory:
    settings = Settings(webhook_secret="s", app_id="99", private_key=private_key_pem(), github_api_url=double.base_url)
    return GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)


def seq(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests]


def sync(double: GitHubDouble, f: GatewayFactory, delivery: str = "d") -> list[jobs.Outcome]:
    double.reset_requests()
    return jobs.run(Job("sync", 1, REPO, delivery), context(f))


def command(
    double: GitHubDouble,
    f: GatewayFactory,
    body: str,
    user: str,
    issue: int = 50,
    association: str | None = None,
    dry_run: bool = False,
) -> list[jobs.Outcome]:
    """Run a command job; with ``association`` the job carries what a real delivery carries (GraphQL ids)."""
    comment = double.add_comment(REPO, issue, body, user)
    double.reset_requests()
    data: dict[str, Any] = {
        "command": body.split()[1] if len(body.split()) > 1 else "open",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": issue,
        "user": user,
    }
    if association is not None:
        data.update(
            association=association,
            comment_node_id=comment.node_id,
            default_branch="main",
            issue_node_id=issue_node_id(double.repos[REPO], issue),
        )
    return jobs.run(Job("command", 1, REPO, f"c-{comment.id}", data), context(f, dry_run=dry_run))


def tree_of(double: GitHubDouble, branch: str = "main") -> str:
    return str(double.objects[double.repos[REPO].refs[branch]]["data"]["tree"])


def test_first_pr_is_one_signed_commit_and_one_pr(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    main_sha, main_tree = gh.repos[REPO].refs["main"], tree_of(gh)
    (outcome,) = sync(gh, factory(gh))
    assert outcome.action == "opened" and outcome.pr_url.endswith("/pull/1")
    assert seq(gh.requests) == [
        "POST /app/installations/1/access_tokens",
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/git/trees/{main_tree}",
        "POST /graphql EcrCacheState[blobs]",
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"POST /repos/{REPO}/git/refs",
        f"POST /repos/{REPO}/pulls",
    ]
    tree_req, commit_req, ref_req, pull_req = (r.body for r in gh.requests[4:])
    assert gh.requests[2].query == {"recursive": "1"}
    assert tree_req == {
        "base_tree": main_tree,
        "tree": [{"path": "buildspec.yml", "mode": "100644", "type": "blob", "content": SPEC + MARK}],
    }
    assert set(commit_req) == {"message", "tree", "parents"}  # no author/committer: GitHub signs it
    assert commit_req["parents"] == [main_sha]
    assert ref_req == {"ref": "refs/heads/ecr-cache/setup", "sha": gh.repos[REPO].refs["ecr-cache/setup"]}
    assert pull_req["head"] == "ecr-cache/setup" and pull_req["base"] == "main"
    expected = fake_plan(RepoSnapshot(("buildspec.yml",), {"buildspec.yml": SPEC}), Options())
    assert identity.parse_fingerprint(pull_req["body"]) == expected.fingerprint
    head = gh.objects[gh.repos[REPO].refs["ecr-cache/setup"]]["data"]
    assert head["verified"] and head["author"]["email"] == BOT_EMAIL and head["committer"]["email"] == WEB_FLOW_EMAIL
    assert gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] == SPEC + MARK
    # Only the two files the planner asked for were read, in one GraphQL query.
    assert gh.requests[3].blobs == 2
    wanted = {git_blob_sha(FILES[p].encode()) for p in ("buildspec.yml", "Dockerfile")}
    assert {v for k, v in gh.requests[3].body["variables"].items() if k.startswith("b")} == wanted


def test_cold_process_reads_the_tree_first_and_the_blobs_with_the_state(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.reset_requests()
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d", {"default_branch": "main"}), context(factory(gh)))
    assert outcome.action == "opened"
    assert seq(gh.requests) == [
        "POST /app/installations/1/access_tokens",
        f"GET /repos/{REPO}/git/trees/main",
        "POST /graphql EcrCacheState",
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"POST /repos/{REPO}/git/refs",
        f"POST /repos/{REPO}/pulls",
    ]
    assert gh.requests[2].blobs == 2  # buildspec.yml and Dockerfile rode along with the state query
    assert gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] == SPEC + MARK


def test_cold_read_falls_back_when_main_moves_between_tree_and_state(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    real_get_tree = gh._get_tree

    def push_after_listing(*args: Any) -> Any:
        gh._get_tree = real_get_tree  # type: ignore[method-assign]
        answer = real_get_tree(*args)
        gh.commit_files(REPO, "main", {"buildspec.yml": SPEC + "# newer\n"})
        return answer

    gh._get_tree = push_after_listing  # type: ignore[method-assign]
    gh.reset_requests()
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d", {"default_branch": "main"}), context(factory(gh)))
    assert outcome.action == "opened"
    assert seq(gh.requests)[1:5] == [
        f"GET /repos/{REPO}/git/trees/main",
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/git/trees/{tree_of(gh)}",
        "POST /graphql EcrCacheState[blobs]",
    ]
    assert gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] == SPEC + "# newer\n" + MARK


def test_cold_read_of_an_empty_repository_is_skipped(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {})
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d", {"default_branch": "main"}), context(factory(gh)))
    assert (outcome.action, outcome.detail) == ("skipped", "empty")
    assert [r for r in gh.requests if r.is_write] == []


def test_pr_already_up_to_date_makes_no_write(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    sync(gh, f)
    (outcome,) = sync(gh, f)
    assert outcome.action == "current"
    assert seq(gh.requests) == ["POST /graphql EcrCacheState"]  # token reused, tree and blobs cached by sha
    # A fresh process (no cache, new token) still writes nothing.
    (outcome,) = sync(gh, factory(gh))
    assert outcome.action == "current"
    assert [r for r in gh.requests if r.is_write] == []
    assert len(gh.pulls_for(REPO)) == 1


def test_plan_changed_updates_branch_and_pr_in_place(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    sync(gh, f)
    new_spec = SPEC.replace("app .", "app:latest .")
    new_main = gh.commit_files(REPO, "main", {"buildspec.yml": new_spec})
    (outcome,) = sync(gh, f)
    assert outcome.action == "updated"
    assert seq(gh.requests) == [
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/git/trees/{tree_of(gh)}",
        "POST /graphql EcrCacheState[blobs]",
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"PATCH /repos/{REPO}/git/refs/heads/ecr-cache/setup",
        f"PATCH /repos/{REPO}/pulls/1",
    ]
    assert gh.requests[2].blobs == 1  # the unchanged Dockerfile blob is cached
    assert gh.requests[5].body == {"sha": gh.repos[REPO].refs["ecr-cache/setup"], "force": True}
    assert gh.requests[4].body["parents"] == [new_main]
    assert gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] == new_spec + MARK
    (pull,) = gh.pulls_for(REPO)
    new_plan = fake_plan(RepoSnapshot(("buildspec.yml",), {"buildspec.yml": new_spec}), Options())
    assert identity.parse_fingerprint(pull.body) == new_plan.fingerprint


def test_closed_unmerged_pr_is_an_opt_out_until_a_command(gh: GitHubDouble) -> None:
    repo = gh.add_repo(REPO, FILES, permissions={"maintainer": "maintain"})
    f = factory(gh)
    sync(gh, f)
    gh.close_pull(REPO, 1)
    gh.reset_requests()
    (outcome,) = jobs.run(Job("pr_closed", 1, REPO, "x", {"number": 1, "merged": False}), context(f))
    assert outcome.action == "opted_out_noted"
    assert seq(gh.requests) == [
        "POST /graphql EcrCacheState",
        f"POST /repos/{REPO}/issues/1/comments",
        f"DELETE /repos/{REPO}/git/refs/heads/ecr-cache/setup",
    ]
    assert "ecr-cache/setup" not in repo.refs
    (note,) = gh.bot_comments(REPO, 1)
    assert "/ecr-cache" in note.body and "closed without merging" in note.body
    # Redelivery of the close event: no second comment.
    jobs.run(Job("pr_closed", 1, REPO, "x2", {"number": 1, "merged": False}), context(f))
    assert len(gh.bot_comments(REPO, 1)) == 1

    gh.commit_files(REPO, "main", {"buildspec.yml": SPEC + "# more\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "opted_out"
    assert seq(gh.requests) == ["POST /graphql EcrCacheState"]  # not even the tree is read
    (outcome,) = jobs.run(Job("install", 1, "octo", "i"), context(f))
    assert outcome.action == "opted_out" and len(gh.pulls_for(REPO)) == 1

    (outcome,) = command(gh, f, "/ecr-cache", "maintainer")
    assert outcome.action == "opened"
    assert seq(gh.requests) == [
        "POST /graphql EcrCacheState",  # GraphQL shows the maintainer's direct grant: no REST permission check
        f"GET /repos/{REPO}/git/trees/{tree_of(gh)}",
        "POST /graphql EcrCacheState[blobs]",
        f"POST /repos/{REPO}/issues/comments/{gh.repos[REPO].comments[-2].id}/reactions",  # before the writes
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"POST /repos/{REPO}/git/refs",
        f"POST /repos/{REPO}/pulls",
        f"POST /repos/{REPO}/issues/50/comments",
    ]
    assert [p.state for p in gh.pulls_for(REPO)] == ["closed", "open"]
    (reply,) = gh.bot_comments(REPO, 50)
    assert "https://github.test/octo/app/pull/2" in reply.body


def test_human_commit_on_bot_branch_is_never_overwritten(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"admin1": "admin"})
    f = factory(gh)
    sync(gh, f)
    human = gh.commit_files(REPO, "ecr-cache/setup", {"Dockerfile": "FROM node:22\n"}, "my tweak")
    gh.commit_files(REPO, "main", {"buildspec.yml": SPEC + "# a\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "human_edits"
    assert [str(r) for r in gh.requests if r.is_write] == [f"POST /repos/{REPO}/issues/1/comments"]
    assert gh.repos[REPO].refs["ecr-cache/setup"] == human
    gh.commit_files(REPO, "main", {"buildspec.yml": SPEC + "# b\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "human_edits"
    assert [r for r in gh.requests if r.is_write] == []  # said once: the upserted comment is unchanged
    assert len(gh.bot_comments(REPO, 1)) == 1 and gh.repos[REPO].refs["ecr-cache/setup"] == human

    (outcome,) = command(gh, f, "/ecr-cache recreate", "admin1")
    assert outcome.action == "updated"
    writes = [str(r) for r in gh.requests if r.is_write]
    assert writes[1:] == [
        f"POST /repos/{REPO}/git/trees",
        f"POST /repos/{REPO}/git/commits",
        f"PATCH /repos/{REPO}/git/refs/heads/ecr-cache/setup",
        f"PATCH /repos/{REPO}/pulls/1",
        f"POST /repos/{REPO}/issues/50/comments",
    ]
    assert writes[0].endswith("/reactions")
    assert gh.repos[REPO].refs["ecr-cache/setup"] != human
    assert gh.branch_files(REPO, "ecr-cache/setup")["Dockerfile"] == FILES["Dockerfile"]
    assert gh.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] == SPEC + "# b\n" + MARK


def test_a_human_force_push_of_a_single_commit_also_counts(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    sync(gh, f)
    repo = gh.repos[REPO]
    base = gh.objects[repo.refs["ecr-cache/setup"]]["data"]["parents"][0]
    repo.refs["ecr-cache/setup"] = gh.make_commit(
        tree_of(gh), [base], "rewritten", "dev@example.com", "dev@example.com", False
    )
    gh.commit_files(REPO, "main", {"buildspec.yml": SPEC + "# c\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "human_edits"


def test_read_only_user_gets_one_polite_refusal_and_nothing_else(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"reader": "read"})
    f = factory(gh)
    (outcome,) = command(gh, f, "/ecr-cache", "reader")
    assert outcome.action == "refused"
    assert seq(gh.requests) == [
        "POST /app/installations/1/access_tokens",
        "POST /graphql EcrCacheState",  # GraphQL shows `read`: REST has the last word
        f"GET /repos/{REPO}/collaborators/reader/permission",
        f"POST /repos/{REPO}/issues/50/comments",
    ]
    (refusal,) = gh.bot_comments(REPO, 50)
    assert refusal.body.startswith("<!-- ecr-cache-bot:comment=refusal-reader -->\n")
    assert "write" in refusal.body and "maintain" in refusal.body and "admin" in refusal.body
    assert "**read**" in refusal.body
    assert all(not c.reactions for c in gh.repos[REPO].comments)
    command(gh, f, "/ecr-cache recreate", "reader")
    assert len(gh.bot_comments(REPO, 50)) == 1
    assert gh.pulls_for(REPO) == [] and "ecr-cache/setup" not in gh.repos[REPO].refs


@pytest.mark.parametrize("role", ["triage", "none"])
def test_triage_and_strangers_are_refused(gh: GitHubDouble, role: str) -> None:
    gh.add_repo(REPO, FILES, permissions={"u": role})
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "u")
    assert outcome.action == "refused" and gh.pulls_for(REPO) == []


def test_lost_race_on_branch_creation_rereads_and_writes_nothing_more(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    worker_a, worker_b = factory(gh), factory(gh)
    real_create_ref = gh._create_ref
    raced: list[bool] = []

    def racing_create_ref(*args: Any) -> Any:
        if not raced:  # worker B finishes the same job while worker A is about to create the branch
            raced.append(True)
            gh._create_ref = real_create_ref  # type: ignore[method-assign]
            jobs.run(Job("sync", 1, REPO, "b"), context(worker_b))
        return real_create_ref(*args)

    gh._create_ref = racing_create_ref  # type: ignore[method-assign]
    gh.reset_requests()
    (outcome,) = jobs.run(Job("sync", 1, REPO, "a"), context(worker_a))
    assert outcome.action == "current"
    # A's ref call is recorded first; B's whole job runs nested inside it and wins with 201.
    ref_calls = [r for r in gh.requests if str(r) == f"POST /repos/{REPO}/git/refs"]
    assert [r.status for r in ref_calls] == [422, 201]
    assert sum(1 for r in gh.requests if str(r) == f"POST /repos/{REPO}/pulls") == 1  # B's only
    assert seq(gh.requests)[-1] == "POST /graphql EcrCacheState"  # A re-read, saw B's PR, wrote nothing
    assert len(gh.pulls_for(REPO)) == 1


def test_lost_race_on_pr_creation_rereads_and_keeps_one_pr(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    real_create_pull = gh._create_pull

    def other_worker_first(repo: Any, query: Any, body: Any) -> Any:
        gh._create_pull = real_create_pull  # type: ignore[method-assign]
        real_create_pull(repo, query, dict(body))  # the same PR, opened a moment earlier by another worker
        return real_create_pull(repo, query, body)

    gh._create_pull = other_worker_first  # type: ignore[method-assign]
    (outcome,) = sync(gh, f)
    assert outcome.action == "current"
    pulls = [r for r in gh.requests if str(r) == f"POST /repos/{REPO}/pulls"]
    assert [r.status for r in pulls] == [422]
    assert seq(gh.requests)[-1] == "POST /graphql EcrCacheState"
    assert len(gh.pulls_for(REPO)) == 1


def test_other_4xx_is_not_retried(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.fail_next.append(("POST", f"/repos/{REPO}/git/commits", 403, {"message": "Resource not accessible"}))
    with pytest.raises(GitHubError) as info:
        sync(gh, factory(gh))
    assert info.value.status == 403 and classify_exception(info.value).action == "fail"
    assert seq(gh.requests)[-1] == f"POST /repos/{REPO}/git/commits"
    assert sum(1 for r in gh.requests if r.path.endswith("/git/commits")) == 1
    assert gh.pulls_for(REPO) == []


def test_merged_pr_stays_quiet_until_the_plan_differs(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    sync(gh, f)
    gh.merge_pull(REPO, 1)
    (outcome,) = jobs.run(Job("pr_closed", 1, REPO, "m", {"number": 1, "merged": True}), context(f))
    assert outcome.action == "merged"
    (outcome,) = sync(gh, f)
    assert outcome.action == "already" and [r for r in gh.requests if r.is_write] == []
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n"})  # someone replaced the buildspec
    (outcome,) = sync(gh, f)
    assert outcome.action == "opened" and len(gh.pulls_for(REPO)) == 2


def test_a_merged_branch_with_human_commits_does_not_block_the_next_pr(gh: GitHubDouble) -> None:
    # Someone fixed the bot's PR by hand and merged it: those commits are on the default branch now, so the
    # stale branch protects nothing. When the plan later differs, the bot opens a new PR on that branch.
    gh.add_repo(REPO, FILES)
    f = factory(gh)
    sync(gh, f)
    human = gh.commit_files(REPO, "ecr-cache/setup", {"README.md": "fixed by hand\n"}, "my fix")
    gh.merge_pull(REPO, 1)
    jobs.run(Job("pr_closed", 1, REPO, "m", {"number": 1, "merged": True}), context(f))
    assert gh.repos[REPO].refs["ecr-cache/setup"] == human  # GitHub did not delete the branch
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "opened" and len(gh.pulls_for(REPO)) == 2
    assert gh.branch_files(REPO, "ecr-cache/setup")["README.md"] == "fixed by hand\n"  # came back via main
    # A commit pushed to the branch after the merge is not on the default branch: that one is protected.
    gh.merge_pull(REPO, 2)
    late = gh.commit_files(REPO, "ecr-cache/setup", {"notes.txt": "after the merge\n"}, "late")
    gh.commit_files(REPO, "main", {"buildspec.yml": "version: 0.2\n# again\n"})
    (outcome,) = sync(gh, f)
    assert outcome.action == "human_edits" and gh.repos[REPO].refs["ecr-cache/setup"] == late


def test_truncated_tree_is_walked_by_subtree(gh: GitHubDouble) -> None:
    gh.truncate_trees_over = 3
    gh.add_repo(REPO, {**FILES, "svc/a/Dockerfile": "FROM x\n", "svc/b/buildspec.yml": "version: 0.2\n"})
    gw = factory(gh)(1)
    state = gw.read_state(REPO)
    gh.reset_requests()
    files = gw.read_tree(REPO, state.base_tree)
    assert sorted(files) == sorted([*FILES, "svc/a/Dockerfile", "svc/b/buildspec.yml"])
    gets = [(r.path.rsplit("/", 1)[1], r.query.get("recursive")) for r in gh.requests]
    assert gets[0] == (state.base_tree, "1") and gets[1] == (state.base_tree, None)
    # root recursive (cut at 3 entries), root level, src/ recursive, svc/ recursive (4 entries: cut),
    # svc/ level, svc/a/ recursive, svc/b/ recursive
    assert [q for _, q in gets] == ["1", None, "1", "1", None, "1", "1"]
    assert all(r.method == "GET" for r in gh.requests)


def test_installation_repositories_are_paged_and_unusable_ones_skipped(gh: GitHubDouble) -> None:
    for i in range(103):
        gh.add_repo(f"octo/r{i:03}", {"README.md": "x"})
    gh.add_repo(REPO, FILES)
    gh.add_repo("octo/archived", FILES, archived=True)
    gh.add_repo("octo/fork", FILES, fork=True)
    gh.add_repo("octo/empty", {})
    gh.add_repo("other/app", FILES, installation_id=2)
    gh.reset_requests()
    outcomes = jobs.run(Job("install", 1, "octo", "i"), context(factory(gh)))
    pages = [r.query for r in gh.requests if r.path == "/installation/repositories"]
    assert pages == [{"per_page": "100", "page": "1"}, {"per_page": "100", "page": "2"}]
    by_repo = {o.repo: o.action for o in outcomes}
    assert len(by_repo) == 107 and by_repo[REPO] == "opened"
    assert {by_repo["octo/archived"], by_repo["octo/fork"], by_repo["octo/empty"]} == {"skipped"}
    assert by_repo["octo/r000"] == "already"
    assert "other/app" not in by_repo and gh.pulls_for("other/app") == []
    assert sum(1 for r in gh.requests if r.path.endswith("/access_tokens")) == 1


def test_github_enterprise_base_url_is_honoured() -> None:
    double = GitHubDouble(base_url="https://ghe.example.test/api/v3")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        double.add_repo(REPO, FILES)
        (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), context(factory(double)))
    assert outcome.action == "opened"
    assert double.graphql_url == "https://ghe.example.test/api/graphql"
    assert "POST /graphql EcrCacheState" in seq(double.requests)


def test_one_client_and_token_per_installation_reused_across_jobs(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.add_repo("other/app", FILES, installation_id=2)
    f = factory(gh)
    assert f(1)._client is f(1)._client and f(1)._client is not f(2)._client  # one gateway per job, one client
    jobs.run(Job("sync", 1, REPO, "a"), context(f))
    jobs.run(Job("sync", 1, REPO, "b"), context(f))
    jobs.run(Job("sync", 2, "other/app", "c"), context(f))
    minted = [r.path for r in gh.requests if r.path.endswith("/access_tokens")]
    assert minted == ["/app/installations/1/access_tokens", "/app/installations/2/access_tokens"]


def test_preview_replies_with_the_diff_and_creates_nothing(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    (outcome,) = command(gh, factory(gh), "/ecr-cache preview", "dev")
    assert outcome.action == "previewed"
    writes = [str(r) for r in gh.requests if r.is_write]
    assert writes[0].endswith("/reactions") and writes[1:] == [f"POST /repos/{REPO}/issues/50/comments"]
    (reply,) = gh.bot_comments(REPO, 50)
    assert "<details>" in reply.body and "```diff" in reply.body and "+# ecr-cache" in reply.body
    assert gh.pulls_for(REPO) == [] and "ecr-cache/setup" not in gh.repos[REPO].refs
    reaction_body = next(r.body for r in gh.requests if r.path.endswith("/reactions"))
    assert reaction_body == {"content": "eyes"}


def test_help_and_unknown_subcommand_reply_with_the_command_list(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    f = factory(gh)
    comment = gh.add_comment(REPO, 50, "/ecr-cache frob", "dev")
    jobs.run(
        Job(
            "command",
            1,
            REPO,
            "h",
            {"command": "help", "unknown": "frob", "comment_id": comment.id, "issue_number": 50, "user": "dev"},
        ),
        context(f),
    )
    (reply,) = gh.bot_comments(REPO, 50)
    assert "`frob` is not an `/ecr-cache` command" in reply.body
    for sub in ("`/ecr-cache preview`", "`/ecr-cache recreate`", "`/ecr-cache help`"):
        assert sub in reply.body


def test_command_on_already_set_up_repo_says_what_was_checked(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, "buildspec.yml": SPEC + MARK}, permissions={"dev": "write"})
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "dev")
    assert outcome.action == "already"
    (reply,) = gh.bot_comments(REPO, 50)
    assert "already set up" in reply.body and "buildspec `buildspec.yml`" in reply.body
    assert "default branch `main`" in reply.body


def test_dry_run_reads_but_never_writes(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    gh.reset_requests()
    (outcome,) = jobs.run(Job("sync", 1, REPO, "d"), context(factory(gh), dry_run=True))
    assert outcome.action == "opened"
    assert [r for r in gh.requests if r.is_write] == [] and gh.pulls_for(REPO) == []


def test_production_retry_repeats_a_read_after_a_gateway_error_but_never_a_write(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    settings = Settings(webhook_secret="s", app_id="99", private_key=private_key_pem(), github_api_url=gh.base_url)
    f = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0)  # default retry
    gh.fail_next.append(("GET", f"/repos/{REPO}/git/trees/main", 503, {"message": "unavailable"}))
    gh.fail_next.append(("POST", f"/repos/{REPO}/git/refs", 502, {"message": "bad gateway"}))
    with pytest.raises(GitHubError) as info:
        jobs.run(Job("sync", 1, REPO, "d", {"default_branch": "main"}), context(f))
    assert info.value.status == 502 and classify_exception(info.value).action == "retry"
    statuses = [(str(r), r.status) for r in gh.requests if "/git/trees/main" in r.path or "/git/refs" in r.path]
    assert statuses == [
        (f"GET /repos/{REPO}/git/trees/main", 503),
        (f"GET /repos/{REPO}/git/trees/main", 200),
        (f"POST /repos/{REPO}/git/refs", 502),
    ]


@pytest.mark.parametrize(
    "role, permission, allowed",
    [("maintain", "write", True), ("security-reviewer", "write", True), ("custom-reader", "read", False)],
)
def test_custom_roles_are_judged_by_their_base_permission(
    gh: GitHubDouble, role: str, permission: str, allowed: bool
) -> None:
    gh.add_repo(REPO, FILES)
    gw = factory(gh)(1)
    real = gh._permission

    def custom(repo: Any, query: Any, body: Any, user: str) -> Any:
        return 200, {"permission": permission, "role_name": role, "user": {"login": user, "role_name": role}}

    gh._permission = custom  # type: ignore[method-assign]
    try:
        assert (gw.permission(REPO, "u") in jobs.WRITE_ROLES) is allowed
    finally:
        gh._permission = real  # type: ignore[method-assign]


def test_caches_are_bounded_by_size(gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.github.object_cache as gateway_module

    monkeypatch.setattr(gateway_module, "MAX_CACHED_BLOB_CHARS", 60)
    gh.add_repo(REPO, {"a": "x" * 50, "b": "y" * 50})
    gw = factory(gh)(1)
    sha, tree = gw.read_tree_at(REPO, "main")
    assert gw.read_blobs(REPO, [tree["a"]]) == {"a": "x" * 50}
    assert gw.read_blobs(REPO, [tree["b"]]) == {"b": "y" * 50}  # evicts "a": 100 chars > 60
    gh.reset_requests()
    assert gw.read_blobs(REPO, [tree["b"]]) == {"b": "y" * 50}
    assert gh.requests == []
    assert gw.read_blobs(REPO, [tree["a"]]) == {"a": "x" * 50}
    assert seq(gh.requests) == ["POST /graphql EcrCacheState[blobs]"]
    gh.reset_requests()
    gw.read_tree(REPO, sha)
    assert gh.requests == []  # two entries: kept
    monkeypatch.setattr(gateway_module, "MAX_CACHED_TREE_ENTRIES", 2)
    gh.commit_files(REPO, "main", {"c": "z"})
    new_sha, _ = gw.read_tree_at(REPO, "main")  # three entries: too large to keep
    gh.reset_requests()
    gw.read_tree(REPO, new_sha)
    assert seq(gh.requests) == [f"GET /repos/{REPO}/git/trees/{new_sha}"]


def test_git_blob_sha_matches_git() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize(
    "error_type, status, action",
    [
        ("RATE_LIMITED", 429, "retry"),
        ("NOT_FOUND", 404, "fail"),
        (None, 502, "retry"),
        ("SOMETHING", 400, "fail"),
        ("extensions.code", 400, "fail"),
    ],
)
def test_graphql_errors_map_to_retry_decisions(
    gh: GitHubDouble, error_type: str | None, status: int, action: str
) -> None:
    gh.add_repo(REPO, FILES)
    gw = factory(gh)(1)
    real = gh._graphql

    def failing(request: Any, body: Any, record: Recorded) -> Any:
        error: dict[str, Any] = {"message": "nope"}
        if error_type == "extensions.code":  # the schema rejected the query: retrying cannot help
            error["extensions"] = {"code": "undefinedField"}
        elif error_type:
            error["type"] = error_type
        return {"data": None, "errors": [error, {"message": "second"}]}

    gh._graphql = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(GitHubError) as info:
            gw.read_state(REPO)
    finally:
        gh._graphql = real  # type: ignore[method-assign]
    assert info.value.status == status and classify_exception(info.value).action == action


def test_command_of_a_collaborator_costs_four_requests_cold_and_two_warm(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, "buildspec.yml": SPEC + MARK}, permissions={"dev": "write"})
    f = factory(gh)
    (outcome,) = command(gh, f, "/ecr-cache", "dev", association="COLLABORATOR")
    assert outcome.action == "already"
    assert seq(gh.requests) == [
        "POST /app/installations/1/access_tokens",
        f"GET /repos/{REPO}/git/trees/main",
        "POST /graphql EcrCacheState",
        "POST /graphql EcrCacheReply",
    ]
    state = next(r for r in gh.requests if r.operation == "EcrCacheState")
    assert state.blobs >= 1 and state.body["variables"]["login"] == "dev"
    (reply,) = gh.bot_comments(REPO, 50)
    assert "already set up" in reply.body and reply.body.startswith("<!-- ecr-cache-bot:comment=reply-")
    assert gh.repos[REPO].comments[0].reactions == ["eyes"]
    (outcome,) = command(gh, f, "/ecr-cache", "dev", association="COLLABORATOR")
    assert seq(gh.requests) == ["POST /graphql EcrCacheState", "POST /graphql EcrCacheReply"]
    assert len(gh.bot_comments(REPO, 50)) == 2  # one reply per command comment


def test_a_rerun_command_edits_its_reply_in_the_same_mutation(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, "buildspec.yml": SPEC + MARK}, permissions={"dev": "write"})
    f = factory(gh)
    comment = gh.add_comment(REPO, 50, "/ecr-cache help", "dev")
    data = {
        "command": "help",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": 50,
        "user": "dev",
        "association": "MEMBER",
        "comment_node_id": comment.node_id,
        "issue_node_id": issue_node_id(gh.repos[REPO], 50),
    }
    jobs.run(Job("command", 1, REPO, "c", data), context(f))
    (reply,) = gh.bot_comments(REPO, 50)
    reply.body = reply.body.replace("preview", "PREVIEW")  # an older wording of the same reply
    gh.reset_requests()
    jobs.run(Job("command", 1, REPO, "c", data), context(f))
    (mutation,) = [r for r in gh.requests if r.is_write]
    assert mutation.body["variables"].get("update") is True and "add" not in mutation.body["variables"]
    assert gh.bot_comments(REPO, 50) == [reply] and "preview" in reply.body


@pytest.mark.parametrize("how", ["organization owner", "collaborators forbidden"])
def test_a_writer_graphql_does_not_show_is_asked_of_rest_not_refused(gh: GitHubDouble, how: str) -> None:
    repo = gh.add_repo(REPO, FILES, permissions={"owner": "admin"})
    if how == "organization owner":
        repo.org_grants.add("owner")  # GraphQL `collaborators` lists direct and team grants only
    else:
        repo.collaborators_forbidden = True  # the App lacks the permission GraphQL wants: the field errors
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "owner", association="MEMBER")
    assert outcome.action == "opened"
    assert f"GET /repos/{REPO}/collaborators/owner/permission" in seq(gh.requests)
    assert gh.repos[REPO].comments[0].reactions == ["eyes"]


def test_a_stranger_costs_no_tree_read_and_gets_no_reaction(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES)
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "passer-by", association="NONE")
    assert outcome.action == "refused"
    assert seq(gh.requests) == [
        "POST /app/installations/1/access_tokens",
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/collaborators/passer-by/permission",
        f"POST /repos/{REPO}/issues/50/comments",
    ]
    assert gh.repos[REPO].comments[0].reactions == []


def test_a_command_that_writes_a_pr_reacts_before_the_first_write(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "maintain"})
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "dev", association="COLLABORATOR")
    assert outcome.action == "opened"
    writes = [str(r) for r in gh.requests if r.is_write]
    assert writes[0].endswith("/reactions") and writes[1] == f"POST /repos/{REPO}/git/trees"
    assert writes[-1] == "POST /graphql EcrCacheReply"
    reply = next(r for r in gh.requests if r.operation == "EcrCacheReply")
    assert "react" not in reply.body["variables"]  # reacted once, early
    assert gh.repos[REPO].comments[0].reactions == ["eyes"]


def test_dry_run_command_writes_nothing(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, FILES, permissions={"dev": "write"})
    (outcome,) = command(gh, factory(gh), "/ecr-cache", "dev", association="OWNER", dry_run=True)
    assert outcome.action == "opened"
    assert [r for r in gh.requests if r.is_write] == [] and gh.bot_comments(REPO) == []


def test_a_schema_without_collaborators_login_falls_back_to_rest_once(gh: GitHubDouble) -> None:
    gh.add_repo(REPO, {**FILES, "buildspec.yml": SPEC + MARK}, permissions={"dev": "write"})
    gh.collaborators_without_login = True
    f = factory(gh)
    (outcome,) = command(gh, f, "/ecr-cache", "dev", association="MEMBER")
    assert outcome.action == "already"
    assert seq(gh.requests)[2:] == [
        "POST /graphql EcrCacheState",
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/collaborators/dev/permission",
        "POST /graphql EcrCacheReply",
    ]
    (outcome,) = command(gh, f, "/ecr-cache", "dev", association="MEMBER")  # remembered: no rejected query
    assert seq(gh.requests) == [
        "POST /graphql EcrCacheState",
        f"GET /repos/{REPO}/collaborators/dev/permission",
        "POST /graphql EcrCacheReply",
    ]


def test_graphql_rate_limit_waits_for_the_reset_without_spending_attempts(gh: GitHubDouble) -> None:
    # GraphQL answers 200 with a typed (or untyped) rate-limit error; the headers say when the limit resets.
    gh.add_repo(REPO, FILES)
    gw = factory(gh)(1)
    real = gh._graphql
    reset = int(time.time()) + 3000
    for error in (
        {"type": "RATE_LIMITED", "message": "API rate limit exceeded"},
        {"message": "API rate limit already exceeded for installation ID 1."},
    ):
        gh._graphql = lambda request, body, record, error=error: {"data": None, "errors": [error]}  # type: ignore
        gh.response_headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
        try:
            with pytest.raises(GitHubError) as info:
                gw.read_state(REPO)
        finally:
            gh._graphql = real  # type: ignore[method-assign]
            gh.response_headers = {}
        decision = classify_exception(info.value)
        assert decision.action == "retry" and not decision.counts and decision.delay > 2900, error
