"""The App-manifest flow: manifest content, one-time state, conversion, storage, and `/` checking the App for real."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import stat
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from flask.testing import FlaskClient

from bot import settings
from bot.github import app_store, credentials, manifest
from bot.queue.durable import InMemoryQueue
from bot.settings import Settings, SettingsError
from bot.web.flask_app import create_app
from bot.web.wsgi import FlaskWsgi
from bot.wiring import LazyFactory
from tests.github_double import GitHubDouble

API = "https://ghe.test/api/v3"


@pytest.fixture
def double() -> Iterator[GitHubDouble]:
    gh = GitHubDouble(API)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh.activate(mock)
        yield gh


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "webhook_secret": "",
        "data_dir": str(tmp_path / "data"),
        "github_api_url": API,
        "github_url": settings.web_url_for(API),
    }
    fields.update(overrides)
    return Settings(**fields)


def _client(settings: Settings) -> FlaskClient:
    return create_app(settings, queue=InMemoryQueue()).test_client()


def _form(html: str) -> tuple[str, dict[str, Any]]:
    action = re.search(r'<form id="manifest-form" method="post" action="([^"]+)"', html)
    value = re.search(r'name="manifest" value="([^"]+)"', html)
    assert action and value, html
    return unescape(action.group(1)), json.loads(unescape(value.group(1)))


def _start(client: FlaskClient, organization: str | None = None) -> tuple[str, dict[str, Any], str]:
    """Press a register button; return the GitHub form action, the manifest and the state."""
    response = client.post("/setup/github-app", data={"organization": organization} if organization else {})
    assert response.status_code == 200, response.get_data(as_text=True)
    action, posted = _form(response.get_data(as_text=True))
    return action, posted, parse_qs(urlsplit(action).query)["state"][0]


def _register(client: FlaskClient, double: GitHubDouble, organization: str | None = None) -> Any:
    """The whole flow as the browser walks it, GitHub's page played by the double."""
    _, posted, state = _start(client, organization)
    code, redirect_url = double.start_manifest(json.dumps(posted), organization)
    return client.get(urlsplit(redirect_url).path, query_string={"code": code, "state": state})


