"""Which Dockerfile steps re-run when only the application source, or only a manifest, changes.

Layer-cache model (BuildKit and the classic builder agree here): a COPY/ADD misses when any file it
copies changed; once a step misses, every later step of its stage misses; a stage built `FROM` another
stage, or that `COPY --from`s it, misses from there when that stage missed; a RUN after an `ARG` whose
value changed misses (https://docs.docker.com/build/building/variables/#impact-on-build-caching).

A "source-only change" is the worst case of a commit that touches no dependency manifest: every COPY/ADD of
a file that is not a manifest (by name) counts as changed, config files included, so before and after are
compared on the same footing. "Application source" means exactly that: any file that is not a dependency
manifest. A COPY's key is the checksum of the files it copies, not their mtimes
(https://docs.docker.com/build/cache/invalidation/).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re

from bot.core.dockerfile.args import NAMES_ONLY, ArgFacts, references, volatile_name
from bot.core.dockerfile.parse import Dockerfile, Instruction, Stage, split_words
from bot.core.dockerfile.reorder import copy_parts
from bot.core.ecosystems import is_manifest_name
from bot.core.markdown import code_span
from bot.core.model import CacheStep, CacheTable
from bot.core.shell.run_commands import run_commands

STEP_KEYWORDS = ("RUN", "COPY", "ADD")
_WHOLE = {".", "./", "/", "*"}


def _label(stage: Stage) -> str:
    return stage.name or str(stage.index)


def _sources(inst: Instruction) -> list[str] | None:
    """Context sources of a COPY/ADD or a RUN bind mount; None when it reads no context file."""
    if inst.keyword == "RUN":
        out = []
        for flag in inst.flags:
            if flag.startswith("--mount") and "type=bind" in flag and "from=" not in flag:
                opts = dict(p.split("=", 1) for p in flag.split("=", 1)[1].split(",") if "=" in p)
                out.append(opts.get("source", opts.get("src", ".")))
        return out or None
    if inst.flag("from") is not None or inst.heredocs:
        return None
    parts = copy_parts(inst)
    if parts is None:
        return None
    return [s for s in parts[0] if "://" not in s] or None


# Commands that take no time worth caching: file modes and owners, users and groups, folders and links.
_CHEAP = frozenset(
    {
        "mkdir",
        "chmod",
        "chown",
        "chgrp",
        "ln",
        "addgroup",
        "adduser",
        "groupadd",
        "useradd",
        "usermod",
        "touch",
        "echo",
        "printf",
        "true",
        "rm",
        "mv",
        "cp",
        "cd",
        "set",
        "export",
    }
)


def is_trivial(inst: Instruction) -> bool:
    """True when running ``inst`` again costs nothing worth caching: a copy of context files, or a RUN of
    only cheap commands (`mkdir`, `chown`, `adduser`, `ln`, ...)."""
    if inst.keyword in ("COPY", "ADD"):
        return _sources(inst) is not None
    if inst.keyword != "RUN" or inst.flags:
        return False
    commands = run_commands(inst)
    return bool(commands) and all(c.name in _CHEAP for c in commands or ())


def reuses_nothing(steps: tuple[CacheStep, ...]) -> bool:
    """True when a source-only change re-runs every step that is not trivial (also: no steps at all)."""
    return all(s.reruns_on_source_change and s.certain or s.trivial for s in steps)


def all_rerun(table: CacheTable, reason: str) -> CacheTable:
    """The table of a Dockerfile whose every build runs with `--no-cache`: every step re-runs, always."""

    def rerun(steps: tuple[CacheStep, ...]) -> tuple[CacheStep, ...]:
        return tuple(
            dataclasses.replace(
                s,
                reruns_on_source_change=True,
                reruns_on_manifest_change=True,
                certain=True,
                reason=reason if n == 0 else "",
            )
            for n, s in enumerate(steps)
        )

    return dataclasses.replace(table, before=rerun(table.before), after=rerun(table.after))


# Files a source-only change surely touches: code, web pages and artifacts built from code.
_SOURCE_SUFFIXES = frozenset(
    {
        "py",
        "js",
        "mjs",
        "cjs",
        "ts",
        "tsx",
        "jsx",
        "go",
        "java",
        "kt",
        "scala",
        "groovy",
        "rb",
        "php",
        "cs",
        "fs",
        "rs",
        "c",
        "cc",
        "cpp",
        "h",
        "hpp",
        "swift",
        "dart",
        "ex",
        "exs",
        "erl",
        "clj",
        "html",
        "htm",
        "css",
        "scss",
        "vue",
        "svelte",
        "jar",
        "war",
        "ear",
        "pyc",
        "sh",
    }
)


def _surely_source(src: str) -> bool:
    """A folder, a glob or a code file: not a config or a manifest the bot does not know by name."""
    name = posixpath.basename(src.rstrip("/"))
    return src.endswith("/") or "." not in name or name.rsplit(".", 1)[1].lower() in _SOURCE_SUFFIXES


def _changed(sources: list[str], kind: str) -> bool:
    """``kind``: "source" (the table's worst case), "sure" (only what a source change surely touches), "manifest"."""
    for src in sources:
        whole = src in _WHOLE or posixpath.normpath(src) == "."
        manifest = is_manifest_name(src)
        if kind == "source" and (whole or not manifest):
            return True
        if kind == "sure" and (whole or not manifest and _surely_source(src)):
            return True
        if kind == "manifest" and (whole or manifest):
            return True
    return False


def _mounted_stages(inst: Instruction, df: Dockerfile, stage: Stage) -> list[Stage]:
    """Earlier stages a RUN mounts with `--mount=...,from=<stage>`."""
    out = []
    for flag in inst.flags:
        m = re.search(r"(?:^|,)from=([^,\s]+)", flag.split("=", 1)[1] if flag.startswith("--mount=") else "")
        ref = df.stage_ref(m.group(1), stage.index) if m else None
        if ref is not None:
            out.append(ref)
    return out


def built_stages(df: Dockerfile, targets: tuple[str | None, ...]) -> set[int]:
    """Indexes of the stages BuildKit builds for these `--target`s and their dependencies.

    None stands for a build without `--target`: BuildKit builds the last stage and what it needs
    (https://docs.docker.com/build/building/multi-stage/#differences-between-legacy-builder-and-buildkit).
    No targets at all (a Dockerfile no buildspec builds) counts every stage.
    """
    if not targets or not df.stages:
        return {stage.index for stage in df.stages}
    wanted = [df.stages[-1] if t is None else df.stage_ref(t, len(df.stages)) for t in targets]
    if any(s is None for s in wanted):
        return {stage.index for stage in df.stages}
    seen: set[int] = set()
    while wanted:
        stage = wanted.pop()
        assert stage is not None
        if stage.index in seen:
            continue
        seen.add(stage.index)
        refs = [df.stage_ref(stage.base, stage.index)]
        for inst in df.stage_instructions(stage)[1:]:
            if inst.keyword in ("COPY", "ADD") and inst.flag("from") is not None:
                refs.append(df.stage_ref(inst.flag("from") or "", stage.index))
            elif inst.keyword == "RUN":
                refs.extend(_mounted_stages(inst, df, stage))
        wanted.extend(r for r in refs if r is not None)
    return seen


def _passed_per_build(inst: Instruction, facts: ArgFacts) -> str | None:
    """A credential ARG the buildspec passes a per-build value (`AWS_SESSION_TOKEN`): never moved, but it misses."""
    if inst.keyword != "ARG":
        return None
    words = split_words(inst.args)
    name = words[0].split("=", 1)[0] if len(words) == 1 else None
    return name if name in facts.per_build else None


def analyse(df: Dockerfile, kind: str, facts: ArgFacts = NAMES_ONLY) -> dict[int, tuple[bool, str]]:
    """instruction index → (re-runs, reason) for one kind of change ("source" or "manifest").

    ``facts`` says which ARGs change on every build (for sure, or by their name).
    """
    out: dict[int, tuple[bool, str]] = {}
    missed: dict[int, bool] = {}
    for stage in df.stages:
        reason = ""
        base = df.stage_ref(stage.base, stage.index)
        if base is not None and missed.get(base.index):
            reason = f"its base stage `{_label(base)}` re-runs"
        volatile: list[str] = []
        for inst in df.stage_instructions(stage)[1:]:
            if not reason:
                used = [n for n in volatile if inst.keyword == "RUN" or references(df, inst, n)]
                if used:
                    reason = (
                        f"`ARG {used[0]}` may change on every build (its name suggests a commit, build number or date)"
                        if facts.by_name(used[0])
                        else f"`ARG {used[0]}` changes on every build (the buildspec passes it a per-build value)"
                    )
                elif inst.keyword in ("COPY", "ADD") and inst.flag("from") is not None:
                    ref = df.stage_ref(inst.flag("from") or "", stage.index)
                    if ref is not None and missed.get(ref.index):
                        reason = f"it copies from stage `{_label(ref)}`, which re-runs"
                elif inst.keyword == "RUN" and any(missed.get(r.index) for r in _mounted_stages(inst, df, stage)):
                    ref = next(r for r in _mounted_stages(inst, df, stage) if missed.get(r.index))
                    reason = f"it mounts stage `{_label(ref)}`, which re-runs"
                elif inst.keyword in STEP_KEYWORDS:
                    sources = _sources(inst)
                    if sources and _changed(sources, kind):
                        what = "application source" if kind == "source" else "a dependency manifest"
                        reason = f"{code_span(' '.join(inst.line_text.split())[:60])} copies {what}"
            name = volatile_name(inst, facts) or _passed_per_build(inst, facts)
            if name:
                volatile.append(name)
            out[inst.index] = (bool(reason), reason)
        missed[stage.index] = bool(reason)
    return out


def steps(df: Dockerfile, facts: ArgFacts = NAMES_ONLY, targets: tuple[str | None, ...] = ()) -> tuple[CacheStep, ...]:
    """One CacheStep per RUN/COPY/ADD of the built stages, with the reason on each stage's first re-run."""
    source = analyse(df, "source", facts)
    sure = analyse(df, "sure", facts)
    manifest = analyse(df, "manifest", facts)
    built = built_stages(df, targets)
    out: list[CacheStep] = []
    for stage in df.stages:
        if stage.index not in built:
            continue
        first_source = first_manifest = True
        for inst in df.stage_instructions(stage)[1:]:
            if inst.keyword not in STEP_KEYWORDS:
                continue
            src, src_reason = source[inst.index]
            man, man_reason = manifest[inst.index]
            reason = ""
            if src and first_source:
                reason, first_source = src_reason, False
            elif man and first_manifest and not src:
                reason = man_reason
            if man:
                first_manifest = False
            text = " ".join(inst.line_text.split())
            out.append(
                CacheStep(
                    stage=_label(stage),
                    line=inst.lineno,
                    instruction=text[:120],
                    reruns_on_source_change=src,
                    reruns_on_manifest_change=man,
                    reason=reason,
                    trivial=is_trivial(inst),
                    certain=sure[inst.index][0] or not src,
                )
            )
    return tuple(out)


def table(
    path: str,
    before: Dockerfile,
    after: Dockerfile | None,
    facts: ArgFacts = NAMES_ONLY,
    targets: tuple[str | None, ...] = (),
) -> CacheTable:
    """The before/after cache table of one Dockerfile (after = before when unchanged)."""
    return CacheTable(
        dockerfile=path, before=steps(before, facts, targets), after=steps(after or before, facts, targets)
    )


Row = tuple[CacheStep | None, CacheStep | None]


def unchanged(t: CacheTable) -> bool:
    """True when the Dockerfile's steps are the same before and after (nothing to compare)."""
    return t.before == t.after


def paired(t: CacheTable) -> tuple[Row, ...]:
    """(before, after) rows, one per instruction, in the order of the edited Dockerfile.

    A step is matched to the first unused step of the same stage with the same text; an added step has no
    before, and a step found only before sits right below the row of the step that preceded it.
    """
    unused: dict[tuple[str, str], list[int]] = {}
    for n, step in enumerate(t.before):
        unused.setdefault((step.stage, step.instruction), []).append(n)
    rows: list[Row] = []
    row_of: dict[int, int] = {}  # before index → row
    for step in t.after:
        queue = unused.get((step.stage, step.instruction))
        if queue:
            n = queue.pop(0)
            row_of[n] = len(rows)
            rows.append((t.before[n], step))
        else:
            rows.append((None, step))
    for n in sorted(i for q in unused.values() for i in q):
        at = row_of.get(n - 1, -1) + 1 if n else 0
        rows.insert(at, (t.before[n], None))
        row_of = {k: (v + 1 if v >= at else v) for k, v in row_of.items()}
        row_of[n] = at
    return tuple(rows)
