"""The reply under a command: one comment per lifecycle action, and an action word nobody handles is an error."""

from __future__ import annotations

import pytest

from bot.app.handlers import Outcome, _reply_for
from bot.app.lifecycle import Action
from bot.core.findings import Code
from bot.core.model import BuildLink, FileEdit, Finding, Plan
from bot.github.gateway import RepoState

STATE = RepoState("o/r", False, False, False, "main", "b" * 40, "t" * 40, None, None, ())
URL = "https://github.test/o/r/pull/1"
PLAN = Plan(
    edits=(FileEdit("buildspec.yml", "modify", "new\n", "old\n"),),
    findings=(Finding("buildspec.yml", "warning", Code.NO_CACHE, "replaced"),),
)
BUILT = Plan(
    builds=(BuildLink("buildspec.yml", "build", 0, 3, "Dockerfile", ".", "buildcache"),),
    buildspecs=("buildspec.yml",),
    findings=(
        Finding("Dockerfile", "info", Code.PRIVILEGED_MODE, "folded"),
        Finding("Dockerfile", "warning", Code.NO_CACHE, "uses --no-cache"),
    ),
)

# Each action, what the command reply must say (the plan the sync ended with; None: it stopped before planning).
REPLIES: dict[Action, tuple[Plan | None, str]] = {
    Action.OPEN: (PLAN, f"Opened {URL}: 1 file changed (`buildspec.yml`)"),
    Action.UPDATE: (PLAN, f"Updated {URL}: 1 file changed"),
    Action.CURRENT: (PLAN, f"{URL} is already up to date"),
    Action.ALREADY: (BUILT, "**o/r is already set up**"),
    Action.HUMAN_EDITS: (PLAN, f"has commits by someone other than the bot ({URL})"),
    Action.DISABLED: (Plan(), "disabled for o/r by `enabled: false`"),
    Action.CONFIG_ERROR: (
        Plan(findings=(Finding(".github/ecr-cache.yml", "error", Code.CONFIG_INVALID, "bad"),)),
        "(config-invalid): bad",
    ),
    Action.SKIPPED: (None, "Nothing to do: o/r is archived."),
    Action.OPTED_OUT: (None, "was closed without merging; the bot left it closed"),
    Action.MERGED_QUIET: (PLAN, "No change could be made to **o/r**"),
}


def test_every_action_has_its_reply() -> None:
    assert set(REPLIES) == set(Action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_each_action_gets_its_own_reply(action: Action) -> None:
    plan, expected = REPLIES[action]
    detail = "archived" if action is Action.SKIPPED else ""
    text = _reply_for(Outcome("o/r", action.value, URL, detail), STATE, plan)
    assert expected in text
    assert text.strip() and text.endswith("\n")


def test_already_set_up_lists_what_was_checked_but_not_the_info_notes() -> None:
    text = _reply_for(Outcome("o/r", "already"), STATE, BUILT)
    assert "- buildspec `buildspec.yml`\n" in text and "(no-cache): uses --no-cache" in text
    assert "folded" not in text


def test_already_without_builds_says_why_nothing_changed() -> None:
    text = _reply_for(Outcome("o/r", "already"), STATE, Plan())
    assert "No CodeBuild buildspec that runs `docker build` was found." in text


@pytest.mark.parametrize("word", ["", "would_open", "opted_out_noted", "previewed", "Opened"])
def test_an_action_word_without_a_reply_is_an_error_not_a_blank_comment(word: str) -> None:
    with pytest.raises(ValueError, match=repr(word)):
        _reply_for(Outcome("o/r", word), STATE, PLAN)
