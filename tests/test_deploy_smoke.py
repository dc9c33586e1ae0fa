"""The bot's image builds and works: deploy/build-and-smoke.sh builds it, runs it and processes a delivery."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the smoke run needs root (rootful podman on a tmpfs); run `sudo bash deploy/build-and-smoke.sh` by hand",
)
def test_the_image_builds_serves_and_processes_a_signed_delivery() -> None:
    run = subprocess.run(
        ["bash", str(ROOT / "deploy" / "build-and-smoke.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    out = run.stdout + run.stderr
    print(out)  # the build time, image size and answers belong in the CI log
    assert run.returncode == 0, out
    assert "smoke test: passed" in out
    for layout in ("[serve + worker, SQLite]", "[compose web + 2 workers, Redis]"):
        assert f"{layout} /readyz: HTTP 200" in out
        assert f"{layout} signed push delivery: HTTP 202, processed" in out
    assert "image user: 10001:10001" in out
