"""Plan the Dockerfile and .dockerignore edits (stub: owned by the Dockerfile work)."""

from __future__ import annotations

from bot.core.discover import Discovery
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot


def plan_dockerfiles(
    snapshot: RepoSnapshot, options: Options, builds: tuple[BuildLink, ...], found: Discovery
) -> PartialPlan:
    """Return Dockerfile/.dockerignore edits, findings and cache tables."""
    return PartialPlan()
