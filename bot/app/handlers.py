"""`run(job, gateway_factory)`: read a repository, plan, publish; the PR lifecycle rules live here."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot import identity
from bot.app import config_issue, fanout, pr_settings, refusals
from bot.app.payloads import Job
from bot.core import discover, planner
from bot.core.model import Finding, Options, Plan, RepoSnapshot
from bot.github.client import (
    Comment,
    FileWrite,
    GitHubError,
    GitHubGateway,
    Issue,
    LostRace,
    RepoState,
    TreeFile,
    comment_marker,
)
from bot.identity import COMMIT_TRAILER, CONFIG_PATH, ORG_CONFIG_PATH, ORG_CONFIG_REPO
from bot.logs import log_event
from bot.queue import dedupe, pacing
from bot.queue.retry import RetryLater, classify_exception
from bot.queue.storage import now
from bot.render import pull_request as pr_body

WRITE_ROLES = frozenset({"admin", "maintain", "write"})
# A publish writes a tree, a commit, the branch ref and the pull request: reserved together, so the pacer never
# stops it half-way (a branch without its pull request).
PUBLISH_WRITES = 4
# What a preview (no writes) reports instead of the write it would have made.
_PREVIEWED = {"opened": "would_open", "updated": "would_update"}
GatewayFactory = Callable[[int], GitHubGateway]
Submit = Callable[[str, Sequence[Job]], object]  # the queue's `submit(delivery_id, jobs)`


@dataclass(frozen=True)
class Outcome:
    """What one job did to one repository (for logs, metrics and tests)."""

    repo: str
    action: str
    pr_url: str = ""
    detail: str = ""


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


def read_plan(gw: GitHubGateway, state: RepoState, options: Options) -> tuple[Plan, dict[str, TreeFile]]:
    """One tree read, then only the blobs the planner asks for; plan on that snapshot."""
    tree = gw.read_tree(state.full_name, state.base_tree)
    paths = tuple(sorted(tree))
    wanted = planner.paths_to_read(paths, options)
    texts = gw.read_blobs(state.full_name, [tree[p] for p in wanted if p in tree])
    snapshot = RepoSnapshot(paths=paths, files=texts, config_text=state.config_text,
                            default_branch=state.default_branch, repository=state.full_name)
    return planner.plan(snapshot, options), tree


def first_tree(gw: GitHubGateway, repo: str, default_branch: str | None) -> dict[str, TreeFile] | None:
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


def nothing_to_plan(tree: dict[str, TreeFile]) -> bool:
    """True when no configuration could make the planner act: no buildspec, no Dockerfile, no repo config."""
    paths = tuple(tree)
    return CONFIG_PATH not in tree and not discover.buildspec_candidates(paths, Options()) \
        and not discover.dockerfile_candidates(paths, Options())


def read_state(gw: GitHubGateway, repo: str, issue_number: int | None = None,
               default_branch: str | None = None, commenter: str | None = None,
               tree: dict[str, TreeFile] | None = None) -> RepoState:
    """State first when this process has the repository's trees cached by sha; otherwise read the tree of the
    default branch first, so the state query also brings the blobs the planner will ask for (one call fewer)."""
    if tree is None:
        tree = first_tree(gw, repo, default_branch)
    if tree is not None:
        guess = planner.paths_to_read(tuple(sorted(tree)), Options())
        return gw.read_state(repo, issue_number, prefetch=[tree[p] for p in guess if p in tree],
                             commenter=commenter)
    return gw.read_state(repo, issue_number, commenter=commenter)


def _config_block(repo: str, options: Options, findings: tuple[Finding, ...]) -> Outcome | None:
    """`enabled: false`, or a repo config with errors: plan nothing rather than guess what was meant."""
    if not options.enabled:
        return Outcome(repo, "disabled")
    errors = [f for f in findings if f.level == "error"]
    if errors:
        return Outcome(repo, "config_error", detail="; ".join(f.message for f in errors))
    return None


def _commit_message(plan: Plan) -> str:
    return (f"{identity.PR_TITLE}\n\n{pr_body.summary(plan).replace('`', '')}\n\n"
            f"{COMMIT_TRAILER}\nEcr-Cache-Fingerprint: {plan.fingerprint}\n")


def _skip_reason(state: RepoState) -> str | None:
    if state.archived:
        return "archived"
    if state.fork:
        return "a fork"
    if state.empty or not state.base_oid:
        return "empty"
    return None


def _publish(gw: GitHubGateway, state: RepoState, plan: Plan, tree: dict[str, TreeFile], options: Options, *,
             override_optout: bool, force: bool, before_write: Callable[[], None] | None = None) -> Outcome:
    """Apply the lifecycle rules, then write at most one commit, one ref update and one PR write."""
    repo = state.full_name
    open_pr, latest = state.open_pr, state.latest_pr
    if plan.is_empty:
        return Outcome(repo, "already", open_pr.url if open_pr else "")
    if open_pr is None and latest is not None and not override_optout:
        if latest.state == "CLOSED" and not latest.merged:
            return Outcome(repo, "opted_out", latest.url)
        if latest.merged and identity.parse_fingerprint(latest.body) == plan.fingerprint:
            return Outcome(repo, "merged_quiet", latest.url)
    branch = state.bot_branch
    # A branch whose head a merged bot PR took in protects nothing any more (its commits are on the default
    # branch, whoever wrote them); only commits that exist nowhere else are a human's to keep.
    merged_head = open_pr is None and branch is not None and any(
        p.merged and p.head_oid == branch.oid for p in state.pulls)
    human = branch is not None and not merged_head and (
        not branch.by_bot or (open_pr is not None and open_pr.commit_count > 1))
    if open_pr is not None and identity.parse_fingerprint(open_pr.body) == plan.fingerprint and not (
            force and human):
        return Outcome(repo, "current", open_pr.url)
    if human and not force:
        if open_pr is not None:
            gw.upsert_comment(repo, open_pr.number, "human-edits", pr_body.render_comment(
                "human_edits", repo=repo), open_pr.comments)
        return Outcome(repo, "human_edits", open_pr.url if open_pr else "")
    files = [FileWrite(e.path, e.content, tree[e.path].mode if e.path in tree and tree[e.path].mode in (
        "100644", "100755") else "100644") for e in plan.edits]
    if before_write is not None:
        before_write()
    with gw.paced(PUBLISH_WRITES + pr_settings.writes(options, opened=open_pr is None)):
        sha = gw.commit(repo, state.base_oid, state.base_tree, files, _commit_message(plan))
        if branch is None:
            gw.create_branch(repo, sha)
        else:
            gw.move_branch(repo, sha)
        body = pr_body.render_pr_body(plan, repo, options)
        if open_pr is not None:
            gw.update_pull(repo, open_pr.number, identity.PR_TITLE, body)
            refused = pr_settings.apply(gw, repo, open_pr.number, options, opened=False)
            return Outcome(repo, "updated", open_pr.url, detail="; ".join(refused))
        number, url = gw.create_pull(repo, state.default_branch, identity.PR_TITLE, body, draft=options.draft)
        refused = pr_settings.apply(gw, repo, number, options, opened=True)
        return Outcome(repo, "opened", url, detail="; ".join(refused))


def sync_repo(gw: GitHubGateway, repo: str, *, override_optout: bool = False, force: bool = False,
              issue_number: int | None = None, default_branch: str | None = None,
              state: RepoState | None = None, tree: dict[str, TreeFile] | None = None, preview: bool = False,
              before_write: Callable[[], None] | None = None) -> tuple[Outcome, RepoState, Plan | None]:
    """Read → plan → publish for one repository; a lost 422 race re-reads once and decides again. ``state``:
    already read by the caller; ``tree``: the default branch's tree, already read; ``preview``: decide, write
    nothing (the outcome says what would have been written); ``before_write`` runs once before the first commit."""
    for attempt in (1, 2):
        if state is None or attempt == 2:
            state = read_state(gw, repo, issue_number, default_branch, tree=tree if attempt == 1 else None)
        skip = _skip_reason(state)
        if skip:
            return Outcome(repo, "skipped", detail=skip), state, None
        options, config_findings = _options(state)
        blocked = _config_block(repo, options, config_findings)
        if blocked is not None:
            return blocked, state, Plan(findings=config_findings)
        latest = state.latest_pr
        if (not override_optout and state.open_pr is None and latest is not None
                and latest.state == "CLOSED" and not latest.merged):
            return Outcome(repo, "opted_out", latest.url), state, None  # no tree read for an opted-out repo
        plan, listing = read_plan(gw, state, options)
        plan = dataclasses.replace(plan, findings=config_findings + plan.findings)
        if preview:
            no_writes: Any = DryRunGateway(gw, quiet=True)
            decided = _publish(no_writes, state, plan, listing, options,
                               override_optout=override_optout, force=force)
            return dataclasses.replace(decided, action=_PREVIEWED.get(decided.action, decided.action)), state, plan
        try:
            return _publish(gw, state, plan, listing, options, override_optout=override_optout,
                            force=force, before_write=before_write), state, plan
        except LostRace as exc:
            log_event("lost_race", repo=repo, attempt=attempt, message=exc.message)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _install(gw: GitHubGateway, job: Job, submit: Submit | None, preview_threshold: int | None) -> list[Outcome]:
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
    preview = _preview_mode(gw, job, len(usable), preview_threshold)
    data: dict[str, Any] = {"trigger": "install", "total": len(usable), "account": job.repo}
    if preview:
        data["preview"] = True
    # Preview jobs are ordinary syncs: the queue keeps the preview flag in its coalescing key, so a preview never
    # supersedes a push's sync of the same repository, nor the other way round.
    repo_jobs = [Job("sync", job.installation_id, ref.full_name, job.delivery_id,
                     {**data, "default_branch": ref.default_branch}) for ref in usable]
    log_event("install.fanout", installation=job.installation_id, account=job.repo, delivery=job.delivery_id,
              repositories=len(usable), skipped=len(outcomes), preview=preview)
    if submit is not None:
        # One sync job per repository: serialised per repository, retried on its own, and no single job runs
        # for as long as a large installation takes. A re-run of this job re-submits the same delivery id,
        # which the queue drops as a duplicate.
        if repo_jobs:
            submit(f"{job.delivery_id}/repositories", repo_jobs)
        return outcomes + [Outcome(j.repo, "queued") for j in repo_jobs]
    for repo_job in repo_jobs:
        try:
            outcomes.extend(_sync(gw, repo_job, in_loop=True))
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


def _preview_mode(gw: GitHubGateway, job: Job, count: int, threshold: int | None) -> bool:
    """A fan-out over more than ``threshold`` repositories opens no pull requests unless the organization
    config opts in (read only then: one request, on large installations only)."""
    if threshold is None or not pacing.preview_mode(count, threshold, opted_in=False):
        return False
    opted_in, why = fanout.parse_opt_in(gw.read_org_config(job.repo))
    preview = pacing.preview_mode(count, threshold, opted_in)
    log_event("install.preview_mode", level="warning" if preview else "info", installation=job.installation_id,
              account=job.repo, delivery=job.delivery_id, repositories=count, threshold=threshold,
              preview=preview, reason=why)
    return preview


def _rate_limited(exc: GitHubError) -> bool:
    headers = {k.lower(): v for k, v in exc.headers.items()}
    return ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in exc.message.lower())


def _pr_closed(gw: GitHubGateway, job: Job) -> list[Outcome]:
    number = int(job.data["number"])
    if job.data.get("merged"):
        return [Outcome(job.repo, "merged")]
    state = gw.read_state(job.repo)
    pr = next((p for p in state.pulls if p.number == number), None)
    if pr is None or pr.is_open or pr.merged or state.open_pr is not None:
        return [Outcome(job.repo, "ignored", detail="pull request reopened or replaced")]
    branch = state.bot_branch
    deleted = branch is not None and branch.by_bot and branch.oid == pr.head_oid
    gw.upsert_comment(job.repo, number, "closed", pr_body.render_comment(
        "closed", repo=job.repo, deleted=deleted or branch is None), pr.comments)
    if deleted:
        gw.delete_branch(job.repo)
    return [Outcome(job.repo, "opted_out_noted", pr.url)]


def _checked(state: RepoState, plan: Plan) -> list[str]:
    lines = [f"default branch `{state.default_branch}` at `{state.base_oid[:12]}`"]
    lines += [f"buildspec `{p}`" for p in plan.buildspecs]
    lines += [f"Dockerfile `{p}`" for p in plan.dockerfiles]
    lines.append("repo config `.github/ecr-cache.yml`" if state.config_text is not None
                 else "no `.github/ecr-cache.yml` (defaults)")
    return lines


def _reply_for(outcome: Outcome, state: RepoState, plan: Plan | None) -> str:
    repo = outcome.repo
    summary = pr_body.summary(plan) if plan is not None else ""
    findings = [f for f in plan.findings if f.level != "info"] if plan is not None else []
    if outcome.action in ("opened", "updated", "current"):
        kind = {"opened": "pr_opened", "updated": "pr_updated", "current": "pr_current"}[outcome.action]
        return pr_body.render_comment(kind, pr_url=outcome.pr_url, summary=summary)
    if outcome.action == "already" and plan is not None:
        if plan.builds:
            return pr_body.render_comment("already", repo=repo, default_branch=state.default_branch,
                                          checked=_checked(state, plan), findings=findings)
        return pr_body.render_comment("nothing", repo=repo, findings=list(plan.findings))
    if outcome.action == "human_edits":
        return pr_body.render_comment("human_edits_reply", pr_url=outcome.pr_url)
    if outcome.action == "disabled":
        return pr_body.render_comment("disabled", repo=repo)
    if outcome.action == "config_error" and plan is not None:
        return pr_body.render_comment("nothing", repo=repo, findings=list(plan.findings))
    if outcome.action == "skipped":
        return pr_body.render_comment("skipped", repo=repo, why=outcome.detail)
    return pr_body.render_comment("nothing", repo=repo, findings=findings)


class _Reply:
    """The 👀 acknowledgement and the reply of one command: both in one GraphQL mutation when nothing else is
    written, the reaction first (REST) when a commit is about to be written so the commenter sees it early."""

    def __init__(self, gw: GitHubGateway, job: Job) -> None:
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


def _command(gw: GitHubGateway, job: Job) -> list[Outcome]:
    data = job.data
    repo, user = job.repo, str(data["user"])
    answered = _answered_elsewhere(job)
    if answered is not None:
        return [answered]
    issue = int(data["issue_number"])
    command = str(data.get("command") or "open")
    # Members and collaborators usually may run the command: read the tree first so the state query brings
    # the blobs too. For anyone else, read no tree before the permission is known.
    likely = data.get("association") in ("OWNER", "MEMBER", "COLLABORATOR") and command in ("open", "recreate",
                                                                                         "preview")
    try:
        state = read_state(gw, repo, issue, _branch(job) if likely else None, commenter=user)
    except GitHubError as exc:
        if not likely or classify_exception(exc).action != "fail":
            raise
        # The tree could not be read: learn the permission first, so the failure is answered below.
        state = read_state(gw, repo, issue, None, commenter=user)
    role = state.commenter_permission
    if role not in WRITE_ROLES:
        role = gw.permission(repo, user)  # the authoritative answer: every grant, organization ones included
    if role not in WRITE_ROLES:
        return [_refuse(gw, job, state, role)]
    reply = _Reply(gw, job)
    try:
        return _run_command(gw, job, command, reply, state)
    except Exception as exc:
        # Only a failure nobody retries gets the reply; a retried one may still succeed.
        if classify_exception(exc).action == "fail" and not isinstance(exc, LostRace):
            # A final failure: say why under the command instead of leaving the commenter without an answer.
            status = exc.status if isinstance(exc, GitHubError) and exc.status else 0
            message = exc.message if isinstance(exc, GitHubError) else f"{type(exc).__name__}: {exc}"
            try:
                gw.upsert_comment(repo, issue, reply.key, pr_body.render_comment(
                    "failed", repo=repo, status=status, message=message[:500]), state.issue_comments)
            except GitHubError as inner:
                log_event("reply_failed", level="warning", repo=repo, error=str(inner))
        raise


def _refuse(gw: GitHubGateway, job: Job, state: RepoState, role: str) -> Outcome:
    """The refusal in words once per user and issue, within refusals.py's limits; else a reaction or nothing."""
    repo, user, issue = job.repo, str(job.data["user"]), int(job.data["issue_number"])
    key = f"refusal-{user.lower()}"
    if any(comment_marker(key) in c.body for c in state.issue_comments):
        return Outcome(repo, "refused", detail=f"{role}; already answered on this issue")
    pacer = pacing.current()
    limiter = refusals.limiter_in(pacer)  # None without a durable queue: no store to share counts with
    low = pacer is not None and pacer.budget_wait(job.installation_id) > 0  # under the background floor
    answer = "comment" if limiter is None else limiter.take(job.installation_id, repo, user, budget_low=low)
    if answer == "comment":
        gw.upsert_comment(repo, issue, key, pr_body.render_comment(
            "refusal", user=user, repo=repo, permission=role), state.issue_comments)
        return Outcome(repo, "refused", detail=role)
    if answer == "reaction":
        gw.react(repo, int(job.data["comment_id"]), refusals.REACTION)
    log_event("refusal_limited", repo=repo, delivery=job.delivery_id, user=user, answer=answer, budget_low=low)
    how = "a reaction" if answer == "reaction" else "nothing"
    return Outcome(repo, "refused", detail=f"{role}; answered with {how}")


