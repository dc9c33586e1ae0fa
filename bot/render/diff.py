"""The one unified diff of a plan's edits: `ecr-cache-bot plan --diff` prints it, the preview reply quotes it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from bot.core.model import FileEdit
from bot.render.style import PLAIN, Style

NO_NEWLINE = "\\ No newline at end of file"
MARKDOWN_LIMIT = 50_000  # of the diff in a preview reply: the rest of the comment needs room too
_FENCE = "```"


def _kind(line: str) -> str | None:
    if line.startswith(("--- ", "+++ ")):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "remove"}.get(line[:1])


def unified_diff(edits: Iterable[FileEdit], style: Style = PLAIN) -> str:
    """One unified diff of every edit, as `git diff` shows it (created files diff against /dev/null)."""
    chunks: list[str] = []
    for edit in edits:
        before = (edit.original or "").splitlines(keepends=True)
        after = edit.content.splitlines(keepends=True)
        fromfile = "/dev/null" if edit.action == "create" else f"a/{edit.path}"
        for line in difflib.unified_diff(before, after, fromfile=fromfile, tofile=f"b/{edit.path}"):
            # Any line of either file may be the last one without a newline, not only the diff's last line.
            body, end = (line[:-1], "\n") if line.endswith("\n") else (line, f"\n{NO_NEWLINE}\n")
            kind = _kind(body)
            chunks.append((style.paint(body, kind) if kind else body) + end)
    return "".join(chunks)


def for_markdown(diff: str, limit: int = MARKDOWN_LIMIT) -> str:
    """``diff`` ready for a markdown ```diff block: no fence inside it, cut to ``limit`` characters."""
    text = diff.replace(_FENCE, "`\u200b``")
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n... (diff cut)\n"
