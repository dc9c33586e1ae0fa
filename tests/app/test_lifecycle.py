"""The pull request's lifecycle rules, pure: state and plan in, a decision out; no gateway anywhere."""

from __future__ import annotations

import pytest

from bot import identity
from bot.app import lifecycle
from bot.app.lifecycle import Action, Closed, Flags
from bot.core.findings import Code
from bot.core.model import FileEdit, Finding, Options, Plan
from bot.github.gateway import BranchHead, Comment, PullRequest, RepoState, TreeFile

REPO = "octo/app"
EDIT = FileEdit("buildspec.yml", "modify", "version: 0.2\n# cached\n", "version: 0.2\n", ("cache",))
PLAN = Plan(edits=(EDIT,), buildspecs=("buildspec.yml",))
OTHER = Plan(edits=(FileEdit("buildspec.yml", "modify", "version: 0.2\n# other\n", "version: 0.2\n", ()),))
TREE = {"buildspec.yml": TreeFile("buildspec.yml", "100644", "a" * 40, 13)}
BOT = BranchHead("h" * 40, by_bot=True)
HUMAN = BranchHead("h" * 40, by_bot=False)
NOTES = (Comment(11, "earlier note"),)


def pr(
    state: str = "OPEN",
    *,
    merged: bool = False,
    plan: Plan = PLAN,
    commits: int = 1,
    number: int = 3,
    head: str = "h" * 40,
) -> PullRequest:
    body = f"the body\n{identity.fingerprint_marker(plan.fingerprint)}\n"
    return PullRequest(number, state, merged, body, f"https://github.test/{REPO}/pull/{number}", head, commits, NOTES)


def repo_state(
    *pulls: PullRequest,
    branch: BranchHead | None = None,
    archived: bool = False,
    fork: bool = False,
    empty: bool = False,
) -> RepoState:
    return RepoState(
        REPO, archived, fork, empty, "main", "" if empty else "b" * 40, "t" * 40, None, branch, tuple(pulls)
    )


FORCE = Flags(force=True)
COMMAND = Flags(override_optout=True)
OPEN = pr()
CLOSED = pr("CLOSED")
MERGED = pr("MERGED", merged=True)
MERGED_OTHER = pr("MERGED", merged=True, plan=OTHER)


@pytest.mark.parametrize(
    ("state", "plan", "flags", "action", "url"),
    [
        # nothing to change: already, with the open PR's link when there is one
        (repo_state(), Plan(), Flags(), Action.ALREADY, ""),
        (repo_state(OPEN, branch=BOT), Plan(), Flags(), Action.ALREADY, OPEN.url),
        # a PR closed without merging opts the repository out, until a command overrides it
        (repo_state(CLOSED, branch=BOT), PLAN, Flags(), Action.OPTED_OUT, CLOSED.url),
        (repo_state(CLOSED, branch=BOT), PLAN, COMMAND, Action.OPEN, ""),
        # the same change merged already: quiet; a different one gets a new PR
        (repo_state(MERGED, branch=BOT), PLAN, Flags(), Action.MERGED_QUIET, MERGED.url),
        (repo_state(MERGED_OTHER, branch=BOT), PLAN, Flags(), Action.OPEN, ""),
        (repo_state(MERGED, branch=BOT), PLAN, COMMAND, Action.OPEN, ""),
        # the open PR already carries this plan: current; another plan refreshes it
        (repo_state(OPEN, branch=BOT), PLAN, Flags(), Action.CURRENT, OPEN.url),
        (repo_state(pr(plan=OTHER), branch=BOT), PLAN, Flags(), Action.UPDATE, OPEN.url),
        # someone else's commits on the branch: left alone unless forced (recreate), even with the plan unchanged
        (repo_state(pr(plan=OTHER), branch=HUMAN), PLAN, Flags(), Action.HUMAN_EDITS, OPEN.url),
        (repo_state(pr(plan=OTHER, commits=2), branch=BOT), PLAN, Flags(), Action.HUMAN_EDITS, OPEN.url),
        (repo_state(OPEN, branch=HUMAN), PLAN, Flags(), Action.CURRENT, OPEN.url),
        (repo_state(OPEN, branch=HUMAN), PLAN, FORCE, Action.UPDATE, OPEN.url),
        (repo_state(pr(plan=OTHER), branch=HUMAN), PLAN, FORCE, Action.UPDATE, OPEN.url),
        (repo_state(branch=HUMAN), PLAN, Flags(), Action.HUMAN_EDITS, ""),
        (repo_state(branch=HUMAN), PLAN, FORCE, Action.OPEN, ""),
        # a branch whose head a merged PR took in protects nothing: reused for the next PR
        (repo_state(MERGED_OTHER, branch=HUMAN), PLAN, Flags(), Action.OPEN, ""),
        (
            repo_state(pr("MERGED", merged=True, plan=OTHER, head="x" * 40), branch=HUMAN),
            PLAN,
            Flags(),
            Action.HUMAN_EDITS,
            "",
        ),
    ],
)
def test_decide(state: RepoState, plan: Plan, flags: Flags, action: Action, url: str) -> None:
    decision = lifecycle.decide(state, plan, TREE, Options(), flags)
    assert (decision.action, decision.pr_url) == (action, url)
    assert bool(decision.files) == action.writes
    if not action.writes:
        assert (decision.commit_message, decision.body, decision.pull_number) == ("", "", None)


