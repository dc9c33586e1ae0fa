"""The pull request's `labels`, `assignees`, `reviewers`, `team_reviewers` (and `draft`) from the repo config."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.model import Options
from bot.github.gateway import Gateway, GitHubError
from bot.logs import log_event

# One request: (gateway, repository, pull request number) -> None.
Send = Callable[[Gateway, str, int], None]


def _requests(options: Options, opened: bool) -> list[tuple[str, Send]]:
    """(setting, how to send it) for each request `apply` sends."""
    requests: list[tuple[str, Send]] = []
    if options.labels:
        requests.append(("labels", lambda gw, repo, number: gw.add_labels(repo, number, options.labels)))
    if options.assignees:
        requests.append(("assignees", lambda gw, repo, number: gw.add_assignees(repo, number, options.assignees)))
    if opened and (options.reviewers or options.team_reviewers):
        requests.append(
            (
                "reviewers",
                lambda gw, repo, number: gw.request_reviewers(repo, number, options.reviewers, options.team_reviewers),
            )
        )
    return requests


def writes(options: Options, opened: bool) -> int:
    """How many write requests `apply` sends (reserved with the publish's other writes)."""
    return len(_requests(options, opened))


def apply(gw: Gateway, repo: str, number: int, options: Options, *, opened: bool) -> list[str]:
    """Add the configured labels and assignees (on every update too: GitHub adds, never removes, so ones people
    added stay); ask for reviews only when the pull request is opened, so an update never asks again someone who
    has already reviewed. Returns what GitHub refused (a 422 for a reviewer who is the author or no
    collaborator): the job goes on."""
    refused: list[str] = []
    for what, send in _requests(options, opened):
        try:
            send(gw, repo, number)
        except GitHubError as exc:
            if exc.status not in (403, 404, 422):  # rate limits and server errors: the queue retries the job
                raise
            # https://docs.github.com/rest/pulls/review-requests: 422 when a reviewer is not a collaborator
            refused.append(f"{what}: {exc.message}")
            log_event(
                "pr_settings_refused",
                level="warning",
                repo=repo,
                number=number,
                setting=what,
                status=exc.status,
                error=exc.message,
            )
    return refused
