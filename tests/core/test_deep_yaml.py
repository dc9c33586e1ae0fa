"""Deeply nested YAML (and JSON) is refused with a finding, never a RecursionError (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from github_double import GitHubDouble, private_key_pem
from job_fixtures import context

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.cli.main import main
from bot.core import planner
from bot.core.buildspec import yaml_text as by
from bot.core.model import Options, RepoSnapshot
from bot.github.client import GatewayFactory
from bot.settings import Settings

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app:latest .\n"
DOCKERFILE = "FROM alpine:3.19\nRUN apk add --no-cache curl\nCOPY . /src\nRUN make\n"


def flow_nested(levels: int) -> str:
    """The shape of the report: 900 levels in 1.8 KB."""
    return "[" * levels + "]" * levels


def deep_buildspec(levels: int = 900) -> str:
    return BUILDSPEC + f"x-deep: {flow_nested(levels)}\n"


def write_repo(root: Path, files: dict[str, str]) -> dict[str, bytes]:
    for name, text in files.items():
        root.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
        root.joinpath(name).write_text(text)
    return {name: root.joinpath(name).read_bytes() for name in files}


@pytest.mark.parametrize("bom", ["", "\ufeff"])  # a BOM switches to the pure-Python loader, which recurses too
def test_check_exits_2_on_a_deeply_nested_buildspec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bom: str
) -> None:
    before = write_repo(tmp_path, {"buildspec.yml": bom + deep_buildspec(), "Dockerfile": DOCKERFILE})
    assert len(deep_buildspec()) < 1900
    assert main(["check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "buildspec.yml" in captured.err and "more than 64 levels deep" in captured.err
    assert "Traceback" not in captured.err
    assert main(["apply", str(tmp_path)]) == 2
    assert {name: tmp_path.joinpath(name).read_bytes() for name in before} == before


def test_plan_json_carries_the_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_repo(tmp_path, {"buildspec.yml": deep_buildspec(), "Dockerfile": DOCKERFILE})
    assert main(["plan", str(tmp_path), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["changes"] == []
    (finding,) = [f for f in document["findings"] if f["code"] == "plan-budget-exceeded"]
    assert finding["path"] == "buildspec.yml" and finding["level"] == "error" and "line 6" in finding["message"]


def test_deep_block_mappings_are_refused_too() -> None:
    nested = "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "v: 1\n"
    text = BUILDSPEC + "x-deep:\n" + nested
    files = {"buildspec.yml": text, "Dockerfile": DOCKERFILE}
    plan = planner.plan(RepoSnapshot(tuple(sorted(files)), files, repository="octo/app"), Options())
    assert plan.edits == ()
    assert [f.code for f in plan.findings] == ["plan-budget-exceeded"]


def test_nesting_limit_is_64_levels() -> None:
    # The top-level mapping is one level; 63 brackets inside it make 64.
    assert by.safe_load(f"a: {flow_nested(63)}\n") == {"a": json.loads(flow_nested(63))}
    assert by.compose(f"a: {flow_nested(63)}\n") is not None
    for load in (by.safe_load, by.compose):
        with pytest.raises(by.TooDeep, match="more than 64 levels deep"):
            load(f"a: {flow_nested(64)}\n")
    assert issubclass(by.TooDeep, yaml.YAMLError)  # every caller already turns YAMLError into a finding


def test_deep_repo_config_is_an_invalid_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_repo(
        tmp_path,
        {
            "buildspec.yml": BUILDSPEC,
            "Dockerfile": DOCKERFILE,
            ".github/ecr-cache.yml": f"region: {flow_nested(900)}\n",
        },
    )
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "more than 64 levels deep" in err


def test_deep_json_in_a_dockerfile_does_not_crash_planning() -> None:
    dockerfile = f"FROM alpine:3.19\nRUN apk add --no-cache curl\nCMD {flow_nested(5000)}\nCOPY . /src\n"
    files = {"buildspec.yml": BUILDSPEC, "Dockerfile": dockerfile}
    plan = planner.plan(RepoSnapshot(tuple(sorted(files)), files, repository="octo/app"), Options())
    assert "buildspec.yml" in {e.path for e in plan.edits}


def test_the_app_answers_a_deep_buildspec_with_the_finding(gh: GitHubDouble) -> None:
    repo = "octo/app"
    gh.add_repo(repo, {"buildspec.yml": deep_buildspec(), "Dockerfile": DOCKERFILE}, permissions={"dev": "admin"})
    settings = Settings(webhook_secret="s", app_id="7", private_key=private_key_pem(), github_api_url=gh.base_url)
    factory = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)
    (outcome,) = jobs.run(Job("sync", 1, repo, "d"), context(factory))
    assert outcome.action == "already" and gh.pulls_for(repo) == []
    comment = gh.add_comment(repo, 5, "/ecr-cache", "dev")
    data: dict[str, Any] = {
        "command": "open",
        "unknown": None,
        "comment_id": comment.id,
        "issue_number": 5,
        "user": "dev",
    }
    jobs.run(Job("command", 1, repo, f"c{comment.id}", data), context(factory))
    (reply,) = gh.bot_comments(repo, 5)
    assert "plan-budget-exceeded" in reply.body and "64 levels deep" in reply.body


@pytest.mark.parametrize("manifest", ["package.json", "composer.json"])
def test_deeply_nested_json_manifests_do_not_crash_planning(manifest: str) -> None:
    from bot.core import planner
    from bot.core.model import Options, RepoSnapshot

    install = "npm ci" if manifest == "package.json" else "composer install"
    lock = "package-lock.json" if manifest == "package.json" else "composer.lock"
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    files = {
        "buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n",
        "Dockerfile": f"FROM node:20\nWORKDIR /app\nCOPY . .\nRUN {install}\n",
        manifest: deep,
        ".dockerignore": "node_modules\nvendor\n",
    }
    plan = planner.plan(RepoSnapshot((*files, lock), files), Options())
    assert not [e for e in plan.edits if e.path == "Dockerfile"]
    assert any(manifest in f.message for f in plan.findings), [f.message for f in plan.findings]


_ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize("text", ["install: " + "[" * 2000 + "]" * 2000, _ALIAS_BOMB + "install: pull_requests\n"])
def test_a_hostile_org_config_is_refused_not_crashed(text: str) -> None:
    from bot.app import fanout

    opted_in, why = fanout.parse_opt_in(text)
    assert opted_in is False and "is not valid YAML" in why
