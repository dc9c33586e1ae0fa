"""Prove a Dockerfile edit is a pure reorder: same instructions, added manifest COPYs, dependencies first."""

from __future__ import annotations

import posixpath
from collections import Counter

from bot.core import ecosystems
from bot.core.dockerfile.args import NAMES_ONLY, ArgFacts, default_refs, env_blind, references, volatile_name
from bot.core.dockerfile.parse import Dockerfile, DockerfileParseError, Instruction, parse
from bot.core.dockerfile.reorder import (
    _FREE_KEYWORDS,
    Cwd,
    _classify_run,
    _declared,
    _join,
    _refs,
    copy_parts,
    stage_cwds,
)
from bot.core.shell.run_commands import run_commands


def _key(df: Dockerfile, inst: Instruction) -> str:
    return df.block(inst).rstrip("\r\n").replace("\r\n", "\n")


def _requirement_names(insts: tuple[Instruction, ...]) -> set[str]:
    """Base names of the files pip installs read with `-r`/`-c` in these instructions."""
    names: set[str] = set()
    for inst in insts:
        if inst.keyword == "RUN":
            for cmd in run_commands(inst) or []:
                found = ecosystems.recognise(cmd)
                if found is not None and found.ecosystem == "pip":
                    names |= {posixpath.basename(f) for f in found.files}
    return names


