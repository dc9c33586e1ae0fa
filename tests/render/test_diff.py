"""The one unified diff: the CLI's `plan --diff` and the `/ecr-cache preview` reply show the same, correct diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.core.model import FileEdit, Plan
from bot.render import comments, report

# (original, content): every combination of a final newline before and after, plus a created file without one.
NO_FINAL_NEWLINE = [
    pytest.param("FROM a\nRUN b", "FROM a\nRUN b\nRUN c\n", id="newline-added"),
    pytest.param("FROM a\nRUN b\n", "FROM a\nRUN c", id="newline-dropped"),
    pytest.param("FROM a\nRUN b", "FROM a\nRUN c", id="neither-has-one"),
    pytest.param("x", "y", id="one-line-each"),
]


def _preview_diff(edits: list[FileEdit]) -> str:
    """The diff block of the `/ecr-cache preview` reply, as GitHub shows it."""
    text = comments.preview("o/r", edits)
    return text.split("```diff\n", 1)[1].split("\n```\n", 1)[0]


@pytest.mark.parametrize(("original", "content"), NO_FINAL_NEWLINE)
def test_preview_diff_is_the_cli_diff_when_a_file_has_no_final_newline(original: str, content: str) -> None:
    edits = [FileEdit("Dockerfile", "modify", content, original)]
    assert _preview_diff(edits) == report.unified_diff(Plan(edits=tuple(edits)))


def test_preview_marks_the_removed_line_that_had_no_newline() -> None:
    text = _preview_diff([FileEdit("Dockerfile", "modify", "FROM a\nRUN b\nRUN c\n", "FROM a\nRUN b")])
    # Each line of a unified diff is its own line: the marker follows the line it is about.
    assert "-RUN b\n\\ No newline at end of file\n+RUN b\n+RUN c\n" in text
    assert "-RUN b+RUN b" not in text


@pytest.mark.parametrize(("original", "content"), NO_FINAL_NEWLINE)
def test_preview_diff_applies_with_git(tmp_path: Path, original: str, content: str) -> None:
    (tmp_path / "Dockerfile").write_text(original)
    patch = tmp_path / "change.patch"
    patch.write_text(_preview_diff([FileEdit("Dockerfile", "modify", content, original)]))
    subprocess.run(["git", "apply", "change.patch"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "Dockerfile").read_text() == content


def test_created_file_without_final_newline_diffs_against_dev_null() -> None:
    edits = [FileEdit(".dockerignore", "create", ".git", None)]
    assert (
        _preview_diff(edits)
        == report.unified_diff(Plan(edits=tuple(edits)))
        == ("--- /dev/null\n+++ b/.dockerignore\n@@ -0,0 +1 @@\n+.git\n\\ No newline at end of file\n")
    )