def _sign(raw: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _ping(client: Any, secret: str) -> int:
    raw = b'{"zen": "z"}'
    return int(
        client.post(
            "/api/github/webhooks",
            data=raw,
            headers={
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "d-1",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": _sign(raw, secret),
            },
        ).status_code
    )


# -- the manifest and the URLs ----------------------------------------------------------------------------


def test_manifest_asks_for_exactly_what_the_bot_uses() -> None:
    built = manifest.build_manifest("https://bot.example:8443", "/hooks")
    assert built == {
        "name": "ecr-cache-bot",
        "url": "https://bot.example:8443/",
        "description": manifest.DESCRIPTION,
        "hook_attributes": {"url": "https://bot.example:8443/hooks", "active": True},
        "redirect_url": "https://bot.example:8443/setup/github-app/callback",
        "public": False,
        "default_permissions": {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"},
        "default_events": ["push", "issue_comment", "pull_request"],
    }


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://ghe.example/api/v3", "https://ghe.example"),
        ("https://ops:pw@ghe.example:8443/api/v3/", "https://ghe.example:8443"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_github_web_url_is_derived_from_the_api_url(api: str, web: str) -> None:
    assert settings.web_url_for(api) == web


def test_creation_urls_for_a_user_and_an_organization() -> None:
    assert manifest.creation_url("https://github.com", "s1") == "https://github.com/settings/apps/new?state=s1"
    assert (
        manifest.creation_url("https://ghe.example", "s1", "acme-corp")
        == "https://ghe.example/organizations/acme-corp/settings/apps/new?state=s1"
    )
    assert manifest.valid_login("acme-corp") and manifest.valid_login("a" * 39)
    for bad in ("", "-acme", "acme-", "ac--me", "a" * 40, "acme/x", "ac me", "../x"):
        assert not manifest.valid_login(bad), bad


# -- state and storage ------------------------------------------------------------------------------------


def test_state_is_single_use_and_expires(tmp_path: Path) -> None:
    store = app_store.StateStore(str(tmp_path))
    state = store.mint(now=1000.0)
    assert len(state) >= 32 and state != store.mint(now=1000.0)
    assert not store.consume("not-a-minted-state", now=1001.0)
    assert store.consume(state, now=1001.0)
    assert not store.consume(state, now=1002.0)  # reused
    old = store.mint(now=1000.0)
    assert not store.consume(old, now=1000.0 + app_store.STATE_TTL + 1)  # expired


def test_expired_states_are_purged_when_a_new_one_is_minted(tmp_path: Path) -> None:
    store = app_store.StateStore(str(tmp_path))
    store.mint(now=0.0)
    store.mint(now=0.0)
    fresh = store.mint(now=app_store.STATE_TTL + 10)
    assert [p.name for p in store.folder.iterdir()] == [hashlib.sha256(fresh.encode()).hexdigest()]


def test_stored_app_files_are_private_and_complete(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert app_store.load_app(data) is None
    app = app_store.StoredApp(
        "42",
        "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
        "whs",
        "my-bot",
        "My bot",
        "https://github.com/apps/my-bot",
    )
    app_store.save_app(data, app)
    folder = Path(data) / app_store.APP_DIR
    assert sorted(p.name for p in folder.iterdir()) == [app_store.APP_FILE, app_store.KEY_FILE]  # no temp files
    for name in (app_store.APP_FILE, app_store.KEY_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert app_store.load_app(data) == app
    (folder / app_store.APP_FILE).write_text("{not json")
    with pytest.raises(app_store.AppStoreError, match="app.json"):
        app_store.load_app(data)


# -- settings: setup mode ---------------------------------------------------------------------------------


def test_starts_without_a_secret_only_while_no_app_is_named(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.webhook_secret == "" and settings.github_url == "https://github.com"
    for named in ({"APP_ID": "1"}, {"PRIVATE_KEY": "k"}):
        with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required when APP_ID or PRIVATE_KEY"):
            Settings.from_env({"DATA_DIR": str(tmp_path), **named})
    ghes = Settings.from_env({"GITHUB_API_URL": "https://ghe.example/api/v3"})
    assert ghes.github_url == "https://ghe.example"
    assert Settings.from_env({"GITHUB_URL": "http://127.0.0.1:5/"}).github_url == "http://127.0.0.1:5"
    with pytest.raises(SettingsError, match="GITHUB_URL"):
        Settings.from_env({"GITHUB_URL": "github.com"})


def test_webhook_answers_503_until_a_secret_exists_on_every_path(tmp_path: Path) -> None:
    import asyncio

    from werkzeug.test import Client

    from bot.web.asgi import FastAsgiWebhook
    from tests.runtime_fixtures import push_payload

    settings = _settings(tmp_path)
    queue = InMemoryQueue()
    app = create_app(settings, queue=queue)
    assert _ping(app.test_client(), "") == 503
    # The lean WSGI and ASGI paths must not accept a delivery signed with the empty key either.
    raw = json.dumps(push_payload("o/r")).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-2",
        "Content-Type": "application/json",
        "X-Hub-Signature-256": _sign(raw, ""),
    }
    lean = Client(FlaskWsgi(app, settings))
    assert lean.post("/api/github/webhooks", data=raw, headers=headers).status_code == 503
    replies: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        replies.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/api/github/webhooks",
        "raw_path": b"/api/github/webhooks",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 5),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(raw)).encode())],
    }
    asyncio.run(FastAsgiWebhook(app, settings)(scope, receive, send))
    assert replies[0]["status"] == 503
    assert queue.seen == set()  # nothing was queued


# -- the flow through the web app -------------------------------------------------------------------------


def test_unconfigured_page_offers_registration_with_safe_headers(tmp_path: Path) -> None:
    response = _client(_settings(tmp_path)).get("/", base_url="http://bot.local:3000")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="register-personal"' in html and 'id="register-organization"' in html
    assert 'name="organization"' in html
    assert '<code id="webhook-url">http://bot.local:3000/api/github/webhooks</code>' in html
    events = re.search(r'<ul id="events">(.*?)</ul>', html, re.DOTALL)
    assert events and re.findall(r"<li>([^<]+)</li>", events.group(1)) == ["Push", "Issue comment", "Pull request"]
    csp = response.headers["Content-Security-Policy"]
    assert "form-action 'self' https://ghe.test;" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "style-src 'sha256-" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_register_button_posts_the_manifest_to_github_with_a_state(tmp_path: Path) -> None:
    client = _client(_settings(tmp_path, webhook_path="/hooks"))
    action, posted, state = _start(client)
    assert action == f"https://ghe.test/settings/apps/new?state={state}"
    assert posted["hook_attributes"] == {"url": "http://localhost/hooks", "active": True}
    assert posted["redirect_url"] == "http://localhost/setup/github-app/callback"
    secure = client.post("/setup/github-app", base_url="https://bot.example")
    assert _form(secure.get_data(as_text=True))[1]["hook_attributes"]["url"] == "https://bot.example/hooks"
    assert "Secure" in secure.headers["Set-Cookie"] and "HttpOnly" in secure.headers["Set-Cookie"]
    org_action, _, org_state = _start(client, "acme-corp")
    assert org_action == f"https://ghe.test/organizations/acme-corp/settings/apps/new?state={org_state}"
    refused = client.post("/setup/github-app", data={"organization": "acme/../x"})
    assert refused.status_code == 400 and "organization" in refused.get_data(as_text=True)


