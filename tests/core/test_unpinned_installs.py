"""Node and PHP projects without a lock file are reordered too (a repo setting turns it off), with a note."""

from __future__ import annotations

import pytest

from bot.core.discover import Discovery
from bot.core.dockerfile.plan import plan_dockerfiles, verify_dockerfile_edit
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot
from bot.core.repo_config import parse_repo_config

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")
NODE = 'FROM node:20-slim\nWORKDIR /srv\nCOPY . .\nRUN npm install --omit=dev\nCMD ["node", "index.js"]\n'
NODE_FILES = {"package.json": '{"dependencies": {"express": "^4.19.0"}}', "index.js": "require('express')\n"}
PHP = "FROM php:8.3-apache\nWORKDIR /var/www/html\nCOPY . .\nRUN composer install --no-dev\n"
PHP_FILES = {"composer.json": '{"require": {"monolog/monolog": "^3.0"}}', "public/index.php": "<?php\n"}


def _plan(dockerfile: str, files: dict[str, str], options: Options | None = None) -> PartialPlan:
    snapshot = RepoSnapshot(paths=("Dockerfile", *files), files={"Dockerfile": dockerfile, **files})
    return plan_dockerfiles(snapshot, options or Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",)))


def _dockerfile_edit(result: PartialPlan) -> str | None:
    edits = [e.content for e in result.edits if e.path == "Dockerfile"]
    return edits[0] if edits else None


def test_node_project_without_a_lock_file_is_reordered_with_a_note() -> None:
    result = _plan(NODE, NODE_FILES)
    after = _dockerfile_edit(result)
    assert after == (
        "FROM node:20-slim\nWORKDIR /srv\nCOPY package.json ./\nRUN npm install --omit=dev\n"
        'COPY . .\nCMD ["node", "index.js"]\n'
    )
    assert verify_dockerfile_edit(NODE, after) is None
    [note] = [f for f in result.findings if f.code == "dockerfile-unlocked-install"]
    assert note.level == "info"
    assert "package-lock.json" in note.message and "only when `package.json` changes" in note.message
    assert "reorder_unlocked: false" in note.message


def test_php_project_without_a_lock_file_gets_the_composer_prefetch() -> None:
    result = _plan(PHP, PHP_FILES)
    after = _dockerfile_edit(result)
    assert after is not None and "COPY composer.json ./\nRUN composer install --no-scripts --no-autoloader" in after
    assert any(f.code == "dockerfile-unlocked-install" and "composer.lock" in f.message for f in result.findings)


def test_locked_project_gets_no_note() -> None:
    result = _plan(NODE, {**NODE_FILES, "package-lock.json": "{}"})
    assert _dockerfile_edit(result) is not None
    assert not [f for f in result.findings if f.code == "dockerfile-unlocked-install"]


@pytest.mark.parametrize(("dockerfile", "files"), [(NODE, NODE_FILES), (PHP, PHP_FILES)])
def test_repo_setting_turns_it_off(dockerfile: str, files: dict[str, str]) -> None:
    options, problems = parse_repo_config("reorder_unlocked: false\n")
    assert problems == [] and options.reorder_unlocked is False
    result = _plan(dockerfile, files, options)
    assert _dockerfile_edit(result) is None
    assert any(f.code == "dockerfile-not-reordered" and "no lock file" in f.message for f in result.findings)


def test_setting_must_be_a_boolean() -> None:
    _, problems = parse_repo_config("reorder_unlocked: sometimes\n")
    assert [p.code for p in problems] == ["config-invalid"]
    assert "`reorder_unlocked` must be true or false" in problems[0].message


def test_other_ecosystems_still_need_their_lock_file() -> None:
    gemfile = "FROM ruby:3.3\nWORKDIR /app\nCOPY . .\nRUN bundle install\n"
    result = _plan(gemfile, {"Gemfile": "source 'https://rubygems.org'\ngem 'rack'\n"})
    assert _dockerfile_edit(result) is None


def test_lock_file_left_out_by_dockerignore_still_blocks() -> None:
    # The repository pins its versions but the build does not see the lock file: not an unpinned project.
    files = {**NODE_FILES, "package-lock.json": "{}", ".dockerignore": "package-lock.json\n"}
    result = _plan(NODE, files)
    assert _dockerfile_edit(result) is None
    assert any("no lock file" in f.message for f in result.findings)
