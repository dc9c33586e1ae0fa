"""A small in-memory GitHub behind the `Gateway` Protocol, for job and lifecycle tests: repositories with commits
and branches, the bot's pull requests, comments, issues and permissions; every write is recorded in `writes`.

People act on it through the helper methods (`push`, `merge_pull`, `close_pull`, `add_comment`); jobs act on it
through the Protocol's methods only. The HTTP-level double (`github_double.py`) stays for the client's own tests
and the end-to-end ones."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from github_double import IssueComment  # the double's comment, node id and all

from bot.github.gateway import (
    BranchHead,
    Comment,
    FileWrite,
    Gateway,
    GatewayFactory,
    Issue,
    LostRace,
    NotFound,
    PullRequest,
    RepoRef,
    RepoState,
    TreeFile,
)
from bot.identity import BOT_BRANCH, CONFIG_PATH, ORG_CONFIG_PATH, ORG_CONFIG_REPO, comment_marker

BOT = "ecr-cache-bot[bot]"


def _sha(*parts: object) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeCommit:
    """One commit: its whole file set (path -> text), its parent and who wrote it."""

    sha: str
    parent: str | None
    files: dict[str, str]
    author: str
    message: str

    @property
    def tree(self) -> str:
        """The commit's tree id."""
        return _sha("tree", *sorted(self.files.items()))


@dataclass
class FakePull:
    """A pull request of the bot branch."""

    number: int
    base: str
    title: str
    body: str
    head_oid: str
    draft: bool
    state: str = "OPEN"  # OPEN, CLOSED or MERGED
    commit_count: int = 1
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)


@dataclass
class FakeIssue:
    """An issue the bot opened."""

    number: int
    title: str
    body: str
    open: bool = True


@dataclass
class FakeRepo:
    """One repository."""

    full_name: str
    default_branch: str = "main"
    archived: bool = False
    fork: bool = False
    refs: dict[str, str] = field(default_factory=dict)
    pulls: list[FakePull] = field(default_factory=list)  # oldest first
    comments: list[IssueComment] = field(default_factory=list)
    issues: list[FakeIssue] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The repository's web address."""
        return f"https://github.test/{self.full_name}"


