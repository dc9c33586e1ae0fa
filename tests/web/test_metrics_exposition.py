"""Every metric family served at /metrics after real work (deliveries, jobs, a retry, a preview fan-out) has its
`# HELP` text and `# TYPE` line ahead of its samples (Prometheus text format 0.0.4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from github_double import GitHubDouble, private_key_pem
from job_fixtures import context
from runtime_fixtures import SECRET, options_for, push_payload, running_consumer, sign, wait_until

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.github.client import GatewayFactory
from bot.queue import counters as metrics
from bot.queue.durable import build_queue
from bot.queue.retry import RetryLater
from bot.settings import Settings
from bot.web.flask_app import create_app

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (-?\d+(?:\.\d+)?)$")


def families(text: str) -> dict[str, dict[str, str]]:
    """{name: {"help": ..., "type": ..., "samples": count}}; fails on a sample whose family was not announced."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            found.setdefault(name, {})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            assert "help" in found.get(name, {}), f"TYPE before HELP for {name}"
            found[name]["type"] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            family = found.get(match.group(1), {})
            assert "type" in family, f"sample of {match.group(1)} without HELP and TYPE ahead of it"
            family["samples"] = str(int(family.get("samples", "0")) + 1)
    return found


def test_every_family_at_metrics_has_help_and_type(gh: GitHubDouble, tmp_path: Path) -> None:
    for i in range(3):
        gh.add_repo(f"octo/svc{i}", {"buildspec.yml": "version: 0.2\n"})
    settings = Settings(
        webhook_secret=SECRET,
        app_id="7",
        private_key=private_key_pem(),
        github_api_url=gh.base_url,
        data_dir=str(tmp_path / "data"),
    )
    gateways = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)
    deferred: set[str] = set()

    def runner(job: Job) -> object:
        if job.subject == "octo/svc0" and job.subject not in deferred:
            deferred.add(job.subject)
            raise RetryLater(0.05, "test deferral")
        return jobs.run(
            job,
            context(
                gateways,
                pacer=queue.pacer,
                counters=queue.counters,
                submit=queue.submit,
                preview_threshold=1,
                store=True,
            ),
        )

    queue = build_queue(settings, runner, options_for(tmp_path))
    app = create_app(settings, queue=queue)
    client = app.test_client()
    push = json.dumps(push_payload("o/app")).encode()
    ignored = json.dumps({"action": "labeled"}).encode()
    for event, delivery, body in (("push", "p1", push), ("push", "p1", push), ("issues", "x", ignored)):
        client.post(
            settings.webhook_path,
            data=body,
            headers={"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)},
        )
    queue.submit("install-1", [Job("install", 1, "octo", "install-1", {"trigger": "install"})])
    with running_consumer(queue):
        assert wait_until(lambda: queue.ledger.active_count() == 0, 20)

    text = client.get("/metrics").get_data(as_text=True)
    found = families(text)
    expected = {
        metrics.DELIVERIES,
        metrics.JOBS,
        metrics.RETRIES,
        metrics.INSTALL_PREVIEW,
        "ecr_cache_bot_jobs_active",
        "ecr_cache_bot_jobs_dead",
    }
    assert expected <= set(found)
    for name, family in found.items():
        assert family["help"] and family["help"] != name, name  # a sentence, not the name echoed
        assert family["type"] in ("counter", "gauge"), name
        assert (family["type"] == "counter") == name.endswith("_total"), name
    assert int(found[metrics.INSTALL_PREVIEW]["samples"]) >= 1
