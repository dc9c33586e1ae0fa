"""gunicorn entry point: `gunicorn bot.wsgi:app` (settings from the environment, JSON logs)."""

from __future__ import annotations

from bot.config import Settings
from bot.logs import configure_logging
from bot.web import create_app

settings = Settings.from_env()
configure_logging(settings.log_level, secrets=(settings.webhook_secret, settings.private_key))
app = create_app(settings)
