"""Structured JSON logs (structlog) with a redaction processor: secrets and tokens never reach the output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import IO, Any

import structlog

REDACTED = "[REDACTED]"

# Field names whose values are secrets whatever they look like.
_SENSITIVE_KEY = re.compile(
    r"secret|token|password|passwd|private_?key|authorization|signature|jwt|credential|api_?key|cookie",
    re.IGNORECASE,
)
# Values that are secrets wherever they appear (GitHub token formats, PEM keys, JWTs, auth headers).
_SENSITIVE_VALUE = (
    re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(-----END[A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{16,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"sha(1|256)=[0-9a-fA-F]{40,64}"),
)
_known_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Redact these exact values (and each long line of a multi-line value such as a PEM key) everywhere."""
    for value in values:
        if not value:
            continue
        if len(value) >= 4:
            _known_secrets.add(value)
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= 16 and not line.startswith("-----"):
                _known_secrets.add(line)


def redact_text(text: str) -> str:
    """Replace every known secret and token-shaped substring."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _SENSITIVE_VALUE:
        text = pattern.sub(REDACTED, text)
    return text


def _redact(value: Any, key: str = "") -> Any:
    if key and _SENSITIVE_KEY.search(key) and value not in (None, "", 0):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact by key name and by value shape, recursively (runs after exc_info rendering)."""
    for key in list(event_dict):
        event_dict[key] = _redact(event_dict[key], "" if key == "event" else key)
    return event_dict


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]


def configure_logging(level: str = "INFO", stream: IO[str] | None = None,
                      secrets: Iterable[str | None] = ()) -> None:
    """JSON lines on stderr (or `stream`) for our events and for every stdlib logger (gunicorn, huey)."""
    register_secret(*secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
    ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("gunicorn.error", "gunicorn.access", "huey", "huey.consumer"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[*_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def log_event(event: str, /, *, level: str = "info", **fields: Any) -> None:
    """Write one structured log line (`event` names what happened; fields are JSON values)."""
    getattr(structlog.get_logger("ecr_cache_bot"), level)(event, **fields)
