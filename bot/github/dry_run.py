"""`DryRunGateway`: reads through to another gateway, turns every write into a log line (DRY_RUN=1) or into nothing
(``quiet``, for a preview)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bot.github.gateway import Comment, FileWrite, Gateway, Issue, RepoRef, RepoState, TreeFile
from bot.logs import log_event

FAKE_SHA = "0" * 40  # what a commit that was not made "returns"


class DryRunGateway:
    """A `Gateway` that sends no write: each one is logged (``dry_run`` events) unless ``quiet``, and answers with a
    placeholder (comment 0, commit `FAKE_SHA`, pull request 0, issue 0)."""

    def __init__(self, inner: Gateway, *, quiet: bool = False) -> None:
        self._inner = inner
        self._quiet = quiet

    @property
    def installation_id(self) -> int:
        """The wrapped gateway's installation."""
        return self._inner.installation_id

    @property
    def rate_limit_remaining(self) -> int | None:
        """The wrapped gateway's last `x-ratelimit-remaining` (reads still reach GitHub)."""
        return self._inner.rate_limit_remaining

    @contextmanager
    def paced(self, writes: int) -> Iterator[None]:
        """Nothing is sent, so nothing is reserved."""
        yield

    def _log(self, **fields: Any) -> None:
        if not self._quiet:
            log_event("dry_run", **fields)

    # -- reading: through to the wrapped gateway ---------------------------------------------------------

    def list_installation_repos(self) -> list[RepoRef]:
        """Every repository the installation can see."""
        return self._inner.list_installation_repos()

    def read_state(
        self,
        full_name: str,
        issue_number: int | None = None,
        prefetch: Sequence[TreeFile] = (),
        commenter: str | None = None,
    ) -> RepoState:
        """The repository's state, read from GitHub."""
        return self._inner.read_state(full_name, issue_number, prefetch, commenter)

    def has_seen(self, full_name: str) -> bool:
        """Whether the wrapped gateway's process read a tree of the repository."""
        return self._inner.has_seen(full_name)

    def read_tree(self, full_name: str, tree_sha: str) -> dict[str, TreeFile]:
        """Every file of a tree."""
        return self._inner.read_tree(full_name, tree_sha)

    def read_tree_at(self, full_name: str, ref: str) -> tuple[str, dict[str, TreeFile]]:
        """The tree of a branch (or tree sha) and its sha."""
        return self._inner.read_tree_at(full_name, ref)

    def read_blobs(self, full_name: str, files: Sequence[TreeFile]) -> dict[str, str]:
        """Text of the given files."""
        return self._inner.read_blobs(full_name, files)

    def read_org_config(self, owner: str) -> str | None:
        """Text of the owner's organization-wide config."""
        return self._inner.read_org_config(owner)

    def permission(self, full_name: str, user: str) -> str:
        """The user's permission on the repository."""
        return self._inner.permission(full_name, user)

    def find_issue(self, full_name: str, title: str, marker: str) -> Issue | None:
        """The bot's open issue with this title and marker."""
        return self._inner.find_issue(full_name, title, marker)

    # -- writing: logged, not sent -----------------------------------------------------------------------

    def react(self, full_name: str, comment_id: int, content: str = "eyes") -> None:
        """Log the reaction."""
        self._log(write="react", repo=full_name, comment_id=comment_id)

    def upsert_comment(
        self, full_name: str, issue_number: int, key: str, body: str, existing: Iterable[Comment]
    ) -> int:
        """Log the comment; its id is 0."""
        self._log(write="comment", repo=full_name, issue=issue_number, key=key)
        return 0

    def react_and_reply(
        self, issue_node_id: str, comment_node_id: str | None, key: str, body: str, existing: Iterable[Comment]
    ) -> None:
        """Log the reply (and reaction)."""
        self._log(write="react_and_reply", issue=issue_node_id, key=key)

    def commit(self, full_name: str, base_oid: str, base_tree: str, files: Sequence[FileWrite], message: str) -> str:
        """Log the commit's files; its sha is `FAKE_SHA`."""
        self._log(write="commit", repo=full_name, files=[f.path for f in files])
        return FAKE_SHA

    def create_branch(self, full_name: str, sha: str) -> None:
        """Log the branch creation."""
        self._log(write="create_branch", repo=full_name)

    def move_branch(self, full_name: str, sha: str) -> None:
        """Log the branch move."""
        self._log(write="move_branch", repo=full_name)

    def delete_branch(self, full_name: str) -> None:
        """Log the branch deletion."""
        self._log(write="delete_branch", repo=full_name)

    def create_pull(self, full_name: str, base: str, title: str, body: str, draft: bool = False) -> tuple[int, str]:
        """Log the pull request; it is number 0 with no URL."""
        self._log(write="create_pull", repo=full_name, draft=draft)
        return 0, ""

    def update_pull(self, full_name: str, number: int, title: str, body: str) -> None:
        """Log the pull request's refresh."""
        self._log(write="update_pull", repo=full_name, number=number)

    def add_labels(self, full_name: str, number: int, labels: Sequence[str]) -> None:
        """Log the labels."""
        self._log(write="add_labels", repo=full_name, number=number, labels=list(labels))

    def add_assignees(self, full_name: str, number: int, assignees: Sequence[str]) -> None:
        """Log the assignees."""
        self._log(write="add_assignees", repo=full_name, number=number, assignees=list(assignees))

    def request_reviewers(
        self, full_name: str, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]
    ) -> None:
        """Log the review request."""
        self._log(write="request_reviewers", repo=full_name, number=number)

    def create_issue(self, full_name: str, title: str, body: str) -> Issue:
        """Log the issue; it is number 0 with no URL."""
        self._log(write="create_issue", repo=full_name, title=title)
        return Issue(0, body, "")

    def update_issue(self, full_name: str, number: int, *, body: str | None = None, close: bool = False) -> None:
        """Log the issue's edit or closing."""
        self._log(write="update_issue", repo=full_name, number=number, close=close)


if TYPE_CHECKING:  # the wrapper is a whole `Gateway` (mypy checks this line)
    _GATEWAY: type[Gateway] = DryRunGateway