def _answered_elsewhere(job: Job) -> Outcome | None:
    """An outcome when this command comment must not be answered by this job (a replay, too old), else None."""
    comment_id = int(job.data["comment_id"])
    if dedupe.command_too_old(job.data.get("created_at"), now()):
        log_event("command_ignored", level="warning", repo=job.repo, delivery=job.delivery_id,
                  comment_id=comment_id, reason="comment older than the replay window")
        return Outcome(job.repo, "stale", detail=f"comment {comment_id} is too old to answer")
    claims = dedupe.claims_in(pacing.current())  # None without a durable queue (tests' in-memory queue)
    if claims is not None and not claims.claim(job.installation_id, comment_id, job.delivery_id):
        log_event("command_ignored", level="warning", repo=job.repo, delivery=job.delivery_id,
                  comment_id=comment_id, reason="comment already answered under another delivery id")
        return Outcome(job.repo, "duplicate", detail=f"comment {comment_id} is answered by another delivery")
    return None


def _run_command(gw: GitHubGateway, job: Job, command: str, reply: _Reply, state: RepoState) -> list[Outcome]:
    data = job.data
    repo = job.repo
    issue = int(data["issue_number"])
    if command == "help":
        reply.send(pr_body.render_comment("help", unknown=data.get("unknown") or ""), state.issue_comments)
        return [Outcome(repo, "help")]
    if command == "preview":
        skip = _skip_reason(state)
        if skip:
            text, outcome = pr_body.render_comment("skipped", repo=repo, why=skip), Outcome(repo, "skipped")
        else:
            options, config_findings = _options(state)
            blocked = _config_block(repo, options, config_findings)
            plan = Plan(findings=config_findings) if blocked else read_plan(gw, state, options)[0]
            findings = list(config_findings + (plan.findings if not blocked else ()))
            if blocked is not None:
                text = _reply_for(blocked, state, plan)
            elif plan.is_empty:
                text = _reply_for(Outcome(repo, "already"), state, dataclasses.replace(
                    plan, findings=tuple(findings)))
            else:
                text = pr_body.render_comment("preview", repo=repo, edits=list(plan.edits),
                                              diff=pr_body.unified_diff(plan.edits), findings=findings,
                                              head=pr_body.render_summary(plan, repo, options))
            outcome = Outcome(repo, "previewed", detail=plan.fingerprint)
        reply.send(text, state.issue_comments)
        return [outcome]
    synced, state, maybe_plan = sync_repo(gw, repo, override_optout=True, force=command == "recreate",
                                          issue_number=issue, default_branch=_branch(job), state=state,
                                          before_write=reply.acknowledge)
    reply.send(_reply_for(synced, state, maybe_plan), state.issue_comments)
    return [synced]


