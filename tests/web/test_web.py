"""Webhook intake: signature before parsing, size limit, status codes, GitHub's payload examples end to end."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app.payloads import Job
from bot.queue.durable import InMemoryQueue, SubmitResult
from bot.settings import Settings, SettingsError
from bot.web.flask_app import create_app
from bot.web.intake import signature_ok

SECRET = "It's a Secret to Everybody"


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"webhook_secret": SECRET, "max_body_bytes": 64 * 1024}
    base.update(overrides)
    return Settings(**base)


def _client(queue: Any = None, **overrides: Any) -> tuple[FlaskClient, InMemoryQueue]:
    q = queue if queue is not None else InMemoryQueue()
    return create_app(_settings(**overrides), queue=q).test_client(), q


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(
    client: FlaskClient,
    event: str,
    body: bytes | dict[str, Any],
    delivery: str = "d-1",
    signature: str | None = None,
    path: str = "/api/github/webhooks",
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(raw) if signature is None else signature,
        "Content-Type": "application/json",
    }
    return client.post(path, data=raw, headers=headers)


def test_signature_matches_githubs_documented_example() -> None:
    # The example from GitHub's "Validating webhook deliveries" documentation.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_ok(SECRET, b"Hello, World!", expected)
    assert not signature_ok(SECRET, b"Hello, World?", expected)
    assert not signature_ok(SECRET, b"Hello, World!", None)
    assert not signature_ok(SECRET, b"Hello, World!", "sha256=\u00e9")


def test_bad_or_missing_signature_is_401_before_parsing() -> None:
    client, queue = _client()
    assert post(client, "push", b"{not json", signature="").status_code == 401
    assert post(client, "push", b"{not json", signature="sha256=" + "0" * 64).status_code == 401
    assert post(client, "push", b"{not json", signature=sign(b"{not json", "other")).status_code == 401
    response = post(client, "push", b"{not json")
    assert response.status_code == 400  # only a correctly signed body gets parsed
    assert queue.pending == []


def test_body_over_limit_is_413() -> None:
    client, queue = _client(max_body_bytes=1024)
    body = json.dumps({"zen": "x" * 2000}).encode()
    assert post(client, "ping", body).status_code == 413
    assert post(client, "ping", json.dumps({"zen": "ok"}).encode()).status_code == 200


def _streamed(client: FlaskClient, raw: bytes, **environ: Any) -> Any:
    """Post ``raw`` as a server that handles chunked bodies itself passes it on: no Content-Length."""
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-s",
        "X-Hub-Signature-256": sign(raw),
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    return client.post(
        "/api/github/webhooks",
        data=raw,
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": "", **environ},
    )


def test_streamed_body_over_limit_is_413_not_a_bad_signature() -> None:
    # Werkzeug stops a streamed body at the limit without an error: a correctly signed, too-long delivery
    # must still be answered 413 (GitHub shows that), not 401 over a silently cut body.
    client, queue = _client(max_body_bytes=1024)
    big = json.dumps({"zen": "x" * 4000}).encode()
    response = _streamed(client, big)
    assert response.status_code == 413 and "1024" in response.get_json()["error"]
    exact = json.dumps({"zen": "y" * (1024 - 11)}).encode()
    assert len(exact) == 1024
    assert _streamed(client, exact).status_code == 200  # exactly at the limit is fine
    assert post(client, "ping", exact).status_code == 200
    assert post(client, "ping", exact + b" ").status_code == 413
    assert queue.pending == []


def test_lying_content_length_never_reaches_the_parser() -> None:
    client, queue = _client()
    raw = b'{"zen": "z"}'
    headers = {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d",
        "X-Hub-Signature-256": sign(raw),
        "Content-Type": "application/json",
    }
    short = client.post("/api/github/webhooks", data=raw, headers=headers, environ_overrides={"CONTENT_LENGTH": "4"})
    assert short.status_code == 401  # only the first 4 bytes are read: they do not match the signature
    long = client.post("/api/github/webhooks", data=raw, headers=headers, environ_overrides={"CONTENT_LENGTH": "900"})
    assert long.status_code == 400 and long.is_json  # the client hung up early: JSON, no HTML error page


def test_missing_event_or_delivery_header_is_400() -> None:
    client, _ = _client()
    raw = b"{}"
    response = client.post("/api/github/webhooks", data=raw, headers={"X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 400
    assert "X-GitHub-Event" in response.get_json()["error"]


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b"{}{}"])
def test_malformed_bodies_are_400(raw: bytes) -> None:
    client, queue = _client()
    response = post(client, "push", raw)
    assert response.status_code == 400
    assert response.is_json and "error" in response.get_json()
    assert queue.pending == []


def test_wrong_types_in_payload_are_400_with_the_field_named() -> None:
    client, _ = _client()
    response = post(client, "push", {"installation": {"id": "1"}, "ref": "refs/heads/main"})
    assert response.status_code == 400
    assert "installation.id" in response.get_json()["error"]


def test_custom_webhook_path_is_honoured() -> None:
    client, _ = _client(webhook_path="/hooks/gh")
    assert post(client, "ping", {"zen": "z"}, path="/hooks/gh").status_code == 200
    assert post(client, "ping", {"zen": "z"}).status_code == 404


def test_app_refuses_to_start_without_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("APP_ID", "1")  # without an App named, it starts in setup mode (tests/test_manifest_flow.py)
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        create_app(queue=InMemoryQueue())
    monkeypatch.setenv("WEBHOOK_SECRET", "s" * 16)
    monkeypatch.setenv("WEBHOOK_PATH", "/from-env")
    client = create_app(queue=InMemoryQueue()).test_client()
    raw = b'{"zen": "z"}'
    response = client.post(
        "/from-env",
        data=raw,
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d", "X-Hub-Signature-256": sign(raw, "s" * 16)},
    )
    assert response.status_code == 200


def test_accepted_work_is_202_after_submit_and_duplicates_are_not_requeued() -> None:
    client, queue = _client()
    payload = {
        "action": "created",
        "installation": {"id": 7, "account": {"login": "acme"}},
        "sender": {"type": "User", "login": "a"},
    }
    first = post(client, "installation", payload, delivery="same")
    assert first.status_code == 202 and first.get_json()["status"] == "queued"
    again = post(client, "installation", payload, delivery="same")
    assert again.status_code == 202 and again.get_json()["status"] == "duplicate"
    assert [(j.kind, j.installation_id, j.subject) for j in queue.pending] == [("install", 7, "acme")]


class _FailingQueue:
    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        raise OSError("disk full")


def test_queue_failure_is_503_so_github_can_redeliver() -> None:
    client, _ = _client(queue=_FailingQueue())
    payload = {"action": "created", "installation": {"id": 7, "account": {"login": "acme"}}}
    assert post(client, "installation", payload).status_code == 503


class _RefusingQueue:
    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        return SubmitResult(accepted=False)


def test_queue_that_does_not_accept_is_503_not_202() -> None:
    client, _ = _client(queue=_RefusingQueue())
    payload = {"action": "created", "installation": {"id": 7, "account": {"login": "acme"}}}
    assert post(client, "installation", payload).status_code == 503


def test_ids_beyond_64_bits_are_400() -> None:
    client, queue = _client()
    installation: dict[str, Any] = {"id": 2**63, "account": {"login": "acme"}}
    payload = {"action": "created", "installation": installation}
    response = post(client, "installation", payload)
    assert response.status_code == 400 and "installation.id" in response.get_json()["error"]
    installation["id"] = 2**63 - 1
    assert post(client, "installation", payload).status_code == 202


def _expected(event: str, name: str) -> tuple[int, list[str]]:
    """What the issue text says for each of GitHub's examples (none of them names the bot branch)."""
    action = name.split(".")[0]
    if (event, action) in {("installation", "created"), ("installation_repositories", "added")}:
        return 202, ["install"]
    return 200, []


