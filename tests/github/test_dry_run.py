"""The dry-run gateway: every read reaches the wrapped gateway, no write does; each write is a log line (or nothing)."""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest

from bot.github import dry_run
from bot.github.dry_run import FAKE_SHA, DryRunGateway
from bot.github.gateway import Comment, FileWrite, Gateway, Issue, TreeFile

FILE = TreeFile("a.txt", "100644", "a" * 40, 3)
COMMENTS = (Comment(5, "old", "IC_5"),)


class Recorder:
    """Answers every method with a tagged value and records the call (what the wrapper sent on)."""

    installation_id = 7
    rate_limit_remaining = 42

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return ("answer", name)

        return call


READS: dict[str, tuple[Any, ...]] = {
    "list_installation_repos": (),
    "read_state": ("o/r", 3, (FILE,), "dev"),
    "has_seen": ("o/r",),
    "read_tree": ("o/r", "t" * 40),
    "read_tree_at": ("o/r", "main"),
    "read_blobs": ("o/r", [FILE]),
    "read_org_config": ("o",),
    "permission": ("o/r", "dev"),
    "find_issue": ("o/r", "title", "<!-- marker -->"),
}
# method: (arguments, the log line's fields, the placeholder answered)
WRITES: dict[str, tuple[tuple[Any, ...], dict[str, Any], Any]] = {
    "react": (("o/r", 11, "eyes"), {"write": "react", "repo": "o/r", "comment_id": 11}, None),
    "upsert_comment": (
        ("o/r", 4, "k", "body", COMMENTS),
        {"write": "comment", "repo": "o/r", "issue": 4, "key": "k"},
        0,
    ),
    "react_and_reply": (
        ("I_1", "IC_2", "k", "body", COMMENTS),
        {"write": "react_and_reply", "issue": "I_1", "key": "k"},
        None,
    ),
    "commit": (
        ("o/r", "b" * 40, "c" * 40, [FileWrite("x.yml", "x"), FileWrite("y/z", "z")], "msg"),
        {"write": "commit", "repo": "o/r", "files": ["x.yml", "y/z"]},
        FAKE_SHA,
    ),
    "create_branch": (("o/r", "d" * 40), {"write": "create_branch", "repo": "o/r"}, None),
    "move_branch": (("o/r", "d" * 40), {"write": "move_branch", "repo": "o/r"}, None),
    "delete_branch": (("o/r",), {"write": "delete_branch", "repo": "o/r"}, None),
    "create_pull": (("o/r", "main", "t", "b", True), {"write": "create_pull", "repo": "o/r", "draft": True}, (0, "")),
    "update_pull": (("o/r", 9, "t", "b"), {"write": "update_pull", "repo": "o/r", "number": 9}, None),
    "add_labels": (("o/r", 9, ("ci",)), {"write": "add_labels", "repo": "o/r", "number": 9, "labels": ["ci"]}, None),
    "add_assignees": (
        ("o/r", 9, ("ann",)),
        {"write": "add_assignees", "repo": "o/r", "number": 9, "assignees": ["ann"]},
        None,
    ),
    "request_reviewers": (
        ("o/r", 9, ("bob",), ("team",)),
        {"write": "request_reviewers", "repo": "o/r", "number": 9},
        None,
    ),
    "create_issue": (
        ("o/r", "t", "body"),
        {"write": "create_issue", "repo": "o/r", "title": "t"},
        Issue(0, "body", ""),
    ),
    "update_issue": (("o/r", 9), {"write": "update_issue", "repo": "o/r", "number": 9, "close": False}, None),
}
ATTRIBUTES = {"installation_id": 7, "rate_limit_remaining": 42}


def _protocol_members() -> set[str]:
    return {name for name in vars(Gateway) if not name.startswith("_")}


def test_every_protocol_member_is_defined_by_the_wrapper_itself_and_tested_here() -> None:
    members = _protocol_members()
    assert members == set(READS) | set(WRITES) | set(ATTRIBUTES) | {"paced"}
    assert members <= set(vars(DryRunGateway))  # defined on the class, not found through `__getattr__`
    assert "__getattr__" not in vars(DryRunGateway)


@pytest.mark.parametrize("name", sorted(set(READS) | set(WRITES)))  # `paced`: a context manager, mypy checks it
def test_signatures_match_the_protocol(name: str) -> None:
    assert inspect.signature(getattr(DryRunGateway, name)) == inspect.signature(getattr(Gateway, name))


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    lines: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(dry_run, "log_event", lambda event, **fields: lines.append((event, fields)))
    return lines


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_reach_the_wrapped_gateway(name: str, logged: list[Any]) -> None:
    inner = Recorder()
    answer = getattr(DryRunGateway(cast(Gateway, inner)), name)(*READS[name])
    assert answer == ("answer", name)
    assert inner.calls == [(name, READS[name], {})]
    assert logged == []


@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_are_logged_and_never_sent(name: str, logged: list[Any]) -> None:
    inner = Recorder()
    args, fields, placeholder = WRITES[name]
    assert getattr(DryRunGateway(cast(Gateway, inner)), name)(*args) == placeholder
    assert inner.calls == []
    assert logged == [("dry_run", fields)]


@pytest.mark.parametrize("name", sorted(WRITES))
def test_quiet_writes_leave_no_line(name: str, logged: list[Any]) -> None:
    inner = Recorder()
    args, _, placeholder = WRITES[name]
    assert getattr(DryRunGateway(cast(Gateway, inner), quiet=True), name)(*args) == placeholder
    assert inner.calls == [] and logged == []


def test_closing_an_issue_is_logged_as_such(logged: list[Any]) -> None:
    DryRunGateway(cast(Gateway, Recorder())).update_issue("o/r", 2, body="new", close=True)
    assert logged == [("dry_run", {"write": "update_issue", "repo": "o/r", "number": 2, "close": True})]


def test_paced_reserves_nothing() -> None:
    inner = Recorder()
    with DryRunGateway(cast(Gateway, inner)).paced(1_000):
        pass
    assert inner.calls == []


def test_installation_and_rate_limit_are_the_wrapped_gateways() -> None:
    inner = Recorder()
    gw = DryRunGateway(cast(Gateway, inner))
    assert (gw.installation_id, gw.rate_limit_remaining) == (7, 42)
    inner.rate_limit_remaining = 3
    assert gw.rate_limit_remaining == 3