def _added_kind(inst: Instruction, requirement_names: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
    """'copy' / 'install' for an instruction the bot may add, else None."""
    if inst.keyword == "COPY" and inst.flag("from") is None:
        parts = copy_parts(inst)
        if parts and all(
            ecosystems.is_manifest_name(s)
            or "/gradle/wrapper/" in "/" + s
            or "/.mvn/wrapper/" in "/" + s
            or posixpath.basename(s) in requirement_names
            or (s.endswith((".txt", ".in")) and "requirements" in s)
            for s in parts[0]
        ):
            return "copy"
        return None
    if inst.keyword == "RUN":
        cmds = run_commands(inst)
        if cmds and all((r := ecosystems.recognise(c)) is not None and r.deps_only for c in cmds):
            return "install"
    return None


def _whole_copy(inst: Instruction) -> bool:
    """A copy of context files none of which is a dependency manifest: it may move below the steps that do not read
    it (the whole source below the installs, an artifact or build configuration below heavy steps)."""
    if inst.keyword not in ("COPY", "ADD") or inst.flag("from") is not None:
        return False
    parts = copy_parts(inst)
    if not parts:
        return False
    return all(not ecosystems.is_manifest_name(s) and not any(c in s for c in "*?[$") for s in parts[0])


def _may_swap(
    orig: Dockerfile, a: Instruction, b: Instruction, cwds: dict[int, Cwd], facts: ArgFacts = NAMES_ONLY
) -> str | None:
    """None when original-order ``a`` then ``b`` may run as ``b`` then ``a``."""
    for arg, other in ((a, b), (b, a)):
        name = volatile_name(arg, facts)
        if (
            name
            and not references(orig, other, name)
            and (other.keyword != "RUN" or env_blind(other))
            and other.keyword not in ("ONBUILD", "FROM")
            and not volatile_name(other, facts)
            and not _declared(other) & default_refs(arg, name)
        ):
            return None
    for copy, other in ((a, b), (b, a)):
        if not _whole_copy(copy):
            continue
        parts = copy_parts(copy)
        assert parts is not None
        dest = _join(cwds.get(copy.index), parts[1])
        root = dest[1] if dest and dest[0] == "" else None
        if other.keyword == "RUN":
            kind, _, why = _classify_run(other, root, cwds.get(other.index))
            if kind in ("free", "install"):
                return None
            return why
        if other.keyword in ("ENV", "ARG"):
            if _declared(other) & _refs(copy.line_text):
                return f"`{copy.line_text.strip()}` uses a variable set by `{other.line_text.strip()}`"
            return None
        if other.keyword == "WORKDIR":
            if any(f[2:].split("=", 1)[0].lower() in ("chown", "chmod") for f in copy.flags):
                # The WORKDIR might create a folder the copy would have created with its owner/mode.
                return "a COPY --chown/--chmod moved across a WORKDIR"
            return None if parts[1].startswith("/") else "a relative copy moved across a WORKDIR"
        if other.keyword in _FREE_KEYWORDS:
            return None
    return f"`{a.line_text.strip()}` and `{b.line_text.strip()}` changed order"


def verify_dockerfile_edit(original: str, edited: str, facts: ArgFacts = NAMES_ONLY) -> str | None:
    """None when ``edited`` is a valid reorder of ``original``; otherwise what is wrong.

    ``facts`` says which ARGs change on every build, which may move like volatile ones.
    """
    try:
        orig = parse(original)
    except DockerfileParseError as exc:
        return f"the original does not parse: {exc}"
    try:
        new = parse(edited)
    except DockerfileParseError as exc:
        return f"the edit does not parse: {exc}"
    if orig.lines[: orig.directive_lines] != new.lines[: new.directive_lines]:
        return "the parser directives changed"
    if orig.escape != new.escape:
        return "the escape character changed"
    if (original.endswith("\n")) != (edited.endswith("\n")):
        return "the final newline changed"
    o_stages, n_stages = orig.stages, new.stages
    if len(o_stages) != len(n_stages):
        return "the number of stages changed"
    if any(i.stage < 0 for i in new.instructions) != any(i.stage < 0 for i in orig.instructions) or [
        _key(orig, i) for i in orig.instructions if i.stage < 0
    ] != [_key(new, i) for i in new.instructions if i.stage < 0]:
        return "the global ARGs before the first FROM changed"
    cwds = stage_cwds(orig)
    for os_, ns in zip(o_stages, n_stages, strict=True):
        o_insts = orig.stage_instructions(os_)
        n_insts = new.stage_instructions(ns)
        if _key(orig, o_insts[0]) != _key(new, n_insts[0]):
            return f"stage {os_.index + 1}: FROM changed"
        o_count = Counter(_key(orig, i) for i in o_insts)
        n_count = Counter(_key(new, i) for i in n_insts)
        missing = o_count - n_count
        if missing:
            return f"stage {os_.index + 1}: instruction removed: {next(iter(missing))!r}"
        extra = n_count - o_count
        added: list[Instruction] = []
        pool = Counter(o_count)
        for inst in n_insts:
            key = _key(new, inst)
            if pool[key] > 0:
                pool[key] -= 1
                continue
            if _added_kind(inst, _requirement_names(n_insts)) is None:
                return f"stage {os_.index + 1}: unexpected added instruction {key!r}"
            added.append(inst)
        assert sum(extra.values()) == len(added)
        # Map each original instruction to its position in the edit (duplicates in order).
        positions: dict[str, list[int]] = {}
        for pos, inst in enumerate(n_insts):
            if inst not in added:
                positions.setdefault(_key(new, inst), []).append(pos)
        where = {o.index: positions[_key(orig, o)].pop(0) for o in o_insts}
        for x, a in enumerate(o_insts):
            for b in o_insts[x + 1 :]:
                if where[a.index] > where[b.index]:
                    why = _may_swap(orig, a, b, cwds, facts)
                    if why:
                        return f"stage {os_.index + 1}: {why}"
        why = _check_installs_fed(orig, o_insts, n_insts, where, added, new)
        if why:
            return f"stage {os_.index + 1}: {why}"
    return None


def _check_installs_fed(
    orig: Dockerfile,
    o_insts: tuple[Instruction, ...],
    n_insts: tuple[Instruction, ...],
    where: dict[int, int],
    added: list[Instruction],
    new: Dockerfile,
) -> str | None:
    """Every install now before the whole-source copy has a manifest COPY before it."""
    added_pos = {n_insts.index(a): a for a in added}
    names = _requirement_names(n_insts)
    copy_positions = sorted(p for p, a in enumerate(n_insts) if _added_kind(a, names) == "copy")
    for c in o_insts:
        if not _whole_copy(c):
            continue
        for other in o_insts:
            if other.index > c.index and where[other.index] < where[c.index] and other.keyword == "RUN":
                kind, _, _ = _classify_run(other, None)
                if kind == "install" and not any(p < where[other.index] for p in copy_positions):
                    return f"`{other.line_text.strip()}` runs before any manifest is copied"
    for pos, inst in added_pos.items():
        if _added_kind(inst) == "install" and not any(p < pos for p in copy_positions):
            return f"added `{inst.line_text.strip()}` runs before any manifest is copied"
        if _added_kind(inst, names) == "copy":
            parts = copy_parts(inst)
            if parts and any(posixpath.isabs(s) for s in parts[0]):
                return f"added `{inst.line_text.strip()}` copies an absolute path"
    return None
