"""The bot's comments: every kind says something, and a kind nobody wrote fails loudly instead of posting nothing."""

from __future__ import annotations

import inspect

import pytest

from bot import identity
from bot.core.model import FileEdit, Finding
from bot.render import comments, diff, templates
from bot.render import pull_request as pr_body

# Each kind the handlers post, with the context they pass (bot/app/handlers.py).
KINDS: dict[str, dict[str, object]] = {
    "pr_opened": {"pr_url": "https://github.test/o/r/pull/1", "summary": "1 file changed (`buildspec.yml`)"},
    "pr_updated": {"pr_url": "https://github.test/o/r/pull/1", "summary": "1 file changed (`buildspec.yml`)"},
    "pr_current": {"pr_url": "https://github.test/o/r/pull/1", "summary": "1 file changed (`buildspec.yml`)"},
    "already": {"repo": "o/r", "default_branch": "main", "checked": ["buildspec `buildspec.yml`"], "findings": []},
    "nothing": {"repo": "o/r", "findings": [Finding("buildspec.yml", "warning", "c", "m")]},
    "preview": {"repo": "o/r", "edits": [FileEdit("a", "modify", "b\n", "a\n")], "diff": "-a\n+b\n"},
    "refusal": {"user": "mallory", "repo": "o/r", "permission": "read"},
    "help": {"unknown": ""},
    "closed": {"repo": "o/r", "deleted": True},
    "human_edits": {"repo": "o/r"},
    "human_edits_reply": {"pr_url": "https://github.test/o/r/pull/1"},
    "opted_out": {"repo": "o/r"},
    "disabled": {"repo": "o/r"},
    "failed": {"repo": "o/r", "status": 403, "message": "Resource not accessible by integration"},
    "skipped": {"repo": "o/r", "why": "archived"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_comment_kind_says_something(kind: str) -> None:
    text = pr_body.render_comment(kind, **KINDS[kind])
    assert text.strip(), kind
    assert text.endswith("\n") and not text.endswith("\n\n")


@pytest.mark.parametrize("kind", ["", "pr_closed", "Help", "no_such_kind"])
def test_an_unknown_comment_kind_is_an_error_naming_it_not_a_blank_comment(kind: str) -> None:
    with pytest.raises(ValueError, match=f"unknown comment kind {kind!r}"):
        pr_body.render_comment(kind, repo="o/r")


def test_each_comment_is_one_function_and_one_macro() -> None:
    """Every macro of comment.md.j2 (but the shared finding line) has its function, and every kind reaches one."""
    module = templates.env.get_template("comment.md.j2").module
    macros = {name for name in vars(module) if not name.startswith("_")} - {"finding"}
    functions = {name for name, value in vars(comments).items()
                 if inspect.isfunction(value) and value.__module__ == comments.__name__ and not name.startswith("_")}
    assert macros == functions - {"preview_of_diff"}
    assert set(pr_body.COMMENT_KINDS) == set(KINDS)


def test_typed_comments_say_what_they_are_given() -> None:
    finding = Finding("ci/buildspec.yml", "warning", "get-login-replaced", "`aws ecr get-login`\n   replaced")
    assert comments.pr_opened("https://github.test/o/r/pull/1", "1 file changed").startswith(
        "Opened https://github.test/o/r/pull/1: 1 file changed")
    assert "- **warning** `ci/buildspec.yml` (get-login-replaced): `aws ecr get-login` replaced\n" in (
        comments.nothing_to_change("o/r", [finding]))
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
