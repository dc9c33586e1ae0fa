"""`GET /` and the App-manifest flow: register the GitHub App in one click, as Probot does.

https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest

The webhook and redirect URLs are built from the request's scheme and `Host` as the server reports them:
gunicorn and uvicorn apply `X-Forwarded-Proto` only from the proxies in FORWARDED_ALLOW_IPS (default the
local host), and `X-Forwarded-Host` is not read at all, so a proxy in front must pass the original `Host`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, request

from bot.github import app_api as github_app
from bot.github import app_store, credentials, manifest
from bot.render.setup_page import render_setup_page
from bot.settings import Settings

blueprint = Blueprint("setup", __name__)
START_PATH = "/setup/github-app"
SCRIPT_PATH = "/setup/submit.js"
STATE_COOKIE = "ecr_cache_bot_manifest_state"
# The continue page submits its form at once; without scripts the visitor presses "Continue to GitHub".
SUBMIT_SCRIPT = 'document.getElementById("manifest-form").submit();\n'
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_register_lock = threading.Lock()
NONE = "'none'"


def _settings() -> Settings:
    settings: Settings = current_app.extensions["ecr_cache_bot.settings"]
    return settings


def _checks() -> github_app.CheckCache:
    cache: github_app.CheckCache = current_app.extensions.setdefault("ecr_cache_bot.app_check", github_app.CheckCache())
    return cache


def _security_headers(response: Response, github_url: str) -> Response:
    """No sniffing, no framing, and a CSP that lets the page post forms only here and to GitHub."""
    styles = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode() + "'"
        for m in _STYLE.finditer(response.get_data(as_text=True))
    )
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {styles or NONE}; script-src 'self'; "
        f"form-action 'self' {manifest.origin(github_url)}; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # the callback URL carries the one-time code
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(status: int, page: str, **context: object) -> Response:
    # The page lists exactly what the manifest asks for.
    html = render_setup_page(
        page,
        permissions=[
            (manifest.PERMISSION_LABELS[k], manifest.ACCESS_LABELS[v]) for k, v in manifest.PERMISSIONS.items()
        ],
        events=[manifest.EVENT_LABELS[e] for e in manifest.EVENTS],
        always_sent=manifest.ALWAYS_SENT_EVENTS,
        **context,
    )
    return _security_headers(Response(html, status=status, mimetype="text/html"), _settings().github_url)


def _refused(status: int, title: str, message: str) -> Response:
    return _page(status, "refused", title=title, message=message)


def _stored(settings: Settings) -> tuple[app_store.StoredApp | None, str | None]:
    try:
        return credentials.stored_app(settings.data_dir), None
    except app_store.AppStoreError as exc:
        return None, f"The stored App cannot be used: {exc}"


def registration_open(settings: Settings) -> bool:
    """The manifest flow is offered only while no App is configured, neither in the environment nor stored."""
    if credentials.env_has_app(settings):
        return False
    stored, error = _stored(settings)
    return stored is None and error is None


def _base_url() -> str | None:
    """This server's origin as the request reached it, or None for a `Host` that is not a host name."""
    host = request.host
    if not _HOST.match(host):
        return None
    return f"{request.scheme}://{host}"


@blueprint.get("/")
def index() -> Response:
    """Status: the App GitHub knows (checked with its JWT), or what is missing and the registration buttons."""
    settings = _settings()
    effective = credentials.effective(settings)
    _, store_error = _stored(settings)
    check = None
    install = ""
    if effective.app_id and effective.private_key:
        check = _checks().get(settings.github_api_url, effective.app_id, effective.private_key)
        install = manifest.install_url(check.html_url) if check.html_url else ""
    base = _base_url()
    return _page(
        200,
        "index",
        check=check,
        app_id=effective.app_id,
        install_url=install,
        source="environment" if credentials.env_has_app(settings) else f"App stored in {settings.data_dir}",
        api_url=manifest.without_userinfo(settings.github_api_url),
        dry_run=settings.dry_run,
        missing=settings.missing_for_github() if check is None else (),
        store_error=store_error,
        registration_open=registration_open(settings) and base is not None,
        start_path=START_PATH,
        webhook_url=(base or "") + settings.webhook_path,
        webhook_path=settings.webhook_path,
    )


