"""The App-level GitHub calls of the setup page (through PyGithub): manifest conversion and `GET /app`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration

from bot.github.app_store import StoredApp
from bot.github.manifest import without_userinfo

TIMEOUT = 15  # seconds; the setup page waits on it
CHECK_TTL = 60.0  # a good answer is cached this long, so `/` is not a GitHub call per hit
CHECK_TTL_FAILED = 5.0  # a failure only briefly: the operator is fixing it


class SetupError(Exception):
    """A GitHub call of the setup flow failed; the message is what the page shows."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


def key_problem(pem: str) -> str | None:
    """Why ``pem`` cannot sign an App JWT (GitHub App keys are RSA), or None when it can."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"the private key is not a PEM private key without a passphrase ({exc})"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "the private key is not an RSA key (GitHub App keys are RSA)"
    return None


def _failure(exc: Exception, call: str, api_url: str) -> SetupError:
    shown = without_userinfo(api_url)
    if isinstance(exc, GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        return SetupError(f"GitHub ({shown}) answered {exc.status} to {call}: {message or exc.data}", exc.status)
    if isinstance(exc, requests.RequestException):
        return SetupError(f"GitHub ({shown}) cannot be reached for {call}: {type(exc).__name__}", 502)
    return SetupError(f"{call} failed: {type(exc).__name__}: {exc}", 502)


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise SetupError(f"GitHub's manifest conversion answer has no `{name}`")
    return value


def convert_manifest_code(api_url: str, code: str) -> StoredApp:
    """Exchange the redirect's ``code`` for the new App's id, key and webhook secret.

    https://docs.github.com/en/rest/apps/apps#create-a-github-app-from-a-manifest (no authentication)."""
    call = "POST /app-manifests/{code}/conversions"
    client = Github(
        base_url=api_url, timeout=TIMEOUT, retry=None, seconds_between_requests=None, seconds_between_writes=None
    )
    try:
        _, data = client.requester.requestJsonAndCheck("POST", f"/app-manifests/{quote(code, safe='')}/conversions")
    except Exception as exc:  # every failure becomes the page's message, never a traceback
        raise _failure(exc, call, api_url) from exc
    if not isinstance(data, dict):
        raise SetupError("GitHub's manifest conversion answer is not a JSON object")
    app = StoredApp(
        app_id=_text(data, "id"),
        private_key=_text(data, "pem"),
        webhook_secret=_text(data, "webhook_secret"),
        slug=str(data.get("slug") or ""),
        name=str(data.get("name") or ""),
        html_url=str(data.get("html_url") or ""),
    )
    problem = key_problem(app.private_key)
    if problem:
        raise SetupError(f"GitHub's manifest conversion answer is unusable: {problem}")
    return app


def _integration(api_url: str, app_id: str, pem: str) -> GithubIntegration:
    auth = Auth.AppAuth(int(app_id) if app_id.isdigit() else app_id, pem)
    return GithubIntegration(
        auth=auth,
        base_url=api_url,
        timeout=TIMEOUT,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def set_webhook_secret(api_url: str, app_id: str, pem: str, secret: str) -> None:
    """Make GitHub sign deliveries with ``secret`` (the environment's WEBHOOK_SECRET wins over the generated one).

    https://docs.github.com/en/rest/apps/webhooks#update-a-webhook-configuration-for-an-app (App JWT)."""
    call = "PATCH /app/hook/config"
    try:
        _integration(api_url, app_id, pem).requester.requestJsonAndCheck(
            "PATCH", "/app/hook/config", input={"secret": secret}
        )
    except Exception as exc:
        raise _failure(exc, call, api_url) from exc


@dataclass(frozen=True)
class AppCheck:
    """What `GET /app` with the App's JWT said: the App, or why the credentials do not work."""

    ok: bool
    error: str = ""
    name: str = ""
    slug: str = ""
    html_url: str = ""


def check_app(api_url: str, app_id: str, pem: str) -> AppCheck:
    """Sign a JWT with ``pem`` as App ``app_id`` and ask GitHub who that is."""
    problem = key_problem(pem)
    if problem:
        return AppCheck(False, error=f"PRIVATE_KEY: {problem}")
    try:
        app = _integration(api_url, app_id, pem).get_app()
        return AppCheck(True, name=app.name or "", slug=app.slug or "", html_url=app.html_url or "")
    except Exception as exc:
        error = _failure(exc, "GET /app", api_url)
        hint = " (APP_ID does not belong to this private key, or the App was deleted)" if error.status == 401 else ""
        return AppCheck(False, error=f"{error}{hint}")


class CheckCache:
    """`check_app` answers per (API URL, id, key), kept CHECK_TTL seconds (CHECK_TTL_FAILED for failures)."""

    def __init__(self, check: Any = check_app) -> None:
        self._check = check
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, str], tuple[float, AppCheck]] = {}

    def get(self, api_url: str, app_id: str, pem: str) -> AppCheck:
        """The cached answer, or a fresh check."""
        key = (api_url, app_id, pem)
        now = time.monotonic()
        with self._lock:
            cached = self._answers.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer: AppCheck = self._check(api_url, app_id, pem)
        with self._lock:
            self._answers = {key: (now + (CHECK_TTL if answer.ok else CHECK_TTL_FAILED), answer)}
        return answer
