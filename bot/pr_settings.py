"""The pull request's `labels`, `assignees`, `reviewers`, `team_reviewers` (and `draft`) from the repo config."""

from __future__ import annotations

from typing import Any

from bot.core.model import Options
from bot.github_gateway import GitHubError
from bot.logs import log_event


def writes(options: Options, opened: bool) -> int:
    """How many write requests `apply` sends (reserved with the publish's other writes)."""
    count = int(bool(options.labels)) + int(bool(options.assignees))
    if opened and (options.reviewers or options.team_reviewers):
        count += 1
    return count


def apply(gw: Any, repo: str, number: int, options: Options, *, opened: bool) -> list[str]:
    """Add the configured labels and assignees (on every update too: GitHub adds, never removes, so ones people
    added stay); ask for reviews only when the pull request is opened, so an update never asks again someone who
    has already reviewed. Returns what GitHub refused (a 422 for a reviewer who is the author or no
    collaborator): the job goes on."""
    refused: list[str] = []
    steps: list[tuple[str, Any]] = []
    if options.labels:
        steps.append(("labels", lambda: gw.add_labels(repo, number, options.labels)))
    if options.assignees:
        steps.append(("assignees", lambda: gw.add_assignees(repo, number, options.assignees)))
    if opened and (options.reviewers or options.team_reviewers):
        steps.append(("reviewers", lambda: gw.request_reviewers(repo, number, options.reviewers,
                                                                options.team_reviewers)))
    for what, step in steps:
        try:
            step()
        except GitHubError as exc:
            if exc.status not in (403, 404, 422):  # rate limits and server errors: the queue retries the job
                raise
            # https://docs.github.com/rest/pulls/review-requests: 422 when a reviewer is not a collaborator
            refused.append(f"{what}: {exc.message}")
            log_event("pr_settings_refused", level="warning", repo=repo, number=number, setting=what,
                      status=exc.status, error=exc.message)
    return refused
