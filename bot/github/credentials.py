"""The App's credentials, resolved when used: the environment's settings win, the manifest flow's store fills in.

Resolved lazily, so a web or worker process started before the App was registered picks the stored App up
on its next delivery or job without a restart.
"""

from __future__ import annotations

import dataclasses
import threading

from bot import logs
from bot.github import app_store
from bot.settings import Settings

_lock = threading.Lock()
_stored: dict[str, app_store.StoredApp] = {}  # data_dir -> the App once found: the flow never replaces it


def stored_app(data_dir: str) -> app_store.StoredApp | None:
    """The App the manifest flow stored in ``data_dir`` (cached once found); raises AppStoreError if unusable."""
    found = _stored.get(data_dir)
    if found is not None:
        return found
    app = app_store.load_app(data_dir)
    if app is not None:
        logs.register_secret(app.webhook_secret, app.private_key)
        with _lock:
            _stored[data_dir] = app
    return app


def forget(data_dir: str) -> None:
    """Drop the cached App of ``data_dir`` (after the store changed under this process)."""
    with _lock:
        _stored.pop(data_dir, None)


def env_has_app(settings: Settings) -> bool:
    """True when the environment names an App (APP_ID or a private key): the manifest flow stays shut."""
    return bool(settings.app_id or settings.private_key)


def _stored_or_none(settings: Settings) -> app_store.StoredApp | None:
    if env_has_app(settings):
        return None
    try:
        return stored_app(settings.data_dir)
    except app_store.AppStoreError:  # the setup page shows why; deliveries and jobs see "not registered"
        return None


def effective(settings: Settings) -> Settings:
    """``settings`` with the stored App's id, key and webhook secret, unless the environment names an App."""
    app = _stored_or_none(settings)
    if app is None:
        return settings
    return dataclasses.replace(
        settings,
        app_id=app.app_id,
        private_key=app.private_key,
        webhook_secret=settings.webhook_secret or app.webhook_secret,
    )


def webhook_secret(settings: Settings) -> str | None:
    """The secret deliveries are signed with, or None while no App is registered (setup mode)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    app = _stored_or_none(settings)
    return app.webhook_secret if app is not None else None
