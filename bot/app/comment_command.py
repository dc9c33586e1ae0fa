"""Parse the `/ecr-cache` command at the start of an issue or PR comment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

PREFIX = "/ecr-cache"
# A command comment older than this is not answered at all: the queue keeps each comment's claim (which job
# answers it, bot/queue/dedupe.py) a little longer, so a replay after its claim expired finds nothing to do.
MAX_AGE = 7 * 24 * 3600.0
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
    rest = first[len(PREFIX) :]
    if rest and not rest[0].isspace():
        return None  # `/ecr-cachex` is some other command
    words = rest.split()
    word = words[0].lower() if words else ""
    if word in SUBCOMMANDS:
        return Command(SUBCOMMANDS[word])
    return Command("help", unknown=words[0][:40])


def too_old(created_at: object, at: float) -> bool:
    """True when the comment's signed `created_at` is older than `MAX_AGE` at ``at`` (False when absent)."""
    if not isinstance(created_at, str):
        return False
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return at - created.timestamp() > MAX_AGE
