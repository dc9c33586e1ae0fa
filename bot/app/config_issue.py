"""Config errors people can see: one issue per repository, updated while the errors change, closed once fixed."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from bot.core.model import Finding
from bot.github.gateway import Gateway, upsert_issue
from bot.identity import comment_marker
from bot.logs import log_event

TITLE = "ecr-cache: the configuration needs a fix"
MARKER = comment_marker("config-issue")
_CLEAN_MAX = 16_384
# Repositories (and the config texts) this process found valid with no issue open: a later sync of the same
# texts needs no issue lookup (one GET per repository and config change, not per push).
_clean: OrderedDict[tuple[int, str], str] = OrderedDict()
_lock = threading.Lock()


def render(repo: str, errors: Sequence[Finding]) -> str:
    """The issue body: every error with its file and line."""
    lines = [
        MARKER,
        f"The bot stopped planning **{repo}**: its configuration has errors. It changes nothing until they "
        "are fixed, then closes this issue on the next push.",
        "",
    ]
    for f in errors:
        where = f"`{f.path}`" + (f" line {f.line}" if f.line else "")
        lines.append(f"- {where}: {f.message}")
    lines += [
        "",
        "The keys, their types and an example are in the README's *Repo config* section; "
        "`schema/ecr-cache.schema.json` lets an editor check the file as you type.",
    ]
    return "\n".join(lines) + "\n"


def _key(texts: Sequence[str | None]) -> str:
    return hashlib.sha256("\0".join("-" if t is None else t for t in texts).encode()).hexdigest()


def sync(gw: Gateway, repo: str, errors: Sequence[Finding], texts: Sequence[str | None]) -> str:
    """Open, update or close the repository's config issue; returns what was done (or "none")."""
    installation = gw.installation_id
    key = (installation, repo)
    with _lock:
        known = _clean.get(key)
    if not errors and known == _key(texts):
        return "none"
    if not errors and all(t is None for t in texts):
        return "none"  # no config file: no error to have fixed (the bot never opened an issue without one)
    if not errors:
        issue = gw.find_issue(repo, TITLE, MARKER)
        _remember_clean(key, _key(texts))
        if issue is None:
            return "none"
        with gw.paced(1):
            gw.update_issue(repo, issue.number, close=True)
        log_event("config_issue", repo=repo, action="closed", issue=issue.number)
        return "closed"
    with _lock:
        _clean.pop(key, None)
    action, issue = upsert_issue(gw, repo, TITLE, MARKER, render(repo, errors))
    if action != "current":
        log_event("config_issue", repo=repo, action=action, issue=issue.number, errors=len(errors))
    return str(action)


def _remember_clean(key: tuple[int, str], value: str) -> None:
    with _lock:
        _clean[key] = value
        _clean.move_to_end(key)
        while len(_clean) > _CLEAN_MAX:
            _clean.popitem(last=False)