def _sync(gw: GitHubGateway, job: Job, *, in_loop: bool = False) -> list[Outcome]:
    background = job.data.get("trigger") == "install"
    if background:
        _await_budget(job.installation_id)
    try:
        outcome = _sync_outcome(gw, job)
    except Exception as exc:
        if background and _final(exc, in_loop):
            fanout.finished(job, "error", gw)
        raise
    if background:
        fanout.finished(job, outcome.action, gw)
    return [outcome]


def _sync_outcome(gw: GitHubGateway, job: Job) -> Outcome:
    branch = _branch(job)
    tree = first_tree(gw, job.repo, branch)
    if tree is not None and nothing_to_plan(tree):
        # The tree read settles it: no state query, no blob read, nothing written.
        return Outcome(job.repo, "already", detail="no buildspec, Dockerfile or repo config")
    preview = job.data.get("preview") is True
    outcome, state, plan = sync_repo(gw, job.repo, default_branch=branch, tree=tree, preview=preview)
    if not preview and outcome.action != "skipped" and job.data.get("trigger") in ("push", "install"):
        _config_issue(gw, state, plan)
    return outcome


def _config_issue(gw: GitHubGateway, state: RepoState, plan: Plan | None) -> None:
    """Open, update or close the repository's config issue; a repository without issues (410) or an App without
    the Issues permission (403) keeps the log line alone."""
    errors = [f for f in (plan.findings if plan else ()) if f.level == "error" and f.code.startswith("config-")]
    latest = state.latest_pr
    if errors and state.open_pr is None and latest is not None and latest.state == "CLOSED" and not latest.merged:
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


