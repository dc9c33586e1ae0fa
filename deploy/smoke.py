"""Run the built image against the GitHub test double and prove it works: `/readyz`, then one signed delivery.

Called by `deploy/build-and-smoke.sh` after the build (needs the dev install: `pip install -e '.[dev]'`).
The double (tests/github_double.py) serves on 127.0.0.1; the containers run on the host network and talk to it
through GITHUB_API_URL. A `push` to the default branch that touches the Dockerfile must end with the bot's pull
request open on the double: the job ran in a worker, not only the intake. Two layouts are run, hardened as the
Kubernetes manifests run them (read-only root filesystem, no capabilities):

- single machine: the image's default command (`serve`) plus a `worker` container on the same SQLite volume;
- scale-out: the web and worker commands of deploy/compose.yaml on a Redis (a local `redis-server` with AOF).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from github_double import GitHubDouble, private_key_pem, push_payload, wsgi_app  # noqa: E402

WEBHOOK_PATH = "/api/github/webhooks"
SECRET_NAMES = ("WEBHOOK_SECRET", "APP_ID", "PRIVATE_KEY", "GITHUB_API_URL", "PORT")
# As the Kubernetes manifests run the pods: read-only root filesystem, no capabilities, no privilege escalation.
HARDENED = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


def free_port() -> int:
    """A port nothing listens on now (a container binds it on the host network)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The double's access log would drown the results; the requests are counted instead."""


def serve_double() -> tuple[GitHubDouble, Any]:
    """The stateful GitHub double over real HTTP on 127.0.0.1."""
    holder: dict[str, Any] = {}
    server = make_server(
        "127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True, request_handler=_Quiet
    )
    double = GitHubDouble(base_url=f"http://127.0.0.1:{server.server_port}")
    holder["app"] = wsgi_app(double)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return double, server


def add_example_repo(double: GitHubDouble, full_name: str) -> None:
    """examples/node-service as a repository on the double."""
    example = ROOT / "examples" / "node-service"
    double.add_repo(
        full_name, {str(p.relative_to(example)): p.read_text() for p in sorted(example.rglob("*")) if p.is_file()}
    )


def wait_ready(base: str, timeout: float) -> tuple[int, str, float]:
    """Poll /readyz until 200 or the timeout; return the last status, body and seconds waited."""
    start = time.monotonic()
    status, body = 0, "no answer"
    while time.monotonic() - start < timeout:
        try:
            answer = requests.get(f"{base}/readyz", timeout=3)
            status, body = answer.status_code, answer.text.strip()
            if status == 200:
                break
        except requests.RequestException as exc:
            body = f"{type(exc).__name__}"
        time.sleep(0.5)
    return status, body, time.monotonic() - start


def deliver_push(double: GitHubDouble, full_name: str, base: str, secret: str) -> tuple[bool, str]:
    """Commit a Dockerfile change on the double, post the signed `push`, wait for the bot's pull request."""
    repo = double.repos[full_name]
    before = repo.refs["main"]
    dockerfile = double.file_text(full_name, "main", "Dockerfile") or ""
    after = double.commit_files(full_name, "main", {"Dockerfile": dockerfile + "\n"})
    raw = json.dumps(push_payload(repo, before, after, ["Dockerfile"])).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    seen = len(double.history)
    start = time.monotonic()
    answer = requests.post(
        f"{base}{WEBHOOK_PATH}",
        data=raw,
        timeout=30,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"smoke-{secrets.token_hex(4)}",
            "X-Hub-Signature-256": signature,
            "Content-Type": "application/json",
        },
    )
    while time.monotonic() - start < 90 and not double.pulls_for(full_name):
        time.sleep(0.25)
    took = time.monotonic() - start
    pulls = double.pulls_for(full_name)
    if answer.status_code != 202 or not pulls:
        return False, f"HTTP {answer.status_code}; no pull request after {took:.0f} s"
    pull = pulls[0]
    changed = sorted(
        path
        for path, text in double.branch_files(full_name, pull.head).items()
        if double.file_text(full_name, "main", path) != text
    )
    calls = double.history[seen:]
    writes = sum(1 for r in calls if r.is_write)
    return True, (
        f"HTTP {answer.status_code}, processed in {took:.1f} s: pull request #{pull.number} {pull.state} "
        f"on {full_name} from {pull.head} changing {', '.join(changed)}; {len(calls)} GitHub API "
        f"requests ({writes} writes)"
    )


