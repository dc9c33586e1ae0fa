"""Hostile sizes cannot pin a worker: planning work grows linearly, and a repository past the budget is refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from bot.cli.main import main
from bot.core import budget, planner
from bot.core.model import Options, Plan, RepoSnapshot
from bot.core.shell.words import clear_cache

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pathological.py"


def _bench() -> ModuleType:
    """The hostile shapes `bench/pathological.py` measures, so the test and the benchmark plan the same inputs."""
    spec = importlib.util.spec_from_file_location("pathological", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shapes = _bench()
stages, runs, build_args, builds = shapes.stages, shapes.runs, shapes.build_args, shapes.builds


def snapshot(files: dict[str, str]) -> RepoSnapshot:
    return RepoSnapshot(paths=tuple(sorted(files)), files=files, repository="octo/app")


def calls(files: dict[str, str]) -> int:
    """Python and C function calls one plan makes: a measure of work that does not depend on the machine's load."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    snap = snapshot(files)
    clear_cache()  # every measured plan starts cold
    sys.setprofile(profile)
    try:
        planner.plan(snap, Options())
    finally:
        sys.setprofile(None)
    return count


def growth(make: Callable[[int], dict[str, str]], n: int) -> float:
    """How much more work a plan does at twice the size (2.0 is linear, 4.0 quadratic)."""
    return calls(make(2 * n)) / calls(make(n))


@pytest.mark.parametrize(
    ("shape", "make", "n"),
    [
        ("chained COPY --from stages", stages, 60),
        ("RUN lines", runs, 300),
        ("--build-arg on one line", build_args, 500),
    ],
)
def test_planning_work_grows_linearly(shape: str, make: Callable[[int], dict[str, str]], n: int) -> None:
    assert growth(make, n) < 2.4, f"planning {shape} does super-linear work"


def refused(plan: Plan) -> list[str]:
    return [f"{f.path}: {f.message}" for f in plan.findings if f.code == "plan-budget-exceeded"]


def test_too_many_stages_is_refused_with_a_finding_and_no_edit() -> None:
    plan = planner.plan(snapshot(stages(501)), Options())
    assert plan.edits == ()
    assert refused(plan) and "501 build stages" in refused(plan)[0] and refused(plan)[0].startswith("Dockerfile:")
    assert all(f.level == "error" for f in plan.findings if f.code == "plan-budget-exceeded")


def test_at_the_stage_limit_the_repository_is_still_planned() -> None:
    plan = planner.plan(snapshot(stages(500)), Options())
    assert not refused(plan)
    assert "buildspec.yml" in {e.path for e in plan.edits}


def test_too_many_instructions_is_refused() -> None:
    plan = planner.plan(snapshot(runs(5_000)), Options())
    assert plan.edits == ()
    assert "5,004 instructions" in refused(plan)[0]


def test_a_huge_build_args_line_is_refused() -> None:
    files = build_args(30_000)
    plan = planner.plan(snapshot(files), Options())
    assert plan.edits == ()
    size = len(files["buildspec.yml"])
    assert refused(plan)[0].startswith("buildspec.yml:")
    assert f"it has {size:,} characters, more than {budget.MAX_BUILDSPEC_CHARS:,}" in refused(plan)[0]


def test_too_many_builds_is_refused() -> None:
    plan = planner.plan(snapshot(builds(201)), Options())
    assert plan.edits == ()
    assert any("201 `docker build` commands" in r for r in refused(plan))


def test_builds_times_instructions_are_counted_as_work_units() -> None:
    # 150 builds are within their limit, and so is a 4,004-instruction Dockerfile; every build analysing that
    # Dockerfile again is not.
    files = builds(150) | {"Dockerfile": runs(4_000)["Dockerfile"]}
    plan = planner.plan(snapshot(files), Options())
    assert plan.edits == ()
    assert any("work units" in r and "150 builds" in r for r in refused(plan))
    few = planner.plan(snapshot(builds(50) | {"Dockerfile": runs(4_000)["Dockerfile"]}), Options())
    assert not refused(few) and few.edits


def test_builds_repeated_by_yaml_aliases_count_once_per_repetition() -> None:
    block = "".join(f"    - docker build -t app{i}:latest .\n" for i in range(100))
    text = (
        f"version: 0.2\nx-builds: &builds\n{block}phases:\n  pre_build:\n    commands: *builds\n"
        "  build:\n    commands: *builds\n  post_build:\n    commands: *builds\n"
    )
    plan = planner.plan(snapshot({"buildspec.yml": text, "Dockerfile": shapes.DOCKERFILE}), Options())
    assert any("400 `docker build` commands" in r for r in refused(plan))


def write_repo(root: Path, files: dict[str, str]) -> dict[str, bytes]:
    for name, text in files.items():
        root.joinpath(name).write_text(text)
    return {name: root.joinpath(name).read_bytes() for name in files}


def test_check_and_apply_exit_2_on_a_repository_past_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write_repo(tmp_path, stages(2_000))
    assert main(["check", str(tmp_path)]) == 2
    assert "2,000 build stages" in capsys.readouterr().err
    assert main(["apply", str(tmp_path)]) == 2
    assert {name: tmp_path.joinpath(name).read_bytes() for name in before} == before
    assert main(["plan", str(tmp_path), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "not-planned" and document["changes"] == []
    assert {f["code"] for f in document["findings"]} == {"plan-budget-exceeded"}
    assert main(["plan", str(tmp_path)]) == 2
    assert "not planned: the repository is past the planning budget" in capsys.readouterr().out


def test_many_buildspecs_count_together() -> None:
    # 20 buildspecs of 230 KB each are each under the per-file limit; together they are past the budget.
    spec = build_args(9_800)["buildspec.yml"]
    files = {f"svc{i}/buildspec.yml": spec for i in range(20)} | {"Dockerfile": shapes.DOCKERFILE}
    plan = planner.plan(snapshot(files), Options())
    assert plan.edits == ()
    assert any("characters" in r and "buildspecs" in r for r in refused(plan))