def test_an_update_carries_everything_it_writes() -> None:
    state = repo_state(pr(plan=OTHER, number=8), branch=BOT)
    decision = lifecycle.decide(
        state, PLAN, {"buildspec.yml": TreeFile("buildspec.yml", "100755", "a" * 40, 13)}, Options(draft=True)
    )
    assert decision.action is Action.UPDATE and decision.pull_number == 8 and not decision.create_branch
    (written,) = decision.files
    assert (written.path, written.content, written.mode) == ("buildspec.yml", EDIT.content, "100755")
    assert f"Ecr-Cache-Fingerprint: {PLAN.fingerprint}" in decision.commit_message
    assert identity.COMMIT_TRAILER in decision.commit_message
    assert identity.parse_fingerprint(decision.body) == PLAN.fingerprint
    assert decision.title == identity.PR_TITLE and decision.draft is True and decision.note is None


def test_an_open_creates_the_branch_only_when_there_is_none() -> None:
    fresh = lifecycle.decide(repo_state(), PLAN, TREE, Options())
    assert (fresh.action, fresh.create_branch, fresh.pull_number, fresh.draft) == (Action.OPEN, True, None, False)
    reused = lifecycle.decide(repo_state(MERGED_OTHER, branch=BOT), PLAN, TREE, Options())
    assert (reused.action, reused.create_branch) == (Action.OPEN, False)
    (written,) = fresh.files
    assert written.mode == "100644"


def test_human_edits_leave_a_note_on_the_open_pull_request_only() -> None:
    on_pr = lifecycle.decide(repo_state(pr(plan=OTHER, number=5), branch=HUMAN), PLAN, TREE, Options())
    assert on_pr.note is not None
    assert (on_pr.note.number, on_pr.note.key, on_pr.note.existing) == (5, "human-edits", NOTES)
    assert "/ecr-cache recreate" in on_pr.note.body
    assert lifecycle.decide(repo_state(branch=HUMAN), PLAN, TREE, Options()).note is None


@pytest.mark.parametrize(
    ("state", "options", "findings", "flags", "expected"),
    [
        (repo_state(archived=True), Options(), (), Flags(), (Action.SKIPPED, "archived")),
        (repo_state(fork=True), Options(), (), Flags(), (Action.SKIPPED, "a fork")),
        (repo_state(empty=True), Options(), (), Flags(), (Action.SKIPPED, "empty")),
        (repo_state(archived=True), Options(enabled=False), (), Flags(), (Action.SKIPPED, "archived")),
        (repo_state(), Options(enabled=False), (), Flags(), (Action.DISABLED, "")),
        (
            repo_state(),
            Options(),
            (
                Finding(".github/ecr-cache.yml", "error", Code.CONFIG_INVALID, "region: bad"),
                Finding(".github/ecr-cache.yml", "warning", Code.CONFIG_GLOB_UNMATCHED, "kept"),
            ),
            Flags(),
            (Action.CONFIG_ERROR, "region: bad"),
        ),
        (repo_state(CLOSED), Options(), (), Flags(), (Action.OPTED_OUT, "")),
        (repo_state(CLOSED), Options(), (), COMMAND, None),
        (repo_state(OPEN), Options(), (), Flags(), None),
        (repo_state(MERGED), Options(), (), Flags(), None),
    ],
)
def test_before_plan(
    state: RepoState, options: Options, findings: tuple[Finding, ...], flags: Flags, expected: tuple[Action, str] | None
) -> None:
    decision = lifecycle.before_plan(state, options, findings, flags)
    assert (None if decision is None else (decision.action, decision.detail)) == expected


def test_opted_out_names_the_closed_pull_request() -> None:
    decision = lifecycle.before_plan(repo_state(CLOSED), Options(), (), Flags())
    assert decision is not None and decision.pr_url == CLOSED.url


@pytest.mark.parametrize(
    ("state", "merged", "action", "deleted"),
    [
        (None, True, Closed.MERGED, False),
        (repo_state(pr("CLOSED", number=3), branch=BOT), False, Closed.NOTED, True),
        (repo_state(pr("CLOSED", number=3), branch=HUMAN), False, Closed.NOTED, False),
        (repo_state(pr("CLOSED", number=3), branch=BranchHead("o" * 40, True)), False, Closed.NOTED, False),
        (repo_state(pr("CLOSED", number=3)), False, Closed.NOTED, False),
        (repo_state(pr("OPEN", number=3), branch=BOT), False, Closed.IGNORED, False),  # reopened
        (repo_state(pr("OPEN", number=4), pr("CLOSED", number=3), branch=BOT), False, Closed.IGNORED, False),
        (repo_state(pr("MERGED", merged=True, number=3), branch=BOT), False, Closed.IGNORED, False),
        (repo_state(pr("CLOSED", number=9), branch=BOT), False, Closed.IGNORED, False),  # not found
    ],
)
def test_decide_closed(state: RepoState | None, merged: bool, action: Closed, deleted: bool) -> None:
    decision = lifecycle.decide_closed(state, 3, merged)
    assert (decision.action, decision.delete_branch) == (action, deleted)
    assert (decision.note is not None) == (action is Closed.NOTED)


def test_a_closed_note_says_whether_the_branch_went() -> None:
    gone = lifecycle.decide_closed(repo_state(pr("CLOSED"), branch=BOT), 3, False).note
    kept = lifecycle.decide_closed(repo_state(pr("CLOSED"), branch=HUMAN), 3, False).note
    assert gone is not None and kept is not None and gone.body != kept.body
    assert (gone.key, gone.number, gone.existing) == ("closed", 3, NOTES)


def test_a_preview_reports_the_write_it_would_make() -> None:
    assert lifecycle.PREVIEWED == {Action.OPEN: "would_open", Action.UPDATE: "would_update"}
    assert {a for a in Action if a.writes} == {Action.OPEN, Action.UPDATE}
