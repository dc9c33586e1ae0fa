"""gunicorn entry point `bot.web.wsgi:app` (worker class `bot.web.gthread_worker.Worker`): the Flask app as it is.

The worker reads each request whole before a thread sees it (bodies past the cap, stalled clients and bad
framing are its to answer), and the Flask route decides every delivery through `bot.web.intake`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from bot.settings import Settings
from bot.web.serving import lazy_app

StartResponse = Callable[..., Any]


class FlaskWsgi:
    """The deployed WSGI app: the Flask app with the settings it was built from (the ASGI app's shape)."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.queue = app.extensions["ecr_cache_bot.queue"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.app.wsgi_app(environ, start_response)


def build(settings: Settings | None = None) -> FlaskWsgi:
    """The deployed WSGI app: JSON logs, the Flask app."""
    from bot.wiring import deployed  # the composition root builds the default app and queue

    return deployed(FlaskWsgi, settings)


__getattr__ = lazy_app(build)
