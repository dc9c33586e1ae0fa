"""Per stage: move a copy of a build output, an artifact or one source file below heavy steps that never read it."""

from __future__ import annotations

import posixpath

from bot.core.cachetable import is_trivial
from bot.core.dockerfile_parse import Dockerfile, Instruction
from bot.core.dockerfile_reorder import BuildContext, Cwd, Outcome, _classify_run, _join, _short, copy_parts, stage_cwds
from bot.core.dockerfile_splice import Splice
from bot.core.ecosystems import is_manifest_name

# Folders builds write their output to (`COPY dist/ app/`), and files that are code or built from it.
OUTPUT_FOLDERS = frozenset({"build", "build_output", "dist", "out", "output", "target", "publish", "artifacts"})
LATE_SUFFIXES = frozenset({"py", "pyc", "js", "mjs", "cjs", "jar", "war", "ear", "class", "rb", "php", "wasm"})
# Instructions a copy may pass: they neither read files nor change where or as whom a COPY writes.
_PASSABLE = frozenset({"LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "CMD", "ENTRYPOINT", "MAINTAINER", "ENV", "ARG"})
# Marks the reason, so the corpus report can count these moves.
LATE_MARK = " later, below "


def late_material(inst: Instruction, ctx: BuildContext) -> str | None:
    """The one source of a plain COPY/ADD of a build output folder, an artifact or a source file, else None."""
    if inst.keyword not in ("COPY", "ADD") or inst.heredocs or any(f[2:].split("=", 1)[0] != "link"
                                                                     for f in inst.flags):
        return None  # `--from`, `--chown`, `--chmod` (owner and mode interact with what runs between), ...
    parts = copy_parts(inst)
    if parts is None or len(parts[0]) != 1 or "$" in inst.args:
        return None
    src = parts[0][0]
    if "://" in src or any(c in src for c in "*?[") or src.startswith("/") or is_manifest_name(src):
        return None
    name = posixpath.basename(posixpath.normpath(src))
    folder = src.endswith("/") or ctx.is_dir(src)
    if folder:
        return src if name in OUTPUT_FOLDERS else None
    return src if "." in name and name.rsplit(".", 1)[1].lower() in LATE_SUFFIXES else None


def _target(cwd: Cwd, dest: str) -> str | None:
    """Absolute folder or file the copy writes, when the working directory is known."""
    full = _join(cwd, dest)
    return full[1] if full is not None and full[0] == "" else None


def _plan_stage(df: Dockerfile, insts: tuple[Instruction, ...], ctx: BuildContext, cwds: dict[int, Cwd],
                label: str) -> tuple[int, int, str] | None:
    """(copy index, index to move it after, reason) for the first copy in the stage that belongs later."""
    for n, inst in enumerate(insts):
        src = late_material(inst, ctx)
        if src is None:
            continue
        parts = copy_parts(inst)
        assert parts is not None
        root = _target(cwds[inst.index], parts[1])
        last: Instruction | None = None
        passed = 0
        for other in insts[n + 1:]:
            if other.keyword == "RUN":
                if other.flags or _classify_run(other, root)[0] != "free":
                    break
                last = other
                passed += 0 if is_trivial(other) else 1
                continue
            if other.keyword not in _PASSABLE:
                break  # COPY/ADD, WORKDIR, USER, SHELL, VOLUME, ONBUILD: never crossed
        if last is None or passed == 0:
            continue
        steps = sum(1 for o in insts[n + 1:] if o.index <= last.index and o.keyword == "RUN")
        reason = (f"Dockerfile {label}: moved {_short(inst)}{LATE_MARK}{_short(last)} (line {last.lineno}): the "
                  f"{steps} step{'s' if steps != 1 else ''} it passes neither read nor change what it copies, so a "
                  f"change to `{src}` no longer re-runs them.")
        return inst.index, last.index, reason
    return None


def late_copies(df: Dockerfile, ctx: BuildContext) -> Outcome:
    """Move, in each stage, one copy that belongs late below the heavy steps that follow it."""
    outcome = Outcome()
    cwds = stage_cwds(df)
    splice = Splice(df)
    for stage in df.stages:
        label = f"stage `{stage.name}`" if stage.name else f"stage {stage.index + 1}"
        found = _plan_stage(df, df.stage_instructions(stage), ctx, cwds, label)
        if found is not None:
            splice.move_after(found[0], found[1])
            outcome.reasons.append(found[2])
    if outcome.reasons:
        outcome.text = splice.text()
    return outcome