class Containers:
    """Containers started through the engine, removed (with their anonymous volumes) at the end."""

    def __init__(self, engine: list[str], run_flags: list[str], env: dict[str, str]) -> None:
        self.engine, self.run_flags, self.env = engine, run_flags, env
        self.names: list[str] = []

    def run(self, name: str, *args: str, extra_env: tuple[str, ...] = ()) -> None:
        """`run --detach` on the host network; values travel in the engine's environment, not its command line."""
        command = [
            *self.engine,
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            *self.run_flags,
            *HARDENED,
            *[f"--env={k}" for k in (*SECRET_NAMES, *extra_env)],
            *args,
        ]
        started = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if started.returncode != 0:
            raise RuntimeError(f"{name} did not start: {started.stderr.strip()[-800:]}")
        self.names.append(name)

    def healthy(self, name: str) -> bool:
        """The image's HEALTHCHECK, run now."""
        return subprocess.run([*self.engine, "healthcheck", "run", name], capture_output=True).returncode == 0

    def logs(self) -> str:
        """The last lines of every container's log."""
        out = []
        for name in self.names:
            logs = subprocess.run([*self.engine, "logs", "--tail", "30", name], capture_output=True, text=True)
            out.append(f"--- {name} (last 30 lines)\n{logs.stdout}{logs.stderr}")
        return "\n".join(out)

    def remove(self) -> None:
        """Remove them, newest first (the worker holds the web container's volume)."""
        for name in reversed(self.names):
            subprocess.run([*self.engine, "rm", "--force", "--volumes", name], capture_output=True)
        self.names.clear()


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 with AOF, as deploy/compose.yaml runs Redis; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is missing (Debian package redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ecr-cache-bot-smoke-redis-") as folder:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def check(
    label: str, containers: Containers, names: list[str], base: str, double: GitHubDouble, full_name: str, secret: str
) -> bool:
    """/readyz, each container's HEALTHCHECK, then one delivery processed; print each result."""
    status, body, waited = wait_ready(base, timeout=90)
    print(f"[{label}] /readyz: HTTP {status} after {waited:.1f} s: {body}")
    health = {name: containers.healthy(name) for name in names}
    print(f"[{label}] HEALTHCHECK: " + ", ".join(f"{n} {'healthy' if ok else 'UNHEALTHY'}" for n, ok in health.items()))
    if status != 200:
        return False
    processed, outcome = deliver_push(double, full_name, base, secret)
    print(f"[{label}] signed push delivery: {outcome}")
    return processed and all(health.values())


def compose_commands() -> tuple[list[str], list[str], list[str]]:
    """deploy/compose.yaml's web entrypoint and command and its worker command, so the smoke runs those."""
    services = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    return services["web"]["entrypoint"], services["web"]["command"], services["worker"]["command"]


def main() -> int:
    """Start the double, run both layouts, print the results; 0 when both work."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image")
    parser.add_argument("--engine", default="podman", help="container engine command (with global flags)")
    parser.add_argument("--run-flags", default="", help="extra `run` flags for this machine")
    args = parser.parse_args()

    double, server = serve_double()
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "WEBHOOK_SECRET": secret,
        "APP_ID": "77",
        "PRIVATE_KEY": private_key_pem(),
        "GITHUB_API_URL": double.base_url,
    }
    containers = Containers(shlex.split(args.engine), shlex.split(args.run_flags), env)
    prefix = f"ecr-cache-bot-smoke-{os.getpid()}"
    results = []
    try:
        # Single machine: `serve` (the default command) and a `worker` on the same DATA_DIR volume (SQLite).
        port = free_port()
        env["PORT"] = str(port)
        add_example_repo(double, "octo/single")
        containers.run(prefix, args.image)
        containers.run(
            f"{prefix}-worker", "--hostname", "smoke-worker", f"--volumes-from={prefix}", args.image, "worker"
        )
        results.append(
            check(
                "serve + worker, SQLite",
                containers,
                [prefix, f"{prefix}-worker"],
                f"http://127.0.0.1:{port}",
                double,
                "octo/single",
                secret,
            )
        )
        if not results[-1]:
            print(containers.logs())
        containers.remove()

        # Scale-out: compose's web (gunicorn alone) and worker commands on Redis.
        entrypoint, web_command, worker_command = compose_commands()
        port = free_port()
        env["PORT"] = str(port)
        web_command = [f"127.0.0.1:{port}" if arg == "0.0.0.0:3000" else arg for arg in web_command]
        add_example_repo(double, "octo/scale-out")
        with redis_server() as url:
            env["REDIS_URL"] = url
            containers.run(
                f"{prefix}-web", "--entrypoint", entrypoint[0], args.image, *web_command, extra_env=("REDIS_URL",)
            )
            for n in (1, 2):
                containers.run(
                    f"{prefix}-worker-{n}",
                    "--hostname",
                    f"smoke-worker-{n}",
                    args.image,
                    *worker_command,
                    extra_env=("REDIS_URL",),
                )
            results.append(
                check(
                    "compose web + 2 workers, Redis",
                    containers,
                    [f"{prefix}-web", f"{prefix}-worker-1", f"{prefix}-worker-2"],
                    f"http://127.0.0.1:{port}",
                    double,
                    "octo/scale-out",
                    secret,
                )
            )
            if not results[-1]:
                print(containers.logs())
            containers.remove()
    except RuntimeError as exc:
        print(f"smoke test stopped: {exc}")
        print(containers.logs())
        results.append(False)
    finally:
        containers.remove()
        server.shutdown()
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
