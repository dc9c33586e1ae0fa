"""`GET /`: whether the App is configured, which settings are missing, what to give the App."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.queue.durable import InMemoryQueue
from bot.settings import Settings
from bot.web.flask_app import create_app

CHROMIUM = "/usr/bin/chromium"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, list[str]] = {}
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs).get("id")
        self._stack.append(found or (self._stack[-1] if self._stack else ""))
        if found:
            self.ids.setdefault(found, [])

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1] and data.strip():
            self.ids[self._stack[-1]].append(data.strip())


def _sections(html: str) -> dict[str, str]:
    parser = _Text()
    parser.feed(html)
    return {k: " ".join(v) for k, v in parser.ids.items()}


def test_unconfigured_page_names_every_missing_setting() -> None:
    app = create_app(Settings(webhook_secret="s"), queue=InMemoryQueue())
    response = app.test_client().get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    parts = _sections(response.get_data(as_text=True))
    assert parts["status"] == "Not configured"
    assert parts["missing"] == "APP_ID PRIVATE_KEY or PRIVATE_KEY_PATH"


def test_configured_page_lists_permissions_and_events() -> None:
    settings = Settings(
        webhook_secret="s",
        app_id="1234",
        private_key="k",
        webhook_path="/hooks",
        github_api_url="https://ghe.example/api/v3",
    )
    html = create_app(settings, queue=InMemoryQueue()).test_client().get("/").get_data(as_text=True)
    parts = _sections(html)
    assert parts["status"] == "Not working"  # "k" is no key: `/` checks it (tests/test_manifest_flow.py)
    assert "missing" not in parts
    assert "1234" in html and "https://ghe.example/api/v3" in html and "/hooks" in html
    perms = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", html))
    assert perms == {
        "Contents": "read and write",
        "Pull requests": "read and write",
        "Issues": "read and write",
        "Metadata": "read",
    }
    assert parts["events"] == "Push Issue comment Pull request"  # the installation events cannot be chosen


def test_settings_values_are_escaped() -> None:
    settings = Settings(webhook_secret="s", app_id="<script>alert(1)</script>", private_key="k")
    html = create_app(settings, queue=InMemoryQueue()).test_client().get("/").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.fixture
def served() -> Iterator[str]:
    app = create_app(Settings(webhook_secret="s", app_id="42"), queue=InMemoryQueue())
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None,
    reason="headless Chromium is not installed (apt-get install -y chromium)",
)
def test_page_renders_in_headless_chromium(served: str, tmp_path: Path) -> None:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        served,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    parts = _sections(result.stdout)
    assert parts["status"] == "Not configured"
    assert parts["missing"] == "PRIVATE_KEY or PRIVATE_KEY_PATH"
    assert "Pull requests" in parts["permissions"]