def test_redirect_stores_the_app_and_it_is_used_at_once(tmp_path: Path, double: GitHubDouble) -> None:
    settings = _settings(tmp_path)
    client = _client(settings)
    lazy = LazyFactory(settings)  # what a worker holds from before the registration
    with pytest.raises(ValueError, match="APP_ID"):
        lazy(1)
    done = _register(client, double, "acme-corp")
    html = done.get_data(as_text=True)
    assert done.status_code == 200, html
    [app] = double.apps.values()
    assert f'href="https://ghe.test/apps/{app["slug"]}/installations/new"' in html
    assert app["owner"]["login"] == "acme-corp"
    folder = Path(settings.data_dir) / app_store.APP_DIR
    assert (folder / app_store.KEY_FILE).read_text() == app["pem"]
    assert stat.S_IMODE((folder / app_store.KEY_FILE).stat().st_mode) == 0o600
    # Deliveries are verified with GitHub's secret, and the worker's gateway signs with the new key.
    assert _ping(client, app["webhook_secret"]) == 200
    assert _ping(client, "something-else") == 401
    assert lazy(1) is not None
    page = client.get("/")
    text = page.get_data(as_text=True)
    assert '<h2 id="status" class="ok">Configured</h2>' in text
    assert f'<code id="app-slug">{app["slug"]}</code>' in text and f'<code id="app-id">{app["id"]}</code>' in text
    assert [r.method for r in double.requests] == ["POST", "GET"]
    assert re.fullmatch(r"/app-manifests/[0-9a-f]{40}/conversions", double.requests[0].path)
    assert double.requests[1].path == "/app"
    # The flow is refused now that an App is configured.
    again = client.post("/setup/github-app")
    assert again.status_code == 409 and "already configured" in again.get_data(as_text=True)
    assert 'id="register-personal"' not in text


def test_wrong_or_reused_state_is_refused(tmp_path: Path, double: GitHubDouble) -> None:
    client = _client(_settings(tmp_path))
    _, posted, state = _start(client)
    code, redirect_url = double.start_manifest(json.dumps(posted))
    path = urlsplit(redirect_url).path
    wrong = client.get(path, query_string={"code": code, "state": state[:-1] + "x"})
    assert wrong.status_code == 400 and "state" in wrong.get_data(as_text=True)
    # An unknown code burns the state: GitHub answers 404, the page says so, the state cannot be replayed.
    failed = client.get(path, query_string={"code": "0" * 40, "state": state})
    assert failed.status_code == 502 and "answered 404 to POST /app-manifests" in failed.get_data(as_text=True)
    reused = client.get(path, query_string={"code": code, "state": state})
    assert reused.status_code == 400 and "already" in reused.get_data(as_text=True)
    assert not double.apps
    # A state minted for another browser (no cookie here) is refused as well.
    _, _, other_state = _start(client)
    client.delete_cookie("ecr_cache_bot_manifest_state", path="/setup")
    assert client.get(path, query_string={"code": code, "state": other_state}).status_code == 400


def test_an_environment_secret_wins_and_github_is_told(tmp_path: Path, double: GitHubDouble) -> None:
    client = _client(_settings(tmp_path, webhook_secret="from-env"))
    assert _register(client, double).status_code == 200
    [app] = double.apps.values()
    assert app["hook"]["secret"] == "from-env"
    assert _ping(client, "from-env") == 200 and _ping(client, app["webhook_secret"]) == 401


def test_flow_is_refused_while_the_environment_names_an_app(tmp_path: Path) -> None:
    client = _client(_settings(tmp_path, webhook_secret="s", app_id="7"))
    assert 'id="register-personal"' not in client.get("/").get_data(as_text=True)
    assert client.post("/setup/github-app").status_code == 409
    assert client.get("/setup/github-app/callback?code=abc&state=x").status_code == 409


# -- `/` checks the credentials with GitHub ---------------------------------------------------------------


def test_configured_page_shows_the_app_github_knows_and_caches_the_answer(tmp_path: Path, double: GitHubDouble) -> None:
    app = double.register_app(name="Build Cache Bot")
    client = _client(_settings(tmp_path, webhook_secret="s", app_id=str(app["id"]), private_key=app["pem"]))
    for _ in range(3):
        html = client.get("/").get_data(as_text=True)
        assert '<strong id="app-name">Build Cache Bot</strong>' in html
        assert '<code id="app-slug">build-cache-bot</code>' in html
        assert 'href="https://ghe.test/apps/build-cache-bot/installations/new"' in html
    assert [str(r) for r in double.requests] == ["GET /app"]


