"""Pure webhook routing: (event, payload, delivery) -> jobs; no I/O, no GitHub calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.app.comment_command import parse_command
from bot.app.payloads import AnyJob, InstallJob, Job
from bot.core.discover import may_change_plan
from bot.identity import BOT_BRANCH, CONFIG_PATH, ORG_CONFIG_PATH, ORG_CONFIG_REPO

_MAX_ID = 2**63  # GitHub ids are 64-bit; a bigger number cannot be a real id (nor stored by the queue)


class MalformedPayload(ValueError):
    """The payload does not have the shape GitHub sends; the message says which field."""


@dataclass(frozen=True)
class Routed:
    """The jobs one delivery produced, and a short reason for logs and the HTTP response."""

    jobs: tuple[AnyJob, ...]
    reason: str


def is_relevant_path(path: str) -> bool:
    """True when a change to ``path`` can change the plan."""
    # The planner's own discovery rules, so a push and `/ecr-cache` see the same files.
    return path == CONFIG_PATH or may_change_plan(path)


def _obj(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"`{key}` must be an object")
    return value


def _opt_obj(payload: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"`{key}` must be an object")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"`{where}.{key}` must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (`\ud800`): valid JSON, not storable text
        raise MalformedPayload(f"`{where}.{key}` is not valid UTF-8 text") from exc
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_ID:
        raise MalformedPayload(f"`{where}.{key}` must be a positive 64-bit integer")
    return value


def _installation_id(payload: Mapping[str, Any]) -> int | None:
    inst = _opt_obj(payload, "installation")
    return None if inst is None else _int(inst, "id", "installation")


def _is_bot(payload: Mapping[str, Any]) -> bool:
    sender = _opt_obj(payload, "sender")
    return sender is not None and sender.get("type") == "Bot"


def _ignored(reason: str) -> Routed:
    return Routed((), reason)


def route(event: str, payload: Any, delivery_id: str) -> Routed:
    """Turn one webhook delivery into repository jobs (empty when the bot has nothing to do)."""
    if not isinstance(payload, Mapping):
        raise MalformedPayload("the payload must be a JSON object")
    action = payload.get("action")
    if action is not None and not isinstance(action, str):
        raise MalformedPayload("`action` must be a string")
    if event == "ping":
        return _ignored("ping")
    handler = _HANDLERS.get((event, action))
    if handler is None:
        return _ignored(f"unhandled event {event}.{action}" if action else f"unhandled event {event}")
    if _is_bot(payload):
        return _ignored("sender is a bot")
    installation_id = _installation_id(payload)
    if installation_id is None:
        return _ignored("no installation in payload")
    return handler(payload, installation_id, delivery_id)


def _install(
    payload: Mapping[str, Any], installation_id: int, delivery_id: str, added: list[str] | None = None
) -> Routed:
    account = _obj(_obj(payload, "installation"), "account")
    login = _str(account, "login", "installation.account")
    if added:
        job = InstallJob(installation_id, login, delivery_id, {"trigger": "install", "added": added})
        return Routed((job,), f"sync the {len(added)} added repositor{'y' if len(added) == 1 else 'ies'}")
    job = InstallJob(installation_id, login, delivery_id, {"trigger": "install"})
    return Routed((job,), "sync every repository of the installation")


# Up to this many added repositories are named to the installation job, which still pages the repositories
# through the API (their default branch, archived and fork flags) but syncs only those; more are synced like
# a first install, preview mode included.
MAX_ADDED_SYNCS = 20


def _repositories_added(payload: Mapping[str, Any], installation_id: int, delivery_id: str) -> Routed:
    added = payload.get("repositories_added")
    if added is not None and not isinstance(added, list):
        raise MalformedPayload("`repositories_added` must be a list")
    names = list(
        dict.fromkeys(
            r["full_name"]
            for r in added or ()
            if isinstance(r, Mapping) and isinstance(r.get("full_name"), str) and "/" in r["full_name"]
        )
    )
    return _install(payload, installation_id, delivery_id, names if len(names) <= MAX_ADDED_SYNCS else None)


def _changed_paths(commits: Iterable[Any]) -> Iterable[str]:
    for commit in commits:
        if not isinstance(commit, Mapping):
            raise MalformedPayload("`commits[]` must be objects")
        for key in ("added", "modified", "removed"):
            files = commit.get(key) or []
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise MalformedPayload(f"`commits[].{key}` must be a list of strings")
            yield from files


def _push(payload: Mapping[str, Any], installation_id: int, delivery_id: str) -> Routed:
    repo = _obj(payload, "repository")
    full_name = _str(repo, "full_name", "repository")
    ref = _str(payload, "ref", "push")
    default = repo.get("default_branch") or repo.get("master_branch")
    if not isinstance(default, str) or not default:
        raise MalformedPayload("`repository.default_branch` must be a non-empty string")
    if ref != f"refs/heads/{default}":
        return _ignored(f"push to {ref}, not the default branch")
    if payload.get("deleted") is True:
        return _ignored("branch deleted")
    commits = payload.get("commits")
    if commits is None:
        commits = []
    if not isinstance(commits, list):
        raise MalformedPayload("`commits` must be a list")
    head = _opt_obj(payload, "head_commit")
    paths = list(_changed_paths(commits + ([head] if head else [])))
    # A force-push may drop or replace commits the file lists do not show (GitHub always sends the new
    # head_commit), and a push without file lists may change anything: both re-plan.
    unknown = payload.get("forced") is True or (not commits and head is None)
    if not unknown and not any(is_relevant_path(p) for p in paths):
        return _ignored("push touches no buildspec, Dockerfile, manifest or repo config")
    after = payload.get("after")
    job = Job(
        "sync",
        installation_id,
        full_name,
        delivery_id,
        {"trigger": "push", "after": after if isinstance(after, str) else None, "default_branch": default},
    )
    owner, _, name = full_name.partition("/")
    if name == ORG_CONFIG_REPO and ORG_CONFIG_PATH in paths:
        # The organization config changed (maybe opting in after a preview-mode install): go over every
        # repository again; the fan-out reads the opt-in afresh.
        install = InstallJob(installation_id, owner, delivery_id, {"trigger": "install"})
        return Routed((job, install), "organization config changed: sync every repository of the installation")
    return Routed((job,), "relevant push to the default branch")


def _comment(payload: Mapping[str, Any], installation_id: int, delivery_id: str) -> Routed:
    comment = _obj(payload, "comment")
    body = comment.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedPayload("`comment.body` must be a string")
    command = parse_command(body)
    if command is None:
        return _ignored("comment is not an /ecr-cache command")
    repository = _obj(payload, "repository")
    repo = _str(repository, "full_name", "repository")
    default = repository.get("default_branch")
    issue = _obj(payload, "issue")
    user = _obj(comment, "user")
    if user.get("type") == "Bot":
        return _ignored("comment by a bot")
    data = {
        "command": command.name,
        "unknown": command.unknown,
        "comment_id": _int(comment, "id", "comment"),
        "issue_number": _int(issue, "number", "issue"),
        "user": _str(user, "login", "comment.user"),
        "default_branch": default if isinstance(default, str) and default else None,
        # GraphQL ids let the reaction and the reply go out as one mutation; the association only decides
        # whether to read the tree before the permission is known (the permission itself is asked of the API).
        "comment_node_id": _opt_str(comment, "node_id"),
        "issue_node_id": _opt_str(issue, "node_id"),
        "association": _opt_str(comment, "author_association"),
        # Signed with the body: a replay under a fresh delivery id carries the same time (bot/queue/dedupe.py).
        "created_at": _opt_str(comment, "created_at"),
    }
    return Routed((Job("command", installation_id, repo, delivery_id, data),), f"command {command.name}")


def _pr_closed(payload: Mapping[str, Any], installation_id: int, delivery_id: str) -> Routed:
    repo = _str(_obj(payload, "repository"), "full_name", "repository")
    pr = _obj(payload, "pull_request")
    head = _obj(pr, "head")
    head_repo = _opt_obj(head, "repo")
    if head.get("ref") != BOT_BRANCH or head_repo is None or head_repo.get("full_name") != repo:
        return _ignored("closed pull request is not the bot's")
    data = {"number": _int(pr, "number", "pull_request"), "merged": pr.get("merged") is True}
    return Routed((Job("pr_closed", installation_id, repo, delivery_id, data),), "bot pull request closed")


_HANDLERS = {
    ("installation", "created"): _install,
    ("installation_repositories", "added"): _repositories_added,
    ("push", None): _push,
    ("issue_comment", "created"): _comment,
    ("pull_request", "closed"): _pr_closed,
}
