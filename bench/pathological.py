"""Planning time and peak memory on hostile repository shapes (issue 14), each at 1x, 2x and 4x size.

Shapes: chained `COPY --from` stages, many `RUN` lines, one build line with many `--build-arg`, many builds in
one buildspec, deeply nested YAML. The 1x/2x/4x rows stay within the planning budget (`bot/core/budget.py`), so
they show how the work grows (2x the size should take about 2x the time). The "report" rows are the sizes of
issue 14, which the budget refuses; the "no budget" rows plan those sizes with the budget switched off, to show
that planning itself stays close to linear. Every case runs in its own Python process (`ru_maxrss` is per
process) with a timeout. Run it on older code with `PYTHONPATH=<old checkout>`: the children import `bot` from
there (code without a budget plans every row).

    python bench/pathological.py               # about a minute on 2 cores; prints a markdown table
    python bench/pathological.py --only stages --timeout 60
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - docker build -t app:latest .
      - docker push app:latest
"""
DOCKERFILE = "FROM alpine:3.19\nRUN apk add --no-cache curl\nCOPY . /src\nRUN make\n"


def stages(n: int) -> dict[str, str]:
    """`n` stages, each copying a file from the stage before it."""
    lines = ["FROM alpine:3.19 AS s0", "RUN echo 0 > /f0"]
    for i in range(1, n):
        lines += [f"FROM alpine:3.19 AS s{i}", f"COPY --from=s{i - 1} /f{i - 1} /f{i - 1}", f"RUN echo {i} > /f{i}"]
    return {"buildspec.yml": BUILDSPEC, "Dockerfile": "\n".join(lines) + "\n"}


def runs(n: int) -> dict[str, str]:
    """One stage of `n` RUN lines after the source copy."""
    body = "".join(f"RUN echo {i}\n" for i in range(n))
    return {"buildspec.yml": BUILDSPEC, "Dockerfile": DOCKERFILE + body}


def build_args(n: int) -> dict[str, str]:
    """One buildspec line with `n` `--build-arg`s."""
    args = " ".join(f"--build-arg A{i}=v{i}" for i in range(n))
    return {"buildspec.yml": BUILDSPEC.replace("docker build -t", f"docker build {args} -t"), "Dockerfile": DOCKERFILE}


def builds(n: int) -> dict[str, str]:
    """`n` builds (and pushes) of one 100-instruction Dockerfile in one buildspec."""
    cmds = "".join(f"      - docker build -t app{i}:latest .\n      - docker push app{i}:latest\n" for i in range(n))
    body = "".join(f"RUN echo {i}\n" for i in range(96))
    return {"buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n" + cmds, "Dockerfile": DOCKERFILE + body}


def deep_yaml(n: int) -> dict[str, str]:
    """A buildspec with `n` nested flow sequences (the report's 900 levels are 1.8 KB)."""
    return {"buildspec.yml": BUILDSPEC + "x: " + "[" * n + "]" * n + "\n", "Dockerfile": DOCKERFILE}


SHAPES: dict[str, tuple[Callable[[int], dict[str, str]], int, tuple[int, ...]]] = {
    # name: (generator, 1x size, sizes of the report)
    "stages": (stages, 125, (2_000, 20_000)),
    "runs": (runs, 1_000, (100_000,)),
    "build_args": (build_args, 2_500, (30_000,)),
    "builds": (builds, 50, (1_000,)),
    "deep_yaml": (deep_yaml, 225, ()),
}


def child(shape: str, size: int, budget: bool) -> None:
    """Plan one generated repository and print seconds, peak RSS and the outcome as JSON."""
    from bot.core import planner
    from bot.core.model import Options, RepoSnapshot

    if not budget and hasattr(planner, "budget"):
        planner.budget.check = lambda *_: ()  # any signature: switched off

    files = SHAPES[shape][0](size)
    snapshot = RepoSnapshot(paths=tuple(sorted(files)), files=files, repository="octo/app")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        plan = planner.plan(snapshot, Options())
        outcome = (
            "refused" if any(f.code == "plan-budget-exceeded" for f in plan.findings) else f"{len(plan.edits)} edits"
        )
    except RecursionError:
        outcome = "RecursionError"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak / 1024,
                "growth_mb": (peak - base) / 1024,
                "bytes": sum(len(t) for t in files.values()),
                "outcome": outcome,
            }
        )
    )


def run_case(shape: str, size: int, timeout: float, budget: bool) -> dict[str, object]:
    """Run one case in a fresh interpreter."""
    command = [sys.executable, __file__, "--child", shape, str(size)] + ([] if budget else ["--no-budget"])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"outcome": f"timeout > {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"outcome": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SHAPES), help="run only this shape (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case (default 30)")
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--no-budget", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), not args.no_budget)
        return
    print("| shape | size | input | plan time | peak RSS | RSS growth | outcome |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for shape, (_, one, reported) in SHAPES.items():
        if args.only and shape not in args.only:
            continue
        cases = [
            *((f"{k}x", one * k, True) for k in (1, 2, 4)),
            *(("report", s, True) for s in reported),
            *(("report, no budget", s, False) for s in reported),
        ]
        for label, size, budget in cases:
            r = run_case(shape, size, args.timeout, budget)
            seconds = f"{r['seconds']:.2f} s" if "seconds" in r else "-"
            peak = f"{r['peak_mb']:.0f} MB" if "peak_mb" in r else "-"
            growth = f"{r['growth_mb']:.0f} MB" if "growth_mb" in r else "-"
            size_kb = f"{int(str(r['bytes'])) / 1024:.0f} KB" if "bytes" in r else "-"
            print(
                f"| {shape} | {size:,} ({label}) | {size_kb} | {seconds} | {peak} | {growth} | {r['outcome']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
