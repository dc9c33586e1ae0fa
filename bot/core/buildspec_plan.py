"""Plan the buildspec edits (stub: owned by the buildspec work)."""

from __future__ import annotations

from bot.core.discover import Discovery
from bot.core.model import Options, PartialPlan, RepoSnapshot


def plan_buildspecs(snapshot: RepoSnapshot, options: Options, found: Discovery) -> PartialPlan:
    """Return buildspec edits, findings and the BuildLinks of every `docker build`."""
    return PartialPlan()
