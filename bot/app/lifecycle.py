"""The bot pull request's lifecycle rules, pure: `decide(state, plan, ...)` says what one sync does and carries
what it would write; `before_plan` settles what needs no tree read; `decide_closed` answers a closed PR."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from bot import identity
from bot.core.model import Finding, Options, Plan
from bot.github.gateway import Comment, FileWrite, RepoState, TreeFile
from bot.render import comments, pull_request

_EXECUTABLE = ("100644", "100755")


class Action(enum.Enum):
    """What one sync of a repository does; the value is the outcome's `action` word."""

    SKIPPED = "skipped"  # archived, a fork, or empty
    DISABLED = "disabled"  # `enabled: false`
    CONFIG_ERROR = "config_error"  # the repo (or organization) config has errors: plan nothing
    OPTED_OUT = "opted_out"  # a bot PR was closed without merging
    ALREADY = "already"  # nothing to change
    MERGED_QUIET = "merged_quiet"  # the same change was merged already
    CURRENT = "current"  # the open PR already carries this plan
    HUMAN_EDITS = "human_edits"  # someone else's commits are on the bot branch: leave it (and say so on the PR)
    UPDATE = "updated"  # commit, move the branch, refresh the open PR
    OPEN = "opened"  # commit, create or move the branch, open a PR

    @property
    def writes(self) -> bool:
        """True when the action commits and writes a pull request."""
        return self in (Action.UPDATE, Action.OPEN)


# What a preview (no writes) reports instead of the write it would have made.
PREVIEWED = {Action.OPEN: "would_open", Action.UPDATE: "would_update"}


@dataclass(frozen=True)
class Note:
    """A hidden-key comment to upsert on an issue or pull request."""

    number: int
    key: str
    body: str
    existing: tuple[Comment, ...] = ()  # the bot's comments there, so the key is edited, not repeated


@dataclass(frozen=True)
class Decision:
    """What a sync does, and everything it writes (nothing for the actions that write nothing)."""

    action: Action
    pr_url: str = ""
    detail: str = ""
    pull_number: int | None = None  # the open PR an update refreshes
    create_branch: bool = False  # no bot branch yet (else it is moved)
    files: tuple[FileWrite, ...] = ()
    commit_message: str = ""
    title: str = ""
    body: str = ""
    draft: bool = False
    note: Note | None = None  # the comment this decision leaves (human edits on an open PR)


@dataclass(frozen=True)
class Flags:
    """How a sync was asked for: ``override_optout`` (a command) ignores an earlier close; ``force``
    (`recreate`) replaces commits someone else pushed to the bot branch."""

    override_optout: bool = False
    force: bool = False


NO_FLAGS = Flags()


def skip_reason(state: RepoState) -> str | None:
    """Why the repository is never planned (archived, a fork, empty), else None."""
    if state.archived:
        return "archived"
    if state.fork:
        return "a fork"
    if state.empty or not state.base_oid:
        return "empty"
    return None


def config_block(options: Options, findings: tuple[Finding, ...]) -> Decision | None:
    """`enabled: false`, or a config with errors: plan nothing rather than guess what was meant."""
    if not options.enabled:
        return Decision(Action.DISABLED)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        return Decision(Action.CONFIG_ERROR, detail="; ".join(f.message for f in errors))
    return None


def opted_out(state: RepoState, flags: Flags) -> bool:
    """True when the latest bot PR was closed without merging, none is open, and nothing overrides that."""
    latest = state.latest_pr
    return (
        not flags.override_optout
        and state.open_pr is None
        and latest is not None
        and latest.state == "CLOSED"
        and not latest.merged
    )


def before_plan(state: RepoState, options: Options, findings: tuple[Finding, ...], flags: Flags) -> Decision | None:
    """The decision when it needs no plan (no tree read): skipped, disabled, config errors, opted out."""
    skip = skip_reason(state)
    if skip:
        return Decision(Action.SKIPPED, detail=skip)
    blocked = config_block(options, findings)
    if blocked is not None:
        return blocked
    if opted_out(state, flags):
        latest = state.latest_pr
        return Decision(Action.OPTED_OUT, latest.url if latest else "")
    return None


