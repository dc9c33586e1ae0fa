"""`ecr-cache-bot replay` signs a saved payload the way GitHub does and delivers it to a running app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.cli.main import main
from bot.queue.durable import InMemoryQueue
from bot.settings import Settings
from bot.web.flask_app import create_app

SECRET = "replay-test-secret"


@pytest.fixture
def app_url() -> Iterator[tuple[str, InMemoryQueue]]:
    queue = InMemoryQueue()
    app = create_app(Settings(webhook_secret=SECRET), queue=queue)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/github/webhooks", queue
    finally:
        server.shutdown()


def _payload(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(document))
    return path


def test_ping_is_accepted(
    app_url: tuple[str, InMemoryQueue],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = app_url
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    payload = _payload(tmp_path, {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert main(["replay", "ping", str(payload), "--url", url, "--delivery-id", "d-1"]) == 0
    assert "ping delivery d-1: HTTP 200" in capsys.readouterr().out


def test_wrong_secret_is_refused_by_the_app(
    app_url: tuple[str, InMemoryQueue],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = app_url
    monkeypatch.setenv("WEBHOOK_SECRET", "not-the-right-secret")
    payload = _payload(tmp_path, {"zen": "x", "hook_id": 1})
    assert main(["replay", "ping", str(payload), "--url", url]) == 1
    assert "HTTP 401" in capsys.readouterr().out


def test_comment_replayed_twice_with_one_delivery_id_queues_once(
    app_url: tuple[str, InMemoryQueue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus: Path
) -> None:
    url, queue = app_url
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    example = corpus / "webhooks" / "issue_comment" / "created.with-installation.payload.json"
    document = json.loads(example.read_text())
    document["comment"]["body"] = "/ecr-cache"
    document["sender"]["type"] = "User"
    payload = _payload(tmp_path, document)
    for _ in range(2):
        assert main(["replay", "issue_comment", str(payload), "--url", url, "--delivery-id", "same"]) == 0
    assert len(queue.pending) == 1
    assert queue.pending[0].kind == "command"


def test_local_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    not_json = tmp_path / "p.json"
    not_json.write_text("{oops")
    assert main(["replay", "push", str(not_json)]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["replay", "push", str(tmp_path / "missing.json")]) == 2
    good = _payload(tmp_path, {"zen": "x"})
    assert main(["replay", "ping", str(good), "--url", "http://127.0.0.1:9/hook"]) == 2
    assert "cannot reach" in capsys.readouterr().err
    monkeypatch.delenv("WEBHOOK_SECRET")
    assert main(["replay", "ping", str(good)]) == 2
    assert "WEBHOOK_SECRET" in capsys.readouterr().err
