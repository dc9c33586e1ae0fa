"""`GitHubGateway`: the `Gateway` over GitHub's REST (through PyGithub) and GraphQL APIs, and the `GatewayFactory` that
hands one to each job: auth, cheap snapshot reads, publishing, comments."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from github import Auth, Github, GithubException
from urllib3.util.retry import Retry

from bot.github.documents import BLOB_SLOTS, blob_slots, document
from bot.github.gateway import (
    BranchHead,
    Comment,
    FileWrite,
    Gateway,
    GitHubError,
    Issue,
    LostRace,
    NotFound,
    PullRequest,
    RepoRef,
    RepoState,
    RetryLater,
    TreeFile,
    WritePacer,
)
from bot.github.gateway import GatewayFactory as GatewayFactoryProtocol
from bot.github.object_cache import GitObjectCache
from bot.identity import (
    BOT_BRANCH,
    BOT_REF,
    COMMIT_TRAILER,
    CONFIG_PATH,
    ORG_CONFIG_PATH,
    ORG_CONFIG_REPO,
    comment_marker,
)
from bot.settings import Settings

_BOT_EMAIL = re.compile(r"^\d+\+[A-Za-z0-9-]+\[bot\]@users\.noreply\.github\.com$")
_WEB_FLOW = {"noreply@github.com"}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_BASE_ROLES = frozenset({"admin", "maintain", "write", "triage", "read", "none"})
MAX_BLOB_BYTES = 1024 * 1024
MAX_GATEWAYS = 64  # installation clients kept (each holds a token and a connection pool); the idlest go first
_GRAPHQL_STATUS = (("RATE_LIMITED", 429), ("NOT_FOUND", 404), ("FORBIDDEN", 403))
_TREE_WALK_LIMIT = 300


def is_bot_commit(message: str, author_email: str | None, committer_email: str | None) -> bool:
    """True for a commit the bot made through the API (its noreply author, GitHub or itself as committer)."""
    if COMMIT_TRAILER not in message or not author_email or not _BOT_EMAIL.match(author_email):
        return False
    return committer_email in _WEB_FLOW or committer_email == author_email


# An error on one of these answer paths leaves that field null and the rest of the answer stands: the commenter's
# role (REST answers instead), the reaction, and the organization's `.github` repository (missing: no defaults).
_OPTIONAL_FIELDS = (("repository", "commenter"), ("reaction",), ("org",))


def _state_variables(owner: str, name: str) -> dict[str, Any]:
    """The variables every EcrCacheState request carries (the blob-only read too: they are declared non-null)."""
    return {
        "owner": owner,
        "name": name,
        "head": BOT_BRANCH,
        "qualified": BOT_REF,
        "configPath": CONFIG_PATH,
        "orgRepo": ORG_CONFIG_REPO,
        "orgConfigPath": ORG_CONFIG_PATH,
    }


def _split(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"not an owner/name repository: {full_name!r}")
    return owner, name


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _comments(conn: Any) -> tuple[Comment, ...]:
    nodes = _get(conn, "nodes") or []
    return tuple(
        Comment(int(n["databaseId"]), str(n.get("body") or ""), str(n.get("id") or ""))
        for n in nodes
        if isinstance(n, Mapping) and n.get("viewerDidAuthor") and isinstance(n.get("databaseId"), int)
    )


def _spread(delay: float) -> float:
    # Jobs deferred by one full window would all wake at the same instant and mostly defer again.
    return delay + random.uniform(0, min(30.0, 0.1 * delay + 1.0))


def _header_number(headers: Mapping[str, Any] | None, name: str) -> float | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            return number if math.isfinite(number) else None
    return None


def _rate_limit(headers: Mapping[str, Any] | None) -> tuple[int | None, float | None]:
    """`x-ratelimit-remaining` (an int) and `x-ratelimit-reset` (epoch seconds) of an answer, when present."""
    remaining = _header_number(headers, "x-ratelimit-remaining")
    return (None if remaining is None else int(remaining)), _header_number(headers, "x-ratelimit-reset")


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, Mapping):
        parts = [str(data.get("message") or "")]
        for err in data.get("errors") or []:
            parts.append(str(err.get("message") if isinstance(err, Mapping) else err))
        return "; ".join(p for p in parts if p)
    return str(data or exc)


@dataclass
class ServerFacts:
    """What the gateways of one installation learned about its GitHub server (shared, so each learns it once)."""

    ask_commenter: bool = True  # False once GitHub (an older Enterprise Server) rejects `collaborators(login:)`


class GitHubGateway:
    """GitHub operations of one installation for one job; reuses one authenticated client and caches objects by sha.

    ``pacer`` (None: no pacing, e.g. the CLI) reserves content-creating requests before they are sent and learns the
    request budget from the answers' headers; ``interactive``: a person waits for this job (a push, a command), so
    its writes may spend the request budget's floor, which background work (an installation's fan-out) leaves
    alone."""

    def __init__(
        self,
        client: Github,
        installation_id: int,
        cache_size: int = 128,
        cache: GitObjectCache | None = None,
        *,
        pacer: WritePacer | None = None,
        interactive: bool = False,
        facts: ServerFacts | None = None,
    ) -> None:
        self._client = client
        self._requester = client.requester
        self._last_headers: dict[str, Any] = {}  # of the last answer: GraphQL errors come with status 200
        self.installation_id = installation_id
        # Shared with every gateway of the factory (one process-wide budget); a gateway on its own keeps its own.
        self._cache = cache if cache is not None else GitObjectCache(max_trees=cache_size, max_blobs=4 * cache_size)
        self._facts = facts if facts is not None else ServerFacts()
        self.pacer = pacer
        self.interactive = interactive
        self._credit = threading.local()  # writes this thread reserved with `paced` and has not sent yet
        self.rate_limit_remaining: int | None = None  # `x-ratelimit-remaining` of the last answer seen

    # -- pacing (GitHub's secondary limits: about 80 content-creating requests a minute, 500 an hour) -------

    @contextmanager
    def paced(self, writes: int) -> Iterator[None]:
        """Reserve ``writes`` content-creating requests at once with the pacer (`RetryLater` when the window is
        full, before anything is sent); writes in the block spend them, any beyond reserve one each."""
        if self.pacer is not None and writes > 0:
            self._require(self.pacer, writes)
        self._credit.left = writes if self.pacer is not None else 0
        try:
            yield
        finally:
            self._credit.left = 0  # an unspent reservation is never carried into a later window

    def _reserve_write(self) -> None:
        if self.pacer is None:
            return
        left = getattr(self._credit, "left", 0)
        if left > 0:
            self._credit.left = left - 1
            return
        self._require(self.pacer, 1)

    def _require(self, pacer: WritePacer, cost: int) -> None:
        """Reserve `cost` writes or raise `RetryLater` (not counted as an attempt) with the wait: interactive work
        goes ahead while any request budget remains, background work waits while it is under the floor."""
        budget = pacer.budget_wait(self.installation_id, self.interactive)
        if budget > 0:
            raise RetryLater(_spread(budget), "installation request budget low")
        delay = pacer.reserve(self.installation_id, cost)
        if delay > 0:
            raise RetryLater(_spread(delay), "content-creation pacing")

    def _observe(self, headers: Mapping[str, Any] | None) -> None:
        remaining, reset = _rate_limit(headers)
        if remaining is not None:
            self.rate_limit_remaining = remaining
        # Only a budget near the floor can make work wait, so a healthy one costs no shared write; REST and
        # GraphQL budgets both land here, and the lower one (the one near the floor) is the one that binds.
        pacer = self.pacer
        if pacer is None or remaining is None or reset is None or remaining >= 2 * pacer.limits.request_floor:
            return
        pacer.observe(self.installation_id, remaining, reset)

    # -- transport -------------------------------------------------------------------------------------

    def _call(
        self,
        verb: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any | None = None,
        *,
        write: bool | None = None,
    ) -> Any:
        """One request; a write (by default any verb but GET) is reserved with the pacer before it is sent."""
        if (verb != "GET") if write is None else write:
            self._reserve_write()
        try:
            headers, data = self._requester.requestJsonAndCheck(verb, path, parameters=params, input=body)
        except GithubException as exc:
            self._observe(exc.headers)
            message = _message(exc)
            if exc.status == 422 and "already exists" in message.lower():
                raise LostRace(422, message, exc.headers, exc.data) from exc
            if exc.status == 404:
                raise NotFound(404, message, exc.headers, exc.data) from exc
            raise GitHubError(exc.status, message, exc.headers, exc.data) from exc
        self._observe(headers)
        self._last_headers = dict(headers or {})
        return data

    def _graphql(self, query: str, variables: dict[str, Any], *, mutation: bool = False) -> Mapping[str, Any]:
        data = self._call(
            "POST", self._requester.graphql_url, body={"query": query, "variables": variables}, write=mutation
        )
        if not isinstance(data, Mapping):
            raise GitHubError(0, "GraphQL answer is not an object")
        # An error on an optional field (the commenter's role, the reaction) leaves that field null; the rest
        # of the answer stands.
        errors = [
            e
            for e in data.get("errors") or []
            if not any(tuple(_get(e, "path") or ())[: len(f)] == f for f in _OPTIONAL_FIELDS)
        ]
        if errors:
            messages = "; ".join(str(_get(e, "message")) for e in errors)
            kinds = {_get(e, "type") for e in errors}
            # GraphQL answers 200 with typed errors: map them onto the HTTP statuses the retry rules know.
            # A query the schema rejects carries `extensions.code` (e.g. argumentNotAccepted): permanent, not a 502.
            invalid = any(_get(e, "extensions", "code") for e in errors)
            status = next(
                (code for kind, code in _GRAPHQL_STATUS if kind in kinds), 400 if any(kinds) or invalid else 502
            )
            if status not in (403, 429) and "rate limit" in messages.lower():
                status = 403  # "API rate limit exceeded" without a type: the rate-limit rules decide
            # The answer's rate-limit headers tell the retry rules when the limit resets.
            raise GitHubError(
                status,
                f"GraphQL: {messages}",
                headers=self._last_headers,
                data={**data, "message": f"GraphQL: {messages}"},
            )
        return data.get("data") or {}

    # -- reading ---------------------------------------------------------------------------------------

    def list_installation_repos(self) -> list[RepoRef]:
        """Every repository the installation can see, paged 100 at a time."""
        repos: list[RepoRef] = []
        page = 1
        while True:
            data = self._call("GET", "/installation/repositories", {"per_page": 100, "page": page})
            batch = _get(data, "repositories") or []
            for raw in batch:
                if not isinstance(raw, Mapping) or not isinstance(raw.get("full_name"), str):
                    continue
                repos.append(
                    RepoRef(
                        full_name=raw["full_name"],
                        archived=bool(raw.get("archived")),
                        fork=bool(raw.get("fork")),
                        empty=raw.get("size") == 0,
                        default_branch=str(raw.get("default_branch") or "main"),
                    )
                )
            total = _get(data, "total_count")
            if len(batch) < 100 or (isinstance(total, int) and len(repos) >= total):
                return repos
            page += 1

    def read_state(
        self,
        full_name: str,
        issue_number: int | None = None,
        prefetch: Sequence[TreeFile] = (),
        commenter: str | None = None,
    ) -> RepoState:
        """Default branch head, repo config, bot branch, bot PRs, an issue's bot comments, uncached blobs, and
        the role GraphQL shows for ``commenter``."""
        owner, name = _split(full_name)
        shas = self._missing_blobs(prefetch)[:BLOB_SLOTS]
        commenter = commenter if self._facts.ask_commenter else None
        variables = {**_state_variables(owner, name), **blob_slots(shas)}
        if issue_number:
            variables.update(withIssue=True, issue=issue_number)
        if commenter:
            variables.update(withCommenter=True, login=commenter)
        try:
            answer = self._graphql(document("state"), variables)
        except GitHubError as exc:
            if not commenter or exc.status != 400 or "'collaborators'" not in exc.message:
                raise
            self._facts.ask_commenter = False  # a schema without the argument: the REST check answers instead
            return self.read_state(full_name, issue_number, prefetch)
        repo = _get(answer, "repository")
        if not isinstance(repo, Mapping):
            raise NotFound(404, f"repository {full_name} is not visible to the installation")
        self._store_blobs(full_name, shas, repo)
        target = _get(repo, "defaultBranchRef", "target") or {}
        bot_target = _get(repo, "botRef", "target")
        bot_branch = None
        if isinstance(bot_target, Mapping) and isinstance(bot_target.get("oid"), str):
            bot_branch = BranchHead(
                bot_target["oid"],
                is_bot_commit(
                    str(bot_target.get("message") or ""),
                    _get(bot_target, "author", "email"),
                    _get(bot_target, "committer", "email"),
                ),
            )
        pulls = tuple(
            PullRequest(
                number=int(n["number"]),
                state=str(n.get("state")),
                merged=bool(n.get("merged")),
                body=str(n.get("body") or ""),
                url=str(n.get("url") or ""),
                head_oid=str(n.get("headRefOid") or ""),
                commit_count=int(_get(n, "commits", "totalCount") or 0),
                comments=_comments(n.get("comments")),
            )
            for n in (_get(repo, "pullRequests", "nodes") or [])
            if isinstance(n, Mapping)
            and isinstance(n.get("number"), int)
            and _get(n, "headRepository", "nameWithOwner") == repo.get("nameWithOwner")
        )
        issue = repo.get("issueOrPullRequest")
        return RepoState(
            full_name=full_name,
            archived=bool(repo.get("isArchived")),
            fork=bool(repo.get("isFork")),
            empty=bool(repo.get("isEmpty")) or not target,
            default_branch=str(_get(repo, "defaultBranchRef", "name") or ""),
            base_oid=str(target.get("oid") or ""),
            base_tree=str(_get(target, "tree", "oid") or ""),
            config_text=_get(target, "config", "object", "text"),
            bot_branch=bot_branch,
            pulls=pulls,
            issue_comments=_comments(_get(issue, "comments")),
            commenter_permission=_commenter_role(_get(repo, "commenter", "edges"), commenter),
            org_config_text=_get(answer, "org", "defaultBranchRef", "target", "config", "object", "text"),
        )

    def has_seen(self, full_name: str) -> bool:
        """True when this process already read a tree of the repository (its objects are cached by sha)."""
        return self._cache.has_seen(self.installation_id, full_name)

    def read_tree(self, full_name: str, tree_sha: str) -> dict[str, TreeFile]:
        """Every file of a tree: one recursive read, walking subtrees only when GitHub truncates it."""
        cached = self._cache.tree(self.installation_id, tree_sha)
        if cached is not None:
            return cached
        return self.read_tree_at(full_name, tree_sha)[1]

    def read_tree_at(self, full_name: str, ref: str) -> tuple[str, dict[str, TreeFile]]:
        """The tree of a branch (or tree sha) and its sha, read without knowing the commit first."""
        files: dict[str, TreeFile] = {}
        sha = self._walk(full_name, ref, "", files, [_TREE_WALK_LIMIT], recursive=True)
        self._cache.saw(self.installation_id, full_name)
        self._cache.put_tree(self.installation_id, sha, files)
        return sha, files

    def _walk(
        self, full_name: str, sha: str, prefix: str, files: dict[str, TreeFile], budget: list[int], recursive: bool
    ) -> str:
        if budget[0] <= 0:
            raise GitHubError(0, f"tree of {full_name} is too large to list")
        budget[0] -= 1
        params = {"recursive": "1"} if recursive else None
        data = self._call("GET", f"/repos/{full_name}/git/trees/{quote(sha, safe='/')}", params)
        tree_sha = _get(data, "sha")
        if not isinstance(tree_sha, str) or not _SHA.match(tree_sha):
            raise GitHubError(0, f"tree listing of {full_name} has no sha")
        if _get(data, "truncated") and recursive:
            # GitHub cut the recursive listing (100,000 entries or 7 MB): list this level, then each subtree
            # on its own, as https://docs.github.com/rest/git/trees#get-a-tree advises.
            return self._walk(full_name, tree_sha, prefix, files, budget, recursive=False)
        subtrees = []
        for entry in _get(data, "tree") or []:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str):
                continue
            path = prefix + entry["path"]
            if entry.get("type") == "blob":
                files[path] = TreeFile(path, str(entry.get("mode")), str(entry.get("sha")), int(entry.get("size") or 0))
            elif entry.get("type") == "tree" and not recursive:
                subtrees.append((str(entry.get("sha")), path + "/"))
        for sub_sha, sub_prefix in subtrees:
            self._walk(full_name, sub_sha, sub_prefix, files, budget, recursive=True)
        return tree_sha

    def _missing_blobs(self, files: Sequence[TreeFile]) -> list[str]:
        return self._cache.missing(
            self.installation_id,
            (f.sha for f in files if f.mode != "120000" and f.size <= MAX_BLOB_BYTES and _SHA.match(f.sha)),
        )

    def _store_blobs(self, full_name: str, shas: Sequence[str], repo: Mapping[str, Any]) -> None:
        for i, sha in enumerate(shas):
            blob = repo.get(f"b{i}")
            text: str | None = None
            if isinstance(blob, Mapping) and not blob.get("isBinary"):
                text = blob.get("text") if isinstance(blob.get("text"), str) else None
                if blob.get("isTruncated"):
                    text = self._rest_blob(full_name, sha)
            self._cache.put_blob(self.installation_id, sha, text)

    def read_blobs(self, full_name: str, files: Sequence[TreeFile]) -> dict[str, str]:
        """Text of the given files, by blob sha, in one GraphQL query per 100 (binary or huge files left out)."""
        missing = self._missing_blobs(files)
        owner, name = _split(full_name)
        for start in range(0, len(missing), BLOB_SLOTS):
            batch = missing[start : start + BLOB_SLOTS]
            variables = {**_state_variables(owner, name), "withState": False, **blob_slots(batch)}
            answer = self._graphql(document("state"), variables)
            repo = _get(answer, "repository")
            self._store_blobs(full_name, batch, repo if isinstance(repo, Mapping) else {})
        texts = self._cache.blobs(self.installation_id, [f.sha for f in files if f.mode != "120000"])
        return {f.path: text for f in files if f.mode != "120000" and (text := texts.get(f.sha)) is not None}

    def _rest_blob(self, full_name: str, sha: str) -> str | None:
        data = self._call("GET", f"/repos/{full_name}/git/blobs/{sha}")
        try:
            return base64.b64decode(str(_get(data, "content") or "")).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None

    def read_org_config(self, owner: str) -> str | None:
        """Text of the organization-wide config (``.github/ecr-cache.yml`` in the owner's ``.github``
        repository, GitHub's home for org-wide files); None when the repository or file is missing or unreadable."""
        path = f"/repos/{quote(owner, safe='')}/{ORG_CONFIG_REPO}/contents/{ORG_CONFIG_PATH}"
        try:
            data = self._call("GET", path)
        except NotFound:
            return None
        if not isinstance(data, Mapping) or data.get("encoding") != "base64":
            return None  # a folder, or a file over the contents API's 1 MB inline limit: not a config
        try:
            return base64.b64decode(str(data.get("content") or "")).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None

    def permission(self, full_name: str, user: str) -> str:
        """The user's permission on the repository (admin, maintain, write, triage, read or none)."""
        try:
            data = self._call("GET", f"/repos/{full_name}/collaborators/{user}/permission")
        except NotFound:
            return "none"
        role = _get(data, "role_name") or _get(data, "user", "role_name")
        if role in _BASE_ROLES:
            return str(role)
        # A custom repository role: its base permission (admin, write, read or none) decides.
        return str(_get(data, "permission") or "none")

    # -- writing ---------------------------------------------------------------------------------------

    def react(self, full_name: str, comment_id: int, content: str = "eyes") -> None:
        """Acknowledge a command comment with a reaction."""
        self._call("POST", f"/repos/{full_name}/issues/comments/{comment_id}/reactions", body={"content": content})

    def upsert_comment(
        self, full_name: str, issue_number: int, key: str, body: str, existing: Iterable[Comment]
    ) -> int:
        """Create the comment carrying hidden ``key``, or edit the bot's earlier one; never duplicate it."""
        marker = comment_marker(key)
        text = f"{marker}\n{body}"
        for comment in existing:
            if marker in comment.body:
                if comment.body != text:
                    self._call("PATCH", f"/repos/{full_name}/issues/comments/{comment.id}", body={"body": text})
                return comment.id
        data = self._call("POST", f"/repos/{full_name}/issues/{issue_number}/comments", body={"body": text})
        return int(_get(data, "id") or 0)

    def react_and_reply(
        self, issue_node_id: str, comment_node_id: str | None, key: str, body: str, existing: Iterable[Comment]
    ) -> None:
        """`upsert_comment` and (with ``comment_node_id``) the 👀 reaction on the command, in one request."""
        marker = comment_marker(key)
        text = f"{marker}\n{body}"
        mine = next((c for c in existing if marker in c.body), None)
        reply = "" if mine is not None and mine.body == text else "update" if mine is not None else "add"
        if not reply and not comment_node_id:
            return
        variables: dict[str, Any] = {}
        if comment_node_id:
            variables.update(react=True, comment=comment_node_id)
        if reply:
            variables.update({reply: True}, body=text, target=mine.node_id if mine is not None else issue_node_id)
        self._graphql(document("reply"), variables, mutation=True)

    def commit(self, full_name: str, base_oid: str, base_tree: str, files: Sequence[FileWrite], message: str) -> str:
        """Create one commit of ``files`` on top of ``base_oid``; GitHub signs it (no author or committer)."""
        # Without author/committer, a commit made with an installation token is signed by GitHub and shows as
        # Verified: https://docs.github.com/en/authentication/managing-commit-signature-verification/
        # about-commit-signature-verification#signature-verification-for-bots
        tree = self._call(
            "POST",
            f"/repos/{full_name}/git/trees",
            body={
                "base_tree": base_tree,
                "tree": [{"path": f.path, "mode": f.mode, "type": "blob", "content": f.content} for f in files],
            },
        )
        self._remember_tree(base_tree, _get(tree, "sha"), files)
        commit = self._call(
            "POST",
            f"/repos/{full_name}/git/commits",
            body={
                "message": message,
                "tree": _get(tree, "sha"),
                "parents": [base_oid],
            },
        )
        sha = _get(commit, "sha")
        if not isinstance(sha, str):
            raise GitHubError(0, "create-commit answered without a sha")
        return sha

    def _remember_tree(self, base_tree: str, new_tree: Any, files: Sequence[FileWrite]) -> None:
        """Cache the tree and blobs just written (Git ids are content hashes), so reading them back is free."""
        base = self._cache.tree(self.installation_id, base_tree)
        if base is None or not isinstance(new_tree, str):
            return
        listing = dict(base)
        for f in files:
            try:
                data = f.content.encode("utf-8")
            except UnicodeEncodeError:
                return
            sha = git_blob_sha(data)
            listing[f.path] = TreeFile(f.path, f.mode, sha, len(data))
            self._cache.put_blob(self.installation_id, sha, f.content)
        self._cache.put_tree(self.installation_id, new_tree, listing)

    def create_branch(self, full_name: str, sha: str) -> None:
        """Create the bot branch at ``sha`` (LostRace when it already exists)."""
        self._call("POST", f"/repos/{full_name}/git/refs", body={"ref": BOT_REF, "sha": sha})

    def move_branch(self, full_name: str, sha: str) -> None:
        """Point the bot branch at ``sha`` (only called when the bot alone wrote the branch)."""
        self._call("PATCH", f"/repos/{full_name}/git/refs/heads/{BOT_BRANCH}", body={"sha": sha, "force": True})

    def delete_branch(self, full_name: str) -> None:
        """Delete the bot branch (already gone is fine)."""
        try:
            self._call("DELETE", f"/repos/{full_name}/git/refs/heads/{BOT_BRANCH}")
        except NotFound:
            return
        except GitHubError as exc:
            if exc.status != 422:  # 422 "Reference does not exist"
                raise

    def create_pull(self, full_name: str, base: str, title: str, body: str, draft: bool = False) -> tuple[int, str]:
        """Open the bot pull request (a draft when asked); LostRace when one already exists."""
        payload: dict[str, Any] = {
            "title": title,
            "head": BOT_BRANCH,
            "base": base,
            "body": body,
            "maintainer_can_modify": False,
        }
        if draft:
            payload["draft"] = True
        data = self._call("POST", f"/repos/{full_name}/pulls", body=payload)
        return int(_get(data, "number") or 0), str(_get(data, "html_url") or "")

    def add_labels(self, full_name: str, number: int, labels: Sequence[str]) -> None:
        """Add labels to an issue or pull request; the ones it already has stay."""
        # https://docs.github.com/rest/issues/labels#add-labels-to-an-issue
        self._call("POST", f"/repos/{full_name}/issues/{number}/labels", body={"labels": list(labels)})

    def add_assignees(self, full_name: str, number: int, assignees: Sequence[str]) -> None:
        """Add assignees to an issue or pull request; the ones it has stay."""
        # https://docs.github.com/rest/issues/assignees#add-assignees-to-an-issue
        self._call("POST", f"/repos/{full_name}/issues/{number}/assignees", body={"assignees": list(assignees)})

    def request_reviewers(
        self, full_name: str, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]
    ) -> None:
        """Ask users and teams to review a pull request (422 for the author or a non-collaborator)."""
        # https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request
        self._call(
            "POST",
            f"/repos/{full_name}/pulls/{number}/requested_reviewers",
            body={"reviewers": list(reviewers), "team_reviewers": list(team_reviewers)},
        )

    def find_issue(self, full_name: str, title: str, marker: str) -> Issue | None:
        """The open issue titled ``title`` whose body carries ``marker`` (the bot's own), among the 100 most
        recently created open issues and pull requests."""
        data = self._call(
            "GET",
            f"/repos/{full_name}/issues",
            {"state": "open", "sort": "created", "direction": "desc", "per_page": 100},
        )
        for item in data if isinstance(data, list) else []:
            if (
                isinstance(item, Mapping)
                and item.get("title") == title
                and "pull_request" not in item
                and marker in str(item.get("body") or "")
                and isinstance(item.get("number"), int)
            ):
                return Issue(int(item["number"]), str(item.get("body") or ""), str(item.get("html_url") or ""))
        return None

    def create_issue(self, full_name: str, title: str, body: str) -> Issue:
        """Open an issue."""
        data = self._call("POST", f"/repos/{full_name}/issues", body={"title": title, "body": body})
        return Issue(int(_get(data, "number") or 0), body, str(_get(data, "html_url") or ""))

    def update_issue(self, full_name: str, number: int, *, body: str | None = None, close: bool = False) -> None:
        """Edit an issue's body, or close it as completed."""
        payload: dict[str, Any] = {} if body is None else {"body": body}
        if close:
            payload.update(state="closed", state_reason="completed")
        self._call("PATCH", f"/repos/{full_name}/issues/{number}", body=payload)

    def update_pull(self, full_name: str, number: int, title: str, body: str) -> None:
        """Refresh the bot pull request's title and body in place."""
        self._call("PATCH", f"/repos/{full_name}/pulls/{number}", body={"title": title, "body": body})


