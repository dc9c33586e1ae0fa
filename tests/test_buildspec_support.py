"""Helpers shared by the buildspec tests: run the buildspec half of the planner on text or a folder."""

from __future__ import annotations

from pathlib import Path

from bot.core import buildspec_plan, discover
from bot.core.model import Options, PartialPlan, RepoSnapshot

GOLDEN = Path(__file__).resolve().parent / "golden" / "buildspec"


def plan_text(text: str, path: str = "buildspec.yml", paths: tuple[str, ...] = ("Dockerfile",),
              options: Options | None = None) -> tuple[discover.Discovery, PartialPlan]:
    """Discover and plan one buildspec given as text."""
    opts = options or Options()
    snap = RepoSnapshot((path, *paths), {path: text})
    found = discover.discover(snap, opts)
    return found, buildspec_plan.plan_buildspecs(snap, opts, found)


def plan_snapshot(snap: RepoSnapshot, options: Options | None = None) -> tuple[discover.Discovery, PartialPlan]:
    """Discover and plan a whole snapshot."""
    opts = options or Options()
    found = discover.discover(snap, opts)
    return found, buildspec_plan.plan_buildspecs(snap, opts, found)


def corpus_snapshot(repo_dir: Path, trees: Path) -> RepoSnapshot:
    """A snapshot of one corpus repository: every path from its tree listing, text of what the planner reads."""
    listing = (trees / f"{repo_dir.name}.txt").read_text(encoding="utf-8").splitlines()
    paths = tuple(p.strip() for p in listing if p.strip())
    wanted = set(discover.paths_to_read(paths, Options()))
    files: dict[str, str] = {}
    for f in repo_dir.rglob("*"):
        rel = f.relative_to(repo_dir).as_posix()
        if f.is_file() and rel in wanted:
            files[rel] = f.read_bytes().decode("utf-8", "surrogateescape")
    return RepoSnapshot(paths, files)


def golden_cases() -> list[Path]:
    """Every golden case folder."""
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def read(path: Path) -> str:
    """Read text exactly (no newline translation, BOM kept)."""
    return path.read_bytes().decode("utf-8")