@blueprint.post(START_PATH)
def start() -> Response:
    """Mint a one-time state and hand the browser a form that posts the manifest to GitHub."""
    settings = _settings()
    if not registration_open(settings):
        return _refused(
            409,
            "Already configured",
            "The GitHub App is already configured; registering another "
            "is refused. Remove its settings (or the App stored in DATA_DIR) first.",
        )
    base = _base_url()
    if base is None:
        return _refused(400, "Bad request", "The request's Host header is not a host name.")
    organization = (request.form.get("organization") or "").strip() or None
    if organization is not None and not manifest.valid_login(organization):
        return _refused(
            400,
            "Bad organization name",
            "An organization name has letters, digits and single hyphens (not at either end), at most 39 characters.",
        )
    try:
        state = app_store.StateStore(settings.data_dir).mint()
    except OSError as exc:
        return _refused(500, "DATA_DIR is not writable", f"The one-time state cannot be stored: {exc}")
    response = _page(
        200,
        "continue",
        organization=organization,
        script_url=SCRIPT_PATH,
        action=manifest.creation_url(settings.github_url, state, organization),
        manifest_json=json.dumps(manifest.build_manifest(base, settings.webhook_path)),
    )
    # Ties the redirect to the browser that started the flow; Lax, since it comes back by a top-level GET.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(app_store.STATE_TTL),
        path="/setup",
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
    )
    return response


@blueprint.get(SCRIPT_PATH)
def submit_script() -> Response:
    """The continue page's only script (served from here, so the CSP needs no inline script)."""
    response = Response(SUBMIT_SCRIPT, mimetype="text/javascript")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get(manifest.CALLBACK_PATH)
def callback() -> Response:
    """GitHub's redirect: check the state, exchange the code for the App's credentials, store them."""
    settings = _settings()
    if not registration_open(settings):
        return _refused(
            409, "Already configured", "The GitHub App is already configured; this registration is refused."
        )
    state = request.args.get("state", "")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if (
        not state
        or not hmac.compare_digest(state.encode(), cookie.encode())
        or not app_store.StateStore(settings.data_dir).consume(state)
    ):
        return _refused(
            400,
            "Registration refused",
            "The registration's state is unknown, expired, already "
            "used, or was started in another browser. Start again from the status page.",
        )
    code = request.args.get("code", "")
    if not _CODE.match(code):
        return _refused(400, "Registration refused", "GitHub's redirect carries no valid code.")
    try:
        app = github_app.convert_manifest_code(settings.github_api_url, code)
    except github_app.SetupError as exc:
        return _refused(502, "Registration failed", f"{exc}. Start again from the status page.")
    warning = ""
    if settings.webhook_secret:  # the environment's secret wins: make GitHub sign with it
        try:
            github_app.set_webhook_secret(settings.github_api_url, app.app_id, app.private_key, settings.webhook_secret)
        except github_app.SetupError as exc:
            warning = (
                f"WEBHOOK_SECRET is set in the environment, and telling GitHub to sign deliveries with it "
                f"failed ({exc}): set the App's webhook secret on GitHub to WEBHOOK_SECRET, or unset "
                f"WEBHOOK_SECRET to use the one GitHub generated."
            )
    with _register_lock:
        if not registration_open(settings):
            return _refused(
                409,
                "Already configured",
                "Another registration finished first; this one is not stored (delete the App it created on GitHub).",
            )
        try:
            app_store.save_app(settings.data_dir, app)
        except OSError as exc:
            return _refused(
                500,
                "DATA_DIR is not writable",
                f"App {app.app_id} was created on GitHub but "
                f"cannot be stored ({exc}); set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET from its "
                "settings page instead.",
            )
        credentials.forget(settings.data_dir)
    return _page(
        200,
        "done",
        name=app.name or app.slug,
        slug=app.slug,
        app_id=app.app_id,
        warning=warning,
        store_path=str(Path(settings.data_dir) / app_store.APP_DIR),
        install_url=manifest.install_url(app.html_url) if app.html_url else "",
    )


def register(app: Flask) -> None:
    """Serve `/` and the manifest flow on ``app``."""
    app.register_blueprint(blueprint)