def test_a_garbage_key_is_not_configured(tmp_path: Path, double: GitHubDouble) -> None:
    html = _client(_settings(tmp_path, webhook_secret="s", app_id="7", private_key="k")).get("/").get_data(as_text=True)
    assert '<h2 id="status" class="missing">Not working</h2>' in html
    assert "PRIVATE_KEY: the private key is not a PEM private key" in html
    assert not double.requests


def test_a_wrong_app_id_shows_githubs_401(tmp_path: Path, double: GitHubDouble) -> None:
    app = double.register_app()
    html = (
        _client(_settings(tmp_path, webhook_secret="s", app_id=str(app["id"] + 1), private_key=app["pem"]))
        .get("/")
        .get_data(as_text=True)
    )
    assert "Not working" in html
    assert "answered 401 to GET /app: A JSON web token could not be decoded" in html
    assert "APP_ID does not belong to this private key" in html


def test_unreachable_github_is_named_without_the_url_password(tmp_path: Path) -> None:
    api = "https://ops:hunter2@ghe.down/api/v3"
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, re.compile(r"https://ghe\.down.*"), body=requests.ConnectionError("refused"))
        app = GitHubDouble(API).register_app()
        html = (
            _client(
                _settings(
                    tmp_path, webhook_secret="s", app_id=str(app["id"]), private_key=app["pem"], github_api_url=api
                )
            )
            .get("/")
            .get_data(as_text=True)
        )
    assert "Not working" in html and "cannot be reached for GET /app: ConnectionError" in html
    assert "hunter2" not in html and "https://ghe.down/api/v3" in html


def test_a_broken_store_is_shown_not_a_traceback(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    folder = Path(settings.data_dir) / app_store.APP_DIR
    folder.mkdir(parents=True)
    (folder / app_store.APP_FILE).write_text('{"id": 5}')
    credentials.forget(settings.data_dir)
    response = _client(settings).get("/")
    assert response.status_code == 200
    assert 'id="store-error"' in response.get_data(as_text=True)
    assert _ping(_client(settings), "") == 503


# -- `serve`: the web and worker processes pick the stored App up without a restart -----------------------


@pytest.mark.slow
def test_serve_started_without_an_app_uses_the_registered_one(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import threading

    from werkzeug.serving import make_server

    from tests.github_double import web_and_api_app
    from tests.runtime_fixtures import ROOT, free_port, push_payload, sign, wait_until

    double = GitHubDouble("http://127.0.0.1:1/api/v3")
    github = make_server("127.0.0.1", 0, web_and_api_app(double), threaded=True)
    threading.Thread(target=github.serve_forever, daemon=True).start()
    double.base_url = f"http://127.0.0.1:{github.server_port}/api/v3"
    double.add_repo("o/app", {"Dockerfile": "FROM scratch\n"})
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("WEBHOOK_SECRET", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "REDIS_URL", "GITHUB_URL", "DRY_RUN")
    }
    env.update(DATA_DIR=str(tmp_path / "data"), GITHUB_API_URL=double.base_url, PYTHONPATH=str(ROOT))
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(base + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        assert wait_until(up, 30), (tmp_path / "serve.log").read_text()[-3000:]
        browser = requests.Session()  # what the browser does, cookie included
        action, posted = _form(browser.post(base + "/setup/github-app", timeout=10).text)
        done = browser.post(action, data={"manifest": json.dumps(posted)}, timeout=30)
        assert done.status_code == 200 and "GitHub App registered" in done.text, done.text
        [app] = double.apps.values()
        raw = json.dumps(push_payload("o/app")).encode()
        delivered = requests.post(
            base + "/api/github/webhooks",
            data=raw,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "after-setup",
                "X-Hub-Signature-256": sign(raw, app["webhook_secret"]),
            },
        )
        assert delivered.status_code == 202, delivered.text

        def token_minted() -> bool:
            return any(r.path == "/app/installations/1/access_tokens" and r.status == 201 for r in list(double.history))

        # The worker process signed its JWT with the stored key (the double checks it against the App's).
        assert wait_until(token_minted, 30), (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, 9)
        log.close()
        github.shutdown()


def test_an_unwritable_data_dir_is_a_clear_page(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    Path(settings.data_dir).mkdir()
    (Path(settings.data_dir) / app_store.STATE_DIR).write_text("a file where the states folder goes")
    response = _client(settings).post("/setup/github-app")
    assert response.status_code == 500 and "DATA_DIR is not writable" in response.get_data(as_text=True)
