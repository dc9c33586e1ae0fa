"""The GraphQL documents the gateway sends (static files in `graphql/`, shipped as package data) and their
variables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources

BLOB_SLOTS = 100  # `b0`..`b99` in graphql/blob_slots.graphql: the most blobs one query reads
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SPREAD = re.compile(r"\.\.\.\s*([A-Za-z_]\w*)")
_FRAGMENT = re.compile(r"^fragment\s+([A-Za-z_]\w*)\s+on\b", re.MULTILINE)


def _text(name: str) -> str:
    return resources.files("bot.github").joinpath("graphql", f"{name}.graphql").read_text(encoding="utf-8")


@cache
def _fragments() -> dict[str, str]:
    """Every fragment definition of the documents folder, by name."""
    found: dict[str, str] = {}
    for entry in resources.files("bot.github").joinpath("graphql").iterdir():
        if not entry.name.endswith(".graphql"):
            continue
        text = entry.read_text(encoding="utf-8")
        starts = [m.start() for m in _FRAGMENT.finditer(text)] + [len(text)]
        for start, end in zip(starts, starts[1:], strict=False):
            match = _FRAGMENT.match(text, start)
            assert match is not None
            found[match.group(1)] = text[start:end].strip()
    return found


@cache
def document(name: str) -> str:
    """The operation in ``graphql/<name>.graphql`` followed by every fragment it spreads (directly or not)."""
    text = _text(name)
    fragments = _fragments()
    wanted: list[str] = []
    pending = [text]
    while pending:
        for spread in _SPREAD.findall(pending.pop()):
            if spread != "on" and spread not in wanted:
                wanted.append(spread)
                pending.append(fragments[spread])
    return "\n\n".join([text.strip(), *(fragments[f] for f in wanted)]) + "\n"


def blob_slots(shas: Sequence[str]) -> dict[str, str | bool]:
    """The variables that make the BlobSlots fragment read ``shas`` (slot N: `bN`), at most `BLOB_SLOTS` of them."""
    if len(shas) > BLOB_SLOTS:
        raise ValueError(f"one query reads at most {BLOB_SLOTS} blobs, not {len(shas)}")
    if not all(_SHA.match(sha) for sha in shas):
        raise ValueError("blob ids must be 40 lowercase hex digits")
    variables: dict[str, str | bool] = {}
    for i, sha in enumerate(shas):
        variables[f"b{i}"] = sha
        variables[f"has{i}"] = True
    return variables
