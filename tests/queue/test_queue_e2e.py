"""The durable queue with the real jobs: PyGithub over HTTP against the GitHub double, a real huey consumer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from github_double import GitHubDouble, installation_payload, private_key_pem, push_payload
from runtime_fixtures import SECRET, options_for, running_consumer, sign, wait_until
from werkzeug.test import Client

from bot import wiring
from bot.app import handlers as jobs
from bot.app.payloads import AnyJob
from bot.github.client import GatewayFactory
from bot.queue.durable import HueyQueue, build_queue
from bot.settings import Settings
from bot.web.flask_app import create_app
from bot.web.wsgi import FlaskWsgi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node-service"


def _files() -> dict[str, str]:
    if not EXAMPLE.is_dir():
        pytest.skip("examples/node-service is not in this checkout")
    return {str(p.relative_to(EXAMPLE)): p.read_text() for p in sorted(EXAMPLE.rglob("*")) if p.is_file()}


def _deployment(github: GitHubDouble, tmp_path: Path) -> tuple[Client, HueyQueue, list[Any]]:
    settings = Settings(
        webhook_secret=SECRET,
        app_id="77",
        private_key=private_key_pem(),
        github_api_url=github.base_url,
        data_dir=str(tmp_path / "data"),
    )
    queue = build_queue(settings, None, options_for(tmp_path))
    # The composition root's job context on this queue, with a gateway factory that does not wait between calls.
    factory = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0, pacer=queue.pacer)
    contexts = wiring.make_runner(settings, queue=queue)
    outcomes: list[Any] = []

    def runner(job: AnyJob) -> dict[str, str]:
        result = jobs.run(job, contexts.context(factory))
        outcomes.extend(result)
        return {"outcome": ",".join(o.action for o in result)}

    queue.runner = runner
    return Client(FlaskWsgi(create_app(settings, queue=queue), settings)), queue, outcomes


def _post(client: Client, event: str, delivery: str, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    return client.post(
        "/api/github/webhooks",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(body),
        },
    ).status_code


def test_a_burst_of_pushes_and_repeats_is_one_pr_and_one_commit(github: GitHubDouble, tmp_path: Path) -> None:
    files = _files()
    repo = github.add_repo("octo/node-service", files)
    client, queue, outcomes = _deployment(github, tmp_path)
    before = repo.refs["main"]
    after = github.commit_files("octo/node-service", "main", {"Dockerfile": files["Dockerfile"] + "\n"})
    payload = push_payload(repo, before, after, ["Dockerfile"])
    deliveries = [f"push-{i}" for i in range(10)] + ["push-0"] * 9  # ten pushes, one of them sent ten times
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda d: _post(client, "push", d, payload), deliveries))
    assert statuses == [202] * len(deliveries)
    github.reset_requests()
    with running_consumer(queue, workers=4):
        assert wait_until(lambda: queue.ledger.active_count() == 0, 60)
    assert [o.action for o in outcomes] == ["opened"]  # nine pushes coalesced into the newest
    (pull,) = github.pulls_for("octo/node-service")
    assert pull.state == "open"
    commits = [r for r in github.requests if r.method == "POST" and r.path.endswith("/git/commits")]
    assert len(commits) == 1
    counters = queue.counters.snapshot()
    assert counters[("ecr_cache_bot_jobs_total", 'outcome="coalesced"')] == 9
    assert counters[("ecr_cache_bot_deliveries_total", 'outcome="duplicate"')] == 9


def test_an_installation_fans_out_one_queued_job_per_repository(github: GitHubDouble, tmp_path: Path) -> None:
    files = _files()
    names = [f"octo/service-{i}" for i in range(4)]
    for name in names:
        github.add_repo(name, files)
    client, queue, outcomes = _deployment(github, tmp_path)
    assert _post(client, "installation", "install-1", installation_payload(1, "octo")) == 202
    with running_consumer(queue, workers=4):
        assert wait_until(lambda: queue.ledger.active_count() == 0 and len(outcomes) >= 8, 60)
    assert sorted(o.action for o in outcomes) == ["opened"] * 4 + ["queued"] * 4  # install job, then each repo
    for name in names:
        assert len(github.pulls_for(name)) == 1
