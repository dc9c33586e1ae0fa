"""Structured JSON logging (stub: the observability work fills this in)."""

from __future__ import annotations

import logging
from typing import Any


def configure_logging(level: str = "INFO") -> None:
    """Set up JSON logs on stderr."""
    logging.basicConfig(level=level)


def log_event(event: str, **fields: Any) -> None:
    """Write one structured log line."""
    logging.getLogger("ecr_cache_bot").info("%s %s", event, fields)
