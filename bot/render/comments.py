"""The bot's comments: one function per comment, over its own macro of `comment.md.j2`, cut to GitHub's limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.model import FileEdit, Finding
from bot.identity import BOT_BRANCH
from bot.render import diff as diffs
from bot.render.templates import SAFE_BODY, code, env, flat

_CUT = "\n_Cut to fit GitHub's comment size limit._\n"


def _comment(macro: str, **context: Any) -> str:
    """The macro ``macro`` of `comment.md.j2` with ``context``, stripped, ending in one newline, within the limit."""
    text = str(getattr(env.get_template("comment.md.j2").module, macro)(**context)).strip() + "\n"
    if len(text) > SAFE_BODY:
        # A cut preview would leave its diff block and fold open, swallowing the note.
        closing = "\n```\n</details>\n" if macro == "preview" else ""
        text = text[: SAFE_BODY - len(_CUT)].rsplit("\n", 1)[0] + closing + _CUT
    return text


def _findings(findings: Sequence[Finding]) -> list[dict[str, str]]:
    return [{"level": f.level, "path": code(f.path, 200), "code": f.code, "message": flat(f.message)} for f in findings]


def pr_opened(pr_url: str, summary: str) -> str:
    """The reply to `/ecr-cache` that opened the pull request ``pr_url``."""
    return _comment("pr_opened", pr_url=pr_url, summary=summary)


def pr_updated(pr_url: str, summary: str) -> str:
    """The reply to `/ecr-cache` that updated the pull request ``pr_url``."""
    return _comment("pr_updated", pr_url=pr_url, summary=summary)


def pr_current(pr_url: str, summary: str) -> str:
    """The reply to `/ecr-cache` when the pull request ``pr_url`` is already up to date."""
    return _comment("pr_current", pr_url=pr_url, summary=summary)


def already_set_up(repo: str, default_branch: str, checked: Sequence[str], findings: Sequence[Finding]) -> str:
    """The reply when planning changes nothing on a repository with builds: what was checked, and the notes."""
    return _comment(
        "already_set_up", repo=repo, default_branch=default_branch, checked=list(checked), findings=_findings(findings)
    )


def nothing_to_change(repo: str, findings: Sequence[Finding]) -> str:
    """The reply when no change can be made: the findings that say why (or that no Docker build was found)."""
    return _comment("nothing_to_change", repo=repo, findings=_findings(findings))


def preview(
    repo: str,
    edits: Sequence[FileEdit],
    findings: Sequence[Finding] = (),
    head: str = "",
    diff_limit: int = diffs.MARKDOWN_LIMIT,
) -> str:
    """The reply to `/ecr-cache preview`: ``head`` (the PR summary), the diff of ``edits``, then the findings."""
    diff = diffs.for_markdown(diffs.unified_diff(edits), diff_limit)
    return _comment("preview", repo=repo, head=head, changed=len(edits), diff=diff, findings=_findings(findings))


def refusal(user: str, repo: str, permission: str) -> str:
    """The answer to a command from ``user``, whose ``permission`` on ``repo`` is below write."""
    return _comment("refusal", user=user, repo=repo, permission=permission)


def command_help(unknown: str = "") -> str:
    """The list of `/ecr-cache` commands, after a line about the ``unknown`` command that was asked for."""
    return _comment("command_help", unknown=unknown, branch=BOT_BRANCH)


def closed(repo: str, deleted: bool) -> str:
    """The note on a bot pull request closed without merging: opted out, and whether its branch was deleted."""
    return _comment("closed", repo=repo, deleted=deleted, branch=BOT_BRANCH)


def human_edits() -> str:
    """The note on the pull request when someone else pushed to the bot's branch and the change moved on."""
    return _comment("human_edits", branch=BOT_BRANCH)


def human_edits_reply(pr_url: str) -> str:
    """The reply to `/ecr-cache` when the bot's branch has someone else's commits (``pr_url`` may be empty)."""
    return _comment("human_edits_reply", pr_url=pr_url, branch=BOT_BRANCH)


def opted_out(repo: str) -> str:
    """The note that the bot left its closed pull request closed."""
    return _comment("opted_out", repo=repo)


def disabled(repo: str) -> str:
    """The reply when the repository config says `enabled: false`."""
    return _comment("disabled", repo=repo)


def failed(repo: str, status: int, message: str) -> str:
    """The reply when a command failed for good: GitHub's ``status`` (0 when none) and ``message``."""
    return _comment("failed", repo=repo, status=status, message=message)


def skipped(repo: str, why: str) -> str:
    """The reply when the repository is skipped (``why``: archived, empty...)."""
    return _comment("skipped", repo=repo, why=why)
