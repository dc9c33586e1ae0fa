"""How the command line's text output looks: colour on a terminal, and the width prose wraps at."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

# SGR colours (https://en.wikipedia.org/wiki/ANSI_escape_code#SGR): only when the CLI writes to a terminal.
_SGR = {"add": "32", "remove": "31", "hunk": "36", "header": "1", "error": "31", "warning": "33", "info": "36"}


@dataclass(frozen=True)
class Style:
    """How the text output looks: colour (a terminal without NO_COLOR) and the width to wrap prose at."""

    colour: bool = False
    width: int | None = None

    def paint(self, text: str, kind: str) -> str:
        """``text`` in the colour of ``kind`` (unchanged without colour)."""
        return f"\x1b[{_SGR[kind]}m{text}\x1b[0m" if self.colour else text

    def wrap(self, line: str) -> list[str]:
        """``line`` wrapped to the width, continuation lines indented under its text; whole without a width."""
        if self.width is None or len(line) <= self.width:
            return [line]
        lead = line[: len(line) - len(line.lstrip(" "))]
        # Long words (URLs, paths, commands in backticks) are never split: they stay copy-pasteable.
        return textwrap.wrap(
            line,
            self.width,
            initial_indent="",
            subsequent_indent=lead + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [line]


PLAIN = Style()
