"""Jobs: `run(job, ctx)` reads a repository's state and snapshot, plans, decides (`lifecycle.decide`), publishes."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from bot.app import config_issue, fanout, lifecycle, pr_settings, refusals
from bot.app.comment_command import too_old
from bot.app.context import JobContext
from bot.app.lifecycle import Action, Decision, Flags
from bot.app.payloads import AnyJob, InstallJob, Job, typed
from bot.core import discover, planner
from bot.core.model import Finding, Options, Plan, RepoSnapshot
from bot.github.gateway import (
    Comment,
    Gateway,
    GitHubError,
    LostRace,
    RepoState,
    RetryLater,
    TreeFile,
)
from bot.identity import CONFIG_PATH, ORG_CONFIG_PATH, ORG_CONFIG_REPO, comment_marker
from bot.logs import log_event
from bot.render import comments, pull_request

WRITE_ROLES = frozenset({"admin", "maintain", "write"})
# A publish writes a tree, a commit, the branch ref and the pull request: reserved together, so the pacer never
# stops it half-way (a branch without its pull request).
PUBLISH_WRITES = 4


@dataclass(frozen=True)
class Outcome:
    """What one job did to one repository (for logs, metrics and tests)."""

    repo: str
    action: str
    pr_url: str = ""
    detail: str = ""


@dataclass(frozen=True)
class SyncRequest:
    """One repository to sync, and how: ``override_optout``/``force`` as in `lifecycle.Flags`; ``issue_number``:
    the command's issue (its bot comments come with the state); ``state``/``tree``: already read by the caller
    (``tree``: the default branch's); ``preview``: decide and write nothing (the outcome says what would be)."""

    repo: str
    override_optout: bool = False
    force: bool = False
    issue_number: int | None = None
    default_branch: str | None = None
    state: RepoState | None = None
    tree: Mapping[str, TreeFile] | None = None
    preview: bool = False

    @property
    def flags(self) -> Flags:
        """The lifecycle flags of this request."""
        return Flags(override_optout=self.override_optout, force=self.force)


@dataclass(frozen=True)
class Synced:
    """What a sync did, the state it decided on, and its plan (None when it stopped before planning)."""

    outcome: Outcome
    state: RepoState
    plan: Plan | None


def _outcome(repo: str, decision: Decision) -> Outcome:
    return Outcome(repo, decision.action.value, decision.pr_url, decision.detail)


def _org_config(state: RepoState) -> tuple[str, str | None]:
    """The owner's `.github` repository and its config text (None when absent, or when it is this repository)."""
    org_repo = f"{state.full_name.partition('/')[0]}/{ORG_CONFIG_REPO}"
    return org_repo, None if state.full_name.lower() == org_repo.lower() else state.org_config_text


def _options(state: RepoState) -> tuple[Options, tuple[Finding, ...]]:
    """The repository's config over its organization's defaults (the `.github` repository's same file)."""
    from bot.core.repo_config import merge_configs

    org_repo, org_text = _org_config(state)
    options, findings = merge_configs(org_text, state.config_text, f"{org_repo}:{ORG_CONFIG_PATH}")
    return options, tuple(findings)


def read_snapshot(gw: Gateway, state: RepoState, options: Options) -> tuple[RepoSnapshot, dict[str, TreeFile]]:
    """One tree read, then only the blobs the planner asks for."""
    tree = gw.read_tree(state.full_name, state.base_tree)
    paths = tuple(sorted(tree))
    wanted = planner.paths_to_read(paths, options)
    texts = gw.read_blobs(state.full_name, [tree[p] for p in wanted if p in tree])
    snapshot = RepoSnapshot(
        paths=paths,
        files=texts,
        config_text=state.config_text,
        default_branch=state.default_branch,
        repository=state.full_name,
    )
    return snapshot, tree


def read_plan(gw: Gateway, state: RepoState, options: Options) -> tuple[Plan, dict[str, TreeFile]]:
    """The snapshot (`read_snapshot`), planned."""
    snapshot, tree = read_snapshot(gw, state, options)
    return planner.plan(snapshot, options), tree


def first_tree(gw: Gateway, repo: str, default_branch: str | None) -> dict[str, TreeFile] | None:
    """The default branch's tree, read before the state when this process has not seen the repository (None:
    seen before, no branch known, or an empty repository)."""
    if not default_branch or gw.has_seen(repo):
        return None
    try:
        return gw.read_tree_at(repo, default_branch)[1]
    except GitHubError as exc:
        if exc.status not in (404, 409):  # 409: "Git Repository is empty"
            raise
        return None


def nothing_to_plan(tree: Mapping[str, TreeFile]) -> bool:
    """True when no configuration could make the planner act: no buildspec, no Dockerfile, no repo config."""
    paths = tuple(tree)
    return (
        CONFIG_PATH not in tree
        and not discover.buildspec_candidates(paths, Options())
        and not discover.dockerfile_candidates(paths, Options())
    )


def read_state(
    gw: Gateway,
    repo: str,
    issue_number: int | None = None,
    default_branch: str | None = None,
    commenter: str | None = None,
    tree: Mapping[str, TreeFile] | None = None,
) -> RepoState:
    """State first when this process has the repository's trees cached by sha; otherwise read the tree of the
    default branch first, so the state query also brings the blobs the planner will ask for (one call fewer)."""
    if tree is None:
        tree = first_tree(gw, repo, default_branch)
    if tree is not None:
        guess = planner.paths_to_read(tuple(sorted(tree)), Options())
        return gw.read_state(repo, issue_number, prefetch=[tree[p] for p in guess if p in tree], commenter=commenter)
    return gw.read_state(repo, issue_number, commenter=commenter)


def publish(
    gw: Gateway, state: RepoState, decision: Decision, options: Options, before_write: Callable[[], None] | None = None
) -> Outcome:
    """Write what `lifecycle.decide` decided: its note, then at most one commit, one ref update and one PR write."""
    repo = state.full_name
    if decision.note is not None:
        note = decision.note
        gw.upsert_comment(repo, note.number, note.key, note.body, note.existing)
    if not decision.action.writes:
        return _outcome(repo, decision)
    opened = decision.action is Action.OPEN
    if before_write is not None:
        before_write()
    with gw.paced(PUBLISH_WRITES + pr_settings.writes(options, opened=opened)):
        sha = gw.commit(repo, state.base_oid, state.base_tree, list(decision.files), decision.commit_message)
        if decision.create_branch:
            gw.create_branch(repo, sha)
        else:
            gw.move_branch(repo, sha)
        if decision.pull_number is not None:
            gw.update_pull(repo, decision.pull_number, decision.title, decision.body)
            refused = pr_settings.apply(gw, repo, decision.pull_number, options, opened=False)
            return Outcome(repo, Action.UPDATE.value, decision.pr_url, detail="; ".join(refused))
        number, url = gw.create_pull(repo, state.default_branch, decision.title, decision.body, draft=decision.draft)
        refused = pr_settings.apply(gw, repo, number, options, opened=True)
        return Outcome(repo, Action.OPEN.value, url, detail="; ".join(refused))


def sync_repo(gw: Gateway, request: SyncRequest, before_write: Callable[[], None] | None = None) -> Synced:
    """Read state → read snapshot → plan → decide → publish, for one repository; a lost 422 race re-reads once
    and decides again. ``before_write`` runs once before the first commit."""
    repo, flags = request.repo, request.flags
    state = request.state
    for attempt in (1, 2):
        if state is None or attempt == 2:
            state = read_state(
                gw, repo, request.issue_number, request.default_branch, tree=request.tree if attempt == 1 else None
            )
        options, config_findings = _options(state)
        early = lifecycle.before_plan(state, options, config_findings, flags)
        if early is not None:  # no tree read for a skipped, disabled, misconfigured or opted-out repository
            configured = early.action in (Action.DISABLED, Action.CONFIG_ERROR)
            return Synced(_outcome(repo, early), state, Plan(findings=config_findings) if configured else None)
        plan, listing = read_plan(gw, state, options)
        plan = dataclasses.replace(plan, findings=config_findings + plan.findings)
        decision = lifecycle.decide(state, plan, listing, options, flags)
        if request.preview:
            action = lifecycle.PREVIEWED.get(decision.action, decision.action.value)
            return Synced(dataclasses.replace(_outcome(repo, decision), action=action), state, plan)
        try:
            return Synced(publish(gw, state, decision, options, before_write), state, plan)
        except LostRace as exc:
            log_event("lost_race", repo=repo, attempt=attempt, message=exc.message)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _install(gw: Gateway, job: InstallJob, ctx: JobContext) -> list[Outcome]:
    outcomes = []
    usable = []
    added = job.data.get("added")
    wanted = set(added) if isinstance(added, list) else None  # installation_repositories.added names them
    for ref in gw.list_installation_repos():
        if wanted is not None and ref.full_name not in wanted:
            continue
        # `size` 0 is not proof of an empty repository (it lags behind pushes): the state read decides that.
        if ref.archived or ref.fork:
            outcomes.append(Outcome(ref.full_name, "skipped", detail="archived" if ref.archived else "a fork"))
        else:
            usable.append(ref)
    preview = _preview_mode(gw, job, len(usable), ctx.preview_threshold)
    data: dict[str, Any] = {"trigger": "install", "total": len(usable), "account": job.account}
    if preview:
        data["preview"] = True
    # Preview jobs are ordinary syncs: the queue keeps the preview flag in its coalescing key, so a preview never
    # supersedes a push's sync of the same repository, nor the other way round.
    repo_jobs = [
        Job("sync", job.installation_id, ref.full_name, job.delivery_id, {**data, "default_branch": ref.default_branch})
        for ref in usable
    ]
    log_event(
        "install.fanout",
        installation=job.installation_id,
        account=job.account,
        delivery=job.delivery_id,
        repositories=len(usable),
        skipped=len(outcomes),
        preview=preview,
    )
    if ctx.submit is not None:
        # One sync job per repository: serialised per repository, retried on its own, and no single job runs
        # for as long as a large installation takes. A re-run of this job re-submits the same delivery id,
        # which the queue drops as a duplicate.
        if repo_jobs:
            ctx.submit(f"{job.delivery_id}/repositories", repo_jobs)
        return outcomes + [Outcome(j.repo, "queued") for j in repo_jobs]
    for repo_job in repo_jobs:
        try:
            outcomes.extend(_sync(gw, repo_job, ctx, in_loop=True))
        except RetryLater:
            raise  # the whole (idempotent) installation job waits for the pacer and runs again
        except GitHubError as exc:
            if exc.status in (403, 429) and _rate_limited(exc):
                raise  # the whole (idempotent) installation job waits and runs again
            log_event("repo_failed", level="warning", repo=repo_job.repo, error=str(exc))
            outcomes.append(Outcome(repo_job.repo, "error", detail=str(exc)))
        except Exception as exc:  # one broken repository must not stop the rest of the installation
            log_event("repo_failed", level="warning", repo=repo_job.repo, error=f"{type(exc).__name__}: {exc}")
            outcomes.append(Outcome(repo_job.repo, "error", detail=str(exc)))
    return outcomes


def _preview_mode(gw: Gateway, job: InstallJob, count: int, threshold: int | None) -> bool:
    """A fan-out over more than ``threshold`` repositories opens no pull requests unless the organization
    config opts in (read only then: one request, on large installations only)."""
    if threshold is None or not fanout.preview_mode(count, threshold, opted_in=False):
        return False
    opted_in, why = fanout.parse_opt_in(gw.read_org_config(job.account))
    preview = fanout.preview_mode(count, threshold, opted_in)
    log_event(
        "install.preview_mode",
        level="warning" if preview else "info",
        installation=job.installation_id,
        account=job.account,
        delivery=job.delivery_id,
        repositories=count,
        threshold=threshold,
        preview=preview,
        reason=why,
    )
    return preview


def _rate_limited(exc: GitHubError) -> bool:
    headers = {k.lower(): v for k, v in exc.headers.items()}
    return (
        "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in exc.message.lower()
    )


def _pr_closed(gw: Gateway, job: Job, ctx: JobContext) -> list[Outcome]:
    number, merged = int(job.data["number"]), bool(job.data.get("merged"))
    decision = lifecycle.decide_closed(None if merged else gw.read_state(job.repo), number, merged)
    if decision.note is not None:
        note = decision.note
        gw.upsert_comment(job.repo, note.number, note.key, note.body, note.existing)
    if decision.delete_branch:
        gw.delete_branch(job.repo)
    return [Outcome(job.repo, decision.action.value, decision.pr_url, decision.detail)]


def _checked(state: RepoState, plan: Plan) -> list[str]:
    lines = [f"default branch `{state.default_branch}` at `{state.base_oid[:12]}`"]
    lines += [f"buildspec `{p}`" for p in plan.buildspecs]
    lines += [f"Dockerfile `{p}`" for p in plan.dockerfiles]
    lines.append(
        "repo config `.github/ecr-cache.yml`"
        if state.config_text is not None
        else "no `.github/ecr-cache.yml` (defaults)"
    )
    return lines


def _reply_for(outcome: Outcome, state: RepoState, plan: Plan | None) -> str:
    """The reply under a command, one comment per action; a word that names no `Action` is an error, not a reply."""
    repo = outcome.repo
    summary = pull_request.summary(plan) if plan is not None else ""
    notes = [f for f in plan.findings if f.level != "info"] if plan is not None else []
    action = Action(outcome.action)
    match action:
        case Action.OPEN:
            return comments.pr_opened(outcome.pr_url, summary)
        case Action.UPDATE:
            return comments.pr_updated(outcome.pr_url, summary)
        case Action.CURRENT:
            return comments.pr_current(outcome.pr_url, summary)
        case Action.ALREADY:
            if plan is None:
                return comments.nothing_to_change(repo, notes)
            if plan.builds:
                return comments.already_set_up(repo, state.default_branch, _checked(state, plan), notes)
            return comments.nothing_to_change(repo, plan.findings)
        case Action.HUMAN_EDITS:
            return comments.human_edits_reply(outcome.pr_url)
        case Action.DISABLED:
            return comments.disabled(repo)
        case Action.CONFIG_ERROR:
            return comments.nothing_to_change(repo, plan.findings if plan is not None else ())
        case Action.SKIPPED:
            return comments.skipped(repo, outcome.detail)
        case Action.OPTED_OUT:
            return comments.opted_out(repo)
        case Action.MERGED_QUIET:
            return comments.nothing_to_change(repo, notes)
    assert_never(action)


class _Reply:
    """The 👀 acknowledgement and the reply of one command: both in one GraphQL mutation when nothing else is
    written, the reaction first (REST) when a commit is about to be written so the commenter sees it early."""

    def __init__(self, gw: Gateway, job: Job) -> None:
        self.gw, self.repo = gw, job.repo
        self.issue, self.comment_id = int(job.data["issue_number"]), int(job.data["comment_id"])
        self.comment_node = _text(job.data.get("comment_node_id"))
        self.issue_node = _text(job.data.get("issue_node_id"))
        self.key = f"reply-{self.comment_id}"
        self.acknowledged = False

    def acknowledge(self) -> None:
        """The reaction, now (once)."""
        if not self.acknowledged:
            self.gw.react(self.repo, self.comment_id, "eyes")
            self.acknowledged = True

    def send(self, body: str, existing: Sequence[Comment]) -> None:
        """The reply, with the reaction if it is still owed."""
        if self.issue_node and all(c.node_id for c in existing):
            node = None if self.acknowledged else self.comment_node
            if node is None:
                self.acknowledge()
            self.gw.react_and_reply(self.issue_node, node, self.key, body, existing)
            self.acknowledged = True
            return
        self.acknowledge()
        self.gw.upsert_comment(self.repo, self.issue, self.key, body, existing)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _command(gw: Gateway, job: Job, ctx: JobContext) -> list[Outcome]:
    data = job.data
    repo, user = job.repo, str(data["user"])
    answered = _answered_elsewhere(job, ctx)
    if answered is not None:
        return [answered]
    issue = int(data["issue_number"])
    command = str(data.get("command") or "open")
    # Members and collaborators usually may run the command: read the tree first so the state query brings
    # the blobs too. For anyone else, read no tree before the permission is known.
    likely = data.get("association") in ("OWNER", "MEMBER", "COLLABORATOR") and command in (
        "open",
        "recreate",
        "preview",
    )
    try:
        state = read_state(gw, repo, issue, _branch(job) if likely else None, commenter=user)
    except GitHubError as exc:
        if not likely or not ctx.final(exc):
            raise
        # The tree could not be read: learn the permission first, so the failure is answered below.
        state = read_state(gw, repo, issue, None, commenter=user)
    role = state.commenter_permission
    if role not in WRITE_ROLES:
        role = gw.permission(repo, user)  # the authoritative answer: every grant, organization ones included
    if role not in WRITE_ROLES:
        return [_refuse(gw, job, state, role, ctx)]
    reply = _Reply(gw, job)
    try:
        return _run_command(gw, job, command, reply, state)
    except Exception as exc:
        # Only a failure nobody retries gets the reply; a retried one may still succeed.
        if ctx.final(exc) and not isinstance(exc, LostRace):
            # A final failure: say why under the command instead of leaving the commenter without an answer.
            status = exc.status if isinstance(exc, GitHubError) and exc.status else 0
            message = exc.message if isinstance(exc, GitHubError) else f"{type(exc).__name__}: {exc}"
            try:
                gw.upsert_comment(
                    repo, issue, reply.key, comments.failed(repo, status, message[:500]), state.issue_comments
                )
            except GitHubError as inner:
                log_event("reply_failed", level="warning", repo=repo, error=str(inner))
        raise


def _refuse(gw: Gateway, job: Job, state: RepoState, role: str, ctx: JobContext) -> Outcome:
    """The refusal in words once per user and issue, within refusals.py's limits; else a reaction or nothing."""
    repo, user, issue = job.repo, str(job.data["user"]), int(job.data["issue_number"])
    key = f"refusal-{user.lower()}"
    if any(comment_marker(key) in c.body for c in state.issue_comments):
        return Outcome(repo, "refused", detail=f"{role}; already answered on this issue")
    limiter = ctx.refusals  # None without a durable queue: no store to share counts with
    low = ctx.pacer is not None and ctx.pacer.budget_wait(job.installation_id) > 0  # under the background floor
    answer = "comment" if limiter is None else limiter.take(job.installation_id, repo, user, budget_low=low)
    if answer == "comment":
        gw.upsert_comment(repo, issue, key, comments.refusal(user, repo, role), state.issue_comments)
        return Outcome(repo, "refused", detail=role)
    if answer == "reaction":
        gw.react(repo, int(job.data["comment_id"]), refusals.REACTION)
    log_event("refusal_limited", repo=repo, delivery=job.delivery_id, user=user, answer=answer, budget_low=low)
    how = "a reaction" if answer == "reaction" else "nothing"
    return Outcome(repo, "refused", detail=f"{role}; answered with {how}")


def _answered_elsewhere(job: Job, ctx: JobContext) -> Outcome | None:
    """An outcome when this command comment must not be answered by this job (a replay, too old), else None."""
    comment_id = int(job.data["comment_id"])
    if too_old(job.data.get("created_at"), time.time()):
        return _ignored(job, comment_id, "stale", "comment older than the replay window", "is too old to answer")
    claims = ctx.claims  # None without a durable queue (tests' in-memory queue)
    if claims is not None and not claims.claim(job.installation_id, comment_id, job.delivery_id):
        reason = "comment already answered under another delivery id"
        return _ignored(job, comment_id, "duplicate", reason, "is answered by another delivery")
    return None


def _ignored(job: Job, comment_id: int, action: str, reason: str, detail: str) -> Outcome:
    """Log a command comment this job leaves unanswered, and its outcome."""
    log_event(
        "command_ignored",
        level="warning",
        repo=job.repo,
        delivery=job.delivery_id,
        comment_id=comment_id,
        reason=reason,
    )
    return Outcome(job.repo, action, detail=f"comment {comment_id} {detail}")


def _run_command(gw: Gateway, job: Job, command: str, reply: _Reply, state: RepoState) -> list[Outcome]:
    data = job.data
    repo = job.repo
    issue = int(data["issue_number"])
    if command == "help":
        reply.send(comments.command_help(str(data.get("unknown") or "")), state.issue_comments)
        return [Outcome(repo, "help")]
    if command == "preview":
        text, outcome = _preview_reply(gw, repo, state)
        reply.send(text, state.issue_comments)
        return [outcome]
    request = SyncRequest(
        repo,
        override_optout=True,
        force=command == "recreate",
        issue_number=issue,
        default_branch=_branch(job),
        state=state,
    )
    synced = sync_repo(gw, request, before_write=reply.acknowledge)
    reply.send(_reply_for(synced.outcome, synced.state, synced.plan), synced.state.issue_comments)
    return [synced.outcome]


def _preview_reply(gw: Gateway, repo: str, state: RepoState) -> tuple[str, Outcome]:
    """`/ecr-cache preview`: the reply (the diff the pull request would carry) and the outcome; writes nothing."""
    skip = lifecycle.skip_reason(state)
    if skip:
        return comments.skipped(repo, skip), Outcome(repo, "skipped")
    options, config_findings = _options(state)
    blocked = lifecycle.config_block(options, config_findings)
    if blocked is not None:
        plan = Plan(findings=config_findings)
        text = _reply_for(_outcome(repo, blocked), state, plan)
    else:
        plan = read_plan(gw, state, options)[0]
        findings = config_findings + plan.findings
        if plan.is_empty:
            text = _reply_for(Outcome(repo, "already"), state, dataclasses.replace(plan, findings=findings))
        else:
            text = comments.preview(repo, plan.edits, findings, head=pull_request.render_summary(plan, repo, options))
    return text, Outcome(repo, "previewed", detail=plan.fingerprint)


def _sync(gw: Gateway, job: Job, ctx: JobContext, *, in_loop: bool = False) -> list[Outcome]:
    background = job.data.get("trigger") == "install"
    if background:
        _await_budget(ctx, job.installation_id)
    try:
        outcome = _sync_outcome(gw, job)
    except Exception as exc:
        if background and _final(exc, in_loop, ctx):
            fanout.finished(job, "error", pacer=ctx.pacer, counters=ctx.counters, gw=gw)
        raise
    if background:
        fanout.finished(job, outcome.action, pacer=ctx.pacer, counters=ctx.counters, gw=gw)
    return [outcome]


def _sync_outcome(gw: Gateway, job: Job) -> Outcome:
    branch = _branch(job)
    tree = first_tree(gw, job.repo, branch)
    if tree is not None and nothing_to_plan(tree):
        # The tree read settles it: no state query, no blob read, nothing written.
        return Outcome(job.repo, "already", detail="no buildspec, Dockerfile or repo config")
    preview = job.data.get("preview") is True
    synced = sync_repo(gw, SyncRequest(job.repo, default_branch=branch, tree=tree, preview=preview))
    if not preview and synced.outcome.action != "skipped" and job.data.get("trigger") in ("push", "install"):
        _config_issue(gw, synced.state, synced.plan)
    return synced.outcome


def _config_issue(gw: Gateway, state: RepoState, plan: Plan | None) -> None:
    """Open, update or close the repository's config issue; a repository without issues (410) or an App without
    the Issues permission (403) keeps the log line alone."""
    errors = [f for f in (plan.findings if plan else ()) if f.level == "error" and f.code.startswith("config-")]
    if errors and lifecycle.opted_out(state, lifecycle.NO_FLAGS):
        return  # closing the bot's pull request opted the repository out: no new issue either
    org_repo, org_text = _org_config(state)
    # An error in the organization's defaults is reported once, in its `.github` repository, not in every one.
    in_org = [f for f in errors if f.path.startswith(f"{org_repo}:")]
    targets = [(state.full_name, [f for f in errors if f not in in_org], (state.config_text,))]
    if org_text is not None:
        targets.append((org_repo, in_org, (org_text,)))
    for repo, found, texts in targets:
        try:
            config_issue.sync(gw, repo, found, texts)
        except GitHubError as exc:
            if exc.status not in (403, 404, 410, 422):
                raise
            log_event("config_issue_failed", level="warning", repo=repo, status=exc.status, error=exc.message)


def _final(exc: Exception, in_loop: bool, ctx: JobContext) -> bool:
    """True when this failure ends the repository's part of the fan-out (nobody will run it again)."""
    if isinstance(exc, RetryLater):
        return False
    if in_loop:  # the installation job itself syncs: only a rate limit re-runs it
        return not (isinstance(exc, GitHubError) and exc.status in (403, 429) and _rate_limited(exc))
    return ctx.final(exc)


def _await_budget(ctx: JobContext, installation_id: int) -> None:
    """Background work waits while the installation's request budget is under the pacer's floor, leaving it to
    pushes and commands (the wait is spread so deferred jobs do not all wake at once)."""
    wait = ctx.pacer.budget_wait(installation_id) if ctx.pacer is not None else 0.0
    if wait > 0:
        raise RetryLater(wait + random.uniform(0, min(30.0, 0.1 * wait + 1.0)), "installation request budget low")


def _branch(job: Job) -> str | None:
    value = job.data.get("default_branch")
    return value if isinstance(value, str) and value else None


_KINDS: dict[str, Callable[[Gateway, Job, JobContext], list[Outcome]]] = {
    "sync": _sync,
    "command": _command,
    "pr_closed": _pr_closed,
}


def interactive(job: AnyJob) -> bool:
    """A person is waiting (a push, a command, a closed pull request): its writes may spend the request budget's
    floor, which background work (an installation's fan-out and its syncs) leaves alone."""
    return job.kind != "install" and job.data.get("trigger") != "install"


def rate_limit_remaining(gw: Gateway) -> int | None:
    """`x-ratelimit-remaining` of the last GitHub answer the gateway saw (None before any)."""
    return gw.rate_limit_remaining


def run(job: AnyJob, ctx: JobContext) -> list[Outcome]:
    """Run one job with its context. GitHub errors propagate with their status and headers: the queue retries
    rate limits, 5xx and known 422 races, and fails every other 4xx once (`bot/queue/retry.py`); a full pacing
    window raises `RetryLater`. With ``ctx.submit`` (the queue's), an installation job queues one sync job per
    repository instead of syncing them all itself. An installation over ``ctx.preview_threshold`` repositories
    (None: no limit) opens no pull requests unless its organization config opts in."""
    job = typed(job)
    gw = ctx.gateways(job.installation_id, interactive=interactive(job))
    try:
        # An installation job is about an account: its fan-out; every other job is about one repository.
        outcomes = _install(gw, job, ctx) if isinstance(job, InstallJob) else _KINDS[job.kind](gw, job, ctx)
    except GitHubError as exc:
        log_event(
            "job_failed",
            level="warning",
            kind=job.kind,
            repo=job.subject,
            delivery=job.delivery_id,
            status=exc.status,
            error=exc.message,
        )
        raise
    for outcome in outcomes:
        log_event(
            "job_done",
            kind=job.kind,
            repo=outcome.repo,
            delivery=job.delivery_id,
            action=outcome.action,
            pr=outcome.pr_url,
            detail=outcome.detail,
        )
    return outcomes
