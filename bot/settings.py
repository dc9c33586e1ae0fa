"""Process settings: `Settings.from_env()` is the only reader of the environment (and of `.env`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values


def web_url_for(api_url: str) -> str:
    """GitHub's web origin for an API URL: api.github.com → github.com, https://HOST/api/v3 → https://HOST."""
    parts = urlsplit(api_url.rstrip("/"))
    host = parts.netloc.rpartition("@")[2]
    path = parts.path
    if path.endswith("/api/v3"):  # GitHub Enterprise Server
        path = path[: -len("/api/v3")]
    elif host.startswith("api."):  # github.com and GHE.com (api.SUBDOMAIN.ghe.com)
        host = host[len("api.") :]
    return urlunsplit((parts.scheme, host, path, "", "")).rstrip("/")


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A webhook secret shorter than this is guessable; GitHub asks for "a random string of text with high entropy"
# (docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries).
MIN_SECRET_LENGTH = 16
# A literal URL path: Flask reads `<...>` as a converter, and `?`, `#`, `%` or spaces never reach the route as typed.
_LITERAL_PATH = re.compile(r"/|(/[A-Za-z0-9._~-]+)+/?")


def process_env() -> dict[str, str]:
    """A copy of this process's environment, to hand to a child process (git, gunicorn, the worker)."""
    return dict(os.environ)


def no_color() -> bool:
    """Whether `NO_COLOR` asks for no colour: any non-empty value does (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


class SettingsError(ValueError):
    """A required setting is missing or invalid; the message names it."""


def read_environment(dotenv_path: str | Path = ".env") -> dict[str, str]:
    """The process environment over the `.env` file in the working directory, as Probot reads it (env wins)."""
    # No interpolation: a `$` in a secret or key stays a `$`.
    from_file = {k: v for k, v in dotenv_values(dotenv_path, interpolate=False).items() if v is not None}
    return {**from_file, **os.environ}


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {env.get(name)!r}")
    return value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the web app, workers and gateway need, read once at start-up."""

    webhook_secret: str  # "" in setup mode: no App yet, the manifest flow's store supplies it later
    app_id: str | None = None
    private_key: str | None = None
    webhook_path: str = "/api/github/webhooks"
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"
    redis_url: str | None = None
    data_dir: str = "data"
    port: int = 3000
    log_level: str = "INFO"
    dry_run: bool = False
    max_body_bytes: int = 25 * 1024 * 1024
    preview_threshold: int = 200
    queue_fsync: bool = True
    queue_namespace: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (Probot's names) over `./.env`.

        Without WEBHOOK_SECRET it starts only in setup mode (no APP_ID or key in the environment), where the
        App is registered from `/` and its secret is stored in DATA_DIR."""
        env = read_environment() if env is None else env
        secret = env.get("WEBHOOK_SECRET", "")
        if not secret.strip():
            secret = ""  # blank is unset
        elif len(secret) < MIN_SECRET_LENGTH:  # the value itself is never echoed
            raise SettingsError(
                f"WEBHOOK_SECRET must be at least {MIN_SECRET_LENGTH} characters, got {len(secret)}: "
                "use a long random value (e.g. `openssl rand -hex 32`)"
            )
        private_key = env.get("PRIVATE_KEY") or None
        key_path = env.get("PRIVATE_KEY_PATH")
        if private_key is None and key_path:
            try:
                private_key = Path(key_path).read_text()
            except OSError as exc:
                raise SettingsError(f"PRIVATE_KEY_PATH={key_path!r} cannot be read: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise SettingsError(f"PRIVATE_KEY_PATH={key_path!r} is not a PEM text file") from exc
        if private_key and "\\n" in private_key and "\n" not in private_key:
            private_key = private_key.replace("\\n", "\n")
        try:
            port = int(env.get("PORT", "3000"))
        except ValueError as exc:
            raise SettingsError(f"PORT must be a number, got {env.get('PORT')!r}") from exc
        try:
            preview_threshold = int(env.get("PREVIEW_THRESHOLD", "200"))
        except ValueError as exc:
            raise SettingsError(f"PREVIEW_THRESHOLD must be a number, got {env.get('PREVIEW_THRESHOLD')!r}") from exc
        if preview_threshold < 0:
            raise SettingsError(f"PREVIEW_THRESHOLD must be 0 or more, got {preview_threshold}")
        log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
        if log_level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {env.get('LOG_LEVEL')!r}")
        redis_url = env.get("REDIS_URL") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")
        data_dir = env.get("DATA_DIR") or "data"
        if Path(data_dir).exists() and not Path(data_dir).is_dir():
            raise SettingsError(f"DATA_DIR={data_dir!r} exists and is not a directory")
        fsync = (env.get("QUEUE_FSYNC") or "full").strip().lower()
        if fsync not in ("full", "normal"):
            raise SettingsError(f"QUEUE_FSYNC must be `full` or `normal`, got {env.get('QUEUE_FSYNC')!r}")
        namespace = (env.get("QUEUE_NAMESPACE") or "").strip()
        if namespace and not all(c.isalnum() or c in "-_." for c in namespace):
            raise SettingsError(f"QUEUE_NAMESPACE may use letters, digits, '-', '_' and '.', got {namespace!r}")
        path = env.get("WEBHOOK_PATH", "/api/github/webhooks") or "/api/github/webhooks"
        if not path.startswith("/"):
            raise SettingsError(f"WEBHOOK_PATH must start with '/', got {path!r}")
        if not _LITERAL_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
            raise SettingsError(
                f"WEBHOOK_PATH must be a literal path of '/'-separated letters, digits and "
                f"'-', '_', '.', '~' (no '<converter>', '?', '#', '%' or spaces), got {path!r}"
            )
        app_id = env.get("APP_ID") or None
        if not secret and (app_id or private_key):
            raise SettingsError(
                "WEBHOOK_SECRET is required when APP_ID or PRIVATE_KEY is set: set it to the "
                "webhook secret of the GitHub App"
            )
        api_url = _url(env, "GITHUB_API_URL", "https://api.github.com")
        return cls(
            webhook_secret=secret,
            app_id=app_id,
            private_key=private_key,
            webhook_path=path,
            github_api_url=api_url,
            github_url=_url(env, "GITHUB_URL", web_url_for(api_url)),
            redis_url=redis_url,
            data_dir=data_dir,
            port=port,
            log_level=log_level,
            dry_run=_flag(env.get("DRY_RUN")),
            preview_threshold=preview_threshold,
            queue_fsync=fsync == "full",
            queue_namespace=namespace,
        )

    def missing_for_github(self) -> tuple[str, ...]:
        """Names of the settings still needed to talk to GitHub as the App."""
        missing = []
        if not self.app_id:
            missing.append("APP_ID")
        if not self.private_key:
            missing.append("PRIVATE_KEY or PRIVATE_KEY_PATH")
        return tuple(missing)