def test_every_github_payload_example_is_signed_posted_and_routed(corpus: Path) -> None:
    files = sorted(p for p in (corpus / "webhooks").glob("*/*.json"))
    assert len(files) >= 50
    for i, path in enumerate(files):
        client, queue = _client(max_body_bytes=1024 * 1024)
        event = path.parent.name
        response = post(client, event, path.read_bytes(), delivery=f"corpus-{i}")
        status, kinds = _expected(event, path.name)
        assert response.status_code == status, (path.name, response.get_json())
        assert [j.kind for j in queue.pending] == kinds, path.name


def test_github_examples_made_into_commands_pushes_and_closes_are_queued(corpus: Path) -> None:
    hooks = corpus / "webhooks"
    comment = json.loads((hooks / "issue_comment/created.with-installation.payload.json").read_text())
    comment["comment"]["body"] = "/ecr-cache recreate"
    push = json.loads((hooks / "push/with-new-branch.payload.json").read_text())
    push["commits"][0]["added"] = ["buildspec.yml"]
    closed = json.loads((hooks / "pull_request/closed.payload.json").read_text())
    closed["pull_request"]["head"]["ref"] = "ecr-cache/setup"
    client, queue = _client(max_body_bytes=1024 * 1024)
    for i, (event, payload) in enumerate([("issue_comment", comment), ("push", push), ("pull_request", closed)]):
        assert post(client, event, payload, delivery=f"m-{i}").status_code == 202
    assert [(j.kind, j.repo, j.delivery_id) for j in queue.pending] == [
        ("command", "Codertocat/Hello-World", "m-0"),
        ("sync", "Codertocat/Hello-World", "m-1"),
        ("pr_closed", "Codertocat/Hello-World", "m-2"),
    ]
    assert queue.pending[0].data["command"] == "recreate"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.sampled_from(["push", "issue_comment", "pull_request", "installation", "installation_repositories"]),
    key=st.sampled_from(
        [
            "installation",
            "repository",
            "sender",
            "commits",
            "comment",
            "issue",
            "pull_request",
            "ref",
            "action",
            "head_commit",
        ]
    ),
    value=_json,
)
def test_hostile_payloads_never_crash(corpus: Path, event: str, key: str, value: Any) -> None:
    examples = {
        "push": "push/with-new-branch.payload.json",
        "issue_comment": "issue_comment/created.with-installation.payload.json",
        "pull_request": "pull_request/closed.payload.json",
        "installation": "installation/created.payload.json",
        "installation_repositories": "installation_repositories/added.payload.json",
    }
    payload = json.loads((corpus / "webhooks" / examples[event]).read_text())
    if event == "issue_comment":
        payload["comment"]["body"] = "/ecr-cache"
    if event == "pull_request":
        payload["pull_request"]["head"]["ref"] = "ecr-cache/setup"
    payload[key] = value
    client, _ = _client(max_body_bytes=1024 * 1024)
    response = post(client, event, payload)
    assert response.status_code in (200, 202, 400)
    assert response.is_json


