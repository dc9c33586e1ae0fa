"""Hostile YAML (alias bombs, bytes that are not UTF-8) gets a finding fast, never a hang or a traceback."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.buildspec import yaml_text as by
from bot.core.model import Options, RepoSnapshot
from bot.core.repo_config import parse_repo_config

BOMB = (
    "x-lol: [&a [lol, lol, lol, lol, lol, lol, lol, lol, lol], "
    + ", ".join(f"&{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    + "]\n"
)
SPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n"


def test_the_bomb_is_refused_by_both_loaders() -> None:
    with pytest.raises(by.TooLarge):
        by.safe_load(BOMB)
    with pytest.raises(by.TooLarge):
        by.compose(BOMB)
    # Ordinary aliases are fine.
    assert by.safe_load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.timeout(20)
def test_a_buildspec_bomb_or_bad_bytes_is_left_alone_with_a_finding() -> None:
    for text, said in ((SPEC + BOMB, "aliases"), ("# caf\udce9\n" + SPEC, "not UTF-8")):
        files = {"buildspec.yml": text, "Dockerfile": "FROM alpine\n"}
        plan = planner.plan(RepoSnapshot(tuple(files), files), Options())
        assert not any(e.path == "buildspec.yml" for e in plan.edits)
        assert any(said in f.message for f in plan.findings if f.path == "buildspec.yml"), said


@pytest.mark.timeout(20)
def test_a_config_bomb_is_an_error_that_says_why() -> None:
    _, findings = parse_repo_config("buildspecs: " + BOMB.split(": ", 1)[1])
    assert [f.code for f in findings] == ["config-invalid-yaml"] and "aliases" in findings[0].message
