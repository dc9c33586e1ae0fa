"""The planning budget: sizes measured before planning, so no repository makes one plan do unbounded work.

Planning is linear in each size below except the per-build analyses (secret leaks, build args), which read the
build's Dockerfile and its buildspec's commands once per build. The budget therefore counts work units:

    units = characters + instructions + (1 + builds) * (most instructions of one Dockerfile
                                                         + most strings of one buildspec)

where characters and strings count a buildspec string again for every YAML alias that repeats it (the planner
walks it again). A unit costs about 5 microseconds here, so the budget is a few seconds of planning. A
repository over any limit is not planned at all: no file is changed and one `plan-budget-exceeded` finding per
limit says what was too large. The numbers sit far above real files (the largest buildspec of the corpus is
5 KB; the largest Dockerfile, BuildKit's own, has 20 KB, 49 stages and 254 instructions) and keep the worst plan
within a few seconds (`bench/pathological.py` measures it).
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from bot.core import discover
from bot.core.buildspec import yaml_text as by
from bot.core.dockerfile.parse import DockerfileParseError, parse
from bot.core.findings import Code
from bot.core.model import Finding, Options, RepoSnapshot
from bot.core.shell.docker_build import find_builds

MAX_BUILDSPEC_CHARS = 256 * 1024  # one buildspec file
MAX_EXPANDED_CHARS = 4 * 1024 * 1024  # every buildspec string once per alias that repeats it, plus Dockerfiles
MAX_STAGES = 500  # one Dockerfile
MAX_INSTRUCTIONS = 5_000  # one Dockerfile
MAX_BUILDS = 200  # `docker build` commands in all buildspecs
MAX_UNITS = 500_000  # the work units above


def check(snapshot: RepoSnapshot, options: Options, found: discover.Candidates | None = None) -> tuple[Finding, ...]:
    """Findings for every limit the repository's buildspecs and Dockerfiles exceed; empty when within budget."""
    spec_candidates, dockerfile_candidates = found or discover.candidates(snapshot.paths, options)
    out: list[Finding] = []
    chars = builds = instructions = most_instructions = most_strings = 0
    for path in spec_candidates:
        text = snapshot.text(path)
        if text is None:
            continue
        if chars > MAX_EXPANDED_CHARS:
            break  # reported below; loading more would be work past the budget
        if len(text) > MAX_BUILDSPEC_CHARS:
            out.append(_finding(path, f"it has {len(text):,} characters, more than {MAX_BUILDSPEC_CHARS:,}"))
            continue
        try:
            data = by.safe_load(text)
        except by.TooDeep as exc:
            out.append(_finding(path, str(exc)))
            continue
        except yaml.YAMLError:
            continue  # not YAML: discovery leaves it alone and says why, without further work
        counted = _count(data)
        chars += counted[0]
        most_strings = max(most_strings, counted[1])
        builds += counted[2]
    for path in dockerfile_candidates:
        text = snapshot.text(path)
        if text is None:
            continue
        chars += len(text)
        if chars > MAX_EXPANDED_CHARS:
            break  # reported below; parsing more would be work past the budget
        try:
            df = parse(text)
        except DockerfileParseError:
            continue  # the Dockerfile planner leaves it alone and says why
        if len(df.instructions) > MAX_INSTRUCTIONS:
            out.append(_finding(path, f"it has {len(df.instructions):,} instructions, more than {MAX_INSTRUCTIONS:,}"))
        if len(df.stages) > MAX_STAGES:
            out.append(_finding(path, f"it has {len(df.stages):,} build stages, more than {MAX_STAGES:,}"))
        instructions += len(df.instructions)
        most_instructions = max(most_instructions, len(df.instructions))
    where = ", ".join(spec_candidates[:3]) or "the repository"
    if chars > MAX_EXPANDED_CHARS:
        out.append(
            _finding(
                where,
                f"its buildspecs (each string counted once per YAML alias that repeats it) and "
                f"Dockerfiles hold more than {MAX_EXPANDED_CHARS:,} characters",
            )
        )
    if builds > MAX_BUILDS:
        out.append(_finding(where, f"its buildspecs run {builds:,} `docker build` commands, more than {MAX_BUILDS:,}"))
    units = chars + instructions + (1 + builds) * (most_instructions + most_strings)
    if not out and units > MAX_UNITS:
        out.append(
            _finding(
                where,
                f"planning it takes {units:,} work units ({builds:,} builds, each reading a "
                f"Dockerfile of up to {most_instructions:,} instructions and a buildspec of up "
                f"to {most_strings:,} strings), more than {MAX_UNITS:,}",
            )
        )
    return tuple(out)


def refusals(findings: tuple[Finding, ...]) -> list[Finding]:
    """The findings that say the repository was not planned because it is over the budget."""
    return [f for f in findings if f.code == Code.PLAN_BUDGET_EXCEEDED]


def _finding(path: str, what: str) -> Finding:
    return Finding(
        path,
        "error",
        Code.PLAN_BUDGET_EXCEEDED,
        f"Not planned, no file was changed: {what}, which is past what the bot plans (see `bot/core/budget.py`).",
    )


def _count(data: object) -> tuple[int, int, int]:
    """(characters, strings, builds) of every string in loaded YAML data, once per alias that repeats it."""
    chars = strings = builds = 0
    found: dict[int, int] = {}  # builds per string object: a string an alias repeats is tokenized once
    for text in _strings(data):
        chars += len(text)
        strings += 1
        if chars > MAX_EXPANDED_CHARS:
            break
        if id(text) not in found:
            found[id(text)] = len(find_builds(text))
        builds += found[id(text)]
    return chars, strings, builds


def _strings(data: object) -> Iterator[str]:
    """Every string (keys too) in loaded YAML data, iteratively (nesting is already bounded)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