def _commenter_role(edges: Any, login: str | None) -> str | None:
    """The role GraphQL shows for ``login`` (lower case), or None when it shows none."""
    for edge in edges if isinstance(edges, list) else []:
        if (
            isinstance(edge, Mapping)
            and login
            and str(_get(edge, "node", "login") or "").lower() == login.lower()
            and isinstance(edge.get("permission"), str)
        ):
            return edge["permission"].lower()
    return None


def git_blob_sha(data: bytes) -> str:
    """The id Git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _transient_retry() -> Retry:
    """Retry only reads on a gateway error, briefly; rate limits go back to the queue, which waits without
    holding a worker (PyGithub's default retry would sleep through `Retry-After` inside the request)."""
    return Retry(
        total=2,
        connect=2,
        read=0,
        backoff_factor=0.5,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class GatewayFactory:
    """Hands out the gateways of installations: one PyGithub client (one cached installation token, one connection
    pool) per installation, keeping the `max_gateways` most recently used ones, one Git object cache for them all,
    and the write pacer every gateway reserves its writes with (None: no pacing).

    Each call is one job's gateway: ``factory(installation_id, interactive=True)`` for work a person waits for (a
    push, a command), whose writes may spend the request budget's floor; the default is background work."""

    def __init__(
        self,
        settings: Settings,
        *,
        seconds_between_requests: float | None = 0.25,
        seconds_between_writes: float | None = 1.0,
        retry: Retry | int | None | Literal["default"] = "default",
        cache: GitObjectCache | None = None,
        max_gateways: int = MAX_GATEWAYS,
        pacer: WritePacer | None = None,
    ) -> None:
        missing = settings.missing_for_github()
        if missing:
            raise ValueError("cannot talk to GitHub, missing: " + ", ".join(missing))
        assert settings.app_id is not None and settings.private_key is not None
        app_id: int | str = int(settings.app_id) if settings.app_id.isdigit() else settings.app_id
        self._app_auth = Auth.AppAuth(app_id, settings.private_key)
        self._base_url = settings.github_api_url
        self._pacing = (seconds_between_requests, seconds_between_writes)
        self._retry = retry
        self.cache = cache if cache is not None else GitObjectCache()
        self.pacer = pacer
        self._max_gateways = max(1, max_gateways)
        self._clients: OrderedDict[int, tuple[Github, ServerFacts]] = OrderedDict()
        self._lock = threading.Lock()

    def gateways(self) -> int:
        """How many installation clients are kept."""
        with self._lock:
            return len(self._clients)

    def __call__(self, installation_id: int, *, interactive: bool = False) -> GitHubGateway:
        """One job's gateway of the installation (its client is reused while among the most recently used)."""
        with self._lock:
            kept = self._clients.get(installation_id)
            if kept is not None:
                self._clients.move_to_end(installation_id)
            else:
                retry = _transient_retry() if self._retry == "default" else self._retry
                client = Github(
                    auth=self._app_auth.get_installation_auth(installation_id),
                    base_url=self._base_url,
                    seconds_between_requests=self._pacing[0],
                    seconds_between_writes=self._pacing[1],
                    retry=retry,
                )
                kept = self._clients[installation_id] = (client, ServerFacts())
                while len(self._clients) > self._max_gateways:
                    # A job still running on an evicted client keeps using it; the next job gets a new one.
                    self._clients.popitem(last=False)
        client, facts = kept
        return GitHubGateway(
            client, installation_id, cache=self.cache, pacer=self.pacer, interactive=interactive, facts=facts
        )


if TYPE_CHECKING:  # the client implements the seam (mypy checks these two lines)
    _GATEWAY: type[Gateway] = GitHubGateway
    _FACTORY: type[GatewayFactoryProtocol] = GatewayFactory
