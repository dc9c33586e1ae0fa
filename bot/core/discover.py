"""Find buildspecs and Dockerfiles in a file listing (stub: owned by the buildspec work)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.model import Finding, Options, RepoSnapshot


@dataclass(frozen=True)
class Discovery:
    """Files the planner will look at, and files it rejected with a reason."""

    buildspecs: tuple[str, ...] = ()
    dockerfiles: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()


def discover(snapshot: RepoSnapshot, options: Options) -> Discovery:
    """Return the CodeBuild buildspecs and Dockerfiles of the snapshot."""
    return Discovery()


def paths_to_read(paths: tuple[str, ...], options: Options) -> tuple[str, ...]:
    """Return the paths whose contents the planner needs."""
    return ()
