"""Locate buildspec nodes with pyyaml marks and splice text without re-serializing the file."""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FastLoader: type = _Loader


class Unsupported(Exception):
    """The input is outside what the bot edits safely; the message says why."""


# Aliases share one object, so loading is cheap, but every walk over the data meets each alias again: a few
# hundred bytes of nested aliases ("billion laughs") would expand to billions of values. Real files stay far
# below this many values once expanded.
MAX_EXPANDED_VALUES = 200_000


class TooLarge(yaml.YAMLError):
    """The document expands (through its aliases) beyond MAX_EXPANDED_VALUES."""


def _expanded(root: object) -> int:
    """Values in ``root`` counting every alias again, computed once per shared object."""
    sizes: dict[int, int] = {}
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        item, done = stack.pop()
        if id(item) in sizes:
            continue
        children = _children(item)
        if done or not children:
            sizes[id(item)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[id(item)] > MAX_EXPANDED_VALUES:
                raise TooLarge(
                    f"the YAML expands to more than {MAX_EXPANDED_VALUES:,} values through its "
                    "aliases (`*name`), which is refused"
                )
            continue
        stack.append((item, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(item: object) -> list[object]:
    if isinstance(item, MappingNode):
        return [x for pair in item.value for x in pair]
    if isinstance(item, Node) and isinstance(item.value, list):
        return list(item.value)
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    if isinstance(item, list):
        return list(item)
    return []


# pyyaml composes, and copy/compare walk, nested collections recursively: a few kilobytes of `[[[[...` exhaust
# Python's recursion limit. Real buildspecs and configs nest fewer than ten levels.
MAX_DEPTH = 64


class TooDeep(yaml.YAMLError):
    """Collections nest deeper than MAX_DEPTH."""


def _check_depth(text: str, loader: type) -> None:
    """Raise TooDeep when collections nest deeper than MAX_DEPTH; reads the event stream, which is iterative."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                where = f"line {event.start_mark.line + 1}: " if event.start_mark is not None else ""
                raise TooDeep(f"{where}collections nest more than {MAX_DEPTH} levels deep")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


class NotText(yaml.YAMLError):
    """The file is not UTF-8 text (read with surrogate escapes), which YAML requires."""


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise NotText(f"line {line}: the file is not UTF-8 text, which YAML requires") from exc


def compose(text: str) -> Node | None:
    """Compose the YAML node graph; marks index into ``text`` itself. Raises TooLarge for an alias bomb, TooDeep
    for deep nesting."""
    _utf8(text)
    # libyaml drops a BOM from its character offsets, so only the pure-Python loader is exact then.
    loader = yaml.SafeLoader if text.startswith("\ufeff") else _Loader
    _check_depth(text, loader)
    node = yaml.compose(text, Loader=loader)  # noqa: S506 - SafeLoader composes no objects
    if node is not None:
        _expanded(node)
    return node


def safe_load(text: str) -> object:
    """Load data with the fastest safe loader. Raises TooLarge for an alias bomb, TooDeep for deep nesting,
    NotText for bad bytes."""
    _utf8(text)
    _check_depth(text, _FastLoader)
    data = yaml.load(text, Loader=_FastLoader)  # noqa: S506 - CSafeLoader/SafeLoader are safe
    _expanded(data)
    return data


def get(node: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
    """The (key, value) pair of a mapping node for ``key``; None when absent or not a mapping."""
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def eol(text: str) -> str:
    """The file's line ending (added lines must match it)."""
    return "\r\n" if "\r\n" in text else "\n"


def line_numbers(text: str) -> Callable[[int], int]:
    """A function giving the 1-based line of an index into ``text`` in O(log n) (no re-count per call)."""
    breaks = [m.start() for m in re.finditer("\n", text)]
    return lambda idx: bisect.bisect_left(breaks, idx) + 1


def line_start(text: str, idx: int) -> int:
    """Index of the first character of the line holding ``idx``."""
    return text.rfind("\n", 0, idx) + 1


def after_line(text: str, idx: int) -> int:
    """Index just after the line break ending the line that holds ``idx``."""
    j = text.find("\n", idx)
    return len(text) if j < 0 else j + 1


def last_content(text: str, node: Node) -> int:
    """Index of the last non-blank character inside ``node``'s span."""
    j = node.end_mark.index - 1
    while j > node.start_mark.index and text[j] in " \t\r\n":
        j -= 1
    return j


def insert_after(text: str, node: Node) -> int:
    """Where a new sibling line goes after ``node`` (after any trailing comment on its last line)."""
    pos = after_line(text, last_content(text, node))
    if pos == len(text) and not text.endswith("\n"):
        return -1
    return pos


def item_prefix(text: str, item: Node) -> str:
    """The `<indent>- ` prefix of a block-sequence item, copied from the file."""
    idx = item.start_mark.index
    ls = line_start(text, idx)
    head = text[ls:idx]
    dash = head.rfind("-")
    if dash < 0 or head[:dash].strip(" ") or head[dash + 1 :].strip(" "):
        raise Unsupported(f"line {item.start_mark.line + 1}: sequence item is not `- value` on one line")
    return head[:dash] + "- "


def key_prefix(text: str, key: Node) -> str:
    """The indentation of a mapping key, copied from the file (spaces only)."""
    idx = key.start_mark.index
    head = text[line_start(text, idx) : idx]
    if head.strip(" "):
        raise Unsupported(f"line {key.start_mark.line + 1}: key does not start its line")
    return head


def before_item(text: str, item: Node, floor: int) -> int:
    """Line start before ``item`` and the comment lines right above it (not above ``floor``)."""
    pos = line_start(text, item.start_mark.index)
    while pos > floor:
        prev = line_start(text, pos - 1)
        if prev < floor:
            break
        line = text[prev:pos].strip()
        if not line.startswith("#"):
            break
        pos = prev
    return pos


def scalar_text(value: str) -> str:
    """`value` as a YAML scalar: plain when it loads back unchanged, else quoted."""
    try:
        plain_ok = safe_load(f"k: {value}\n") == {"k": value} and "#" not in value and value == value.strip()
    except yaml.YAMLError:
        plain_ok = False
    if plain_ok:
        return value
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    return json.dumps(value)


def check_block_indentation(text: str) -> None:
    """Refuse files that indent with tabs (YAML forbids it; the column arithmetic would be wrong)."""
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t") and stripped.strip() and not stripped.strip().startswith("#"):
            raise Unsupported(f"line {n}: indentation uses a tab")


@dataclass(frozen=True)
class ScalarMap:
    """Maps each character of a scalar's value to its index in the file (None when folded away)."""

    positions: tuple[int, ...]

    def source(self, k: int) -> int:
        """File index of value character ``k`` (``k == len`` means just after the last one)."""
        if k == len(self.positions):
            return self.positions[-1] + 1
        return self.positions[k]


def map_scalar(text: str, node: ScalarNode) -> ScalarMap | None:
    """Align a scalar's value with its source text; None when escapes make that unsafe."""
    value = node.value
    start, end = node.start_mark.index, node.end_mark.index
    style = node.style
    if style in ("|", ">"):
        i = after_line(text, start)
    elif style in ("'", '"'):
        i = start + 1
        end -= 1
    else:
        i = start
    src = text
    pos: list[int] = []
    for ch in value:
        while i < end:
            s = src[i]
            if s == ch:
                break
            if style == '"' and s == "\\":
                if src[i + 1 : i + 2] in ('"', "\\") and src[i + 1] == ch:
                    i += 1
                    break
                if src[i + 1 : i + 2] == "\n":
                    i += 2
                    continue
                return None
            if s in " \t\r\n" or (style == "'" and s == "'" and ch == "'"):
                i += 1
                continue
            if ch in " \n":
                break
            return None
        if i >= end:
            return None
        if src[i] != ch:
            pos.append(-1)
            continue
        pos.append(i)
        i += 1
        if style == "'" and ch == "'" and src[i : i + 1] == "'":
            i += 1
    return ScalarMap(tuple(pos)) if pos else None
