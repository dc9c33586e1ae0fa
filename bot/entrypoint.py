"""What the gunicorn entry points `bot.wsgi:app` and `bot.asgi:app` share: the deployed app, built lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

from bot.config import Settings
from bot.logs import configure_logging
from bot.web import create_app

T = TypeVar("T")


def deployed(wrap: Callable[[Flask, Settings], T], settings: Settings | None = None) -> T:
    """JSON logs, the Flask app, and the lean webhook path ``wrap`` puts in front of it."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, secrets=(settings.webhook_secret, settings.private_key))
    return wrap(create_app(settings), settings)


def lazy_app(build: Callable[[], Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that builds `app` on first access, so importing the module needs no environment."""
    built: list[Any] = []

    def module_getattr(name: str) -> Any:
        if name != "app":
            raise AttributeError(name)
        if not built:
            built.append(build())
        return built[0]

    return module_getattr
