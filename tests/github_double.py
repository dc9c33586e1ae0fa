"""A stateful in-process double of the GitHub REST and GraphQL APIs the App uses (served through `responses`).

It keeps real state (Git objects, refs, pull requests, comments, reactions, permissions, installations), so
tests assert what GitHub would hold after a sequence of events, and it records every request for the
API-economy counts. Paths and bodies follow `../shared/corpus/github-api/pr-bot-operations.openapi.json`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import graphql as gql
import responses

from bot.core.model import FileEdit, Options, Plan, RepoSnapshot

BOT_SLUG = "ecr-cache-bot"
BOT_USER_ID = 41898282
BOT_LOGIN = f"{BOT_SLUG}[bot]"
BOT_EMAIL = f"{BOT_USER_ID}+{BOT_LOGIN}@users.noreply.github.com"
WEB_FLOW_EMAIL = "noreply@github.com"
_VALID_MODES = {"100644", "100755", "040000", "160000", "120000"}


@dataclass
class Recorded:
    """One request the double served."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    operation: str = ""
    status: int = 0
    blobs: int = 0

    mutation: bool = False

    @property
    def is_write(self) -> bool:
        """True for requests that change GitHub state (not reads, not GraphQL queries, not the token)."""
        if self.path == "/graphql":
            return self.mutation
        return self.method != "GET" and not self.path.endswith("/access_tokens")

    def __str__(self) -> str:
        return f"{self.method} {self.path}" + (f" {self.operation}" if self.operation else "")


@dataclass
class Pull:
    """A pull request."""

    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"
    merged: bool = False
    head_sha: str = ""
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)


@dataclass
class GhIssue:
    """An issue (not a pull request)."""

    number: int
    title: str
    body: str
    author: str
    state: str = "open"
    state_reason: str | None = None


@dataclass
class IssueComment:
    """An issue or pull-request comment."""

    id: int
    issue: int
    body: str
    author: str
    reactions: list[str] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        """The comment's GraphQL id."""
        return f"IC_{self.id}"


@dataclass
class Repo:
    """One repository's state."""

    full_name: str
    default_branch: str
    installation_id: int
    archived: bool = False
    fork: bool = False
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    pulls: list[Pull] = field(default_factory=list)
    comments: list[IssueComment] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> role name
    # Logins whose role comes from the organization (owners, base permission): REST reports it, GraphQL's
    # `collaborators` does not list them.
    org_grants: set[str] = field(default_factory=set)
    collaborators_forbidden: bool = False  # GraphQL `collaborators` answers FORBIDDEN (App lacks the permission)
    next_number: int = 1
    issues: list[GhIssue] = field(default_factory=list)
    teams: set[str] = field(default_factory=set)  # team slugs with access (review requests to others: 422)


class _Operation:
    """A GraphQL request as GitHub reads it: the document parsed, its variables with their defaults, and the fields
    its `@include`/`@skip` directives leave in (fragments expanded)."""

    def __init__(self, query: str, variables: Mapping[str, Any]) -> None:
        document = gql.parse(query)
        operations = [d for d in document.definitions if isinstance(d, gql.OperationDefinitionNode)]
        if len(operations) != 1:
            raise gql.GraphQLError(f"expected one operation, got {len(operations)}")
        self._op = operations[0]
        self.name = self._op.name.value if self._op.name else "?"
        self.kind = self._op.operation.value
        self._fragments = {d.name.value: d for d in document.definitions if isinstance(d, gql.FragmentDefinitionNode)}
        self.variables = dict(variables)
        for definition in self._op.variable_definitions:
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = gql.value_from_ast_untyped(definition.default_value)

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            value = gql.value_from_ast_untyped(condition, self.variables) if condition is not None else None
            if directive.name.value == "include" and value is not True:
                return False
            if directive.name.value == "skip" and value is True:
                return False
        return True

    def fields(self, parent: gql.FieldNode | None = None) -> dict[str, gql.FieldNode]:
        """The fields selected under ``parent`` (None: the operation's top level), by alias or name."""
        selection = self._op.selection_set if parent is None else parent.selection_set
        out: dict[str, gql.FieldNode] = {}
        pending = list(selection.selections) if selection is not None else []
        while pending:
            node = pending.pop(0)
            if not self._included(node):
                continue
            if isinstance(node, gql.FieldNode):
                out[(node.alias or node.name).value] = node
            elif isinstance(node, gql.InlineFragmentNode):
                pending[:0] = node.selection_set.selections
            elif isinstance(node, gql.FragmentSpreadNode):
                pending[:0] = self._fragments[node.name.value].selection_set.selections
        return out

    def field(self, alias: str) -> gql.FieldNode:
        """The top-level field ``alias``."""
        return self.fields()[alias]

    def arguments(self, node: gql.FieldNode) -> dict[str, Any]:
        """The field's arguments with the variables filled in."""
        return {a.name.value: gql.value_from_ast_untyped(a.value, self.variables) for a in node.arguments}


