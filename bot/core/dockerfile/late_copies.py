"""Per stage: move a copy of a build output, an artifact or one source file below heavy steps that never read it."""

from __future__ import annotations

import posixpath
import re

from bot.core.dockerfile.cachetable import is_trivial
from bot.core.dockerfile.parse import Dockerfile, Instruction, Stage
from bot.core.dockerfile.reorder import (
    BuildContext,
    Cwd,
    ReorderResult,
    _and_list,
    _classify_run,
    _join,
    _short,
    _StagePlan,
    copy_parts,
    stage_cwds,
)
from bot.core.dockerfile.splice import Splice
from bot.core.ecosystems import Install, is_manifest_name, unsafe_reason
from bot.core.findings import Code
from bot.core.model import Note
from bot.core.shell.run_commands import names_overlap, overwrites, run_commands

# Folders builds write their output to (`COPY dist/ app/`), and files that are code or built from it.
OUTPUT_FOLDERS = frozenset({"build", "build_output", "dist", "out", "output", "target", "publish", "artifacts"})
LATE_SUFFIXES = frozenset({"py", "pyc", "js", "mjs", "cjs", "jar", "war", "ear", "class", "rb", "php", "wasm"})
# Instructions a copy may pass: they neither read files nor change where or as whom a COPY writes.
_PASSABLE = frozenset({"LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "CMD", "ENTRYPOINT", "MAINTAINER", "ENV", "ARG"})
# Folders package managers write to (apache2 puts an index.html in /var/www/html): a copy there keeps its place.
_SYSTEM = ("/etc", "/var", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/opt", "/boot", "/root")
_APP_UNDER_SYSTEM = ("/usr/src", "/usr/local/src")
# Marks the reason, so the corpus report can count these moves.
LATE_MARK = " later, below "


def late_material(inst: Instruction, ctx: BuildContext) -> str | None:
    """The one source of a plain COPY/ADD of a build output folder, an artifact or a source file, else None."""
    if (
        inst.keyword not in ("COPY", "ADD")
        or inst.heredocs
        or any(f[2:].split("=", 1)[0] != "link" for f in inst.flags)
    ):
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


# Configuration of JavaScript build tools: the bundler, compiler or linter reads it, `npm ci` never does.
BUILD_CONFIG = re.compile(
    r"(tailwind|postcss|vite|vitest|webpack|rollup|next|svelte|astro|babel|jest|playwright|eslint|prettier|"
    r"stylelint)\.config\.(js|cjs|mjs|ts|cts|mts|json)|(tsconfig|jsconfig)(\.[\w-]+)?\.json|nest-cli\.json|"
    r"\.(babelrc|eslintrc|prettierrc|stylelintrc)(\.(js|cjs|json|ya?ml))?|\.browserslistrc"
)
_NODE = ("npm", "yarn", "pnpm")


def config_split(inst: Instruction) -> tuple[list[str], list[str]] | None:
    """(build configuration files, dependency manifests) a plain COPY copies, when those are all it copies."""
    if inst.keyword != "COPY" or inst.heredocs or any(f[2:].split("=", 1)[0] != "link" for f in inst.flags):
        return None
    parts = copy_parts(inst)
    if parts is None or "$" in inst.args:
        return None
    configs, manifests = [], []
    for src in parts[0]:
        if is_manifest_name(src) and not any(c in src for c in "*?["):
            manifests.append(src)
        elif (
            not src.startswith("/")
            and not any(c in src for c in "*?[")
            and BUILD_CONFIG.fullmatch(posixpath.basename(src))
        ):
            configs.append(src)
        else:
            return None
    return (configs, manifests) if configs else None


def _target(cwd: Cwd, dest: str) -> str | None:
    """Absolute folder or file the copy writes, when the working directory is known."""
    full = _join(cwd, dest)
    return full[1] if full is not None and full[0] == "" else None


def _install_blind(
    df: Dockerfile,
    stage: Stage,
    ctx: BuildContext,
    cwds: dict[int, Cwd],
    copy: Instruction,
    run: Instruction,
    installs: list[Install],
) -> bool:
    """True when the Node installs of ``run`` provably read no build configuration ``copy`` puts in their folder:
    they read only the manifests (ecosystems.TABLE) and the project has no install script or local package."""
    parts = copy_parts(copy)
    folder = _join(cwds[copy.index], parts[1]) if parts else None
    if parts is None or not (parts[1].endswith("/") or parts[1] == "."):
        return False
    if (
        folder is None
        or cwds[run.index] != folder
        or any(i.ecosystem not in _NODE or not i.deps_only for i in installs)
    ):
        return False
    earlier = [i for i in df.stage_instructions(stage) if i.index < run.index]
    plan = _StagePlan(df, stage, ctx, cwds)
    manifest = plan.placed(earlier, folder).get("package.json")
    if manifest is None:
        return False
    project = posixpath.dirname(manifest) or "."
    return all(unsafe_reason(i, project, ctx.exists, ctx.read, plan.may_float(i, project)) is None for i in installs)


def _late_blocker(inst: Instruction, root: str | None, cwd: Cwd) -> str | None:
    """Why a RUN, ENV or ARG the copy would pass may change what lands in its folder: it names a path in, at or
    above it (flag values, globs and variables included), or writes into a working directory that may hold it."""
    if inst.keyword in ("ENV", "ARG"):  # a variable aiming a later step at the folder (HOME, PIP_TARGET, GOBIN)
        return names_overlap(inst.args.split(), root)
    here = cwd[1] if cwd is not None and cwd[0] == "" else None
    return next(filter(None, (overwrites(cmd, root, here) for cmd in run_commands(inst) or [])), None)


def _passes(
    df: Dockerfile,
    stage: Stage,
    ctx: BuildContext,
    cwds: dict[int, Cwd],
    inst: Instruction,
    after: tuple[Instruction, ...],
    configs: bool,
) -> tuple[Instruction | None, int, list[str]]:
    """(last RUN the copy may pass, RUNs worth caching among them, installs passed)."""
    parts = copy_parts(inst)
    assert parts is not None
    root = _target(cwds[inst.index], parts[1])
    last: Instruction | None = None
    heavy = 0
    installs: list[str] = []
    for other in after:
        if other.keyword in ("RUN", "ENV", "ARG") and _late_blocker(other, root, cwds[other.index]) is not None:
            break
        if other.keyword == "RUN":
            if other.flags:
                break
            kind, found, _ = _classify_run(other, root, cwds[other.index])
            if kind == "install" and configs and _install_blind(df, stage, ctx, cwds, inst, other, found):
                installs += [i.command.text for i in found]
            elif kind != "free":
                break
            last = other
            heavy += 0 if is_trivial(other) else 1
            continue
        if other.keyword not in _PASSABLE:
            break  # COPY/ADD, WORKDIR, USER, SHELL, VOLUME, ONBUILD: never crossed
    return last, heavy, installs


def _app_folder(cwd: Cwd, parts: tuple[list[str], str] | None, src: str, ctx: BuildContext) -> bool:
    """True when the copy writes to an application folder no package install touches: a known folder outside the
    system ones, or (for one file) the base image's working directory, where a package would have to ship a file
    of that very name."""
    target = _target(cwd, parts[1]) if parts else None
    if target is None:
        return parts is not None and "$" not in parts[1] and not (src.endswith("/") or ctx.is_dir(src))
    under = [p for p in _SYSTEM if target == p or target.startswith(p + "/")]
    return target != "/" and (not under or any(target == a or target.startswith(a + "/") for a in _APP_UNDER_SYSTEM))


def _whole_later(after: tuple[Instruction, ...], cwds: dict[int, Cwd], folder: Cwd) -> bool:
    """True when a later COPY of the whole context writes into ``folder``."""
    for inst in after:
        parts = copy_parts(inst) if inst.keyword in ("COPY", "ADD") and inst.flag("from") is None else None
        if (
            parts
            and len(parts[0]) == 1
            and posixpath.normpath(parts[0][0].lstrip("/") or ".") == "."
            and folder is not None
            and _join(cwds[inst.index], parts[1]) == folder
        ):
            return True
    return False


def _plan_stage(
    df: Dockerfile, stage: Stage, ctx: BuildContext, cwds: dict[int, Cwd], label: str
) -> tuple[tuple[int, int, str] | None, list[Note]]:
    """(copy index, index to move it after, reason) for the first copy in the stage that belongs later, and
    suggestions for manifest copies that also bring files the install does not read."""
    insts = df.stage_instructions(stage)
    notes: list[Note] = []
    for n, inst in enumerate(insts):
        src = late_material(inst, ctx)
        split = config_split(inst) if src is None else None
        if src is None and split is None:
            continue
        if src is not None and not _app_folder(cwds[inst.index], copy_parts(inst), src, ctx):
            continue
        last, heavy, installs = _passes(df, stage, ctx, cwds, inst, insts[n + 1 :], split is not None)
        if split is not None and split[1]:
            if installs:
                dest = _join(cwds[inst.index], copy_parts(inst)[1])  # type: ignore[index]
                later = (
                    " (the later copy of the whole folder already brings them)"
                    if _whole_later(insts[n + 1 :], cwds, dest)
                    else ""
                )
                notes.append(
                    (
                        "info",
                        Code.DOCKERFILE_COPY_NOT_READ_BY_INSTALL,
                        (
                            f"{label}: {_short(inst)} (line {inst.lineno}) also copies {_and_list(split[0])}, which "
                            f"{_and_list(installs)} does not read, so a change to them re-runs the install. Copy "
                            "them in a "
                            f"COPY of their own after the install{later}; the bot does not split a COPY line."
                        ),
                    )
                )
            continue
        if last is None or heavy == 0 or (split is not None and not installs):
            continue
        steps = sum(1 for o in insts[n + 1 :] if o.index <= last.index and o.keyword == "RUN")
        what = f"`{src}`" if src is not None else " or ".join(f"`{c}`" for c in split[0])  # type: ignore[index]
        reads = f" ({_and_list(installs)} reads only the dependency manifests)" if installs else ""
        passed = (
            "the step it passes neither reads nor changes"
            if steps == 1
            else f"the {steps} steps it passes neither read nor change"
        )
        reason = (
            f"Dockerfile {label}: moved {_short(inst)}{LATE_MARK}{_short(last)} (line {last.lineno}): "
            f"{passed} what it copies{reads}, so a change to {what} no longer re-runs "
            f"{'it' if steps == 1 else 'them'}."
        )
        return (inst.index, last.index, reason), notes
    return None, notes


def late_copies(df: Dockerfile, ctx: BuildContext) -> ReorderResult:
    """Move, in each stage, one copy that belongs late below the heavy steps that follow it."""
    outcome = ReorderResult()
    cwds = stage_cwds(df)
    splice = Splice(df)
    for stage in df.stages:
        label = f"stage `{stage.name}`" if stage.name else f"stage {stage.index + 1}"
        found, notes = _plan_stage(df, stage, ctx, cwds, label)
        outcome.findings += notes
        if found is not None:
            splice.move_after(found[0], found[1])
            outcome.reasons.append(found[2])
    if outcome.reasons:
        outcome.text = splice.text()
    return outcome
