"""Run the built image against the GitHub test double and prove it works: `/readyz`, then one signed delivery.

Called by `deploy/build-and-smoke.sh` after the build (needs the dev install: `pip install -e '.[dev]'`).
The double (tests/github_double.py) serves on 127.0.0.1; the container runs on the host network and talks to it
through GITHUB_API_URL. A `push` to the default branch that touches the Dockerfile must end with the bot's pull
request open on the double: the job ran in the container's worker, not only the intake.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from github_double import GitHubDouble, private_key_pem, push_payload, wsgi_app  # noqa: E402

REPO = "octo/node-service"
WEBHOOK_PATH = "/api/github/webhooks"


def free_port() -> int:
    """A port nothing listens on now (the container binds it on the host network)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The double's access log would drown the results; the request list is counted instead."""


def serve_double() -> tuple[GitHubDouble, Any]:
    """The stateful GitHub double over real HTTP on 127.0.0.1."""
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True,
                         request_handler=_Quiet)
    double = GitHubDouble(base_url=f"http://127.0.0.1:{server.server_port}")
    holder["app"] = wsgi_app(double)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return double, server


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


def deliver_push(double: GitHubDouble, base: str, secret: str) -> tuple[int, float, str]:
    """Commit a Dockerfile change on the double, post the signed `push`, wait for the bot's pull request."""
    repo = double.repos[REPO]
    before = repo.refs["main"]
    dockerfile = double.file_text(REPO, "main", "Dockerfile") or ""
    after = double.commit_files(REPO, "main", {"Dockerfile": dockerfile + "\n"})
    raw = json.dumps(push_payload(repo, before, after, ["Dockerfile"])).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    start = time.monotonic()
    answer = requests.post(f"{base}{WEBHOOK_PATH}", data=raw, timeout=30, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": f"smoke-{secrets.token_hex(4)}",
        "X-Hub-Signature-256": signature, "Content-Type": "application/json"})
    while time.monotonic() - start < 90 and not double.pulls_for(REPO):
        time.sleep(0.25)
    pulls = double.pulls_for(REPO)
    if not pulls:
        return answer.status_code, time.monotonic() - start, "no pull request after 90 s"
    pull = pulls[0]
    changed = sorted(path for path, text in double.branch_files(REPO, pull.head).items()
                     if double.file_text(REPO, "main", path) != text)
    writes = sum(1 for r in double.history if r.is_write)
    return answer.status_code, time.monotonic() - start, (
        f"pull request #{pull.number} {pull.state} from {pull.head} changing {', '.join(changed)}; "
        f"{len(double.history)} GitHub API requests ({writes} writes)")


def main() -> int:
    """Start the double and the container, check /readyz and one delivery, print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image")
    parser.add_argument("--engine", default="podman", help="container engine command (with global flags)")
    parser.add_argument("--run-flags", default="", help="extra `run` flags for this machine")
    args = parser.parse_args()
    engine = shlex.split(args.engine)

    double, server = serve_double()
    example = ROOT / "examples" / "node-service"
    double.add_repo(REPO, {str(p.relative_to(example)): p.read_text() for p in sorted(example.rglob("*"))
                           if p.is_file()})
    port = free_port()
    secret = secrets.token_hex(16)
    name = f"ecr-cache-bot-smoke-{os.getpid()}"
    # Values travel in the engine's environment (`--env NAME`), never on its command line.
    env = {**os.environ, "WEBHOOK_SECRET": secret, "APP_ID": "77", "PRIVATE_KEY": private_key_pem(),
           "GITHUB_API_URL": double.base_url, "PORT": str(port)}
    names = ("WEBHOOK_SECRET", "APP_ID", "PRIVATE_KEY", "GITHUB_API_URL", "PORT")
    # As the Kubernetes manifests run it: read-only root filesystem, no capabilities, no privilege escalation.
    hardened = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]
    run = [*engine, "run", "--detach", "--network", "host", *shlex.split(args.run_flags), *hardened,
           *[f"--env={k}" for k in names]]
    web = [*run, "--name", name, args.image]  # the image's default command: `serve`
    # A second container running `worker` on the same DATA_DIR volume (SQLite queue), under its own hostname.
    worker = [*run, "--name", f"{name}-worker", "--hostname", "smoke-worker", f"--volumes-from={name}",
              args.image, "worker"]
    ok = False
    try:
        for command in (web, worker):
            started = subprocess.run(command, env=env, capture_output=True, text=True)
            if started.returncode != 0:
                print(f"container did not start: {started.stderr.strip()}")
                return 1
        base = f"http://127.0.0.1:{port}"
        status, body, waited = wait_ready(base, timeout=90)
        print(f"/readyz: HTTP {status} after {waited:.1f} s: {body}")
        healthy = True
        for container in (name, f"{name}-worker"):
            health = subprocess.run([*engine, "healthcheck", "run", container], capture_output=True, text=True)
            healthy = healthy and health.returncode == 0
            print(f"HEALTHCHECK of {container}: {'healthy' if health.returncode == 0 else 'unhealthy'}"
                  f"{(' ' + health.stdout.strip()) if health.stdout.strip() else ''}")
        if status != 200:
            return 1
        code, seconds, outcome = deliver_push(double, base, secret)
        print(f"signed push delivery: HTTP {code}, processed in {seconds:.1f} s: {outcome}")
        ok = code == 202 and bool(double.pulls_for(REPO)) and healthy
        return 0 if ok else 1
    finally:
        if not ok:
            for container in (name, f"{name}-worker"):
                logs = subprocess.run([*engine, "logs", "--tail", "30", container], capture_output=True, text=True)
                print(f"{container} log (last 30 lines):\n{logs.stdout}{logs.stderr}")
        for container in (f"{name}-worker", name):
            subprocess.run([*engine, "rm", "--force", "--volumes", container], capture_output=True)
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