def _final(exc: Exception, in_loop: bool) -> bool:
    """True when this failure ends the repository's part of the fan-out (nobody will run it again)."""
    if isinstance(exc, RetryLater):
        return False
    if in_loop:  # the installation job itself syncs: only a rate limit re-runs it
        return not (isinstance(exc, GitHubError) and exc.status in (403, 429) and _rate_limited(exc))
    return classify_exception(exc).action == "fail"


def _await_budget(installation_id: int) -> None:
    """Background work waits while the installation's request budget is under the pacer's floor, leaving it to
    pushes and commands (the wait is spread so deferred jobs do not all wake at once)."""
    pacer = pacing.current()
    wait = pacer.budget_wait(installation_id) if pacer is not None else 0.0
    if wait > 0:
        raise RetryLater(wait + random.uniform(0, min(30.0, 0.1 * wait + 1.0)), "installation request budget low")


def _branch(job: Job) -> str | None:
    value = job.data.get("default_branch")
    return value if isinstance(value, str) and value else None


_KINDS: dict[str, Callable[[GitHubGateway, Job], list[Outcome]]] = {
    "sync": _sync, "command": _command, "pr_closed": _pr_closed,
}


class DryRunGateway:
    """Reads through to GitHub, turns every write into a log line (DRY_RUN=1), or into nothing (``quiet``)."""

    def __init__(self, inner: GitHubGateway, *, quiet: bool = False) -> None:
        self._inner = inner
        self._quiet = quiet

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def paced(self, writes: int) -> Iterator[None]:
        """Nothing is sent, so nothing is reserved."""
        yield

    def _log(self, **fields: Any) -> None:
        if not self._quiet:
            log_event("dry_run", **fields)

    def react(self, full_name: str, comment_id: int, content: str = "eyes") -> None:
        self._log(write="react", repo=full_name, comment_id=comment_id)

    def react_and_reply(self, issue_node_id: str, comment_node_id: str | None, key: str, body: str,
                        existing: Sequence[Comment]) -> None:
        self._log(write="react_and_reply", issue=issue_node_id, key=key)

    def upsert_comment(self, full_name: str, issue_number: int, key: str, body: str,
                       existing: Sequence[Comment]) -> int:
        self._log(write="comment", repo=full_name, issue=issue_number, key=key)
        return 0

    def commit(self, full_name: str, base_oid: str, base_tree: str, files: Sequence[FileWrite],
               message: str) -> str:
        self._log(write="commit", repo=full_name, files=[f.path for f in files])
        return "0" * 40

    def create_branch(self, full_name: str, sha: str) -> None:
        self._log(write="create_branch", repo=full_name)

    def move_branch(self, full_name: str, sha: str) -> None:
        self._log(write="move_branch", repo=full_name)

    def delete_branch(self, full_name: str) -> None:
        self._log(write="delete_branch", repo=full_name)

    def create_pull(self, full_name: str, base: str, title: str, body: str, draft: bool = False) -> tuple[int, str]:
        self._log(write="create_pull", repo=full_name, draft=draft)
        return 0, ""

    def add_labels(self, full_name: str, number: int, labels: Sequence[str]) -> None:
        self._log(write="add_labels", repo=full_name, number=number, labels=list(labels))

    def add_assignees(self, full_name: str, number: int, assignees: Sequence[str]) -> None:
        self._log(write="add_assignees", repo=full_name, number=number, assignees=list(assignees))

    def request_reviewers(self, full_name: str, number: int, reviewers: Sequence[str],
                          team_reviewers: Sequence[str]) -> None:
        self._log(write="request_reviewers", repo=full_name, number=number)

    def create_issue(self, full_name: str, title: str, body: str) -> Any:
        self._log(write="create_issue", repo=full_name, title=title)
        return Issue(0, body, "")

    def update_issue(self, full_name: str, number: int, *, body: str | None = None, close: bool = False) -> None:
        self._log(write="update_issue", repo=full_name, number=number, close=close)

    def update_pull(self, full_name: str, number: int, title: str, body: str) -> None:
        self._log(write="update_pull", repo=full_name, number=number)


