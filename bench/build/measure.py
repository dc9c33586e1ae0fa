"""One measured build the way CodeBuild runs it: a wiped engine, the layer cache only in a registry."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra import ENGINE_ROOT, engine_args, proxy_env, wipe_engine

STAMP_RE = re.compile(r"^\[\s*([\d.]+)\] ")
STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
# buildah prints one of these after a STEP line when the step's layer came from a cache.
CACHED_RE = re.compile(r"^--> (Using cache|Cache pulled from remote)\b")


@dataclass(frozen=True)
class Step:
    """One Dockerfile instruction as the engine reported it."""

    index: int
    instruction: str
    cached: bool
    seconds: float = 0.0


@dataclass(frozen=True)
class Build:
    """Wall time and per-step cache report of one build."""

    seconds: float
    steps: tuple[Step, ...]
    log: str

    @property
    def cached_count(self) -> int:
        """Steps (FROM excluded) the engine took from the cache."""
        return sum(1 for s in self.steps if s.cached)

    @property
    def step_count(self) -> int:
        """Steps other than FROM (FROM is a pull, never a cache hit)."""
        return sum(1 for s in self.steps if not s.instruction.upper().startswith("FROM "))


def parse_steps(output: str) -> tuple[Step, ...]:
    """Per-step cached/not-cached and duration from buildah's timestamped ``bud`` output."""
    starts: list[tuple[int, str, float]] = []
    cached: set[int] = set()
    end = 0.0
    for raw in output.splitlines():
        stamp = STAMP_RE.match(raw)
        at = float(stamp.group(1)) if stamp else end
        end = max(end, at)
        line = STAMP_RE.sub("", raw)
        match = STEP_RE.match(line)
        if match:
            starts.append((int(match.group(1)), match.group(3), at))
        elif starts and CACHED_RE.match(line):
            cached.add(len(starts) - 1)
    ends = [s[2] for s in starts[1:]] + [end]
    return tuple(Step(index, text, i in cached, ends[i] - at) for i, (index, text, at) in enumerate(starts))


def build(context: Path, dockerfile: Path, cache_repo: str) -> Build:
    """Build with a fresh, empty engine; import and export the layer cache via ``cache_repo``."""
    engine = ENGINE_ROOT / uuid.uuid4().hex[:12]
    wipe_engine(engine)
    cmd = [
        *engine_args(engine),
        "bud",
        "--isolation",
        "chroot",
        "--layers",
        "--tls-verify=false",
        "--cache-from",
        cache_repo,
        "--cache-to",
        cache_repo,
        *[f"--build-arg={k}={v}" for k, v in proxy_env().items()],
        "-f",
        str(dockerfile),
        "-t",
        "bench-output:latest",
        str(context),
    ]
    try:
        start = time.monotonic()
        lines: list[str] = []
        with subprocess.Popen(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(f"[{time.monotonic() - start:7.2f}] {line.rstrip()}")
        seconds = time.monotonic() - start
    finally:
        wipe_engine(engine)
    output = "\n".join(lines)
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}): {' '.join(cmd)}\n{output[-6000:]}")
    return Build(seconds, parse_steps(output), output)