def human_owned(state: RepoState) -> bool:
    """True when the bot branch carries commits that exist nowhere else and someone other than the bot wrote."""
    branch, open_pr = state.bot_branch, state.open_pr
    # A branch whose head a merged bot PR took in protects nothing any more (its commits are on the default
    # branch, whoever wrote them); only commits that exist nowhere else are a human's to keep.
    merged_head = (
        open_pr is None and branch is not None and any(p.merged and p.head_oid == branch.oid for p in state.pulls)
    )
    return (
        branch is not None
        and not merged_head
        and (not branch.by_bot or (open_pr is not None and open_pr.commit_count > 1))
    )


def commit_message(plan: Plan) -> str:
    """The bot commit's message: title, summary, trailer and the plan's fingerprint."""
    return (
        f"{identity.PR_TITLE}\n\n{pull_request.summary(plan).replace('`', '')}\n\n"
        f"{identity.COMMIT_TRAILER}\nEcr-Cache-Fingerprint: {plan.fingerprint}\n"
    )


def files_of(plan: Plan, tree: Mapping[str, TreeFile]) -> tuple[FileWrite, ...]:
    """The plan's edits as the commit's files, keeping an executable bit the file had."""
    return tuple(
        FileWrite(
            e.path, e.content, tree[e.path].mode if e.path in tree and tree[e.path].mode in _EXECUTABLE else "100644"
        )
        for e in plan.edits
    )


def decide(
    state: RepoState, plan: Plan, tree: Mapping[str, TreeFile], options: Options, flags: Flags = NO_FLAGS
) -> Decision:
    """The lifecycle rules, on a planned repository: nothing, a note, or one commit, branch update and PR write."""
    repo = state.full_name
    open_pr, latest = state.open_pr, state.latest_pr
    if plan.is_empty:
        return Decision(Action.ALREADY, open_pr.url if open_pr else "")
    if open_pr is None and latest is not None and not flags.override_optout:
        if latest.state == "CLOSED" and not latest.merged:
            return Decision(Action.OPTED_OUT, latest.url)
        if latest.merged and identity.parse_fingerprint(latest.body) == plan.fingerprint:
            return Decision(Action.MERGED_QUIET, latest.url)
    human = human_owned(state)
    if (
        open_pr is not None
        and identity.parse_fingerprint(open_pr.body) == plan.fingerprint
        and not (flags.force and human)
    ):
        return Decision(Action.CURRENT, open_pr.url)
    if human and not flags.force:
        if open_pr is None:
            return Decision(Action.HUMAN_EDITS)
        note = Note(open_pr.number, "human-edits", comments.human_edits(), open_pr.comments)
        return Decision(Action.HUMAN_EDITS, open_pr.url, note=note)
    return Decision(
        Action.UPDATE if open_pr is not None else Action.OPEN,
        open_pr.url if open_pr is not None else "",
        pull_number=open_pr.number if open_pr is not None else None,
        create_branch=state.bot_branch is None,
        files=files_of(plan, tree),
        commit_message=commit_message(plan),
        title=identity.PR_TITLE,
        body=pull_request.render_pr_body(plan, repo, options),
        draft=options.draft,
    )


class Closed(enum.Enum):
    """What a closed bot pull request leads to."""

    MERGED = "merged"  # merged: nothing to do
    IGNORED = "ignored"  # reopened, replaced, or not found
    NOTED = "opted_out_noted"  # closed without merging: say so, and delete the branch if only the bot wrote it


@dataclass(frozen=True)
class ClosedDecision:
    """The answer to a closed bot pull request."""

    action: Closed
    pr_url: str = ""
    detail: str = ""
    note: Note | None = None
    delete_branch: bool = False


def decide_closed(state: RepoState | None, number: int, merged: bool) -> ClosedDecision:
    """A bot PR closed without merging opts the repository out: comment, and drop a branch only the bot wrote.
    ``state`` None: the webhook said merged, nothing was read."""
    if merged or state is None:
        return ClosedDecision(Closed.MERGED)
    pr = next((p for p in state.pulls if p.number == number), None)
    if pr is None or pr.is_open or pr.merged or state.open_pr is not None:
        return ClosedDecision(Closed.IGNORED, detail="pull request reopened or replaced")
    branch = state.bot_branch
    deleted = branch is not None and branch.by_bot and branch.oid == pr.head_oid
    body = comments.closed(state.full_name, deleted or branch is None)
    return ClosedDecision(Closed.NOTED, pr.url, note=Note(number, "closed", body, pr.comments), delete_branch=deleted)
