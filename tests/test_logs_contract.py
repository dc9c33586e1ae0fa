"""The observability contract: one JSON log line per delivery (either intake path) and one per job, each with
the delivery id, event, action, installation, repository, job ids, outcome and duration; the job's line also
carries the GitHub rate-limit budget the job last saw."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from github_double import GitHubDouble, comment_payload, private_key_pem
from runtime_fixtures import SECRET, options_for, sign
from werkzeug.test import Client

from bot import wiring
from bot.logs import configure_logging
from bot.queue.durable import build_queue
from bot.settings import Settings
from bot.web import flask_app as web
from bot.web.wsgi import FlaskWsgi

DELIVERY_FIELDS = (
    "delivery_id",
    "event_name",
    "action",
    "installation",
    "repository",
    "job_ids",
    "outcome",
    "duration_ms",
)
JOB_FIELDS = (
    "job_id",
    "delivery_id",
    "event_name",
    "action",
    "installation",
    "repository",
    "outcome",
    "duration_ms",
    "rate_limit_remaining",
)


def _lines(stream: io.StringIO, event: str) -> list[dict[str, Any]]:
    return [x for x in map(json.loads, stream.getvalue().splitlines()) if x["event"] == event]


@pytest.mark.parametrize("intake", ["flask", "fast"])
def test_one_delivery_and_its_job_log_every_contract_field(gh: GitHubDouble, tmp_path: Path, intake: str) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    repo = gh.add_repo("octo/app", {"README.md": "docs\n"}, permissions={"dev": "write"})
    comment = gh.add_comment("octo/app", 5, "/ecr-cache", "dev")
    gh.response_headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4321",
        "X-RateLimit-Reset": str(int(time.time()) + 900),
    }
    settings = Settings(
        webhook_secret=SECRET,
        app_id="7",
        private_key=private_key_pem(),
        github_api_url=gh.base_url,
        data_dir=str(tmp_path / "data"),
    )
    queue = wiring.job_queue(settings, options_for(tmp_path))
    app = web.create_app(settings, queue=queue)
    client = Client(app if intake == "flask" else FlaskWsgi(app, settings))
    body = json.dumps(comment_payload(repo, comment)).encode()
    answer = client.post(
        settings.webhook_path,
        data=body,
        headers={
            "X-GitHub-Event": "issue_comment",
            "X-GitHub-Delivery": "d-77",
            "X-Hub-Signature-256": sign(body),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 202

    (delivery,) = _lines(stream, "webhook_queued")
    assert [f for f in DELIVERY_FIELDS if delivery.get(f) is None] == []
    assert (delivery["delivery_id"], delivery["event_name"], delivery["action"]) == ("d-77", "issue_comment", "created")
    assert (delivery["installation"], delivery["repository"], delivery["outcome"]) == (1, "octo/app", "queued")
    (job_id,) = delivery["job_ids"]
    assert delivery["duration_ms"] >= 0

    queue.execute(job_id)
    (job,) = _lines(stream, "job")
    assert [f for f in JOB_FIELDS if job.get(f) is None] == []
    assert (job["job_id"], job["delivery_id"], job["event_name"]) == (job_id, "d-77", "issue_comment")
    assert (job["installation"], job["repository"], job["outcome"]) == (1, "octo/app", "succeeded")
    assert job["rate_limit_remaining"] == 4321  # what GitHub's answers to this job said


def test_deliveries_nobody_queues_log_the_same_fields(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    settings = Settings(webhook_secret=SECRET, data_dir=str(tmp_path / "data"))
    app = web.create_app(settings, queue=build_queue(settings, None, options_for(tmp_path)))
    client = app.test_client()
    ignored = json.dumps(
        {"action": "labeled", "installation": {"id": 3}, "repository": {"full_name": "octo/lib"}}
    ).encode()
    assert (
        client.post(
            settings.webhook_path,
            data=ignored,
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": "d-i",
                "X-Hub-Signature-256": sign(ignored),
                "Content-Type": "application/json",
            },
        ).status_code
        == 200
    )
    assert (
        client.post(
            settings.webhook_path,
            data=b"{}",
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "d-bad",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            },
        ).status_code
        == 401
    )
    (line,) = _lines(stream, "webhook_ignored")
    assert all(f in line for f in DELIVERY_FIELDS)
    assert (
        line["delivery_id"],
        line["event_name"],
        line["action"],
        line["installation"],
        line["repository"],
        line["job_ids"],
        line["outcome"],
    ) == ("d-i", "issues", "labeled", 3, "octo/lib", [], "ignored")
    (rejected,) = _lines(stream, "webhook_rejected")
    assert all(f in rejected for f in DELIVERY_FIELDS)  # nothing of an unsigned body is parsed: null fields
    assert (rejected["delivery_id"], rejected["outcome"], rejected["installation"]) == ("d-bad", "bad_signature", None)
