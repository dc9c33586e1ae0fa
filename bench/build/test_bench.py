"""Tests of the benchmark's parsing (no builds): `python -m pytest bench/build/test_bench.py -q`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goproxy import escape  # noqa: E402
from measure import Build, parse_steps  # noqa: E402
from plan_after import After  # noqa: E402
from run import App, AppResult, compare_table, instruction_lines  # noqa: E402

from bot.core.model import CacheStep, CacheTable  # noqa: E402

# Trimmed from a real run (scratch/logs), timestamps as measure.build writes them.
WARM_LOG = """\
[   0.04] STEP 1/5: FROM 127.0.0.1:5000/bench/python:3.11-slim-bookworm
[   7.26] Writing manifest to image destination
[   7.29] STEP 2/5: WORKDIR /app
[   7.32] --> Cache pulled from remote 127.0.0.1:5000/bench-cache/x:b3be
[   7.34] --> Using cache 4755089ae217edda12ecf279a5a09ed89e726347bcd3d9b3d10298f10dc23919
[   7.35] STEP 3/5: COPY requirements.txt ./
[   7.47] --> Cache pulled from remote 127.0.0.1:5000/bench-cache/x:7139
[   7.48] STEP 4/5: RUN pip install -r requirements.txt
[   9.16] --> Cache pulled from remote 127.0.0.1:5000/bench-cache/x:f598
[   9.16] STEP 5/5: COPY . .
[   9.33] --> Pushing cache 127.0.0.1:5000/bench-cache/x:368c
[   9.40] --> ea29117feec
"""

DOCKERFILE = """\
FROM 127.0.0.1:5000/bench/python:3.11-slim-bookworm
WORKDIR /app
# dependencies first
COPY requirements.txt ./
RUN pip install \\
    -r requirements.txt
COPY . .
"""


def test_parse_steps_reads_cache_verdict_and_duration() -> None:
    steps = parse_steps(WARM_LOG)
    assert [(s.index, s.cached) for s in steps] == [(1, False), (2, True), (3, True), (4, True), (5, False)]
    assert steps[0].instruction.startswith("FROM ")
    assert abs(steps[0].seconds - 7.25) < 1e-6
    assert abs(steps[3].seconds - 1.68) < 1e-6
    assert abs(steps[4].seconds - 0.24) < 1e-6


def test_pushing_cache_is_not_a_hit() -> None:
    steps = parse_steps("[ 0.1] STEP 1/2: FROM x\n[ 0.2] STEP 2/2: RUN a\n[ 0.3] --> Pushing cache r:1\n")
    assert not steps[1].cached


def test_build_counts_exclude_from() -> None:
    build = Build(9.4, parse_steps(WARM_LOG), WARM_LOG)
    assert (build.cached_count, build.step_count) == (3, 4)


def test_instruction_lines_skip_comments_and_continuations() -> None:
    assert instruction_lines(DOCKERFILE) == [1, 2, 4, 5, 7]


def _result(table_steps: tuple[CacheStep, ...]) -> AppResult:
    table = CacheTable("Dockerfile", before=(), after=table_steps)
    result = AppResult(App("x", "x", "app.py", "#"), After({}, table, ()), {"after": DOCKERFILE})
    result.warm["after"] = [Build(9.4, parse_steps(WARM_LOG), WARM_LOG)]
    return result


def test_compare_table_agrees_by_line() -> None:
    result = _result(
        (
            CacheStep("0", 4, "COPY requirements.txt ./", False, True),
            CacheStep("0", 5, "RUN pip install -r requirements.txt", False, True),
            CacheStep("0", 7, "COPY . .", True, True),
        )
    )
    compare_table(result, "after")
    assert len(result.agreement) == 3 and not result.mismatches


def test_compare_table_reports_a_wrong_prediction() -> None:
    result = _result((CacheStep("0", 7, "COPY . .", False, True),))
    compare_table(result, "after")
    assert result.mismatches and "table cached, engine re-runs" in result.mismatches[0]


def test_compare_table_reports_a_line_that_is_no_instruction() -> None:
    result = _result((CacheStep("0", 3, "COPY requirements.txt ./", False, True),))
    compare_table(result, "after")
    assert result.mismatches and "not an instruction" in result.mismatches[0]


def test_goproxy_escapes_upper_case() -> None:
    assert escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
