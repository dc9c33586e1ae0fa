"""Plan the Dockerfile and .dockerignore edits: reorder, volatile ARGs, cache mounts, cache tables."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from bot.core import ecosystems
from bot.core.buildspec.build_args import OPAQUE
from bot.core.discover import Discovery
from bot.core.dockerfile import cachetable, dockerignore
from bot.core.dockerfile.args import ArgFacts, move_args
from bot.core.dockerfile.late_copies import LATE_MARK, late_copies
from bot.core.dockerfile.parse import Dockerfile, DockerfileParseError, parse
from bot.core.dockerfile.reorder import BuildContext, ReorderResult, reorder
from bot.core.dockerfile.verify import verify_dockerfile_edit
from bot.core.findings import Code
from bot.core.model import (
    BuildLink,
    CacheTable,
    FileEdit,
    Finding,
    Note,
    Options,
    PartialPlan,
    RepoSnapshot,
    WrittenFile,
)
from bot.core.shell.run_commands import run_commands

__all__ = ["plan_dockerfiles", "verify_dockerfile_edit", "counts"]

REORDER_PREFIX = "Dockerfile stage"
ARG_PREFIX = "Dockerfile: moved `ARG"
_MAX_ROUNDS = 6
# Cache exports hold layers only; exporting cache mounts is an open BuildKit request.
CACHE_MOUNT_DOC = "https://github.com/moby/buildkit/issues/1512"


def _norm(path: str | None) -> str:
    if not path:
        return ""
    norm = posixpath.normpath(path.lstrip("/") if not path.startswith("/") else path)
    return "" if norm in (".", "/") else norm.removeprefix("./")


@dataclass
class _Target:
    """One Dockerfile and the contexts it is built with."""

    path: str
    contexts: list[str] = field(default_factory=list)
    known: bool = False
    passed: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    targets: list[str | None] = field(default_factory=list)

    @property
    def facts(self) -> ArgFacts:
        """Build-arg facts of the Dockerfile; names alone decide when no known build reads its arguments."""
        opaque = not self.known or OPAQUE in self.unknown
        return ArgFacts(frozenset(self.passed), None if opaque else frozenset(self.unknown))


def _targets(snapshot: RepoSnapshot, builds: tuple[BuildLink, ...], found: Discovery) -> dict[str, _Target]:
    targets: dict[str, _Target] = {}
    for link in builds:
        if link.dockerfile is None or link.context is None or link.unresolved:
            continue
        path = _norm(link.dockerfile)
        target = targets.setdefault(path, _Target(path))
        ctx = _norm(link.context)
        if ctx not in target.contexts:
            target.contexts.append(ctx)
        target.known = True
        target.passed.update(link.volatile_args)
        target.unknown.update(link.unknown_args)
        if link.target not in target.targets:
            target.targets.append(link.target)
    for path in found.dockerfiles:
        target = targets.setdefault(_norm(path), _Target(_norm(path)))
        if not target.contexts:
            target.contexts.append(_norm(posixpath.dirname(_norm(path))))
    return targets


def _written_in(builds: tuple[BuildLink, ...], context: str) -> list[WrittenFile]:
    """Files written before a build of this context, as context-relative paths, each once."""
    out: dict[str, WrittenFile] = {}
    prefix = context + "/" if context else ""
    for link in builds:
        if _norm(link.context) != context:
            continue
        for w in link.written_before:
            if w.path.startswith(prefix) and w.path not in (context, prefix):
                rel = w.path[len(prefix) :]
                out.setdefault(rel, WrittenFile(rel, w.where, w.output))
    return list(out.values())


def _ignore_path(snapshot: RepoSnapshot, context: str, dockerfile: str) -> str:
    """BuildKit reads `<Dockerfile>.dockerignore` first, then `<context>/.dockerignore`."""
    specific = dockerfile + ".dockerignore"
    if specific in snapshot.paths:
        return specific
    return posixpath.join(context, ".dockerignore") if context else ".dockerignore"


def _context_paths(paths: frozenset[str], context: str) -> tuple[str, ...]:
    if not context:
        return tuple(sorted(paths))
    prefix = context + "/"
    return tuple(sorted(p[len(prefix) :] for p in paths if p.startswith(prefix)))


def _cache_mount_findings(path: str, df: Dockerfile) -> list[Finding]:
    """RUN --mount=type=cache holding the only copy of downloaded dependencies."""
    out: list[Finding] = []
    for inst in df.instructions:
        if inst.keyword != "RUN":
            continue
        targets = []
        for flag in inst.flags:
            if flag.startswith("--mount") and "type=cache" in flag:
                m = re.search(r"(?:target|dst|destination)=([^,\s]+)", flag)
                if m:
                    targets.append(m.group(1).strip("\"'"))
        if not targets:
            continue
        for cmd in run_commands(inst) or []:
            found = ecosystems.recognise(cmd)
            if found is None or found.ecosystem not in ecosystems.TABLE:
                continue
            eco = ecosystems.TABLE[found.ecosystem]
            hit = [
                t for t in targets if any(t.rstrip("/").endswith(c) or f"/{c}/" in t + "/" for c in eco.cache_targets)
            ]
            if hit:
                out.append(
                    Finding(
                        path,
                        "warning",
                        Code.DOCKERFILE_CACHE_MOUNT_ONLY,
                        (
                            f"line {inst.lineno}: `{cmd.text}` keeps the {eco.name} dependencies only in the cache "
                            "mount "
                            f"`{hit[0]}`. Cache mounts are not exported to the registry cache ({CACHE_MOUNT_DOC}), "
                            "so a "
                            f"fresh CodeBuild machine downloads them again whenever this step re-runs; download them "
                            f"into a layer first (copy the manifests and fetch the dependencies in an earlier RUN)."
                        ),
                        line=inst.lineno,
                    )
                )
                break
    return out


def plan_dockerfiles(
    snapshot: RepoSnapshot, options: Options, builds: tuple[BuildLink, ...], found: Discovery
) -> PartialPlan:
    """Return Dockerfile/.dockerignore edits, findings and cache tables."""
    paths = frozenset(snapshot.paths)
    targets = _targets(snapshot, builds, found)
    parsed: dict[str, Dockerfile] = {}
    findings: list[Finding] = []
    edits: list[FileEdit] = []
    tables: list[CacheTable] = []
    for path in sorted(targets):
        text = snapshot.text(path)
        if text is None:
            if path in paths:
                findings.append(
                    Finding(
                        path, "info", Code.DOCKERFILE_NOT_READ, "The Dockerfile was not read, so it was not analysed."
                    )
                )
            continue
        try:
            parsed[path] = parse(text)
        except DockerfileParseError as exc:
            findings.append(
                Finding(
                    path, "warning", Code.DOCKERFILE_UNPARSED, f"Left as is: the Dockerfile does not parse ({exc})."
                )
            )

    ignores: dict[str, dockerignore.Matcher] = {}  # by ignore-file path
    by_context: dict[str, list[str]] = {}
    for target in targets.values():
        if target.path in parsed:
            for ctx in target.contexts:
                by_context.setdefault(ctx, []).append(target.path)
    for ctx, dockerfiles in sorted(by_context.items()):
        ignore_path = _ignore_path(snapshot, ctx, dockerfiles[0])
        existing = snapshot.text(ignore_path)
        if ignore_path in paths and existing is None:
            findings.append(
                Finding(
                    ignore_path,
                    "warning",
                    Code.DOCKERIGNORE_NOT_READ,
                    "The .dockerignore was not read; it was neither checked nor extended.",
                )
            )
            ignores[ignore_path] = dockerignore.Matcher([])
            continue
        patterns = dockerignore.read_patterns(existing or "")
        known = any(targets[d].known for d in dockerfiles)
        specific = len({_ignore_path(snapshot, ctx, d) for d in dockerfiles}) == 1
        # Other Dockerfiles built from this folder read the same file; one not read cannot be checked.
        unread = sorted(
            t.path
            for t in targets.values()
            if t.path not in parsed
            and t.path in paths
            and ctx in t.contexts
            and _ignore_path(snapshot, ctx, t.path) == ignore_path
        )
        if options.dockerignore and known and specific and unread:
            findings.append(
                Finding(
                    ignore_path,
                    "info",
                    Code.DOCKERIGNORE_NOT_EXTENDED,
                    f"`{ignore_path}` was not extended: `{unread[0]}` builds from the same folder "
                    "and was not read, so what it copies could not be checked.",
                )
            )
        elif options.dockerignore and known and specific:

            def read(rel: str, ctx: str = ctx) -> str | None:
                return snapshot.text(posixpath.join(ctx, rel) if ctx else rel)

            written = _written_in(builds, ctx)
            ignore_text, added = dockerignore.extend(
                existing,
                [parsed[d] for d in dockerfiles],
                _context_paths(paths, ctx),
                repo_root=not ctx,
                read=read,
                written=written,
            )
            for w in dockerignore.written_into_copy([parsed[d] for d in dockerfiles], written, existing):
                findings.append(
                    Finding(
                        dockerfiles[0],
                        "info",
                        Code.WRITTEN_FILE_IN_CONTEXT,
                        (
                            f"`{w.path}` is written by {w.where} before the build, and a COPY of the whole context "
                            "brings it into the image, so that COPY and every later step re-run on every build even "
                            "when "
                            f"no source changed. It was left in the context because the image may read it; if it does "
                            f"not, add `{w.path}` to `{ignore_path}`."
                        ),
                    )
                )
            if ignore_text is not None:
                patterns = dockerignore.read_patterns(ignore_text)
                verb = "Extended" if existing is not None else "Created"
                groups: dict[str, list[str]] = {}
                for a in added:
                    groups.setdefault(a.why, []).append(f"`{a.pattern}`")
                listed = "; ".join(f"{', '.join(p)} ({why})" for why, p in groups.items())
                notes = (
                    f"{verb} `{ignore_path}` so the build context leaves out {listed}: a change there no "
                    f"longer invalidates the layer cache.",
                )
                edits.append(
                    FileEdit(
                        ignore_path,
                        "modify" if existing is not None else "create",
                        ignore_text,
                        original=existing,
                        reasons=notes,
                    )
                )
        ignores[ignore_path] = dockerignore.Matcher(patterns)

    for path in sorted(parsed):
        df = parsed[path]
        text = snapshot.text(path) or ""
        findings += _cache_mount_findings(path, df)
        target = targets[path]
        new_text: str | None = None
        reasons: list[str] = []
        if options.reorder:
            new_text, reasons, extra = _reorder_all(df, target, snapshot, paths, ignores, options.reorder_unlocked)
            findings += [Finding(path, level, code, msg) for level, code, msg in extra]
        final_df = df
        facts = target.facts
        if new_text is not None and new_text != text:
            why = verify_dockerfile_edit(text, new_text, facts)
            if why:
                findings.append(
                    Finding(
                        path,
                        "warning",
                        Code.DOCKERFILE_PROOF_FAILED,
                        f"Left as is: the reordered Dockerfile failed the check ({why}).",
                    )
                )
            else:
                final_df = parse(new_text)
                edits.append(FileEdit(path, "modify", new_text, original=text, reasons=tuple(reasons)))
        tables.append(cachetable.table(path, df, final_df, facts, tuple(target.targets)))
    return PartialPlan(edits=tuple(edits), findings=tuple(findings), cache_tables=tuple(tables))


def _reorder_all(
    df: Dockerfile,
    target: _Target,
    snapshot: RepoSnapshot,
    paths: frozenset[str],
    ignores: dict[str, dockerignore.Matcher],
    unlocked: bool = False,
) -> tuple[str | None, list[str], list[Note]]:
    """Reorder for every context the Dockerfile is built with (all must agree), then move volatile ARGs."""
    results = []
    for ctx in target.contexts:
        # Each build reads its own `<Dockerfile>.dockerignore` when there is one, else the context's file.
        ignore_path = _ignore_path(snapshot, ctx, target.path)
        matcher = ignores.get(ignore_path) or dockerignore.Matcher(
            dockerignore.read_patterns(snapshot.text(ignore_path) or "")
        )
        build_ctx = BuildContext(ctx, paths, snapshot.files, matcher.excluded, unlocked)
        results.append(_reorder_fixpoint(df, build_ctx))
    first = results[0]
    findings = list(first.findings)
    if any(r.text != first.text for r in results[1:]):
        findings.append(
            (
                "warning",
                Code.DOCKERFILE_NOT_REORDERED,
                "Not reordered: the Dockerfile is built with several contexts "
                f"({', '.join(c or '.' for c in target.contexts)}) that call for different edits.",
            )
        )
        text, reasons = None, []
    else:
        text, reasons = first.text, list(first.reasons)
    current = parse(text) if text is not None else df
    moved, arg_reasons = move_args(current, target.facts)
    if moved is not None:
        text = moved
        reasons += arg_reasons
    return text, reasons, findings


# Findings about the file as it stands (with its line numbers): only the last round's count.
_LAST_ROUND_ONLY = (
    Code.DOCKERFILE_NOT_REORDERED,
    Code.DOCKERFILE_INSTALL_AFTER_COPY,
    Code.DOCKERFILE_COPY_NOT_READ_BY_INSTALL,
)


def _reorder_fixpoint(df: Dockerfile, ctx: BuildContext) -> ReorderResult:
    """Reorder until nothing changes (one move per stage per round), so the result is idempotent."""
    total = ReorderResult()
    current = df
    kept: list[Note] = []
    for _ in range(_MAX_ROUNDS):
        outcome = reorder(current, ctx)
        if outcome.text is None:
            # Dependencies first; then copies that belong below the heavy steps after them.
            late = late_copies(current, ctx)
            outcome.text, outcome.reasons = late.text, late.reasons
            outcome.findings += late.findings
        # Notes about a move that was made stay; "not reordered" findings count only from the last round.
        total.findings = kept + [f for f in outcome.findings if f not in kept]
        if outcome.text is None:
            break
        kept += [f for f in outcome.findings if f[1] not in _LAST_ROUND_ONLY and f not in kept]
        total.text = outcome.text
        total.reasons += outcome.reasons
        current = parse(outcome.text)
    else:
        # A move still pending after the last round: planning the result again would change it (not idempotent).
        return ReorderResult(
            findings=[
                (
                    "warning",
                    Code.DOCKERFILE_NOT_REORDERED,
                    (
                        f"Not reordered: putting its copies in order takes more than {_MAX_ROUNDS} rounds of moves "
                        "(one per stage "
                        "each), and a partly reordered file would change again on the next plan; move the copies by "
                        "hand."
                    ),
                )
            ]
        )
    return total


def counts(edits: tuple[FileEdit, ...], tables: tuple[CacheTable, ...]) -> dict[str, int]:
    """Figures for the corpus benchmark, derived from a plan's edits and cache tables."""
    out = {
        "dockerfiles_reordered": 0,
        "copies_moved_late": 0,
        "args_moved": 0,
        "dockerignore_created": 0,
        "dockerignore_extended": 0,
        "steps_saved_on_source_change": sum(t.saved_on_source_change for t in tables),
    }
    for edit in edits:
        if posixpath.basename(edit.path).endswith(".dockerignore"):
            key = "dockerignore_created" if edit.action == "create" else "dockerignore_extended"
            out[key] += 1
            continue
        if any(r.startswith(REORDER_PREFIX) and LATE_MARK not in r for r in edit.reasons):
            out["dockerfiles_reordered"] += 1
        out["copies_moved_late"] += sum(1 for r in edit.reasons if LATE_MARK in r)
        out["args_moved"] += sum(1 for r in edit.reasons if r.startswith(ARG_PREFIX))
    return out
