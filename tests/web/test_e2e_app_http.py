"""The same App over real sockets: the web app and the GitHub double each on 127.0.0.1, PyGithub speaking HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from github_double import GitHubDouble, private_key_pem, push_payload
from job_fixtures import context
from werkzeug.serving import make_server

from bot.app import handlers as jobs
from bot.github.client import GatewayFactory
from bot.queue.durable import InMemoryQueue
from bot.settings import Settings
from bot.web.flask_app import create_app

REPO = "octo/node-service"
ROOT = Path(__file__).resolve().parents[2]


def _serve(app: Any) -> tuple[Any, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.slow
def test_push_over_real_http_opens_the_pr(github: GitHubDouble) -> None:
    base = ROOT / "examples" / "node-service"
    files = {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}
    repo = github.add_repo(REPO, files)
    settings = Settings(
        webhook_secret="wire", app_id="77", private_key=private_key_pem(), github_api_url=github.base_url
    )
    factory = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)
    queue = InMemoryQueue(lambda job: jobs.run(job, context(factory)))
    server, thread = _serve(create_app(settings, queue=queue))
    try:
        before = repo.refs["main"]
        after = github.commit_files(REPO, "main", {"Dockerfile": files["Dockerfile"] + "\n"})
        raw = json.dumps(push_payload(repo, before, after, ["Dockerfile"])).encode()
        signature = "sha256=" + hmac.new(b"wire", raw, hashlib.sha256).hexdigest()
        response = requests.post(
            f"http://127.0.0.1:{server.server_port}/api/github/webhooks",
            data=raw,
            timeout=30,
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "wire-1",
                "X-Hub-Signature-256": signature,
                "Content-Type": "application/json",
            },
        )
        assert response.status_code == 202
        assert queue.drain() == 1
    finally:
        server.shutdown()
        thread.join(timeout=5)
    (pull,) = github.pulls_for(REPO)
    assert pull.state == "open" and "ecr-cache-bot:v1 fingerprint=" in pull.body
    assert github.branch_files(REPO, "ecr-cache/setup")["buildspec.yml"] != files["buildspec.yml"]
    assert [str(r) for r in github.requests][:3] == [
        "POST /app/installations/1/access_tokens",
        f"GET /repos/{REPO}/git/trees/main",
        "POST /graphql EcrCacheState",
    ]
