"""Helpers shared by the buildspec tests: run the buildspec half of the planner on text or a folder."""

from __future__ import annotations

import re
from pathlib import Path

from bot.core import discover
from bot.core.buildspec import plan as buildspec_plan
from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.verify import is_bot_line
from bot.core.model import Options, PartialPlan, RepoSnapshot

GOLDEN = Path(__file__).resolve().parent / "golden" / "buildspec"


def plan_text(
    text: str, path: str = "buildspec.yml", paths: tuple[str, ...] = ("Dockerfile",), options: Options | None = None
) -> tuple[discover.Discovery, PartialPlan]:
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


# Set by CodeBuild for every build (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html).
PREDEFINED = frozenset(
    {
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "CODEBUILD_BUILD_ARN",
        "CODEBUILD_BUILD_ID",
        "CODEBUILD_SRC_DIR",
        "CODEBUILD_RESOLVED_SOURCE_VERSION",
        "CODEBUILD_BUILD_NUMBER",
        "CODEBUILD_BATCH_BUILD_IDENTIFIER",
        "CODEBUILD_BUILD_SUCCEEDING",
        "HOME",
    }
)
_USE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_SET = re.compile(r"(?:^|[\s;&|(])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
# Variables only the bot's own lines set: never assumed to come from the project.
_BOT_SET = frozenset({"CACHE_URI", "AWS_ACCOUNT_ID"})


def _commands(data: object) -> list[tuple[str, str]]:
    phases = (data.get("phases") if isinstance(data, dict) else None) or {}
    return [
        (name, c)
        for name in ("install", "pre_build", "build", "post_build")
        for c in ((phases.get(name) or {}).get("commands") or [])
        if isinstance(c, str)
    ]


def unset_uses(text: str, original: str | None = None) -> list[str]:
    """Variables that an added line (or the cache flags of a build) reads before anything can have set them.

    Follows CodeBuild's one shell session per build, phase by phase, and its one exception: POST_BUILD
    also runs after a failed BUILD, so a value set only in `build` may be missing there.
    """
    data = by.safe_load(text)
    assert isinstance(data, dict)
    kept = {c for _, c in _commands(by.safe_load(original))} if original is not None else set()
    env = data.get("env") or {}
    known = set(PREDEFINED)
    for section in ("variables", "parameter-store", "secrets-manager"):
        known.update((env.get(section) or {}).keys())
    sequence = _commands(data)
    assigned_anywhere = {m for _, c in sequence for m in _SET.findall(c)}
    # A variable the buildspec never sets is a project variable: the build sees it from the start.
    known.update(v for _, c in sequence for v in _USE.findall(c) if v not in assigned_anywhere and v not in _BOT_SET)
    problems: list[str] = []
    set_in: dict[str, set[str]] = {}
    for phase, command in sequence:
        if command in kept:
            checked = []
        elif is_bot_line(command):
            # `${X:-default}` reads nothing that must be set.
            checked = _USE.findall(re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-", "", command))
        else:
            checked = ["CACHE_URI"] if "$CACHE_URI" in command else []
        for var in checked:
            phases_set = set_in.get(var, set())
            ok = var in known or bool(phases_set - ({"build"} if phase == "post_build" else set()))
            if not ok:
                problems.append(f"{phase}: `{var}` is read before it is set in: {command[:100]}")
        for var in _SET.findall(command):
            set_in.setdefault(var, set()).add(phase)
    return problems
