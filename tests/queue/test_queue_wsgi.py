"""`bot.web.wsgi`, the WSGI deployment, is the Flask app as it is: same answers, every request reaches Flask."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runtime_fixtures import COMMENT_BODY, INTAKE_CASES, PUSH_BODY, SECRET, options_for, sign
from werkzeug.test import Client

from bot.queue.durable import build_queue
from bot.settings import Settings
from bot.web.flask_app import create_app
from bot.web.wsgi import FlaskWsgi

PATH = "/api/github/webhooks"


def _apps(tmp_path: Path) -> tuple[Client, Client, list[str]]:
    """A plain Flask app and a FlaskWsgi-wrapped one, each on its own durable queue."""
    flask_calls: list[str] = []
    clients = []
    for name in ("flask", "fast"):
        settings = Settings(webhook_secret=SECRET, data_dir=str(tmp_path / name), max_body_bytes=20_000)
        app = create_app(settings, queue=build_queue(settings, None, options_for(tmp_path / name)))
        if name == "flask":
            clients.append(Client(app))
            continue
        fast = FlaskWsgi(app, settings)
        inner = app.wsgi_app

        def counting(environ: dict[str, Any], start_response: Any, inner: Any = inner) -> Any:
            flask_calls.append(environ["PATH_INFO"])
            return inner(environ, start_response)

        app.wsgi_app = counting  # type: ignore[method-assign]
        clients.append(Client(fast))
    return clients[0], clients[1], flask_calls


def _post(
    client: Client,
    event: str,
    delivery: str,
    body: bytes,
    *,
    signature: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any, str]:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature if signature is not None else sign(body),
        "Content-Type": content_type,
    }
    response = client.post(PATH, data=body, headers=headers)
    return response.status_code, response.get_data(), response.headers.get("Content-Type", "")


PUSH, COMMENT = PUSH_BODY, COMMENT_BODY


@pytest.mark.parametrize(("event", "delivery", "body", "kwargs"), INTAKE_CASES)
def test_both_paths_answer_alike(
    tmp_path: Path, event: str, delivery: str, body: bytes, kwargs: dict[str, Any]
) -> None:
    flask, fast, _ = _apps(tmp_path)
    assert _post(fast, event, delivery, body, **kwargs) == _post(flask, event, delivery, body, **kwargs)


def test_every_request_reaches_flask(tmp_path: Path) -> None:
    flask, fast, calls = _apps(tmp_path)
    first = _post(fast, "push", "same", PUSH)
    again = _post(fast, "push", "same", PUSH)
    assert first == _post(flask, "push", "same", PUSH) and first[0] == 202
    assert again == _post(flask, "push", "same", PUSH) and b"duplicate" in again[1]
    _post(fast, "push", "x", PUSH, signature="sha256=" + "0" * 64)
    assert fast.get("/healthz").status_code == 200
    assert fast.get("/metrics").status_code == 200
    assert calls == [PATH, PATH, PATH, "/healthz", "/metrics"]


def test_queue_failure_is_a_503_like_flask(tmp_path: Path) -> None:
    flask, fast, _ = _apps(tmp_path)
    for client in (flask, fast):
        app = client.application
        target = app.app if isinstance(app, FlaskWsgi) else app
        queue = target.extensions["ecr_cache_bot.queue"]

        def broken(*args: Any) -> Any:
            raise OSError("disk full")

        queue.submit = broken
        if isinstance(app, FlaskWsgi):
            app.queue = queue
    assert _post(fast, "push", "z", PUSH) == _post(flask, "push", "z", PUSH)
    assert _post(fast, "push", "z", PUSH)[0] == 503


def test_one_structured_line_per_accepted_delivery(tmp_path: Path) -> None:
    import io

    from bot.logs import configure_logging

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    _, fast, _ = _apps(tmp_path)
    _post(fast, "issue_comment", "line-1", COMMENT)
    _post(fast, "issue_comment", "line-1", COMMENT)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    queued = [x for x in lines if x["event"] == "webhook_queued"]
    assert [x["outcome"] for x in queued] == ["queued", "duplicate"]
    first = queued[0]
    assert (first["delivery_id"], first["event_name"], first["action"]) == ("line-1", "issue_comment", "created")
    assert (first["installation"], first["repository"]) == (1, "o/app")
    assert len(first["job_ids"]) == 1 and first["duration_ms"] >= 0
    assert queued[1]["job_ids"] == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_past_the_cap_gets_flasks_413_declared_or_chunked(tmp_path: Path, chunked: bool) -> None:
    """Past the cap Flask answers 413, whether the body declared its length or came chunked."""
    import io

    _, fast, flask_calls = _apps(tmp_path)
    body = b'{"x": "' + b"a" * 25_000 + b'"}'
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "big-1",
        "X-Hub-Signature-256": sign(body),
        "Content-Type": "application/json",
    }
    if chunked:  # what a server sets for `Transfer-Encoding: chunked`: no length, a terminated input
        headers["Transfer-Encoding"] = "chunked"
        environ = {"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)}
        response = fast.post(PATH, headers=headers, environ_overrides=environ)
    else:
        response = fast.post(PATH, data=body, headers=headers)
    assert response.status_code == 413
    assert response.get_json() == {"error": "body larger than 20000 bytes"}
    assert flask_calls == [PATH]
