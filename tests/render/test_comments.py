"""The bot's comments: one function per macro of comment.md.j2, and none of them ever posts a blank comment."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from bot import identity
from bot.core.model import FileEdit, Finding
from bot.render import comments, diff, templates

URL = "https://github.test/o/r/pull/1"
WARNING = Finding("buildspec.yml", "warning", "c", "m")
# Each comment function, with the arguments of each way the bot calls it: the smallest ones included (empty
# summaries, findings, urls, diffs), since an empty argument must not make an empty comment.
CASES: dict[Callable[..., str], list[tuple[object, ...]]] = {
    comments.pr_opened: [(URL, "1 file changed (`buildspec.yml`)"), (URL, ""), ("", "")],
    comments.pr_updated: [(URL, "1 file changed (`buildspec.yml`)"), (URL, ""), ("", "")],
    comments.pr_current: [(URL, "1 file changed (`buildspec.yml`)"), (URL, ""), ("", "")],
    comments.already_set_up: [
        ("o/r", "main", ["buildspec `buildspec.yml`"], []),
        ("o/r", "main", [], [WARNING]),
        ("", "", [], []),
    ],
    comments.nothing_to_change: [("o/r", [WARNING]), ("o/r", []), ("", ())],
    comments.preview: [
        ("o/r", [FileEdit("a", "modify", "b\n", "a\n")]),
        ("o/r", [], [WARNING], "**Impact.**"),
        ("", []),
    ],
    comments.refusal: [("mallory", "o/r", "read"), ("", "", "")],
    comments.command_help: [(), ("frobnicate",), ("",)],
    comments.closed: [("o/r", True), ("o/r", False), ("", False)],
    comments.human_edits: [()],
    comments.human_edits_reply: [(URL,), ("",)],
    comments.opted_out: [("o/r",), ("",)],
    comments.disabled: [("o/r",), ("",)],
    comments.failed: [
        ("o/r", 403, "Resource not accessible by integration"),
        ("o/r", 0, "RuntimeError: boom"),
        ("", 0, ""),
    ],
    comments.skipped: [("o/r", "archived"), ("o/r", "")],
}


def _functions() -> set[str]:
    return {
        name
        for name, value in vars(comments).items()
        if inspect.isfunction(value) and value.__module__ == comments.__name__ and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("render", "args"),
    [(f, a) for f, calls in CASES.items() for a in calls],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_no_comment_is_ever_blank(render: Callable[..., str], args: tuple[object, ...]) -> None:
    text = render(*args)
    assert text.strip(), (render.__name__, args)
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_every_comment_function_is_in_the_table() -> None:
    assert {f.__name__ for f in CASES} == _functions()


def test_each_comment_is_one_function_and_one_macro() -> None:
    """Every macro of comment.md.j2 (but the shared finding line) has its function, and every function its macro."""
    module = templates.env.get_template("comment.md.j2").module
    macros = {name for name in vars(module) if not name.startswith("_")} - {"finding"}
    assert macros == _functions()


def test_typed_comments_say_what_they_are_given() -> None:
    finding = Finding("ci/buildspec.yml", "warning", "get-login-replaced", "`aws ecr get-login`\n   replaced")
    assert comments.pr_opened("https://github.test/o/r/pull/1", "1 file changed").startswith(
        "Opened https://github.test/o/r/pull/1: 1 file changed"
    )
    assert "- **warning** `ci/buildspec.yml` (get-login-replaced): `aws ecr get-login` replaced\n" in (
        comments.nothing_to_change("o/r", [finding])
    )
    assert "- No CodeBuild buildspec that runs `docker build` was found." in comments.nothing_to_change("o/r", [])
    assert "you have **triage**" in comments.refusal("mallory", "o/r", "triage")
    assert comments.command_help("frobnicate").startswith("`frobnicate` is not an `/ecr-cache` command.\n\n")
    assert "/ecr-cache recreate" in comments.command_help() and "is not an" not in comments.command_help()
    assert f"deleted its branch `{identity.BOT_BRANCH}`" in comments.closed("o/r", deleted=True)
    assert "left the branch" in comments.closed("o/r", deleted=False)
    assert "The App needs read and write access" in comments.failed("o/r", 404, "Not Found")
    assert "GitHub answered" not in comments.failed("o/r", 0, "RuntimeError: boom")


def test_preview_builds_its_own_diff() -> None:
    edits = [FileEdit("Dockerfile", "modify", "FROM a\nRUN c\n", "FROM a\nRUN b"), FileEdit("x", "create", "```\n")]
    text = comments.preview("o/r", edits, head="**Impact.**\n")
    assert text.startswith("Preview of the pull request for **o/r** (nothing was created):\n\n**Impact.**\n")
    assert "<summary>2 files would change</summary>" in text
    assert diff.for_markdown(diff.unified_diff(edits)) in text
    assert "-RUN b\n\\ No newline at end of file\n+RUN c\n" in text


def test_a_huge_preview_is_cut_with_its_block_closed() -> None:
    edits = [FileEdit("Dockerfile", "modify", "\n".join(f"RUN {i}" for i in range(20000)), "FROM x\n")]
    text = comments.preview("o/r", edits, diff_limit=200_000)
    assert len(text) <= templates.MAX_BODY
    assert text.endswith("\n```\n</details>\n\n_Cut to fit GitHub's comment size limit._\n")
