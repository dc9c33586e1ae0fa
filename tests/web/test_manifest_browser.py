"""End to end in headless Chromium: click "Register the GitHub App" on the served page, follow the form post to
GitHub (the double, served as a GitHub Enterprise Server: web pages at the root, the API under /api/v3) and its
redirect back, then see `/` show the App that GitHub knows by the JWT the new key signs."""

from __future__ import annotations

import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from werkzeug.serving import BaseWSGIServer, make_server

from bot.github import app_store
from bot.queue.durable import InMemoryQueue
from bot.settings import Settings
from bot.web.flask_app import create_app
from tests.browser import launched, needs_chromium
from tests.github_double import GitHubDouble, web_and_api_app

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


def _serve(app: object) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@dataclass
class Stack:
    """The double and the bot, each on its own port."""

    double: GitHubDouble
    bot_url: str
    settings: Settings


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    double = GitHubDouble("http://127.0.0.1:1/api/v3")
    github, github_thread = _serve(web_and_api_app(double))
    double.base_url = f"http://127.0.0.1:{github.server_port}/api/v3"
    # As a new user starts it: no WEBHOOK_SECRET, no App; the web URL is derived from the API URL.
    settings = Settings.from_env({"GITHUB_API_URL": double.base_url, "DATA_DIR": str(tmp_path / "data")})
    assert settings.github_url == f"http://127.0.0.1:{github.server_port}"
    bot, bot_thread = _serve(create_app(settings, queue=InMemoryQueue()))
    try:
        yield Stack(double, f"http://127.0.0.1:{bot.server_port}", settings)
    finally:
        for server, thread in ((bot, bot_thread), (github, github_thread)):
            server.shutdown()
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


@pytest.mark.parametrize("organization", [None, "acme-corp"])
def test_register_the_app_in_the_browser(stack: Stack, browser: Browser, organization: str | None) -> None:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(stack.bot_url + "/")
    assert page.locator("#status").inner_text() == "Not configured"
    assert page.locator("#webhook-url").inner_text() == stack.bot_url + "/api/github/webhooks"
    if organization:
        page.fill("#organization", organization)
        page.click("#register-organization")
    else:
        page.click("#register-personal")
    # The continue page posts the manifest to GitHub by itself; GitHub redirects back with code and state.
    callback = re.compile(re.escape(stack.bot_url) + r"/setup/github-app/callback\?code=.+&state=.+")
    page.wait_for_url(callback, timeout=15_000)
    assert page.locator("#status").inner_text() == "GitHub App registered", page.content()
    [posted] = stack.double.manifests
    assert posted["organization"] == organization
    assert posted["manifest"]["hook_attributes"]["url"] == stack.bot_url + "/api/github/webhooks"
    assert posted["manifest"]["default_events"] == ["push", "issue_comment", "pull_request"]
    [app] = stack.double.apps.values()
    assert app["owner"]["login"] == (organization or "octocat")
    web = stack.settings.github_url
    assert page.locator("#install").get_attribute("href") == f"{web}/apps/{app['slug']}/installations/new"
    key = Path(stack.settings.data_dir) / app_store.APP_DIR / app_store.KEY_FILE
    assert key.read_text() == app["pem"] and stat.S_IMODE(key.stat().st_mode) == 0o600

    # `/` now signs a JWT with the stored key; the double accepts it only with that App's public key.
    stack.double.reset_requests()
    page.goto(stack.bot_url + "/")
    assert page.locator("#status").inner_text() == "Configured"
    assert page.locator("#app-slug").inner_text() == app["slug"]
    assert page.locator("#app-id").inner_text() == str(app["id"])
    assert [(str(r), r.status) for r in stack.double.requests] == [("GET /app", 200)]
    assert page.locator("#register-personal").count() == 0
    assert not [text for text in console if "Content Security Policy" in text], console
    context.close()