def test_healthz() -> None:
    client, _ = _client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_metrics_blueprint_is_registered() -> None:
    client, _ = _client()
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"


def test_rejected_and_ignored_deliveries_are_counted() -> None:
    from bot.queue import counters as metrics

    class Counters:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def incr(self, name: str, amount: int = 1, **labels: str) -> None:
            self.seen.append(f"{name}:{labels['outcome']}")

        def snapshot(self) -> dict[tuple[str, str], int]:
            return {}

    counters = Counters()
    client, _ = _client(max_body_bytes=100)
    client.application.extensions["ecr_cache_bot.counters"] = counters  # the app's own counters win over its queue's
    post(client, "push", b"{}", signature="sha256=00")
    post(client, "push", b"[1]")
    post(client, "ping", b'{"zen": "z"}')
    post(client, "ping", b"{" + b" " * 200 + b"}")
    assert [s.split(":")[1] for s in counters.seen] == ["malformed"]  # signed and refused: counted at once
    # Unauthenticated rejections and ignored deliveries are counted in memory and written in batches: an
    # ignored push (the common delivery) costs no store write of its own.
    metrics.flush_pending()
    assert sorted(s.split(":")[1] for s in counters.seen) == ["bad_signature", "ignored", "malformed", "too_large"]


def test_form_encoded_deliveries_are_verified_on_the_raw_body_and_unwrapped() -> None:
    from urllib.parse import urlencode

    client, queue = _client()
    payload = {"action": "created", "installation": {"id": 3, "account": {"login": "acme"}}}
    raw = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {
        "X-GitHub-Event": "installation",
        "X-GitHub-Delivery": "f1",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    bad = client.post("/api/github/webhooks", data=raw, headers={**headers, "X-Hub-Signature-256": sign(b"x")})
    assert bad.status_code == 401
    good = client.post("/api/github/webhooks", data=raw, headers={**headers, "X-Hub-Signature-256": sign(raw)})
    assert good.status_code == 202 and [j.installation_id for j in queue.pending] == [3]
    empty = b"other=1"
    response = client.post("/api/github/webhooks", data=empty, headers={**headers, "X-Hub-Signature-256": sign(empty)})
    assert response.status_code == 400
