"""The intended change of one buildspec: its data-level description, the text splices, and the proof."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import PHASES, Analysis, BuildspecCommand
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.shell.docker_build import apply_splices


@dataclass(frozen=True)
class Parsed:
    """One buildspec, composed and analysed."""

    path: str
    text: str
    root: Node
    analysis: Analysis


@dataclass
class Edit:
    """The intended change of one buildspec, at data level and as text splices."""

    env_add: list[tuple[str, str]] = field(default_factory=list)
    mods: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    before: dict[int, list[str]] = field(default_factory=dict)
    at_end: dict[str, list[str]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    # Commands removed whole (a `docker push` the build now does itself with `--push`).
    drop: set[int] = field(default_factory=set)


def splice(p: Parsed, edit: Edit) -> str:
    """Turn the intended change into text splices and apply them (raises Unsupported)."""
    text = p.text
    nl = by.eol(text)
    splices: list[tuple[int, int, str]] = []
    an = p.analysis
    for n, value_splices in edit.mods.items():
        node = an.commands[n].node
        if not isinstance(node, ScalarNode):
            raise by.Unsupported(f"line {node.start_mark.line + 1}: command is not a string")
        m = by.map_scalar(text, node)
        if m is None:
            raise by.Unsupported(
                f"line {node.start_mark.line + 1}: the command's quoting/escapes cannot be edited in place"
            )
        for start, end, rep in value_splices:
            # Anchor both ends on characters that exist in the file (folded line breaks do not).
            src_start = m.positions[start] if start < len(m.positions) else -1
            if node.value[start : start + 1] in (" ", "\n") and start > 0 and m.positions[start - 1] >= 0:
                src_start = m.positions[start - 1] + 1
            if start >= end or src_start < 0 or m.positions[end - 1] < 0:
                raise by.Unsupported(f"line {node.start_mark.line + 1}: cannot locate the text to change")
            splices.append((src_start, m.positions[end - 1] + 1, rep))
    for n, lines in edit.before.items():
        cmd = an.commands[n]
        prefix = by.item_prefix(text, cmd.node)
        floor = _floor(text, cmd, an)
        pos = by.before_item(text, cmd.node, floor)
        splices.append((pos, pos, "".join(prefix + by.scalar_text(x) + nl for x in lines)))
    for phase, lines in edit.at_end.items():
        last = [c for c in an.commands if c.phase == phase][-1]
        prefix = by.item_prefix(text, last.node)
        splices.append(_after(text, last.node, "".join(prefix + by.scalar_text(x) + nl for x in lines), nl))
    for n in edit.drop:
        node = an.commands[n].node
        by.item_prefix(text, node)  # raises unless the item is `- value` on its own line
        end = by.insert_after(text, node)
        start = by.line_start(text, node.start_mark.index)
        if end < 0:
            # The file's last line, with no line break after it: the break before it goes instead, so the file
            # still ends without one.
            end, start = len(text), start - (2 if text[max(start - 2, 0) : start] == "\r\n" else 1)
            if start < 0 or text[start : start + 1] not in ("\n", "\r"):
                raise by.Unsupported(f"line {node.start_mark.line + 1}: cannot remove the file's last line")
        splices.append((start, end, ""))
    if edit.env_add:
        splices.append(_env_splice(p, edit.env_add, nl))
    ordered = sorted(splices, key=lambda s: (s[0], s[1]))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[0] < a[1]:
            raise by.Unsupported("two changes overlap in the file")
    return apply_splices(text, splices)


def _floor(text: str, cmd: BuildspecCommand, an: Analysis) -> int:
    if cmd.index == 0:
        return by.after_line(text, cmd.key.end_mark.index)
    prev = cmd.seq.value[cmd.index - 1]
    return by.after_line(text, by.last_content(text, prev))


def _after(text: str, node: Node, body: str, nl: str) -> tuple[int, int, str]:
    """Insert ``body`` (whole lines) after ``node``'s line, also when the file lacks a final line break."""
    pos = by.insert_after(text, node)
    if pos < 0:
        return len(text), len(text), nl + body[: -len(nl)]
    return pos, pos, body


def _env_splice(p: Parsed, add: list[tuple[str, str]], nl: str) -> tuple[int, int, str]:
    text, root = p.text, p.root
    env = by.get(root, "env")
    if env is None:
        phases = by.get(root, "phases")
        if phases is None or not isinstance(phases[1], MappingNode) or phases[1].flow_style:
            raise by.Unsupported("no `env` block and `phases` is not a block mapping")
        top = by.key_prefix(text, phases[0])
        unit = by.key_prefix(text, phases[1].value[0][0])[len(top) :] if phases[1].value else "  "
        pos = by.before_item(text, phases[0], 0)
        body = f"{top}env:{nl}{top}{unit}variables:{nl}"
        body += "".join(f'{top}{unit}{unit}{k}: "{v}"{nl}' for k, v in add)
        # Keep the file's style: a blank line between top-level blocks only where it already has one.
        if pos > 0 and not text[by.line_start(text, pos - 1) : pos].strip():
            body += nl
        return pos, pos, body
    env_node = env[1]
    if not isinstance(env_node, MappingNode) or env_node.flow_style or not env_node.value:
        raise by.Unsupported(f"line {env[0].start_mark.line + 1}: `env` is not a block mapping")
    variables = by.get(env_node, "variables")
    if variables is None:
        prefix = by.key_prefix(text, env_node.value[0][0])
        unit = prefix[len(by.key_prefix(text, env[0])) :] or "  "
        body = f"{prefix}variables:{nl}" + "".join(f'{prefix}{unit}{k}: "{v}"{nl}' for k, v in add)
        return _after(text, env_node.value[-1][1], body, nl)
    vnode = variables[1]
    if not isinstance(vnode, MappingNode) or vnode.flow_style or not vnode.value:
        raise by.Unsupported(
            f"line {variables[0].start_mark.line + 1}: `env.variables` is not a non-empty block mapping"
        )
    prefix = by.key_prefix(text, vnode.value[0][0])
    return _after(text, vnode.value[-1][1], "".join(f'{prefix}{k}: "{v}"{nl}' for k, v in add), nl)


def prove(p: Parsed, edit: Edit, new_text: str) -> str | None:
    """Re-parse the new text and compare it with the old data plus the intended change."""
    try:
        old = by.safe_load(p.text)
        new = by.safe_load(new_text)
    except yaml.YAMLError as exc:
        return "does not parse: " + " ".join(str(exc).split())[:300]
    expected = copy.deepcopy(old)
    if not isinstance(expected, dict):
        return "top level is not a mapping"
    if edit.env_add:
        env = expected.setdefault("env", {})
        if env is None or not isinstance(env, dict):
            return "env is not a mapping"
        variables = env.setdefault("variables", {})
        for k, v in edit.env_add:
            variables[k] = v
    an = p.analysis
    for phase in PHASES:
        cmds = [(n, c) for n, c in enumerate(an.commands) if c.phase == phase]
        if not cmds:
            continue
        out: list[object] = []
        for n, c in cmds:
            out.extend(edit.before.get(n, []))
            value = c.value
            if n in edit.drop:
                continue
            if n in edit.mods and value is not None:
                out.append(apply_splices(value, edit.mods[n]))
            else:
                out.append(expected["phases"][phase]["commands"][c.index])
        out.extend(edit.at_end.get(phase, []))
        expected["phases"][phase]["commands"] = out
    if expected != new:
        return "data differs from the intended change"
    return verify_buildspec_edit(p.text, new_text)
