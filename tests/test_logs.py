"""JSON logs: one line per job with the fields operators need; secrets and tokens never reach the output."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import (
    SECRET,
    backend_settings,
    comment_payload,
    options_for,
    running_consumer,
    sign,
    wait_until,
)

from bot.app.payloads import AnyJob, Job
from bot.logs import REDACTED, configure_logging, log_event, redact_text
from bot.queue.durable import build_queue
from bot.settings import Settings

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
KEY_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----\n"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU"


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, secrets=(SECRET, PRIVATE_KEY))
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _assert_clean(text: str) -> None:
    for secret in (SECRET, TOKEN, PAT, JWT, *KEY_BODY):
        assert secret not in text, secret
    assert "PRIVATE KEY-----" not in text or REDACTED in text


def test_secrets_are_redacted_by_key_by_value_and_in_tracebacks(captured: io.StringIO) -> None:
    log_event("config", webhook_secret=SECRET, private_key=PRIVATE_KEY, installation_token=TOKEN)
    log_event(
        "request",
        headers={"Authorization": f"token {TOKEN}", "Accept": "application/json"},
        url=f"https://x-access-token:{TOKEN}@github.com/o/r.git",
    )
    log_event(f"odd message carrying {SECRET} and {PAT}", detail=[JWT, f"Bearer {JWT}"])
    logging.getLogger("huey").warning("task failed with token %s and key %s", TOKEN, PRIVATE_KEY)
    try:
        raise RuntimeError(f"auth failed for key {PRIVATE_KEY} with {TOKEN}")
    except RuntimeError:
        logging.getLogger("gunicorn.error").exception("worker crashed")
    text = captured.getvalue()
    _assert_clean(text)
    lines = _lines(captured)
    assert len(lines) == 5
    assert lines[0]["webhook_secret"] == REDACTED and lines[0]["installation_token"] == REDACTED
    assert lines[1]["headers"]["Accept"] == "application/json"  # only secrets go, the rest stays readable
    assert lines[4]["logger"] == "gunicorn.error" and "RuntimeError" in lines[4]["exception"]


def test_key_redaction_holds_on_every_line_not_only_the_first(captured: io.StringIO) -> None:
    # The sensitive-key decision is cached per field name: a repeated name must stay redacted, a plain one plain.
    for _ in range(3):
        log_event(
            "delivery",
            api_key="plain-looking-value",
            nested={"Cookie": "sid=1", "note": "plain-looking-value"},
            note="plain-looking-value",
        )
    lines = _lines(captured)
    assert len(lines) == 3
    for line in lines:
        assert line["api_key"] == REDACTED and line["nested"]["Cookie"] == REDACTED
        assert line["note"] == "plain-looking-value" and line["nested"]["note"] == "plain-looking-value"


def test_non_secret_fields_are_untouched() -> None:
    assert redact_text("delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 took 12 ms") == (
        "delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 took 12 ms"
    )


def test_job_line_has_delivery_event_installation_repo_outcome_duration_and_rate_limit(
    captured: io.StringIO, tmp_path: Path
) -> None:
    queue = build_queue(
        backend_settings("sqlite", tmp_path),
        lambda job: {"outcome": "opened", "rate_limit_remaining": 4321},
        options_for(tmp_path),
    )
    queue.submit("d-42", [Job("sync", 9, "o/app", "d-42", {"trigger": "push"})])
    with running_consumer(queue):
        assert wait_until(lambda: queue.ledger.active_count() == 0, 10)
    [line] = [x for x in _lines(captured) if x["event"] == "job"]
    assert line["delivery_id"] == "d-42" and line["event_name"] == "push" and line["action"] == "push"
    assert line["installation"] == 9 and line["repository"] == "o/app" and len(line["job_id"]) == 32
    assert line["outcome"] == "succeeded" and line["result"] == "opened"
    assert line["rate_limit_remaining"] == 4321 and line["duration_ms"] >= 0


def test_whole_pipeline_logs_no_secret(captured: io.StringIO, tmp_path: Path) -> None:
    from bot.web.flask_app import create_app

    def runner(job: AnyJob) -> None:
        logging.getLogger("github.Requester").debug("POST with Authorization: token %s", TOKEN)
        raise ValueError(f"could not sign JWT with {PRIVATE_KEY}")

    settings = Settings(webhook_secret=SECRET, private_key=PRIVATE_KEY, app_id="1", data_dir=str(tmp_path / "data"))
    queue = build_queue(settings, runner, options_for(tmp_path))
    app = create_app(settings, queue=queue)
    client = app.test_client()
    body = json.dumps(comment_payload("o/app", 3, 77)).encode()
    answer = client.post(
        settings.webhook_path,
        data=body,
        headers={"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "d-secret", "X-Hub-Signature-256": sign(body)},
    )
    assert answer.status_code == 202
    client.post(settings.webhook_path, data=b"{}", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    with running_consumer(queue):
        assert wait_until(lambda: len(queue.dead_letters()) == 1, 10)
    text = captured.getvalue()
    _assert_clean(text)
    assert '"outcome": "failed"' in text and "d-secret" in text


def test_before_configuration_events_go_to_stderr_as_redacted_json_never_stdout() -> None:
    import subprocess
    import sys

    from runtime_fixtures import ROOT

    code = f"from bot.logs import log_event; log_event('early', token={TOKEN!r}, note='ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout == ""
    line = json.loads(result.stderr)
    assert line["event"] == "early" and line["token"] == REDACTED and line["note"] == "ok"