def interactive(job: Job) -> bool:
    """A person is waiting (a push, a command, a closed pull request): its writes may spend the request budget's
    floor, which background work (an installation's fan-out and its syncs) leaves alone."""
    return job.kind != "install" and job.data.get("trigger") != "install"


def rate_limit_remaining(gw: object) -> int | None:
    """`x-ratelimit-remaining` of the last GitHub answer the gateway saw (None before any)."""
    value = getattr(gw, "rate_limit_remaining", None)  # doubles and dry-run wrappers may have none
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def run(job: Job, gateway_factory: GatewayFactory, *, dry_run: bool = False,
        submit: Submit | None = None, preview_threshold: int | None = None) -> list[Outcome]:
    """Run one job. GitHub errors propagate with their status and headers: the queue retries rate limits,
    5xx and known 422 races, and fails every other 4xx once (`bot/queue/retry.py`); a full pacing window raises
    `RetryLater`. With ``submit`` (the queue's), an installation job queues one sync job per repository instead
    of syncing them all itself. An installation over ``preview_threshold`` repositories (None: no limit) opens
    no pull requests unless its organization config opts in."""
    gw: Any = gateway_factory(job.installation_id)
    if dry_run:
        gw = DryRunGateway(gw)
    try:
        with pacing.interactive_scope(interactive(job)):
            if job.kind == "install" and "/" not in job.repo:  # an account login: the installation's fan-out
                outcomes = _install(gw, job, submit, preview_threshold)
            else:  # `install` on one repository: a preview job queued before previews were syncs
                outcomes = _KINDS["sync" if job.kind == "install" else job.kind](gw, job)
    except GitHubError as exc:
        log_event("job_failed", level="warning", kind=job.kind, repo=job.repo, delivery=job.delivery_id,
                  status=exc.status, error=exc.message)
        raise
    for outcome in outcomes:
        log_event("job_done", kind=job.kind, repo=outcome.repo, delivery=job.delivery_id, action=outcome.action,
                  pr=outcome.pr_url, detail=outcome.detail)
    return outcomes
