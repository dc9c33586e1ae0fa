"""Structured JSON logs (structlog) with a redaction processor: secrets and tokens never reach the output."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import IO, Any, TextIO, cast

import structlog

REDACTED = "[REDACTED]"

# Field names whose values are secrets whatever they look like.
_SENSITIVE_KEY = re.compile(
    r"secret|token|password|passwd|private_?key|authorization|signature|jwt|credential|api_?key|cookie",
    re.IGNORECASE,
)
# Values that are secrets wherever they appear (GitHub token formats, PEM keys, JWTs, auth headers),
# as one alternation so a clean string costs one regex scan.
_SENSITIVE_VALUE = re.compile(
    "|".join(
        (
            r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:.*?-----END[A-Z ]*PRIVATE KEY-----|.*)",
            r"\bgh[pousr]_[A-Za-z0-9]{16,}",
            r"\bgithub_pat_[A-Za-z0-9_]{16,}",
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            r"(?i:\b(?:bearer|token)\s+[A-Za-z0-9._~+/=-]{12,})",
            r"sha(?:1|256)=[0-9a-fA-F]{40,64}",
        )
    ),
    re.DOTALL,
)
_known_secrets: set[str] = set()
_ordered_secrets: list[str] = []  # longest first, so a whole key goes before its lines


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
    _ordered_secrets[:] = sorted(_known_secrets, key=len, reverse=True)


def redact_text(text: str) -> str:
    """Replace every known secret and token-shaped substring."""
    for secret in _ordered_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SENSITIVE_VALUE.sub(REDACTED, text)


# Cached: every log line asks again about the same dozen field names (bounded: nested dict keys vary).
@functools.lru_cache(maxsize=1024)
def _sensitive_key(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


def _redact(value: Any, key: str = "") -> Any:
    if key and _sensitive_key(key) and value not in (None, "", 0):
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


def configure_logging(level: str = "INFO", stream: IO[str] | None = None, secrets: Iterable[str | None] = ()) -> None:
    """JSON lines on stderr (or `stream`) for our events and for every stdlib logger (gunicorn, huey)."""
    register_secret(*secrets)
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("gunicorn.error", "gunicorn.access", "huey", "huey.consumer"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    _configure_structlog(out, level)


def _configure_structlog(out: IO[str], level: str) -> None:
    # Our own events skip the stdlib machinery (a per-delivery line must stay cheap on the webhook path).
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=cast(TextIO, out)),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
    global _logger
    _logger = structlog.get_logger()


def _add_logger_name(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.setdefault("logger", "ecr_cache_bot")
    return event_dict


_logger: Any = None


# Header values logged before (or whatever) the signature says: GitHub's delivery ids are GUIDs and its event
# names are lower-case words (https://docs.github.com/en/webhooks/webhook-events-and-payloads); anything else
# is logged as its length only, so a client cannot write what it likes, or megabytes, into the log.
_HEADER_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def header_value(value: str | None) -> str | None:
    """`value` if it has the shape of a delivery id or event name (at most 100 characters), else a placeholder."""
    if not value:
        return None
    if _HEADER_VALUE.fullmatch(value):
        return value
    return f"<invalid: {len(value)} characters>"


def log_event(event: str, /, *, level: str = "info", **fields: Any) -> None:
    """Write one structured log line (`event` names what happened; fields are JSON values)."""
    getattr(_logger or structlog.get_logger("ecr_cache_bot"), level)(event, **fields)


# Until a process configures logging, events still go out as redacted JSON on stderr: structlog's own
# default would print them to stdout, into the output of `ecr-cache-bot plan --json`.
_configure_structlog(sys.stderr, "INFO")