class _Error(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if errors:
            self.body["errors"] = errors


class GitHubDouble:
    """GitHub as the App sees it; call `activate()` inside a `responses` mock to serve it."""

    def __init__(self, base_url: str = "https://api.github.test", truncate_trees_over: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._prefix = parts.path.rstrip("/")
        graphql_prefix = self._prefix[:-3] if self._prefix.endswith("/v3") else self._prefix
        self.graphql_url = f"{parts.scheme}://{parts.netloc}{graphql_prefix}/graphql"
        self.truncate_trees_over = truncate_trees_over
        self.collaborators_without_login = False  # an older GitHub Enterprise Server schema
        self.response_headers: dict[str, str] = {}  # added to every answer (e.g. X-RateLimit-Remaining)
        self.objects: dict[str, dict[str, Any]] = {}
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, int] = {}
        self.requests: list[Recorded] = []
        self.history: list[Recorded] = []  # every request ever served (not cleared by reset_requests)
        self.fail_next: list[tuple[str, str, int, dict[str, Any]]] = []  # (method, path regex, status, body)
        self._ids = itertools.count(1000)
        self._commit_counter = itertools.count(1)
        self.apps: dict[int, dict[str, Any]] = {}  # App id -> the App (with its public key and webhook config)
        self.manifest_codes: dict[str, dict[str, Any]] = {}  # pending redirect code -> manifest and owner
        self.manifests: list[dict[str, Any]] = []  # every manifest posted to the "new App" page

    # -- Git objects -----------------------------------------------------------------------------------

    def _put(self, kind: str, payload: Any, raw: bytes | None = None) -> str:
        data = raw if raw is not None else json.dumps(payload, sort_keys=True).encode()
        sha = hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()
        self.objects[sha] = {"type": kind, "data": payload}
        return sha

    def blob(self, content: bytes | str) -> str:
        """Store a blob (sha computed as Git does)."""
        raw = content.encode() if isinstance(content, str) else content
        return self._put("blob", raw, raw)

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) for every file under a tree."""
        out: dict[str, tuple[str, str]] = {}
        for name, (mode, kind, sha) in self.objects[tree_sha]["data"].items():
            if kind == "tree":
                out.update(self.flatten(sha, f"{prefix}{name}/"))
            else:
                out[f"{prefix}{name}"] = (mode, sha)
        return out

    def build_tree(self, files: Mapping[str, tuple[str, str]]) -> str:
        """Store nested tree objects for a flat path map; return the root tree sha."""
        children: dict[str, dict[str, tuple[str, str]]] = {}
        entries: dict[str, tuple[str, str, str]] = {}
        for path, (mode, sha) in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                children.setdefault(head, {})[rest] = (mode, sha)
            else:
                entries[head] = (mode, "blob", sha)
        for name, sub in children.items():
            entries[name] = ("040000", "tree", self.build_tree(sub))
        return self._put("tree", dict(sorted(entries.items())))

    def make_commit(
        self, tree: str, parents: list[str], message: str, author_email: str, committer_email: str, verified: bool
    ) -> str:
        """Store a commit object."""
        payload = {
            "tree": tree,
            "parents": parents,
            "message": message,
            "n": next(self._commit_counter),
            "author": {"name": author_email.split("@")[0], "email": author_email},
            "committer": {"name": committer_email.split("@")[0], "email": committer_email},
            "verified": verified,
        }
        return self._put("commit", payload)

    def commit_files(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | None],
        message: str = "change",
        author_email: str = "octocat@example.com",
    ) -> str:
        """A human pushes one commit to ``branch`` (content ``None`` deletes a file); returns its sha."""
        repo = self.repos[full_name]
        parent = repo.refs.get(branch)
        flat = self.flatten(self.objects[parent]["data"]["tree"]) if parent else {}
        for path, content in files.items():
            if content is None:
                flat.pop(path, None)
            else:
                flat[path] = (flat.get(path, ("100644", ""))[0], self.blob(content))
        sha = self.make_commit(
            self.build_tree(flat), [parent] if parent else [], message, author_email, author_email, False
        )
        repo.refs[branch] = sha
        return sha

    def file_text(self, full_name: str, branch: str, path: str) -> str | None:
        """The text of a file on a branch, or ``None``."""
        head = self.repos[full_name].refs.get(branch)
        if head is None:
            return None
        entry = self.flatten(self.objects[head]["data"]["tree"]).get(path)
        return None if entry is None else bytes(self.objects[entry[1]]["data"]).decode()

    def branch_files(self, full_name: str, branch: str) -> dict[str, str]:
        """Every file's text on a branch."""
        head = self.repos[full_name].refs[branch]
        return {
            p: bytes(self.objects[s]["data"]).decode()
            for p, (_, s) in self.flatten(self.objects[head]["data"]["tree"]).items()
        }

    def _ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        stack = [sha]
        while stack:
            cur = stack.pop()
            if cur in seen or cur not in self.objects:
                continue
            seen.add(cur)
            stack.extend(self.objects[cur]["data"]["parents"])
        return seen

    # -- setup helpers ---------------------------------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        files: Mapping[str, str],
        *,
        installation_id: int = 1,
        default_branch: str = "main",
        archived: bool = False,
        fork: bool = False,
        permissions: Mapping[str, str] | None = None,
    ) -> Repo:
        """Create a repository whose default branch holds ``files`` (no files: an empty repository)."""
        repo = Repo(full_name, default_branch, installation_id, archived, fork, permissions=dict(permissions or {}))
        self.repos[full_name] = repo
        if files:
            self.commit_files(full_name, default_branch, dict(files), "initial commit")
        return repo

    def pulls_for(self, full_name: str, head: str = "ecr-cache/setup") -> list[Pull]:
        """Pull requests whose head is ``head``."""
        return [p for p in self.repos[full_name].pulls if p.head == head]

    def close_pull(self, full_name: str, number: int) -> None:
        """A human closes a pull request without merging."""
        pull = self._pull(self.repos[full_name], number)
        pull.head_sha = self.repos[full_name].refs.get(pull.head, pull.head_sha)
        pull.state = "closed"

    def merge_pull(self, full_name: str, number: int) -> None:
        """A human merges a pull request (squash: the head's changes as one commit on the base)."""
        repo = self.repos[full_name]
        pull = self._pull(repo, number)
        head = repo.refs[pull.head]
        head_commit = self.objects[head]["data"]
        base_parent = head_commit["parents"][0]
        before = self.flatten(self.objects[base_parent]["data"]["tree"])
        after = self.flatten(head_commit["tree"])
        flat = self.flatten(self.objects[repo.refs[pull.base]]["data"]["tree"])
        for path in set(before) | set(after):
            if after.get(path) != before.get(path):
                if path in after:
                    flat[path] = after[path]
                else:
                    flat.pop(path, None)
        repo.refs[pull.base] = self.make_commit(
            self.build_tree(flat), [repo.refs[pull.base]], pull.title, "octocat@example.com", WEB_FLOW_EMAIL, True
        )
        pull.head_sha, pull.state, pull.merged = head, "closed", True

    def bot_comments(self, full_name: str, issue: int | None = None) -> list[IssueComment]:
        """Comments the App wrote (optionally on one issue)."""
        return [
            c for c in self.repos[full_name].comments if c.author == BOT_LOGIN and (issue is None or c.issue == issue)
        ]

    def add_comment(self, full_name: str, issue: int, body: str, author: str) -> IssueComment:
        """A user comments on an issue or pull request."""
        comment = IssueComment(next(self._ids), issue, body, author)
        self.repos[full_name].comments.append(comment)
        return comment

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        self.requests.clear()

    # -- serving ---------------------------------------------------------------------------------------

    def activate(self, mock: responses.RequestsMock) -> None:
        """Serve every request under the base URL (and the GraphQL URL) from this double."""
        parts = urlsplit(self.base_url)
        host = re.escape(f"{parts.scheme}://{parts.hostname}") + r"(:\d+)?"
        pattern = re.compile(host + r"(/.*)?$")  # PyGithub adds the default port to the URL
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            mock.add_callback(method, pattern, callback=self._callback)

    def _callback(self, request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        path = parts.path
        if path == urlsplit(self.graphql_url).path:
            path = "/graphql"
        elif path.startswith(self._prefix):
            path = path[len(self._prefix) :] or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        raw = request.body
        if isinstance(raw, bytes):
            raw = raw.decode()
        body = json.loads(raw) if raw else None
        record = Recorded(request.method, path, query, body)
        self.requests.append(record)
        self.history.append(record)
        try:
            for i, (method, regex, status, err) in enumerate(self.fail_next):
                if method == request.method and re.fullmatch(regex, path):
                    del self.fail_next[i]
                    raise _Error(status, err.get("message", "error"), err.get("errors"))
            status, answer = self._dispatch(request, path, query, body, record)
        except _Error as exc:
            status, answer = exc.status, exc.body
        record.status = status
        headers = {"Content-Type": "application/json", **self.response_headers}
        return status, headers, "" if answer is None else json.dumps(answer)

    def _installation_of(self, request: Any) -> int:
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        if token not in self.tokens:
            raise _Error(401, "Bad credentials")
        return self.tokens[token]

    def _repo(self, request: Any, owner: str, name: str) -> Repo:
        installation = self._installation_of(request)
        repo = self.repos.get(f"{owner}/{name}")
        if repo is None or repo.installation_id != installation:
            raise _Error(404, "Not Found")
        return repo

    def _dispatch(self, request: Any, path: str, query: dict[str, str], body: Any, record: Recorded) -> tuple[int, Any]:
        method = request.method
        answer = self._app_call(request, method, path, body)
        if answer is not None:
            return answer
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if m and method == "POST":
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                raise _Error(401, "A JSON web token could not be decoded")
            token = f"ghs_{next(self._ids)}"
            self.tokens[token] = int(m.group(1))
            expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 201, {"token": token, "expires_at": expires, "permissions": {}, "repository_selection": "all"}
        if path == "/installation/repositories" and method == "GET":
            return 200, self._list_repos(request, query)
        if path == "/graphql" and method == "POST":
            return 200, self._graphql(request, body, record)
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            raise _Error(404, "Not Found")
        repo = self._repo(request, m.group(1), m.group(2))
        return self._repo_call(repo, method, m.group(3) or "", query, body)

    # -- Apps and the manifest flow ----------------------------------------------------------------------

    @property
    def web_url(self) -> str:
        """GitHub's web origin for this API (https://HOST for https://HOST/api/v3)."""
        parts = urlsplit(self.base_url)
        prefix = self._prefix[: -len("/api/v3")] if self._prefix.endswith("/api/v3") else self._prefix
        return f"{parts.scheme}://{parts.netloc}{prefix}"

    def register_app(
        self,
        pem: str | None = None,
        name: str = "ecr-cache-bot",
        owner: str = "octocat",
        webhook_secret: str | None = None,
        manifest: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an App (a fresh RSA key unless ``pem`` is given); returns its conversion answer."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        if pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            ).decode()
        private = serialization.load_pem_private_key(pem.encode(), password=None)
        public = (
            private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        app_id = next(self._ids)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        manifest = dict(manifest or {})
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        app = {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "name": name,
            "owner": {"login": owner, "id": next(self._ids), "type": "User"},
            "description": manifest.get("description", ""),
            "external_url": manifest.get("url", ""),
            "html_url": f"{self.web_url}/apps/{slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": dict(manifest.get("default_permissions", {})),
            "events": list(manifest.get("default_events", [])),
            "client_id": f"Iv1.{app_id:016x}",
            "client_secret": f"{app_id:040x}",
            "webhook_secret": webhook_secret or hashlib.sha256(f"secret-{app_id}".encode()).hexdigest(),
            "pem": pem,
        }
        self.apps[app_id] = {
            **app,
            "public_key": public,
            "hook": {
                "url": manifest.get("hook_attributes", {}).get("url", ""),
                "content_type": "json",
                "secret": app["webhook_secret"],
            },
        }
        return app

    def start_manifest(self, form_manifest: str, organization: str | None = None) -> tuple[str, str]:
        """The "new App" page: GitHub reads the posted manifest; returns (code, redirect URL) once confirmed."""
        manifest = json.loads(form_manifest)
        for field_name in ("url", "hook_attributes"):
            if field_name not in manifest:
                raise _Error(422, f"manifest is missing `{field_name}`")
        for event in manifest.get("default_events", []):
            if event in ("installation", "installation_repositories"):
                raise _Error(422, f"`{event}` is not an event an App can subscribe to")
        self.manifests.append({"manifest": manifest, "organization": organization})
        code = hashlib.sha1(f"code-{next(self._ids)}".encode()).hexdigest()
        self.manifest_codes[code] = {"manifest": manifest, "owner": organization or "octocat"}
        return code, str(manifest.get("redirect_url", ""))

    def _app_of_jwt(self, request: Any) -> dict[str, Any]:
        """The App whose key signed the request's `Bearer` JWT (401 as GitHub answers otherwise)."""
        import jwt

        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            app = self.apps[int(str(issuer))]
            jwt.decode(token, app["public_key"], algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise _Error(401, "A JSON web token could not be decoded") from exc
        return app

    def _app_call(self, request: Any, method: str, path: str, body: Any) -> tuple[int, Any] | None:
        m = re.fullmatch(r"/app-manifests/([^/]+)/conversions", path)
        if m and method == "POST":
            pending = self.manifest_codes.pop(m.group(1), None)  # a code converts once
            if pending is None:
                raise _Error(404, "Not Found")
            manifest = pending["manifest"]
            return 201, self.register_app(name=manifest.get("name", "app"), owner=pending["owner"], manifest=manifest)
        if self.apps and method == "POST" and re.fullmatch(r"/app/installations/\d+/access_tokens", path):
            self._app_of_jwt(request)  # once Apps are registered here, the token is minted for their JWT only
            return None
        if path == "/app" and method == "GET":
            app = self._app_of_jwt(request)
            return 200, {
                k: v
                for k, v in app.items()
                if k not in ("pem", "public_key", "hook", "webhook_secret", "client_secret")
            }
        if path == "/app/hook/config" and method == "PATCH":
            app = self._app_of_jwt(request)
            app["hook"].update({k: v for k, v in (body or {}).items() if k in ("url", "content_type", "secret")})
            return 200, {k: v for k, v in app["hook"].items() if k != "secret"}
        return None

    def _list_repos(self, request: Any, query: dict[str, str]) -> dict[str, Any]:
        installation = self._installation_of(request)
        mine = sorted((r for r in self.repos.values() if r.installation_id == installation), key=lambda r: r.full_name)
        per_page = min(int(query.get("per_page", "30")), 100)
        page = int(query.get("page", "1"))
        chunk = mine[(page - 1) * per_page : page * per_page]
        return {
            "total_count": len(mine),
            "repositories": [
                {
                    "full_name": r.full_name,
                    "name": r.full_name.split("/")[1],
                    "owner": {"login": r.full_name.split("/")[0]},
                    "archived": r.archived,
                    "fork": r.fork,
                    "size": 0 if not r.refs else 42,
                    "default_branch": r.default_branch,
                }
                for r in chunk
            ],
        }

    # -- REST ------------------------------------------------------------------------------------------

    def _repo_call(self, repo: Repo, method: str, rest: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if repo.archived and method != "GET":
            raise _Error(403, "Repository was archived so is read-only.")
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/git/trees/([^/]+)", self._get_tree),
            ("GET", r"/git/blobs/([0-9a-f]{40})", self._get_blob),
            ("POST", r"/git/trees", self._create_tree),
            ("POST", r"/git/commits", self._create_commit),
            ("POST", r"/git/refs", self._create_ref),
            ("PATCH", r"/git/refs/heads/(.+)", self._update_ref),
            ("DELETE", r"/git/refs/heads/(.+)", self._delete_ref),
            ("POST", r"/pulls", self._create_pull),
            ("PATCH", r"/pulls/(\d+)", self._update_pull),
            ("POST", r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r"/issues/comments/(\d+)", self._update_comment),
            ("POST", r"/issues/comments/(\d+)/reactions", self._create_reaction),
            ("GET", r"/collaborators/([^/]+)/permission", self._permission),
            ("GET", r"/contents/(.+)", self._get_contents),
            ("POST", r"/issues/(\d+)/labels", self._add_labels),
            ("POST", r"/issues/(\d+)/assignees", self._add_assignees),
            ("POST", r"/pulls/(\d+)/requested_reviewers", self._request_reviewers),
            ("GET", r"/issues", self._list_issues),
            ("POST", r"/issues", self._create_issue),
            ("PATCH", r"/issues/(\d+)", self._update_issue),
        ]
        for verb, regex, handler in routes:
            m = re.fullmatch(regex, rest)
            if verb == method and m:
                result: tuple[int, Any] = handler(repo, query, body, *m.groups())
                return result
        raise _Error(404, "Not Found")

    def _resolve_tree(self, repo: Repo, ref: str) -> str:
        sha = repo.refs.get(ref, ref)
        obj = self.objects.get(sha)
        if obj is None:
            raise _Error(404, "Not Found")
        return sha if obj["type"] == "tree" else str(obj["data"]["tree"])

    def _get_tree(self, repo: Repo, query: dict[str, str], body: Any, ref: str) -> tuple[int, Any]:
        tree_sha = self._resolve_tree(repo, ref)
        entries = []
        if "recursive" in query:  # GitHub: any value turns recursion on

            def walk(sha: str, prefix: str) -> None:
                for name, (mode, kind, child) in self.objects[sha]["data"].items():
                    entries.append(self._entry(prefix + name, mode, kind, child))
                    if kind == "tree":
                        walk(child, prefix + name + "/")

            walk(tree_sha, "")
        else:
            entries = [self._entry(n, mo, k, s) for n, (mo, k, s) in self.objects[tree_sha]["data"].items()]
        truncated = (
            self.truncate_trees_over is not None and len(entries) > self.truncate_trees_over and "recursive" in query
        )
        if truncated:
            entries = entries[: self.truncate_trees_over]
        return 200, {"sha": tree_sha, "tree": entries, "truncated": truncated}

    def _entry(self, path: str, mode: str, kind: str, sha: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": path, "mode": mode, "type": kind, "sha": sha}
        if kind == "blob":
            entry["size"] = len(self.objects[sha]["data"])
        return entry

    def _get_blob(self, repo: Repo, query: dict[str, str], body: Any, sha: str) -> tuple[int, Any]:
        obj = self.objects.get(sha)
        if obj is None or obj["type"] != "blob":
            raise _Error(404, "Not Found")
        data = bytes(obj["data"])
        return 200, {"sha": sha, "size": len(data), "encoding": "base64", "content": base64.b64encode(data).decode()}

    def _create_tree(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("tree"), list):
            raise _Error(422, "Invalid request.", [{"message": "tree is required"}])
        base = body.get("base_tree")
        flat = self.flatten(base) if base else {}
        for entry in body["tree"]:
            if entry.get("mode") not in _VALID_MODES:
                raise _Error(422, "Invalid tree info", [{"message": f"bad mode {entry.get('mode')}"}])
            if "sha" in entry and "content" in entry:
                raise _Error(422, "Invalid tree info", [{"message": "sha and content are exclusive"}])
            if "content" in entry:
                flat[entry["path"]] = (entry["mode"], self.blob(entry["content"]))
            elif entry.get("sha") is None:
                flat.pop(entry["path"], None)
            else:
                flat[entry["path"]] = (entry["mode"], entry["sha"])
        sha = self.build_tree(flat)
        return 201, {"sha": sha, "truncated": False, "tree": []}

    def _create_commit(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        tree, parents = body.get("tree"), body.get("parents") or []
        if tree not in self.objects or any(p not in self.objects for p in parents):
            raise _Error(422, "Tree SHA does not exist")
        custom = "author" in body or "committer" in body
        author = (body.get("author") or {}).get("email", BOT_EMAIL)
        committer = (body.get("committer") or {}).get("email", author if custom else WEB_FLOW_EMAIL)
        # GitHub signs API commits made by an App installation without a custom author or committer.
        sha = self.make_commit(tree, parents, body.get("message", ""), author, committer, not custom)
        return 201, {
            "sha": sha,
            "tree": {"sha": tree},
            "parents": [{"sha": p} for p in parents],
            "verification": {"verified": not custom},
        }

    def _create_ref(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        ref = str(body.get("ref", ""))
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise _Error(422, "Reference name is invalid")
        branch = ref[len("refs/heads/") :]
        if branch in repo.refs:
            raise _Error(422, "Reference already exists")
        if body.get("sha") not in self.objects:
            raise _Error(422, "Object does not exist")
        repo.refs[branch] = body["sha"]
        return 201, {"ref": ref, "object": {"sha": body["sha"], "type": "commit"}}

    def _update_ref(self, repo: Repo, query: dict[str, str], body: Any, branch: str) -> tuple[int, Any]:
        if branch not in repo.refs:
            raise _Error(422, "Reference does not exist")
        sha = body.get("sha")
        if sha not in self.objects:
            raise _Error(422, "Object does not exist")
        if not body.get("force") and repo.refs[branch] not in self._ancestors(sha):
            raise _Error(422, "Update is not a fast forward")
        repo.refs[branch] = sha
        return 200, {"ref": f"refs/heads/{branch}", "object": {"sha": sha, "type": "commit"}}

    def _delete_ref(self, repo: Repo, query: dict[str, str], body: Any, branch: str) -> tuple[int, Any]:
        if branch not in repo.refs:
            raise _Error(422, "Reference does not exist")
        del repo.refs[branch]
        return 204, None

    def _pull(self, repo: Repo, number: int) -> Pull:
        for pull in repo.pulls:
            if pull.number == number:
                return pull
        raise _Error(404, "Not Found")

    def _pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        return {
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "merged": pull.merged,
            "html_url": f"https://github.test/{repo.full_name}/pull/{pull.number}",
            "head": {"ref": pull.head},
            "base": {"ref": pull.base},
        }

    def _create_pull(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        head, base = body.get("head"), body.get("base")
        if head not in repo.refs or base not in repo.refs:
            raise _Error(422, "Validation Failed", [{"message": "head or base does not exist"}])
        if any(p.head == head and p.state == "open" for p in repo.pulls):
            raise _Error(
                422,
                "Validation Failed",
                [{"message": f"A pull request already exists for {repo.full_name.split('/')[0]}:{head}."}],
            )
        if repo.refs[head] in self._ancestors(repo.refs[base]):
            raise _Error(422, "Validation Failed", [{"message": f"No commits between {base} and {head}"}])
        pull = Pull(
            repo.next_number, head, base, body.get("title", ""), body.get("body") or "", draft=body.get("draft") is True
        )
        repo.next_number += 1
        repo.pulls.append(pull)
        return 201, self._pull_json(repo, pull)

    def _update_pull(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        pull = self._pull(repo, int(number))
        for key in ("title", "body", "state"):
            if key in body:
                setattr(pull, key, body[key])
        return 200, self._pull_json(repo, pull)

    def _issue(self, repo: Repo, number: int) -> GhIssue:
        for issue in repo.issues:
            if issue.number == number:
                return issue
        raise _Error(404, "Not Found")

    def open_issues(self, full_name: str) -> list[GhIssue]:
        """The repository's open issues."""
        return [i for i in self.repos[full_name].issues if i.state == "open"]

    def _add_labels(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        pull = self._pull(repo, int(number))
        for label in body.get("labels") or []:
            if label not in pull.labels:
                pull.labels.append(label)
        return 200, [{"name": name} for name in pull.labels]

    def _add_assignees(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        pull = self._pull(repo, int(number))
        for login in body.get("assignees") or []:  # GitHub silently drops users who cannot be assigned
            if login in repo.permissions and login not in pull.assignees:
                pull.assignees.append(login)
        return 201, {"number": pull.number, "assignees": [{"login": a} for a in pull.assignees]}

    def _request_reviewers(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        pull = self._pull(repo, int(number))
        users, teams = list(body.get("reviewers") or []), list(body.get("team_reviewers") or [])
        if BOT_LOGIN in users:
            raise _Error(422, "Review cannot be requested from pull request author.")
        if any(u not in repo.permissions for u in users) or any(t not in repo.teams for t in teams):
            raise _Error(
                422,
                "Reviews may only be requested from collaborators. One or more of the users or "
                f"teams you specified is not a collaborator of the {repo.full_name} repository.",
            )
        pull.requested_reviewers += [u for u in users if u not in pull.requested_reviewers]
        pull.requested_teams += [t for t in teams if t not in pull.requested_teams]
        return 201, self._pull_json(repo, pull)

    def _issue_json(self, repo: Repo, issue: GhIssue) -> dict[str, Any]:
        return {
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "html_url": f"https://github.test/{repo.full_name}/issues/{issue.number}",
            "user": {"login": issue.author, "type": "Bot" if issue.author == BOT_LOGIN else "User"},
        }

    def _list_issues(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        wanted = query.get("state", "open")
        items = [(i.number, self._issue_json(repo, i)) for i in repo.issues if wanted in ("all", i.state)]
        items += [
            (p.number, {**self._pull_json(repo, p), "pull_request": {}})
            for p in repo.pulls
            if wanted in ("all", p.state)
        ]
        items.sort(key=lambda pair: -pair[0])
        return 200, [item for _, item in items][: int(query.get("per_page", "30"))]

    def _create_issue(self, repo: Repo, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not body.get("title"):
            raise _Error(422, "Validation Failed", [{"message": "title is missing"}])
        issue = GhIssue(repo.next_number, str(body["title"]), str(body.get("body") or ""), BOT_LOGIN)
        repo.next_number += 1
        repo.issues.append(issue)
        return 201, self._issue_json(repo, issue)

    def _update_issue(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        issue = self._issue(repo, int(number))
        if "body" in body:
            issue.body = str(body["body"])
        if body.get("state") in ("open", "closed"):
            issue.state = body["state"]
            issue.state_reason = body.get("state_reason")
        return 200, self._issue_json(repo, issue)

    def _create_comment(self, repo: Repo, query: dict[str, str], body: Any, number: str) -> tuple[int, Any]:
        comment = self.add_comment(repo.full_name, int(number), str(body.get("body", "")), BOT_LOGIN)
        return 201, {"id": comment.id, "body": comment.body}

    def _comment(self, repo: Repo, comment_id: str) -> IssueComment:
        for comment in repo.comments:
            if comment.id == int(comment_id):
                return comment
        raise _Error(404, "Not Found")

    def _update_comment(self, repo: Repo, query: dict[str, str], body: Any, comment_id: str) -> tuple[int, Any]:
        comment = self._comment(repo, comment_id)
        comment.body = str(body.get("body", ""))
        return 200, {"id": comment.id, "body": comment.body}

    def _create_reaction(self, repo: Repo, query: dict[str, str], body: Any, comment_id: str) -> tuple[int, Any]:
        comment = self._comment(repo, comment_id)
        if body.get("content") not in {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}:
            raise _Error(422, "Validation Failed")
        comment.reactions.append(body["content"])
        return 201, {"id": next(self._ids), "content": body["content"]}

    def _get_contents(self, repo: Repo, query: dict[str, str], body: Any, path: str) -> tuple[int, Any]:
        branch = query.get("ref") or repo.default_branch
        head = repo.refs.get(branch)
        entry = self.flatten(self.objects[head]["data"]["tree"]).get(path) if head else None
        if entry is None:
            raise _Error(404, "Not Found")
        data = bytes(self.objects[entry[1]]["data"])
        return 200, {
            "type": "file",
            "encoding": "base64",
            "path": path,
            "sha": entry[1],
            "size": len(data),
            "content": base64.b64encode(data).decode(),
        }

    def _permission(self, repo: Repo, query: dict[str, str], body: Any, user: str) -> tuple[int, Any]:
        role = repo.permissions.get(user, "none")
        base = {"maintain": "write", "triage": "read"}.get(role, role)
        return 200, {"permission": base, "role_name": role, "user": {"login": user, "role_name": role}}

    # -- GraphQL ---------------------------------------------------------------------------------------

    def _graphql(self, request: Any, body: Any, record: Recorded) -> dict[str, Any]:
        query, variables = str(body.get("query", "")), body.get("variables") or {}
        try:
            operation = _Operation(query, variables)
        except gql.GraphQLError as exc:
            return {"errors": [{"message": exc.message}]}
        # A blob-only read is the state document with $withState false: labelled apart for the request counts.
        blob_only = operation.name == "EcrCacheState" and operation.variables.get("withState") is False
        record.operation = operation.name + ("[blobs]" if blob_only else "")
        record.mutation = operation.kind == "mutation"
        if record.mutation:
            return self._mutation(request, operation, record)
        repo = self._repo(request, variables["owner"], variables["name"])
        if operation.name != "EcrCacheState":
            return {"errors": [{"message": f"unknown operation {record.operation}"}]}
        errors: list[dict[str, Any]] = []
        repository = operation.fields(operation.field("repository"))
        out: dict[str, Any] = {}
        if record.operation == "EcrCacheState":
            out = self._state(repo, variables, with_issue="issueOrPullRequest" in repository)
        if "commenter" in repository:
            if self.collaborators_without_login:
                return {
                    "errors": [
                        {
                            "path": ["query EcrCacheState", "repository", "commenter"],
                            "extensions": {
                                "code": "argumentNotAccepted",
                                "name": "collaborators",
                                "typeName": "Field",
                                "argumentName": "login",
                            },
                            "locations": [{"line": 12, "column": 29}],
                            "message": "Field 'collaborators' doesn't accept argument 'login'",
                        }
                    ]
                }
            out["commenter"] = self._collaborator(
                repo, str(operation.arguments(repository["commenter"])["login"]), errors
            )
        # Blob aliases may ride along in either query.
        blobs = {
            alias: str(operation.arguments(node).get("oid"))
            for alias, node in repository.items()
            if node.name.value == "object"
        }
        for alias, sha in blobs.items():
            obj = self.objects.get(sha)
            if obj is None or obj["type"] != "blob":
                out[alias] = None
                continue
            data = bytes(obj["data"])
            try:
                out[alias] = {"text": data.decode(), "isBinary": False, "isTruncated": False}
            except UnicodeDecodeError:
                out[alias] = {"text": None, "isBinary": True, "isTruncated": False}
        record.blobs = len(blobs)
        answer: dict[str, Any] = {"data": {"repository": out}}
        if "org" in operation.fields():  # the organization's `.github` repository, for its defaults
            org_name = str(operation.arguments(operation.field("org"))["name"])
            org = self.repos.get(f"{variables['owner']}/{org_name}")
            if org is None or org.installation_id != repo.installation_id:
                answer["data"]["org"] = None
                missing = f"{variables['owner']}/{org_name}"
                errors.append(
                    {
                        "type": "NOT_FOUND",
                        "path": ["org"],
                        "message": f"Could not resolve to a Repository with the name '{missing}'.",
                    }
                )
            else:
                text = self.file_text(org.full_name, org.default_branch, ".github/ecr-cache.yml")
                config = None if text is None else {"object": {"text": text}}
                answer["data"]["org"] = {"defaultBranchRef": {"target": {"config": config}}}
        if errors:
            answer["errors"] = errors
        return answer

    def _collaborator(self, repo: Repo, login: str, errors: list[dict[str, Any]]) -> dict[str, Any] | None:
        if repo.collaborators_forbidden:
            errors.append(
                {
                    "type": "FORBIDDEN",
                    "path": ["repository", "commenter"],
                    "message": "You do not have permission to view repository collaborators.",
                }
            )
            return None
        role = repo.permissions.get(login)
        if role is None or login in repo.org_grants:
            return {"edges": []}
        base = {"admin": "ADMIN", "maintain": "MAINTAIN", "write": "WRITE", "triage": "TRIAGE", "read": "READ"}
        return {"edges": [{"permission": base.get(role, "READ"), "node": {"login": login}}]}

    def _find_comment(self, installation: int, node_id: str) -> tuple[Repo, IssueComment]:
        for repo in self.repos.values():
            for comment in repo.comments:
                if repo.installation_id == installation and comment.node_id == node_id:
                    return repo, comment
        raise KeyError(node_id)

    def _mutation(self, request: Any, operation: _Operation, record: Recorded) -> dict[str, Any]:
        """`addReaction`, `addComment` and `updateIssueComment`, run in the order the mutation names them (the
        fields its `@include`/`@skip` directives leave in)."""
        installation = self._installation_of(request)
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for alias, node in operation.fields().items():
            field_name = node.name.value
            fields = operation.arguments(node).get("input") or {}
            node_id = str(fields.get("subjectId", fields.get("id", "")))
            try:
                if field_name == "addReaction":
                    self._find_comment(installation, node_id)[1].reactions.append("eyes")
                    data[alias] = {"clientMutationId": None}
                elif field_name == "updateIssueComment":
                    comment = self._find_comment(installation, node_id)[1]
                    comment.body = str(fields["body"])
                    data[alias] = {"issueComment": {"databaseId": comment.id}}
                elif field_name == "addComment":
                    m = re.fullmatch(r"I_(.+)#(\d+)", node_id)
                    repo = self.repos.get(m.group(1)) if m else None
                    if m is None or repo is None or repo.installation_id != installation:
                        raise KeyError(node_id)
                    comment = self.add_comment(repo.full_name, int(m.group(2)), str(fields["body"]), BOT_LOGIN)
                    data[alias] = {"commentEdge": {"node": {"databaseId": comment.id}}}
                else:
                    raise KeyError(field_name)
            except KeyError:
                data[alias] = None
                errors.append(
                    {
                        "type": "NOT_FOUND",
                        "path": [alias],
                        "message": f"Could not resolve to a node with the global id of '{node_id}'",
                    }
                )
        answer: dict[str, Any] = {"data": data}
        if errors:
            answer["errors"] = errors
        return answer

    def _commit_node(self, sha: str) -> dict[str, Any]:
        data = self.objects[sha]["data"]
        return {
            "oid": sha,
            "message": data["message"],
            "author": {"email": data["author"]["email"]},
            "committer": {"email": data["committer"]["email"]},
            "tree": {"oid": data["tree"]},
        }

    def _state(self, repo: Repo, variables: Mapping[str, Any], *, with_issue: bool) -> dict[str, Any]:
        default_head = repo.refs.get(repo.default_branch)
        default_ref = None
        if default_head:
            target = self._commit_node(default_head)
            config = self.file_text(repo.full_name, repo.default_branch, ".github/ecr-cache.yml")
            target["config"] = None if config is None else {"object": {"text": config}}
            default_ref = {"name": repo.default_branch, "target": target}
        head_name = variables["head"]
        bot_head = repo.refs.get(head_name)
        pulls = []
        for pull in sorted(repo.pulls, key=lambda p: -p.number):
            if pull.head != head_name:
                continue
            head_sha = repo.refs.get(pull.head, pull.head_sha) if pull.state == "open" else pull.head_sha
            base_reach = self._ancestors(repo.refs[pull.base])
            count = len(self._ancestors(head_sha) - base_reach) if head_sha else 0
            state = "MERGED" if pull.merged else pull.state.upper()
            pulls.append(
                {
                    "number": pull.number,
                    "state": state,
                    "merged": pull.merged,
                    "body": pull.body,
                    "url": f"https://github.test/{repo.full_name}/pull/{pull.number}",
                    "headRefOid": head_sha,
                    "headRepository": {"nameWithOwner": repo.full_name},
                    "commits": {"totalCount": count},
                    "comments": self._comments(repo, pull.number),
                }
            )
        out: dict[str, Any] = {
            "nameWithOwner": repo.full_name,
            "isArchived": repo.archived,
            "isFork": repo.fork,
            "isEmpty": not repo.refs,
            "defaultBranchRef": default_ref,
            "botRef": {"target": self._commit_node(bot_head)} if bot_head else None,
            "pullRequests": {"nodes": pulls},
        }
        if with_issue:
            out["issueOrPullRequest"] = {"comments": self._comments(repo, int(variables["issue"]))}
        return out

    def _comments(self, repo: Repo, number: int) -> dict[str, Any]:
        nodes = [
            {"id": c.node_id, "databaseId": c.id, "body": c.body, "viewerDidAuthor": c.author == BOT_LOGIN}
            for c in repo.comments
            if c.issue == number
        ]
        return {"nodes": nodes[-100:]}


# -- webhook payloads as GitHub sends them (trimmed to the fields the App reads) ---------------------------


def _repository(repo: Repo) -> dict[str, Any]:
    owner, name = repo.full_name.split("/")
    return {
        "full_name": repo.full_name,
        "name": name,
        "owner": {"login": owner, "type": "User"},
        "default_branch": repo.default_branch,
        "archived": repo.archived,
        "fork": repo.fork,
    }


def push_payload(
    repo: Repo, before: str, after: str, changed: list[str], *, sender_type: str = "User", branch: str | None = None
) -> dict[str, Any]:
    """A `push` delivery for one commit that modified ``changed``."""
    commit = {
        "id": after,
        "added": [],
        "removed": [],
        "modified": changed,
        "author": {"name": "octocat", "email": "octocat@example.com"},
    }
    return {
        "ref": f"refs/heads/{branch or repo.default_branch}",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [commit],
        "head_commit": commit,
        "repository": _repository(repo),
        "installation": {"id": repo.installation_id},
        "sender": {"login": "octocat", "type": sender_type},
    }


def issue_node_id(repo: Repo, number: int) -> str:
    """The GraphQL id of an issue or pull request."""
    return f"I_{repo.full_name}#{number}"


def comment_payload(
    repo: Repo, comment: IssueComment, *, user_type: str = "User", association: str = "COLLABORATOR"
) -> dict[str, Any]:
    """An `issue_comment.created` delivery."""
    return {
        "action": "created",
        "issue": {"number": comment.issue, "node_id": issue_node_id(repo, comment.issue)},
        "comment": {
            "id": comment.id,
            "node_id": comment.node_id,
            "body": comment.body,
            "author_association": association,
            "user": {"login": comment.author, "type": user_type},
        },
        "repository": _repository(repo),
        "installation": {"id": repo.installation_id},
        "sender": {"login": comment.author, "type": user_type},
    }


def pr_closed_payload(repo: Repo, pull: Pull) -> dict[str, Any]:
    """A `pull_request.closed` delivery."""
    return {
        "action": "closed",
        "number": pull.number,
        "pull_request": {
            "number": pull.number,
            "merged": pull.merged,
            "state": "closed",
            "head": {"ref": pull.head, "repo": {"full_name": repo.full_name}},
            "base": {"ref": pull.base},
        },
        "repository": _repository(repo),
        "installation": {"id": repo.installation_id},
        "sender": {"login": "octocat", "type": "User"},
    }


def installation_payload(installation_id: int, account: str) -> dict[str, Any]:
    """An `installation.created` delivery."""
    return {
        "action": "created",
        "installation": {"id": installation_id, "account": {"login": account}},
        "repositories": [],
        "sender": {"login": account, "type": "User"},
    }


_KEY: list[str] = []


def private_key_pem() -> str:
    """A throwaway RSA key for the App JWT (generated once per test run)."""
    if not _KEY:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY.append(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
        )
    return _KEY[0]


class AppHarness:
    """The real Flask app wired to the double: post signed webhooks, drain the queue, count requests."""

    SECRET = "e2e-secret"

    def __init__(self, double: GitHubDouble) -> None:
        import hashlib as _hashlib
        import hmac as _hmac

        from bot.app import handlers as jobs
        from bot.app.context import JobContext
        from bot.github.client import GatewayFactory
        from bot.queue.durable import InMemoryQueue
        from bot.queue.retry import classify_exception
        from bot.settings import Settings
        from bot.web.flask_app import create_app

        self.double = double
        self.settings = Settings(
            webhook_secret=self.SECRET,
            app_id="4242",
            private_key=private_key_pem(),
            github_api_url=double.base_url,
            max_body_bytes=1024 * 1024,
        )
        self.factory = GatewayFactory(self.settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)
        self.outcomes: list[Any] = []
        # As in production: installation jobs fan out into per-repository sync jobs on the same queue.
        context = JobContext(
            self.factory,
            submit=lambda delivery, batch: self.queue.submit(delivery, batch),
            final=lambda exc: classify_exception(exc).action == "fail",
        )
        self.queue = InMemoryQueue(lambda job: self.outcomes.extend(jobs.run(job, context)))
        self.client = create_app(self.settings, queue=self.queue).test_client()
        self._sign = lambda raw: "sha256=" + _hmac.new(self.SECRET.encode(), raw, _hashlib.sha256).hexdigest()
        self._deliveries = itertools.count(1)

    def post(self, event: str, payload: Mapping[str, Any], delivery: str | None = None) -> int:
        """Sign and post one delivery; return the HTTP status."""
        raw = json.dumps(payload).encode()
        response = self.client.post(
            self.settings.webhook_path,
            data=raw,
            headers={
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or f"delivery-{next(self._deliveries)}",
                "X-Hub-Signature-256": self._sign(raw),
                "Content-Type": "application/json",
            },
        )
        return int(response.status_code)

    def deliver(
        self, event: str, payload: Mapping[str, Any], delivery: str | None = None
    ) -> tuple[int, list[Recorded]]:
        """Post, drain the queue, and return the status and the GitHub requests the jobs made."""
        self.double.reset_requests()
        self.outcomes.clear()
        status = self.post(event, payload, delivery)
        self.queue.drain()
        return status, list(self.double.requests)


class _WsgiRequest:
    """What `GitHubDouble._callback` reads from a request, built from a WSGI environ."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        from werkzeug.wrappers import Request

        request = Request(dict(environ))
        self.url = request.url
        self.method = request.method
        self.headers = request.headers
        self.body = request.get_data() or None


def wsgi_app(double: GitHubDouble) -> Any:
    """Serve the double over real HTTP (e.g. with `werkzeug.serving.make_server` on 127.0.0.1)."""

    def app(environ: Mapping[str, Any], start_response: Any) -> list[bytes]:
        status, headers, body = double._callback(_WsgiRequest(environ))
        reasons = {
            200: "OK",
            201: "Created",
            204: "No Content",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            409: "Conflict",
            422: "Unprocessable Entity",
        }
        start_response(f"{status} {reasons.get(status, 'Error')}", list(headers.items()))
        return [body.encode()]

    return app


def appending_plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """A deterministic, idempotent stand-in planner: appends `# cached` to the buildspec once."""
    spec = snapshot.text("buildspec.yml")
    if spec is None or spec.endswith("# cached\n"):
        return Plan()
    return Plan(
        edits=(FileEdit("buildspec.yml", "modify", spec + "# cached\n", spec, ("cache",)),),
        buildspecs=("buildspec.yml",),
    )


def web_and_api_app(double: GitHubDouble) -> Any:
    """Serve GitHub's "new App" pages of the manifest flow and, under the API prefix, the API, over real HTTP."""
    from werkzeug.wrappers import Request, Response

    api = wsgi_app(double)
    new_app = re.compile(r"(?:/organizations/([^/]+))?/settings/apps/new")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        m = new_app.fullmatch(request.path)
        if m is None:
            return api(environ, start_response)
        if request.method != "POST" or "manifest" not in request.form:
            return Response("post a manifest", status=400)(environ, start_response)
        try:
            code, redirect_url = double.start_manifest(request.form["manifest"], m.group(1))
        except (_Error, ValueError) as exc:
            return Response(str(exc), status=422)(environ, start_response)
        # GitHub asks the user to confirm, creates the App, then sends the browser to the redirect URL.
        location = f"{redirect_url}?{urlencode({'code': code, 'state': request.args.get('state', '')})}"
        return Response("", status=302, headers={"Location": location})(environ, start_response)

    return app
