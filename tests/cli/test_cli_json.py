"""`--json` for tools: schema_version, reasons, setup, files found, finding lines; check --json; config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_fixtures import DOCKERFILE, write_checkout

from bot.cli.main import main
from bot.core import planner
from bot.core.model import Finding, Options, RepoSnapshot


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """One buildspec (a flags variable on line 6, a Docker Hub push on line 7) and one Dockerfile."""
    return write_checkout(tmp_path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], code: int) -> dict[str, Any]:
    assert main(argv) == code
    out = capsys.readouterr().out
    document = json.loads(out)
    assert isinstance(document, dict)
    return document


def test_plan_json_has_schema_version_reasons_and_keeps_the_contract(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _run(["plan", str(checkout), "--json"], capsys, 0)
    assert document["schema_version"] == 2
    assert document["status"] == "changes"
    spec = next(c for c in document["changes"] if c["path"] == "buildspec.yml")
    assert {"path", "action", "content"} <= set(spec) and spec["action"] == "modify"
    assert spec["reasons"] and all(isinstance(r, str) and r for r in spec["reasons"])
    assert any("`docker buildx build`" in r and "$CACHE_URI:cache" in r for r in spec["reasons"])
    for finding in document["findings"]:
        assert {"path", "level", "code", "message", "line"} <= set(finding)


def test_plan_json_lists_setup_commands_and_policies(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = _run(["plan", str(checkout), "--json"], capsys, 0)["setup"]
    assert setup["commands"] and all("\n" not in c for c in setup["commands"])
    assert any(c.startswith("aws ecr create-repository") for c in setup["commands"])
    assert setup["cache_repository"] == "shop-build-cache"
    assert setup["lifecycle_policy"]["rules"]
    assert setup["iam_policy"]["Statement"]
    assert "ecr-cache/iam-policy.json" in setup["files"]


def test_plan_json_lists_files_found_and_builds(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _run(["plan", str(checkout), "--json"], capsys, 0)
    assert document["files"] == {"buildspecs": ["buildspec.yml"], "dockerfiles": ["Dockerfile"]}
    (build,) = document["builds"]
    assert build["buildspec"] == "buildspec.yml" and build["line"] == 6
    assert build["dockerfile"] == "Dockerfile" and build["cached"] is True
    assert build["cache_tag"] == "cache" and build["output"] in ("load", "push")


def test_findings_carry_their_line(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    findings = _run(["plan", str(checkout), "--json"], capsys, 0)["findings"]
    by_code = {f["code"]: f for f in findings}
    assert by_code["build-flags-variable"]["line"] == 6
    assert by_code["dockerhub-push"]["line"] == 7
    assert by_code["privileged-mode"]["line"] is None  # about the project, not a line


def test_no_setup_when_no_buildspec_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "README.md").write_text("hello\n")
    document = _run(["plan", str(tmp_path), "--json"], capsys, 0)
    assert document["status"] == "nothing-found" and document["setup"] is None
    assert document["files"] == {"buildspecs": [], "dockerfiles": []}


def test_check_json_gives_the_plan_and_the_check_status(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _run(["check", str(checkout), "--json"], capsys, 1)
    assert document["status"] == "changes" and document["exit_code"] == 1
    assert document["schema_version"] == 2 and document["changes"]
    assert main(["apply", str(checkout)]) == 0
    capsys.readouterr()
    document = _run(["check", str(checkout), "--json"], capsys, 0)
    assert document["status"] == "set-up" and document["exit_code"] == 0 and document["changes"] == []


def test_check_json_disabled_and_nothing_found(
    checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(["check", str(empty), "--json"], capsys, 3)["status"] == "nothing-found"
    (checkout / ".github").mkdir()
    (checkout / ".github" / "ecr-cache.yml").write_text("enabled: false\n")
    document = _run(["check", str(checkout), "--json"], capsys, 4)
    assert document["status"] == "disabled" and document["exit_code"] == 4


@pytest.mark.parametrize("command", ["plan", "check"])
def test_config_errors_are_json_too(checkout: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / ".github").mkdir()
    (checkout / ".github" / "ecr-cache.yml").write_text("mode: turbo\nlifecycle_days: -3\n")
    document = _run([command, str(checkout), "--json"], capsys, 2)
    assert document["status"] == "error" and document["exit_code"] == 2
    assert document["schema_version"] == 2
    assert len(document["errors"]) == 2
    assert any("`mode`" in e for e in document["errors"])
    assert any("lifecycle_days" in e for e in document["errors"])


def test_unreadable_checkout_is_json_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _run(["check", str(tmp_path / "missing"), "--json"], capsys, 2)
    assert document["status"] == "error" and "not a directory" in document["errors"][0]


def test_finding_line_is_optional() -> None:
    assert Finding("a", "info", "c", "m").line is None
    assert Finding("a", "info", "c", "m", line=3).line == 3


def _lines(buildspec: str, files: dict[str, str] | None = None) -> dict[str, int | None]:
    texts = {"buildspec.yml": buildspec, "Dockerfile": DOCKERFILE, **(files or {})}
    snapshot = RepoSnapshot(paths=tuple(texts), files=texts, repository="shop")
    return {f.code: f.line for f in planner.plan(snapshot, Options()).findings}


@pytest.mark.parametrize(
    ("commands", "code", "line"),
    [
        (["echo a", "docker build --no-cache -t app ."], "cache-reuses-nothing", 6),
        (["docker build $FLAGS -t app ."], "build-flags-variable", 5),
        (["docker buildx build --builder mine -t app ."], "own-builder", 5),
        (["echo a", "docker load -i base.tar", "docker build -t app ."], "local-base-image", 6),
        (["echo a", "docker build -t app .", "echo b: c"], "buildspec-command-mapping", 7),
        (["docker build -t app .", "docker push me/app"], "dockerhub-push", 6),
        (["docker build -t app ./nope"], "dockerfile-missing", 5),
    ],
)
def test_line_is_set_where_buildspec_findings_are_made(commands: list[str], code: str, line: int) -> None:
    text = "version: 0.2\nphases:\n  build:\n    commands:\n" + "".join(f"      - {c}\n" for c in commands)
    found = _lines(text)
    assert code in found, found
    assert found[code] == line


def test_line_of_a_dockerfile_cache_mount_finding() -> None:
    dockerfile = (
        "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\n"
        "RUN --mount=type=cache,target=/app/node_modules npm ci\nCOPY . .\n"
    )
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n"
    found = _lines(buildspec, {"Dockerfile": dockerfile, "package.json": "{}", "package-lock.json": "{}"})
    assert found.get("dockerfile-cache-mount-only") == 4, found


def test_check_json_and_annotations_past_the_planning_budget(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = "".join(f"FROM alpine:3.20 AS s{n}\nRUN echo {n}\n" for n in range(600))
    (checkout / "Dockerfile").write_text(stages)
    document = _run(["check", str(checkout), "--json"], capsys, 2)
    assert document["status"] == "not-planned" and document["exit_code"] == 2 and document["changes"] == []
    assert main(["check", str(checkout), "--github-annotations"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("::") and "title=plan-budget-exceeded::" in line for line in lines)
    assert lines[-1].startswith("Not planned:")


def test_secret_in_cache_is_on_the_line_of_the_build_it_leaves_alone() -> None:
    buildspec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n"
        "      - git remote set-url origin https://x-access-token:${GITHUB_TOKEN}@github.com/acme/web.git\n"
        "      - echo building\n"
        "      - docker build -t app .\n"
    )
    dockerfile = DOCKERFILE.replace("COPY . .\n", "COPY . .\nRUN git describe\n")
    found = _lines(buildspec, {"Dockerfile": dockerfile, "requirements.txt": "flask\n"})
    assert found.get("secret-in-cache") == 7, found
