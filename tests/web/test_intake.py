"""`bot.web.intake.read_delivery`: every webhook decision the Flask route and the ASGI path make, as one table."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from runtime_fixtures import COMMENT_BODY, PUSH_BODY, SECRET, push_payload, sign

from bot.web.intake import Delivery, HmacCheck, Rejection, log_fields, read_delivery, signature_ok

LIMIT = 20_000
INSTALL = json.dumps(
    {
        "action": "created",
        "installation": {"id": 7, "account": {"login": "acme"}},
        "sender": {"type": "User", "login": "a"},
    }
).encode()
IGNORED_PUSH = json.dumps(
    {
        **push_payload("o/app"),
        "commits": [{"id": "1" * 40, "added": ["README.md"], "removed": [], "modified": ["docs/index.md"]}],
        "head_commit": {"id": "1" * 40, "added": ["README.md"], "removed": [], "modified": []},
    }
).encode()
OTHER_BRANCH = json.dumps({**push_payload("o/app"), "ref": "refs/heads/feature"}).encode()
PING = b'{"zen": "Keep it logically awesome."}'
FORM = urlencode({"payload": PUSH_BODY.decode()}).encode()


def _headers(
    event: str = "push",
    delivery: str = "d-1",
    body: bytes = PUSH_BODY,
    signature: str | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(body) if signature is None else signature,
        "Content-Type": content_type,
    }


def _case(
    id: str,
    status: int,
    outcome: str,
    fields: dict[str, Any] | None = None,
    *,
    body: bytes = PUSH_BODY,
    event: str = "push",
    delivery: str = "d-1",
    signature: str | None = None,
    content_type: str = "application/json",
    secret: str | None = SECRET,
    jobs: tuple[str, ...] = (),
    **kwargs: Any,
) -> Any:
    """One row: the request, then the answer (status, outcome label, JSON fields) and the kinds of jobs routed."""
    headers = _headers(event, delivery, body, signature, content_type)
    return pytest.param(headers, body, secret, kwargs, status, outcome, fields, jobs, id=id)


QUEUED = {"status": "queued", "jobs": 1, "reason": "relevant push to the default branch"}
CASES = [
    _case("relevant-push", 202, "queued", QUEUED, jobs=("sync",)),
    _case(
        "comment-command",
        202,
        "queued",
        {"status": "queued", "jobs": 1, "reason": "command open"},
        event="issue_comment",
        body=COMMENT_BODY,
        jobs=("command",),
    ),
    _case(
        "installation",
        202,
        "queued",
        {"status": "queued", "jobs": 1, "reason": "sync every repository of the installation"},
        event="installation",
        body=INSTALL,
        jobs=("install",),
    ),
    _case("ping", 200, "ignored", {"status": "ignored", "reason": "ping"}, event="ping", body=PING),
    _case(
        "ignored-push",
        200,
        "ignored",
        {"status": "ignored", "reason": "push touches no buildspec, Dockerfile, manifest or repo config"},
        body=IGNORED_PUSH,
    ),
    _case(
        "other-branch",
        200,
        "ignored",
        {"status": "ignored", "reason": "push to refs/heads/feature, not the default branch"},
        body=OTHER_BRANCH,
    ),
    _case(
        "unhandled-event",
        200,
        "ignored",
        {"status": "ignored", "reason": "unhandled event issues.labeled"},
        event="issues",
        body=b'{"action": "labeled"}',
    ),
    _case(
        "bad-signature",
        401,
        "bad_signature",
        {"error": "missing or invalid X-Hub-Signature-256"},
        signature="sha256=" + "0" * 64,
    ),
    _case("no-signature", 401, "bad_signature", {"error": "missing or invalid X-Hub-Signature-256"}, signature=""),
    _case("other-secret", 401, "bad_signature", None, signature=sign(PUSH_BODY, "other")),
    _case("non-ascii-signature", 401, "bad_signature", None, signature="sha256=\u00e9"),
    _case("unsigned-garbage-is-not-parsed", 401, "bad_signature", None, body=b"{not json", signature=""),
    _case(
        "setup-mode",
        503,
        "not_configured",
        {"error": "no webhook secret yet: register the GitHub App from this server's / page"},
        secret=None,
    ),
    _case("empty-secret-is-setup-mode-too", 401, "bad_signature", None, secret=""),
    _case("too-large", 413, "too_large", {"error": f"body larger than {LIMIT} bytes"}, body=b"x" * (LIMIT + 1)),
    _case("too-large-before-signature", 413, "too_large", None, body=b"x" * (LIMIT + 1), signature=""),
    _case("too-large-before-setup-mode", 413, "too_large", None, body=b"x" * (LIMIT + 1), secret=None),
    _case("too-large-as-sent-not-kept", 413, "too_large", None, body=b"", size=LIMIT + 1),
    _case("exactly-the-limit", 200, "ignored", None, event="ping", body=b'{"zen": "' + b"y" * (LIMIT - 11) + b'"}'),
    _case("cut-short", 400, "malformed", {"error": "body shorter than Content-Length"}, complete=False),
    _case("cut-short-before-signature", 400, "malformed", None, signature="", complete=False),
    _case(
        "no-event", 400, "malformed", {"error": "X-GitHub-Event and X-GitHub-Delivery headers are required"}, event=""
    ),
    _case(
        "no-delivery",
        400,
        "malformed",
        {"error": "X-GitHub-Event and X-GitHub-Delivery headers are required"},
        delivery="",
    ),
    _case("event-too-long", 400, "malformed", None, event="p" * 101),
    _case("delivery-too-long", 400, "malformed", None, delivery="d" * 201),
    _case("longest-delivery", 202, "queued", QUEUED, delivery="d" * 200, jobs=("sync",)),
    _case(
        "longest-event",
        200,
        "ignored",
        {"status": "ignored", "reason": "unhandled event " + "p" * 100},
        event="p" * 100,
    ),
    _case("bad-json", 400, "malformed", {"error": "body is not valid JSON"}, body=b"{not json"),
    _case("two-documents", 400, "malformed", {"error": "body is not valid JSON"}, body=b"{}{}"),
    _case("not-utf-8", 400, "malformed", {"error": "body is not valid JSON"}, body=b"\xff\xfe"),
    _case("too-deep", 400, "malformed", {"error": "body is not valid JSON"}, body=b"[" * 5000 + b"]" * 5000),
    _case("not-an-object", 400, "malformed", {"error": "the payload must be a JSON object"}, body=b"[1, 2]"),
    _case(
        "wrong-type-names-the-field",
        400,
        "malformed",
        {"error": "`installation.id` must be a positive 64-bit integer"},
        body=json.dumps({"installation": {"id": "1"}, "ref": "refs/heads/main"}).encode(),
    ),
    _case(
        "id-beyond-64-bits",
        400,
        "malformed",
        None,
        event="installation",
        body=json.dumps({"action": "created", "installation": {"id": 2**63, "account": {"login": "a"}}}).encode(),
    ),
    _case(
        "form-encoded",
        202,
        "queued",
        QUEUED,
        body=FORM,
        content_type="application/x-www-form-urlencoded",
        jobs=("sync",),
    ),
    _case(
        "form-encoded-any-case",
        202,
        "queued",
        QUEUED,
        body=FORM,
        content_type="Application/X-WWW-Form-Urlencoded; charset=utf-8",
        jobs=("sync",),
    ),
    _case(
        "form-without-payload",
        400,
        "malformed",
        {"error": "body is not valid JSON"},
        body=b"other=1",
        content_type="application/x-www-form-urlencoded",
    ),
    _case("json-with-charset", 202, "queued", QUEUED, content_type="application/json; charset=utf-8", jobs=("sync",)),
    _case("form-body-sent-as-json", 400, "malformed", {"error": "body is not valid JSON"}, body=FORM),
    _case("streamed-check-held", 202, "queued", QUEUED, signature="", signed=True, jobs=("sync",)),
    _case("streamed-check-failed", 401, "bad_signature", None, signed=False),
]


@pytest.mark.parametrize(("headers", "body", "secret", "kwargs", "status", "outcome", "fields", "jobs"), CASES)
def test_every_decision(
    headers: dict[str, str],
    body: bytes,
    secret: str | None,
    kwargs: dict[str, Any],
    status: int,
    outcome: str,
    fields: dict[str, Any] | None,
    jobs: tuple[str, ...],
) -> None:
    subject = read_delivery(headers, body, secret, limit=LIMIT, **kwargs)
    answer = subject.queued(duplicate=False) if isinstance(subject, Delivery) and subject.jobs else subject.answer
    assert (answer.status, answer.outcome) == (status, outcome)
    if fields is not None:
        assert dict(answer.fields) == fields
        assert json.loads(answer.body) == fields
    assert tuple(j.kind for j in subject.jobs) == jobs if isinstance(subject, Delivery) else jobs == ()
    if status >= 400:
        assert isinstance(subject, Rejection) and answer.level == "warning" and "error" in answer.fields


def test_header_names_are_read_in_any_case() -> None:
    headers = {k.lower(): v for k, v in _headers().items()}
    subject = read_delivery(headers, PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(subject, Delivery) and (subject.event, subject.delivery_id) == ("push", "d-1")
    upper = read_delivery({k.upper(): v for k, v in _headers().items()}, PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(upper, Delivery) and [j.kind for j in upper.jobs] == ["sync"]


def test_jobs_pass_through_from_the_router_with_the_delivery_id() -> None:
    subject = read_delivery(_headers(delivery="abc"), PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(subject, Delivery)
    (job,) = subject.jobs
    assert (job.kind, job.installation_id, job.repo, job.delivery_id) == ("sync", 1, "o/app", "abc")


def test_answers_after_the_queue() -> None:
    subject = read_delivery(_headers(), PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(subject, Delivery)
    duplicate = subject.queued(duplicate=True)
    assert (duplicate.status, duplicate.outcome, duplicate.log) == (202, "duplicate", "webhook_queued")
    assert dict(duplicate.fields) == {**QUEUED, "status": "duplicate"}
    assert dict(duplicate.detail) == {"jobs": 1, "duplicate": True}
    failed = subject.not_queued(OSError("disk full"))
    assert (failed.status, failed.outcome, failed.log, failed.level) == (503, "queue_failed", "queue_failed", "error")
    assert dict(failed.fields) == {"error": "could not queue the delivery"}
    assert failed.detail == {"error": "OSError: disk full"}


def test_the_body_is_what_flask_jsonify_sends() -> None:
    from flask import Flask, jsonify

    subject = read_delivery(_headers(), PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(subject, Delivery)
    answer = subject.queued(duplicate=False)
    with Flask(__name__).app_context():
        assert jsonify(dict(answer.fields)).get_data() == answer.body


def test_log_fields_of_a_delivery_and_of_a_rejection() -> None:
    delivery = read_delivery(_headers(event="issue_comment", body=COMMENT_BODY), COMMENT_BODY, SECRET, limit=LIMIT)
    assert isinstance(delivery, Delivery)
    answer = delivery.queued(duplicate=False)
    assert log_fields(delivery, answer, ["j1"], 1.234) == {
        "delivery": "d-1",
        "delivery_id": "d-1",
        "event_name": "issue_comment",
        "action": "created",
        "installation": 1,
        "repository": "o/app",
        "job_ids": ["j1"],
        "outcome": "queued",
        "duration_ms": 1.23,
        "jobs": 1,
        "duplicate": False,
    }
    rejected = read_delivery(_headers(signature="", delivery="\x1b[31m"), PUSH_BODY, SECRET, limit=LIMIT)
    assert isinstance(rejected, Rejection)
    fields = log_fields(rejected, rejected.answer, [], 0.0)
    assert (fields["delivery_id"], fields["installation"], fields["repository"]) == (
        "<invalid: 5 characters>",
        None,
        None,
    )
    assert (fields["outcome"], fields["reason"]) == ("bad_signature", "bad signature")
    malformed = read_delivery(
        _headers(body=b'{"action": 3, "installation": {"id": 9}}'),
        b'{"action": 3, "installation": {"id": 9}}',
        SECRET,
        limit=LIMIT,
    )
    assert isinstance(malformed, Rejection) and malformed.payload == {"action": 3, "installation": {"id": 9}}
    assert log_fields(malformed, malformed.answer, [], 0.0)["installation"] == 9  # the parsed payload is logged


def test_signature_matches_githubs_documented_example_streamed_or_whole() -> None:
    secret = "It's a Secret to Everybody"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_ok(secret, b"Hello, World!", expected)
    assert not signature_ok(None, b"Hello, World!", expected)
    check = HmacCheck.of(secret, [expected.encode()])
    assert check is not None
    for piece in (b"Hello", b", ", b"World!"):
        check.update(piece)
    assert check.holds()
    wrong = HmacCheck.of(secret, [expected.encode()])
    assert wrong is not None
    wrong.update(b"Hello, World?")
    assert not wrong.holds()


@pytest.mark.parametrize(
    "signatures",
    [[], [b"sha256=" + b"0" * 63], [b"sha1=" + b"0" * 40], [b"sha256=" + b"0" * 64] * 2, [b"sha256=" + b"A" * 64]],
)
def test_no_streamed_check_when_no_body_could_pass(signatures: list[bytes]) -> None:
    assert HmacCheck.of(SECRET, signatures) is None
    assert HmacCheck.of(None, [b"sha256=" + b"0" * 64]) is None