class FakeGateway:
    """The `Gateway` of one installation over in-memory repositories (`FakeGitHub` holds them)."""

    def __init__(self, hub: FakeGitHub, installation_id: int = 1, interactive: bool = False) -> None:
        self.hub = hub
        self._installation_id = installation_id
        self.interactive = interactive

    @property
    def installation_id(self) -> int:
        """The installation this gateway acts for."""
        return self._installation_id

    @property
    def rate_limit_remaining(self) -> int | None:
        """No rate limit in memory."""
        return None

    @contextmanager
    def paced(self, writes: int) -> Iterator[None]:
        """Record the reservation; nothing is ever full."""
        self.hub.reserved.append(writes)
        yield

    # -- reading ---------------------------------------------------------------------------------------

    def list_installation_repos(self) -> list[RepoRef]:
        """Every repository, in creation order."""
        return [RepoRef(r.full_name, r.archived, r.fork, not r.refs, r.default_branch) for r in self.hub.repos.values()]

    def read_state(
        self,
        full_name: str,
        issue_number: int | None = None,
        prefetch: Sequence[TreeFile] = (),
        commenter: str | None = None,
    ) -> RepoState:
        """The repository as the state query shows it: newest bot pull request first."""
        repo = self.hub.repo(full_name)
        head = repo.refs.get(repo.default_branch)
        base = self.hub.commits[head] if head else None
        bot_head = repo.refs.get(BOT_BRANCH)
        branch = BranchHead(bot_head, self.hub.commits[bot_head].author == BOT) if bot_head else None
        pulls = tuple(
            PullRequest(
                p.number,
                p.state,
                p.state == "MERGED",
                p.body,
                f"{repo.url}/pull/{p.number}",
                p.head_oid,
                p.commit_count,
                self._bot_comments(repo, p.number),
            )
            for p in reversed(repo.pulls)
        )
        owner = full_name.partition("/")[0]
        return RepoState(
            full_name=full_name,
            archived=repo.archived,
            fork=repo.fork,
            empty=base is None,
            default_branch=repo.default_branch,
            base_oid=head or "",
            base_tree=base.tree if base else "",
            config_text=base.files.get(CONFIG_PATH) if base else None,
            bot_branch=branch,
            pulls=pulls,
            issue_comments=self._bot_comments(repo, issue_number) if issue_number else (),
            commenter_permission=repo.permissions.get(commenter) if commenter else None,
            org_config_text=self.read_org_config(owner),
        )

    def _bot_comments(self, repo: FakeRepo, number: int) -> tuple[Comment, ...]:
        return tuple(Comment(c.id, c.body, c.node_id) for c in repo.comments if c.issue == number and c.author == BOT)

    def has_seen(self, full_name: str) -> bool:
        """True once a tree of the repository was read."""
        return full_name in self.hub.seen

    def read_tree(self, full_name: str, tree_sha: str) -> dict[str, TreeFile]:
        """Every file of a tree."""
        self.hub.seen.add(full_name)
        commit = next((c for c in self.hub.commits.values() if c.tree == tree_sha), None)
        if commit is None:
            raise NotFound(404, f"tree {tree_sha} not found")
        return {p: TreeFile(p, "100644", _sha("blob", text), len(text)) for p, text in commit.files.items()}

    def read_tree_at(self, full_name: str, ref: str) -> tuple[str, dict[str, TreeFile]]:
        """The tree of a branch."""
        sha = self.hub.repo(full_name).refs.get(ref)
        if sha is None:
            raise NotFound(404, f"no branch {ref}")
        tree = self.hub.commits[sha].tree
        return tree, self.read_tree(full_name, tree)

    def read_blobs(self, full_name: str, files: Sequence[TreeFile]) -> dict[str, str]:
        """Text of the given files."""
        texts = {c.files[p] for c in self.hub.commits.values() for p in c.files}
        by_sha = {_sha("blob", t): t for t in texts}
        return {f.path: by_sha[f.sha] for f in files if f.sha in by_sha}

    def read_org_config(self, owner: str) -> str | None:
        """The owner's `.github` repository's config file, if any."""
        org = self.hub.repos.get(f"{owner}/{ORG_CONFIG_REPO}".lower())
        head = org.refs.get(org.default_branch) if org else None
        return self.hub.commits[head].files.get(ORG_CONFIG_PATH) if head else None

    def permission(self, full_name: str, user: str) -> str:
        """The user's role, or none."""
        return self.hub.repo(full_name).permissions.get(user, "none")

    def find_issue(self, full_name: str, title: str, marker: str) -> Issue | None:
        """The bot's open issue with this title and marker."""
        repo = self.hub.repo(full_name)
        found = next((i for i in repo.issues if i.open and i.title == title and marker in i.body), None)
        return Issue(found.number, found.body, f"{repo.url}/issues/{found.number}") if found else None

    # -- writing ---------------------------------------------------------------------------------------

    def _write(self, *what: object) -> None:
        self.hub.writes.append(tuple(str(w) for w in what))

    def react(self, full_name: str, comment_id: int, content: str = "eyes") -> None:
        """React to a comment."""
        self._write("react", full_name, comment_id, content)
        self.hub.comment(comment_id).reactions.append(content)

    def upsert_comment(
        self, full_name: str, issue_number: int, key: str, body: str, existing: Iterable[Comment]
    ) -> int:
        """Create the comment carrying ``key``, or edit the bot's earlier one."""
        text = f"{comment_marker(key)}\n{body}"
        mine = next((c for c in existing if comment_marker(key) in c.body), None)
        if mine is not None:
            if mine.body != text:
                self._write("edit_comment", full_name, mine.id)
                self.hub.comment(mine.id).body = text
            return mine.id
        self._write("comment", full_name, issue_number)
        return self.hub.add_comment(full_name, issue_number, text, BOT).id

    def react_and_reply(
        self, issue_node_id: str, comment_node_id: str | None, key: str, body: str, existing: Iterable[Comment]
    ) -> None:
        """The reply and the 👀 reaction, as one write."""
        full_name, _, number = issue_node_id.removeprefix("I_").rpartition("#")
        text = f"{comment_marker(key)}\n{body}"
        mine = next((c for c in existing if comment_marker(key) in c.body), None)
        self._write("react_and_reply", full_name, number)
        if comment_node_id:
            self.hub.comment(int(comment_node_id.removeprefix("IC_"))).reactions.append("eyes")
        if mine is None:
            self.hub.add_comment(full_name, int(number), text, BOT)
        else:
            self.hub.comment(mine.id).body = text

    def commit(self, full_name: str, base_oid: str, base_tree: str, files: Sequence[FileWrite], message: str) -> str:
        """A bot commit of ``files`` on top of ``base_oid``."""
        self._write("commit", full_name, *(f.path for f in files))
        base = self.hub.commits[base_oid]
        return self.hub.new_commit(base_oid, {**base.files, **{f.path: f.content for f in files}}, BOT, message)

    def create_branch(self, full_name: str, sha: str) -> None:
        """Create the bot branch."""
        self._write("create_branch", full_name)
        repo = self.hub.repo(full_name)
        if BOT_BRANCH in repo.refs:
            raise LostRace(422, "Reference already exists")
        repo.refs[BOT_BRANCH] = sha

    def move_branch(self, full_name: str, sha: str) -> None:
        """Point the bot branch at ``sha`` (forced)."""
        self._write("move_branch", full_name)
        self.hub.repo(full_name).refs[BOT_BRANCH] = sha
        self.hub.follow(full_name)

    def delete_branch(self, full_name: str) -> None:
        """Delete the bot branch."""
        self._write("delete_branch", full_name)
        self.hub.repo(full_name).refs.pop(BOT_BRANCH, None)

    def create_pull(self, full_name: str, base: str, title: str, body: str, draft: bool = False) -> tuple[int, str]:
        """Open the bot pull request."""
        self._write("create_pull", full_name)
        repo = self.hub.repo(full_name)
        if any(p.state == "OPEN" for p in repo.pulls):
            raise LostRace(422, "A pull request already exists")
        head = repo.refs[BOT_BRANCH]
        number = self.hub.next_number()
        repo.pulls.append(
            FakePull(number, base, title, body, head, draft, commit_count=self.hub.ahead(head, repo.refs[base]))
        )
        return number, f"{repo.url}/pull/{number}"

    def update_pull(self, full_name: str, number: int, title: str, body: str) -> None:
        """Refresh the pull request's title and body."""
        self._write("update_pull", full_name, number)
        pull = self.hub.pull(full_name, number)
        pull.title, pull.body = title, body

    def add_labels(self, full_name: str, number: int, labels: Sequence[str]) -> None:
        """Add labels."""
        self._write("add_labels", full_name, number)
        self.hub.pull(full_name, number).labels.extend(labels)

    def add_assignees(self, full_name: str, number: int, assignees: Sequence[str]) -> None:
        """Add assignees."""
        self._write("add_assignees", full_name, number)
        self.hub.pull(full_name, number).assignees.extend(assignees)

    def request_reviewers(
        self, full_name: str, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]
    ) -> None:
        """Ask for reviews."""
        self._write("request_reviewers", full_name, number)
        self.hub.pull(full_name, number).reviewers.extend([*reviewers, *team_reviewers])

    def create_issue(self, full_name: str, title: str, body: str) -> Issue:
        """Open an issue."""
        self._write("create_issue", full_name)
        repo = self.hub.repo(full_name)
        issue = FakeIssue(self.hub.next_number(), title, body)
        repo.issues.append(issue)
        return Issue(issue.number, body, f"{repo.url}/issues/{issue.number}")

    def update_issue(self, full_name: str, number: int, *, body: str | None = None, close: bool = False) -> None:
        """Edit or close an issue."""
        self._write("update_issue", full_name, number)
        issue = next(i for i in self.hub.repo(full_name).issues if i.number == number)
        if body is not None:
            issue.body = body
        if close:
            issue.open = False


