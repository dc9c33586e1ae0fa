"""One measured build the way CodeBuild runs it: a wiped engine, the layer cache only in a registry."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra import WORK, engine_args, proxy_env, wipe_engine

STAMP_RE = re.compile(r"^\[\s*[\d.]+\] ")
STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
# buildah prints one of these after a STEP line when the step's layer came from a cache.
CACHED_RE = re.compile(r"^--> (Using cache|Cache pulled from remote)\b")


@dataclass(frozen=True)
class Step:
    """One Dockerfile instruction as the engine reported it."""

    index: int
    instruction: str
    cached: bool


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
    """Per-step cached/not-cached from buildah's ``bud`` output."""
    steps: list[Step] = []
    current: tuple[int, str] | None = None
    cached = False
    for line in output.splitlines():
        line = STAMP_RE.sub("", line)
        match = STEP_RE.match(line)
        if match:
            if current:
                steps.append(Step(current[0], current[1], cached))
            current, cached = (int(match.group(1)), match.group(3)), False
        elif current and CACHED_RE.match(line):
            cached = True
    if current:
        steps.append(Step(current[0], current[1], cached))
    return tuple(steps)


def build(context: Path, dockerfile: Path, cache_repo: str) -> Build:
    """Build with a fresh, empty engine; import and export the layer cache via ``cache_repo``."""
    engine = WORK / "engine" / uuid.uuid4().hex[:12]
    wipe_engine(engine)
    cmd = [*engine_args(engine), "bud", "--isolation", "chroot", "--layers", "--tls-verify=false",
           "--cache-from", cache_repo, "--cache-to", cache_repo,
           *[f"--build-arg={k}={v}" for k, v in proxy_env().items()],
           "-f", str(dockerfile), "-t", "bench-output:latest", str(context)]
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
