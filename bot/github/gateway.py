"""The seam between the App's jobs and GitHub: the `Gateway` Protocol, its value types and errors, and the write
pacer it is given.

Jobs depend on this module only; `bot.github.client` implements `Gateway` over GitHub's REST and GraphQL APIs,
`bot.github.dry_run` wraps any gateway so it writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol


class GitHubError(Exception):
    """A GitHub API call failed; ``status`` is the HTTP status (0 for a malformed answer)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, Any] | None = None, data: Any = None) -> None:
        super().__init__(f"GitHub API {status}: {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})  # rate-limit headers, for the queue's retry decision
        self.data = data if data is not None else {"message": message}


class LostRace(GitHubError):
    """422 'already exists': another worker created the same ref or pull request first."""


class NotFound(GitHubError):
    """404: the repository, ref or user is gone or not visible to the installation."""


class RetryLater(Exception):
    """Raised by a job (or its gateway's write pacing) to be run again after `delay` seconds without blocking a
    worker thread; ``counts``: whether the deferral uses up one of the job's attempts."""

    def __init__(self, delay: float, reason: str = "deferred", *, counts: bool = False) -> None:
        super().__init__(f"{reason} (retry in {delay:.1f}s)")
        self.delay = delay
        self.reason = reason
        self.counts = counts


@dataclass(frozen=True)
class RepoRef:
    """One repository of an installation, as listed by the API."""

    full_name: str
    archived: bool
    fork: bool
    empty: bool
    default_branch: str


@dataclass(frozen=True)
class Comment:
    """An issue or pull-request comment the bot wrote (``viewerDidAuthor``)."""

    id: int
    body: str
    node_id: str = ""  # GraphQL id, for `updateIssueComment`


@dataclass(frozen=True)
class PullRequest:
    """A pull request whose head is the bot branch of this repository."""

    number: int
    state: str  # OPEN, CLOSED or MERGED
    merged: bool
    body: str
    url: str
    head_oid: str
    commit_count: int
    comments: tuple[Comment, ...] = ()

    @property
    def is_open(self) -> bool:
        """True while the pull request is open."""
        return self.state == "OPEN"


@dataclass(frozen=True)
class Issue:
    """An issue the bot opened."""

    number: int
    body: str
    url: str


@dataclass(frozen=True)
class BranchHead:
    """The bot branch's head commit and whether only the bot wrote it."""

    oid: str
    by_bot: bool


@dataclass(frozen=True)
class RepoState:
    """Everything the lifecycle rules need, read in one GraphQL query."""

    full_name: str
    archived: bool
    fork: bool
    empty: bool
    default_branch: str
    base_oid: str
    base_tree: str
    config_text: str | None
    bot_branch: BranchHead | None
    pulls: tuple[PullRequest, ...]
    issue_comments: tuple[Comment, ...] = ()
    commenter_permission: str | None = None  # a role GraphQL showed for the commenter; None: ask REST
    org_config_text: str | None = None  # `.github/ecr-cache.yml` of the owner's `.github` repository

    @property
    def open_pr(self) -> PullRequest | None:
        """The open bot pull request, if any."""
        return next((p for p in self.pulls if p.is_open), None)

    @property
    def latest_pr(self) -> PullRequest | None:
        """The most recently created bot pull request, if any."""
        return self.pulls[0] if self.pulls else None


@dataclass(frozen=True)
class TreeFile:
    """One file of a Git tree."""

    path: str
    mode: str
    sha: str
    size: int


@dataclass(frozen=True)
class FileWrite:
    """One file of the bot's commit."""

    path: str
    content: str
    mode: str = "100644"


class PaceFloor(Protocol):
    """The part of a pacer's limits the gateway reads."""

    @property
    def request_floor(self) -> int:
        """Requests of the hourly budget left to interactive work."""
        ...


class WritePacer(Protocol):
    """Shared write budget per installation (the queue's SQLite or Redis pacer implements it)."""

    @property
    def limits(self) -> PaceFloor:
        """The pacer's limits (the gateway reads the request floor)."""
        ...

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        """Reserve `cost` content-creating requests now and return 0.0, or return the seconds to wait."""
        ...

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        """Record the installation's request budget from `x-ratelimit-remaining` / `x-ratelimit-reset`."""
        ...

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        """Seconds to wait before spending more of the installation's request budget (0.0 when fine)."""
        ...


class Gateway(Protocol):
    """GitHub operations of one installation, as jobs use them: reads, then paced writes."""

    @property
    def installation_id(self) -> int:
        """The installation whose token the gateway uses."""
        ...

    @property
    def rate_limit_remaining(self) -> int | None:
        """`x-ratelimit-remaining` of the last GitHub answer seen (None before any)."""
        ...

    def paced(self, writes: int) -> AbstractContextManager[None]:
        """Reserve ``writes`` content-creating requests at once (`RetryLater` when the window is full, before
        anything is sent); writes in the block spend them, any beyond reserve one each."""
        ...

    # -- reading ---------------------------------------------------------------------------------------

    def list_installation_repos(self) -> list[RepoRef]:
        """Every repository the installation can see."""
        ...

    def read_state(
        self,
        full_name: str,
        issue_number: int | None = None,
        prefetch: Sequence[TreeFile] = (),
        commenter: str | None = None,
    ) -> RepoState:
        """Default branch head, repo config, bot branch, bot PRs, an issue's bot comments, uncached blobs of
        ``prefetch``, and the role GraphQL shows for ``commenter``."""
        ...

    def has_seen(self, full_name: str) -> bool:
        """True when this process already read a tree of the repository (its objects are cached by sha)."""
        ...

    def read_tree(self, full_name: str, tree_sha: str) -> dict[str, TreeFile]:
        """Every file of a tree, by path."""
        ...

    def read_tree_at(self, full_name: str, ref: str) -> tuple[str, dict[str, TreeFile]]:
        """The tree of a branch (or tree sha) and its sha."""
        ...

    def read_blobs(self, full_name: str, files: Sequence[TreeFile]) -> dict[str, str]:
        """Text of the given files, by path (binary, huge and unreadable files left out)."""
        ...

    def read_org_config(self, owner: str) -> str | None:
        """Text of the owner's organization-wide config; None when missing or unreadable."""
        ...

    def permission(self, full_name: str, user: str) -> str:
        """The user's permission on the repository (admin, maintain, write, triage, read or none)."""
        ...

    def find_issue(self, full_name: str, title: str, marker: str) -> Issue | None:
        """The bot's open issue titled ``title`` whose body carries ``marker``."""
        ...

    # -- writing ---------------------------------------------------------------------------------------

    def react(self, full_name: str, comment_id: int, content: str = "eyes") -> None:
        """Acknowledge a command comment with a reaction."""
        ...

    def upsert_comment(
        self, full_name: str, issue_number: int, key: str, body: str, existing: Iterable[Comment]
    ) -> int:
        """Create the comment carrying hidden ``key``, or edit the bot's earlier one; returns its id."""
        ...

    def react_and_reply(
        self, issue_node_id: str, comment_node_id: str | None, key: str, body: str, existing: Iterable[Comment]
    ) -> None:
        """`upsert_comment` and (with ``comment_node_id``) the 👀 reaction on the command, in one request."""
        ...

    def commit(self, full_name: str, base_oid: str, base_tree: str, files: Sequence[FileWrite], message: str) -> str:
        """Create one commit of ``files`` on top of ``base_oid``; returns its sha."""
        ...

    def create_branch(self, full_name: str, sha: str) -> None:
        """Create the bot branch at ``sha`` (`LostRace` when it already exists)."""
        ...

    def move_branch(self, full_name: str, sha: str) -> None:
        """Point the bot branch at ``sha``."""
        ...

    def delete_branch(self, full_name: str) -> None:
        """Delete the bot branch (already gone is fine)."""
        ...

    def create_pull(self, full_name: str, base: str, title: str, body: str, draft: bool = False) -> tuple[int, str]:
        """Open the bot pull request; returns its number and URL (`LostRace` when one already exists)."""
        ...

    def update_pull(self, full_name: str, number: int, title: str, body: str) -> None:
        """Refresh the bot pull request's title and body."""
        ...

    def add_labels(self, full_name: str, number: int, labels: Sequence[str]) -> None:
        """Add labels to an issue or pull request."""
        ...

    def add_assignees(self, full_name: str, number: int, assignees: Sequence[str]) -> None:
        """Add assignees to an issue or pull request."""
        ...

    def request_reviewers(
        self, full_name: str, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]
    ) -> None:
        """Ask users and teams to review a pull request."""
        ...

    def create_issue(self, full_name: str, title: str, body: str) -> Issue:
        """Open an issue."""
        ...

    def update_issue(self, full_name: str, number: int, *, body: str | None = None, close: bool = False) -> None:
        """Edit an issue's body, or close it as completed."""
        ...


class GatewayFactory(Protocol):
    """Hands out the gateway of one installation.

    ``interactive``: a person waits for the job (a push, a command): its writes may spend the request budget's
    floor, which background work (an installation's fan-out) leaves alone."""

    def __call__(self, installation_id: int, *, interactive: bool = False) -> Gateway:
        """The gateway of ``installation_id`` for one job."""
        ...


def upsert_issue(
    gw: Gateway, full_name: str, title: str, marker: str, body: str
) -> tuple[Literal["opened", "updated", "current"], Issue]:
    """Open the issue, or edit the bot's open one (found by ``marker``) when its body differs; returns
    ("opened" | "updated" | "current", the issue). Through ``gw``'s own methods, so a dry-run gateway writes nothing."""
    issue = gw.find_issue(full_name, title, marker)
    if issue is not None and issue.body.strip() == body.strip():
        return "current", issue
    with gw.paced(1):
        if issue is None:
            return "opened", gw.create_issue(full_name, title, body)
        gw.update_issue(full_name, issue.number, body=body)
    return "updated", Issue(issue.number, body, issue.url)
