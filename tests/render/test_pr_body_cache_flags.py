"""The cache flags the PR body lists are the flags the buildspec edit writes: one source, no drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core import planner
from bot.core.model import Options, Plan, RepoSnapshot
from bot.core.shell import docker_build
from bot.render import pull_request

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
SPEC = """version: 0.2
phases:
  build:
    commands:
      - docker build -t shop .
      - docker build -f api/Dockerfile -t api api
"""
# One row of the "flags of each build" table: buildspec, cache tag, then the two flags.
_ROW = re.compile(
    r"^\| `(?P<spec>[^`]+)` \| `(?P<tag>[^`]+)` \| `(?P<cache_from>[^`]+)`<br>`(?P<cache_to>[^`]+)` \|$", re.MULTILINE
)


def _plan(options: Options) -> Plan:
    files = {
        "buildspec.yml": SPEC,
        "Dockerfile": DOCKERFILE,
        "api/Dockerfile": DOCKERFILE,
        "requirements.txt": "flask==3.0.0\n",
        "api/requirements.txt": "flask==3.0.0\n",
    }
    return planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), options)


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("cache_errors", ["ignore", "fatal"])
def test_pr_body_flags_are_the_flags_the_buildspec_edit_writes(mode: str, cache_errors: str) -> None:
    options = Options(mode=mode, cache_errors=cache_errors)  # type: ignore[arg-type]
    plan = _plan(options)
    (spec,) = [e for e in plan.edits if e.path == "buildspec.yml"]
    written = docker_build.parse_bot_flags(spec.content)
    rows = [m.groupdict() for m in _ROW.finditer(pull_request.render_pr_body(plan, "acme/shop", options))]
    assert len(written) == 2 and len({f.tag for f in written}) == 2  # two builds, two cache tags
    assert [(r["spec"], r["tag"]) for r in rows] == [("buildspec.yml", f.tag) for f in written]
    for row, flags in zip(rows, written, strict=True):
        assert flags.mode == mode and flags.best_effort == (cache_errors == "ignore")
        cache_from, cache_to = docker_build.cache_flags(docker_build.cache_ref(flags.tag), flags.mode)
        suffix = docker_build.IGNORE_ERROR if flags.best_effort else ""
        assert (row["cache_from"], row["cache_to"]) == (cache_from, cache_to + suffix)
        # Word for word in the edited buildspec, as the reviewer reads them in the table.
        assert row["cache_from"] in spec.content and row["cache_to"] in spec.content


def test_the_cache_flag_text_is_written_once_in_the_code() -> None:
    """The flag words are spelled in `docker_build.cache_flags` only; render and the regex derive them."""
    spelled = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sorted((ROOT / "bot").rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "oci-mediatypes=true" in line
    ]
    assert [where.split(":")[0] for where in spelled] == ["bot/core/shell/docker_build.py"], spelled