class FakeGitHub:
    """The repositories, commits and counters every `FakeGateway` of a test shares; also the gateway factory."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.commits: dict[str, FakeCommit] = {}
        self.writes: list[tuple[str, ...]] = []  # (what, repository, ...) in the order the jobs wrote
        self.reserved: list[int] = []  # what each `paced` block reserved
        self.seen: set[str] = set()
        self._numbers = itertools.count(1)
        self._comment_ids = itertools.count(1000)

    def __call__(self, installation_id: int, *, interactive: bool = False) -> FakeGateway:
        """One job's gateway (the `GatewayFactory` Protocol)."""
        return FakeGateway(self, installation_id, interactive)

    # -- what people do --------------------------------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        files: Mapping[str, str] | None = None,
        *,
        default_branch: str = "main",
        archived: bool = False,
        fork: bool = False,
        permissions: Mapping[str, str] | None = None,
    ) -> FakeRepo:
        """A repository with one commit of ``files`` on its default branch (None: an empty repository)."""
        repo = FakeRepo(full_name, default_branch, archived, fork, permissions=dict(permissions or {}))
        self.repos[full_name.lower()] = repo
        if files is not None:
            repo.refs[default_branch] = self.new_commit(None, dict(files), "octocat", "initial")
        return repo

    def push(self, full_name: str, branch: str, files: Mapping[str, str], author: str = "octocat") -> str:
        """A person's commit changing ``files`` on ``branch``; returns its sha."""
        repo = self.repo(full_name)
        parent = repo.refs[branch]
        sha = self.new_commit(parent, {**self.commits[parent].files, **files}, author, "a change")
        repo.refs[branch] = sha
        self.follow(full_name)
        return sha

    def merge_pull(self, full_name: str, number: int) -> None:
        """Merge the pull request (a merge commit on its base)."""
        repo, pull = self.repo(full_name), self.pull(full_name, number)
        base = repo.refs[pull.base]
        files = {**self.commits[base].files, **self.commits[pull.head_oid].files}
        repo.refs[pull.base] = self.new_commit(base, files, "octocat", f"Merge #{number}")
        pull.state = "MERGED"

    def close_pull(self, full_name: str, number: int) -> None:
        """Close the pull request without merging."""
        self.pull(full_name, number).state = "CLOSED"

    def add_comment(self, full_name: str, issue: int, body: str, author: str) -> IssueComment:
        """A comment on an issue or pull request."""
        comment = IssueComment(next(self._comment_ids), issue, body, author)
        self.repo(full_name).comments.append(comment)
        return comment

    # -- looking -------------------------------------------------------------------------------------

    def repo(self, full_name: str) -> FakeRepo:
        """The repository (404 when there is none)."""
        found = self.repos.get(full_name.lower())
        if found is None:
            raise NotFound(404, f"repository {full_name} not found")
        return found

    def pull(self, full_name: str, number: int) -> FakePull:
        """A pull request by number."""
        return next(p for p in self.repo(full_name).pulls if p.number == number)

    def comment(self, comment_id: int) -> IssueComment:
        """A comment by id, in any repository."""
        return next(c for r in self.repos.values() for c in r.comments if c.id == comment_id)

    def bot_comments(self, full_name: str, issue: int | None = None) -> list[IssueComment]:
        """The bot's comments (on one issue)."""
        return [c for c in self.repo(full_name).comments if c.author == BOT and issue in (None, c.issue)]

    def open_pulls(self, full_name: str) -> list[FakePull]:
        """The open pull requests."""
        return [p for p in self.repo(full_name).pulls if p.state == "OPEN"]

    def file(self, full_name: str, branch: str, path: str) -> str | None:
        """A file's text on a branch."""
        return self.commits[self.repo(full_name).refs[branch]].files.get(path)

    def ancestors(self, sha: str) -> set[str]:
        """The commit and every commit before it."""
        found: set[str] = set()
        at: str | None = sha
        while at is not None and at not in found:
            found.add(at)
            at = self.commits[at].parent
        return found

    def ahead(self, head: str, base: str) -> int:
        """How many commits ``head`` has that ``base`` has not."""
        return len(self.ancestors(head) - self.ancestors(base))

    def writes_to(self, full_name: str) -> list[str]:
        """The kinds of the writes made to one repository, in order."""
        return [w[0] for w in self.writes if w[1] == full_name]

    # -- bookkeeping ---------------------------------------------------------------------------------

    def follow(self, full_name: str) -> None:
        """An open pull request follows its branch: its head and commit count."""
        repo = self.repo(full_name)
        head = repo.refs.get(BOT_BRANCH)
        for pull in repo.pulls:
            if pull.state == "OPEN" and head is not None:
                pull.head_oid, pull.commit_count = head, self.ahead(head, repo.refs[pull.base])

    def new_commit(self, parent: str | None, files: dict[str, str], author: str, message: str) -> str:
        """Store a commit; returns its sha."""
        sha = _sha("commit", parent, author, message, len(self.commits), *sorted(files.items()))
        self.commits[sha] = FakeCommit(sha, parent, files, author, message)
        return sha

    def next_number(self) -> int:
        """The next issue or pull request number (shared, as on GitHub)."""
        return next(self._numbers)


if TYPE_CHECKING:  # mypy checks that the fake implements the seam
    _GATEWAY: type[Gateway] = FakeGateway
    _FACTORY: type[GatewayFactory] = FakeGitHub
