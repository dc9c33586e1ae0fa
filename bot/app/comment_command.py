"""Parse the `/ecr-cache` command at the start of an issue or PR comment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "/ecr-cache"
Subcommand = Literal["open", "preview", "recreate", "help"]
SUBCOMMANDS: dict[str, Subcommand] = {"": "open", "preview": "preview", "recreate": "recreate", "help": "help"}


@dataclass(frozen=True)
class Command:
    """One parsed command; ``unknown`` holds a word that is not a subcommand (answered with help)."""

    name: Subcommand
    unknown: str | None = None


def parse_command(body: object) -> Command | None:
    """Return the command when the comment's first line starts with `/ecr-cache`, else ``None``."""
    if not isinstance(body, str):
        return None
    first = body.lstrip("\ufeff").lstrip().split("\n", 1)[0].strip()
    if not first.lower().startswith(PREFIX):
        return None
    rest = first[len(PREFIX):]
    if rest and not rest[0].isspace():
        return None  # `/ecr-cachex` is some other command
    words = rest.split()
    word = words[0].lower() if words else ""
    if word in SUBCOMMANDS:
        return Command(SUBCOMMANDS[word])
    return Command("help", unknown=words[0][:40])
