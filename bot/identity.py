"""How the bot recognises its own work: branch, commit trailer, hidden markers, config paths. One place for all."""

from __future__ import annotations

import re

from bot.core.repo_config import CONFIG_PATH

__all__ = [
    "BOT_BRANCH",
    "BOT_REF",
    "COMMIT_TRAILER",
    "CONFIG_PATH",
    "ORG_CONFIG_PATH",
    "ORG_CONFIG_REPO",
    "PR_TITLE",
    "comment_marker",
    "fingerprint_marker",
    "parse_fingerprint",
]

BOT_BRANCH = "ecr-cache/setup"
BOT_REF = f"refs/heads/{BOT_BRANCH}"
# Trailer in every commit the bot makes: with the bot's noreply author it tells bot commits from human ones.
COMMIT_TRAILER = "Ecr-Cache-Bot: v1"
# The organization-wide config (install opt-in) lives in the owner's `.github` repository, at the same path.
ORG_CONFIG_REPO = ".github"
ORG_CONFIG_PATH = CONFIG_PATH
PR_TITLE = "Cache Docker layers of CodeBuild builds in Amazon ECR"
_FINGERPRINT = re.compile(r"<!-- ecr-cache-bot:v1 fingerprint=([0-9a-f]{64}) -->")


def comment_marker(key: str) -> str:
    """Hidden marker that identifies one bot comment."""
    return f"<!-- ecr-cache-bot:comment={key} -->"


def fingerprint_marker(fingerprint: str) -> str:
    """Hidden marker that ties a PR body to the plan it was made from."""
    return f"<!-- ecr-cache-bot:v1 fingerprint={fingerprint} -->"


def parse_fingerprint(body: str | None) -> str | None:
    """The plan fingerprint recorded in a bot PR body, if any."""
    match = _FINGERPRINT.search(body or "")
    return match.group(1) if match else None
