"""Lifecycle-policy and IAM-policy JSON for the cache repository, and the one-time setup commands."""

from __future__ import annotations

from bot.core.model import AwsSetup, BuildLink, Options, RepoSnapshot


def aws_setup(snapshot: RepoSnapshot, options: Options, builds: tuple[BuildLink, ...]) -> AwsSetup | None:
    """Return the one-time AWS setup for these builds (stub)."""
    return None
