"""Frozen dataclasses shared by the planner, the CLI and the GitHub App (the core's contract)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.core.findings import Code

Level = Literal["info", "warning", "error"]
Action = Literal["create", "modify"]
CacheMode = Literal["max", "min"]
OutputMode = Literal["push", "load", "none"]
CacheErrors = Literal["ignore", "fatal"]
# Renovate's `:ignoreModulesAndTests` folders (https://docs.renovatebot.com/presets-default/#ignoremodulesandtests);
# `ignore_paths` in the repo config replaces them, as Renovate's `ignorePaths` does.
DEFAULT_IGNORE_PATHS = (
    "**/node_modules/**",
    "**/vendor/**",
    "**/test/**",
    "**/tests/**",
    "**/__tests__/**",
    "**/__fixtures__/**",
    "**/examples/**",
)


@dataclass(frozen=True)
class RepoSnapshot:
    """What the planner sees of a repository: every path, and the text of the files it asked for."""

    paths: tuple[str, ...]
    files: Mapping[str, str]
    config_text: str | None = None
    default_branch: str = "main"
    # The GitHub repository (`owner/name`), or a checkout's folder name; names the default cache repository.
    repository: str | None = None

    def text(self, path: str) -> str | None:
        """Return the text of ``path`` if it was read, else ``None``."""
        return self.files.get(path)


@dataclass(frozen=True)
class Options:
    """Settings of one planning run (repo config `.github/ecr-cache.yml` merged with CLI flags)."""

    region: str | None = None
    cache_repository: str | None = None
    cache_tag: str = "cache"
    mode: CacheMode = "max"
    lifecycle_days: int = 14
    buildspec_paths: tuple[str, ...] = ()
    dockerfile_paths: tuple[str, ...] = ()
    reorder: bool = True
    # Reorder Node and PHP installs that have no lock file (they then refresh only when the manifest changes).
    reorder_unlocked: bool = True
    dockerignore: bool = True
    builder_image: str | None = None
    builder_name: str = "ecr-cache"
    enabled: bool = True
    account_id: str | None = None
    image_repository: str | None = None
    install: str | None = None
    # "ignore": a failed cache export or a builder that cannot start never fails the build; "fatal": it does.
    cache_errors: CacheErrors = "ignore"
    # Globs of folders and files whose buildspecs and Dockerfiles discovery leaves out (paths in
    # `buildspec_paths`/`dockerfile_paths` are still taken).
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE_PATHS
    # The bot pull request, as Renovate's and Dependabot's settings of the same names.
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    team_reviewers: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    draft: bool = False
    # Where each key set in a config file came from: (key, file), in the file's order (the PR body lists them).
    sources: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Finding:
    """Something the reviewer must know: why a file was left alone, a risk, a one-time setup step."""

    path: str
    level: Level
    code: Code
    message: str
    # The 1-based line of ``path`` the finding is about, where the planner knows it (`--json`, annotations).
    line: int | None = None


# A finding before the planner knows its path: (level, code, message).
Note = tuple[Level, Code, str]


@dataclass(frozen=True)
class FileEdit:
    """One whole-file change: ``original`` is ``None`` for a created file."""

    path: str
    action: Action
    content: str
    original: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenFile:
    """A file a buildspec command writes into the source tree before a build reads it."""

    path: str
    where: str
    output: bool = False


@dataclass(frozen=True)
class BuildLink:
    """One `docker build` command in a buildspec and what it builds."""

    buildspec: str
    phase: str
    command_index: int
    line: int
    dockerfile: str | None
    context: str | None
    cache_tag: str
    output: OutputMode = "none"
    unresolved: tuple[str, ...] = ()
    volatile_args: tuple[str, ...] = ()
    target: str | None = None
    written_before: tuple[WrittenFile, ...] = ()
    unknown_args: tuple[str, ...] = ()
    # Where `--no-cache` comes from (the flag, or a variable that expands to it); empty when the build has none.
    no_cache: str = ""
    # True when the build runs with the registry cache once the plan is merged (set up before, or by this plan);
    # False when its buildspec line is left as it is (refused: a secret would reach the cache, nothing to gain, ...).
    cached: bool = True
    # Private ECR images its Dockerfile starts FROM (ARG defaults and `--build-arg` values expanded).
    base_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class CacheStep:
    """One Dockerfile instruction and whether it re-runs on a change."""

    stage: str
    line: int
    instruction: str
    reruns_on_source_change: bool
    reruns_on_manifest_change: bool
    reason: str = ""
    # Cheap to run again (mkdir, chown, useradd, a copy of context files): reusing it saves nothing.
    trivial: bool = False
    # False when the step re-runs on a source-only change only in the table's worst case (it follows a copy of a
    # file that is neither a known manifest nor surely source, such as a config or `worker-requirement.txt`).
    certain: bool = True


@dataclass(frozen=True)
class CacheTable:
    """Before/after view of which steps of one Dockerfile re-run on a source-only change."""

    dockerfile: str
    before: tuple[CacheStep, ...]
    after: tuple[CacheStep, ...]

    @property
    def saved_on_source_change(self) -> int:
        """Steps that re-ran before and are cached after, on a source-only change."""
        rerun_before = sum(1 for s in self.before if s.reruns_on_source_change)
        rerun_after = sum(1 for s in self.after if s.reruns_on_source_change)
        return max(0, rerun_before - rerun_after)


@dataclass(frozen=True)
class AwsSetup:
    """One-time AWS setup the PR body explains."""

    region: str
    cache_repository: str
    image_repositories: tuple[str, ...]
    lifecycle_policy_json: str
    iam_policy_json: str
    commands: tuple[str, ...]
    cache_repositories: tuple[str, ...] = ()
    account_id: str | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Everything one planning run decided: the file edits and the report."""

    edits: tuple[FileEdit, ...] = ()
    findings: tuple[Finding, ...] = ()
    builds: tuple[BuildLink, ...] = ()
    cache_tables: tuple[CacheTable, ...] = ()
    setup: AwsSetup | None = None
    buildspecs: tuple[str, ...] = ()
    dockerfiles: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when no file would change."""
        return not self.edits

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the edits, stable across runs: the PR body marker compares it."""
        digest = hashlib.sha256()
        for edit in sorted(self.edits, key=lambda e: e.path):
            digest.update(edit.path.encode())
            digest.update(b"\0")
            digest.update(edit.action.encode())
            digest.update(b"\0")
            digest.update(edit.content.encode("utf-8", "surrogateescape"))
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class PartialPlan:
    """What one planning stage (buildspecs, Dockerfiles, .dockerignore) contributes to a Plan."""

    edits: tuple[FileEdit, ...] = ()
    findings: tuple[Finding, ...] = ()
    builds: tuple[BuildLink, ...] = ()
    cache_tables: tuple[CacheTable, ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)
