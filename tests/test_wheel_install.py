"""The installed package is the product: build the sdist and, from it, the wheel; install the wheel into a fresh
venv outside the checkout and use it from there (plan, PR body and comment, `--version`, `serve`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from runtime_fixtures import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

RENDER = """
import json, sys
from pathlib import Path
import bot
from bot.render import comments, pull_request
from bot.core import planner
from bot.core.model import Options
from bot.cli.local_repo import read_snapshot

options = Options()
plan = planner.plan(read_snapshot(Path(sys.argv[1]), options), options)
print(json.dumps({"module": bot.__file__, "body": pull_request.render_pr_body(plan, "acme/node-service", options),
                  "comment": comments.command_help()}))
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _clean_env(tmp: Path) -> dict[str, str]:
    """No checkout on the path and no settings leaking in from the test run."""
    drop = {
        "PYTHONPATH",
        "REDIS_URL",
        "DATA_DIR",
        "APP_ID",
        "PRIVATE_KEY",
        "PRIVATE_KEY_PATH",
        "DRY_RUN",
        "WEBHOOK_SECRET",
        "VIRTUAL_ENV",
        "PORT",
        "QUEUE_NAMESPACE",
        "WEBHOOK_PATH",
        "GITHUB_API_URL",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["HOME"] = os.environ.get("HOME", str(tmp))
    return env


def _build(out: Path, env: dict[str, str]) -> Path:
    """`python -m build`: the sdist from the checkout, then the wheel from that sdist (so both must be whole)."""
    out.mkdir()
    result = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], out, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    assert sdist.name.startswith(f"ecr_cache_bot-{VERSION}")
    with tarfile.open(sdist) as archive:
        shipped = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for template in sorted((ROOT / "templates").iterdir()):
        if template.is_file():
            assert f"templates/{template.name}" in shipped
    return wheel


def _venv(tmp: Path, wheel: Path, env: dict[str, str]) -> Path:
    """A fresh venv with the wheel and its dependencies; offline machines reuse the installed dependencies."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp, env)
    if result.returncode != 0:  # no package index reachable: the dependencies come from this interpreter
        shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
        result = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp, env)
        assert result.returncode == 0, result.stderr[-3000:]
    return venv


def _get(port: int, path: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        conn.close()


def _status(port: int, path: str) -> int:
    try:
        return _get(port, path)[0]
    except OSError:
        return 0


def test_the_installed_wheel_plans_renders_and_serves(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    started = time.monotonic()
    wheel = _build(tmp_path / "dist", env)
    names = zipfile.ZipFile(wheel).namelist()
    # Every module of the checkout's package and every template is in the wheel.
    for source in sorted((ROOT / "bot").rglob("*.py")):
        assert source.relative_to(ROOT).as_posix() in names
    for template in sorted((ROOT / "templates").glob("*.j2")):
        assert f"bot/templates/{template.name}" in names

    venv = _venv(tmp_path, wheel, env)
    python, cli = str(venv / "bin" / "python"), str(venv / "bin" / "ecr-cache-bot")

    version = _run([cli, "--version"], tmp_path, env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"ecr-cache-bot {VERSION}"

    example = tmp_path / "node-service"
    shutil.copytree(ROOT / "examples" / "node-service", example)
    plan = _run([cli, "plan", "node-service"], tmp_path, env)
    assert plan.returncode == 0, plan.stderr
    assert "+++ b/buildspec.yml" in plan.stdout and "--cache-to type=registry" in plan.stdout

    rendered = _run([python, "-c", RENDER, "node-service"], tmp_path, env)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    out = json.loads(rendered.stdout)
    assert Path(out["module"]).is_relative_to(venv), out["module"]  # the wheel is what ran, not the checkout
    assert "<!-- ecr-cache-bot:v1 fingerprint=" in out["body"] and "buildspec.yml" in out["body"]
    assert "/ecr-cache preview" in out["comment"]

    port = free_port()
    serve_env = {**env, "WEBHOOK_SECRET": "wheel-test-secret", "DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
        cwd=tmp_path,
        env=serve_env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: _status(port, "/healthz") == 200, 60, 0.2), (tmp_path / "serve.log").read_text()
        status, kind, page = _get(port, "/")
        assert status == 200 and kind.startswith("text/html"), page[-2000:]
        assert "<h1>ecr-cache-bot</h1>" in page
        assert json.loads(_get(port, "/healthz")[2]) == {"status": "ok"}
        # Ready once the embedded worker's first heartbeat is in the queue store.
        assert wait_until(lambda: _status(port, "/readyz") == 200, 30, 0.2), _get(port, "/readyz")
        ready = json.loads(_get(port, "/readyz")[2])
        assert ready["status"] == "ready"
        assert set(ready["checks"]) == {"queue_store", "templates", "workers"}
        assert ready["checks"]["workers"].startswith("1 live")
        metrics = _get(port, "/metrics")[2]
        assert "ecr_cache_bot_workers_live 1" in metrics
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(40) == 0
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                serve.wait(30)
        with contextlib.suppress(ProcessLookupError):  # gunicorn or a worker left over
            os.killpg(serve.pid, signal.SIGKILL)
        serve.wait(10)
        log.close()
    sys.stderr.write(f"wheel build, install and use: {time.monotonic() - started:.1f} s\n")
