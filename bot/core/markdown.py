"""Markdown helpers for the texts the bot writes about user files."""

from __future__ import annotations

import re


def code_span(text: str) -> str:
    """``text`` as one inline code span, whatever backticks it holds (CommonMark: a longer backtick fence)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
