"""The repo config `.github/ecr-cache.yml`: parse and validate it into `Options` (defaults need no file)."""

from __future__ import annotations

import dataclasses
import difflib
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from bot.core import buildspec_yaml as by
from bot.core.model import Finding, Options
from bot.core.names import account_id_problem, ecr_repository_problem, image_tag_problem, region_problem

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 80, 80, 4, 4, 2


def _shown(value: object) -> str:
    """A short repr for error messages: a hostile value (an alias bomb) must not be printed in full."""
    return _REPR.repr(value)


CONFIG_PATH = ".github/ecr-cache.yml"
MAX_CONFIG_BYTES = 64 * 1024


class ConfigError(ValueError):
    """The repo config is invalid; the message names the key (``problems``: one message per bad key)."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{key}` must be a non-empty string, got {_shown(value)}")
    return value.strip()


def _checked(problem: Callable[[str], str | None]) -> Callable[[str, Any], str]:
    def convert(key: str, value: Any) -> str:
        text = _string(key, value)
        reason = problem(text)
        if reason:
            raise ConfigError(f"`{key}`: {reason}")
        return text

    return convert


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"`{key}` must be true or false, got {_shown(value)}")
    return value


def _mode(key: str, value: Any) -> str:
    if value not in ("max", "min"):
        raise ConfigError(f"`{key}` must be `max` (cache every stage) or `min` (final stage only), got {_shown(value)}")
    return str(value)


def _days(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        raise ConfigError(f"`{key}` must be a whole number of days from 1 to 3650, got {_shown(value)}")
    return value


def _paths(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ConfigError(f"`{key}` must be a path or glob, or a list of them, got {_shown(value)}")
    for item in items:
        if item.startswith("/") or ".." in item.split("/"):
            raise ConfigError(f"`{key}`: {_shown(item)} must be relative to the repository root, without '..'")
    return tuple(i.strip() for i in items)


def _ignore_globs(key: str, value: Any) -> tuple[str, ...]:
    # Unlike `buildspecs:`, an empty list is meaningful here: ignore nothing (the defaults are replaced).
    if value == []:
        return ()
    return _paths(key, value)


def _image(key: str, value: Any) -> str:
    text = _string(key, value)
    if any(c.isspace() for c in text) or text.startswith("-"):
        raise ConfigError(f"`{key}` must be an image reference such as 'public.ecr.aws/x/buildkit:v0.16', "
                          f"got {_shown(text)}")
    return text


def _cache_errors(key: str, value: Any) -> str:
    if value not in ("ignore", "fatal"):
        raise ConfigError(f"`{key}` must be `ignore` (a failed cache export or builder never fails the build) or "
                          f"`fatal`, got {_shown(value)}")
    return str(value)


def _install(key: str, value: Any) -> str:
    if value not in ("open-pull-requests", "preview"):
        raise ConfigError(
            f"`{key}` must be `open-pull-requests` or `preview` (organization config only), got {_shown(value)}"
        )
    return str(value)


def _builder_name(key: str, value: Any) -> str:
    text = _string(key, value)
    if not all(c.isalnum() or c in "-_." for c in text):
        raise ConfigError(f"`{key}` may use letters, digits, '-', '_' and '.', got {_shown(text)}")
    return text


_FIELDS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "enabled": ("enabled", _bool),
    "region": ("region", _checked(region_problem)),
    "account_id": ("account_id", lambda k, v: _checked(account_id_problem)(k, str(v) if isinstance(v, int) else v)),
    "cache_repository": ("cache_repository", _checked(ecr_repository_problem)),
    "image_repository": ("image_repository", _checked(ecr_repository_problem)),
    "cache_tag": ("cache_tag", _checked(image_tag_problem)),
    "mode": ("mode", _mode),
    "lifecycle_days": ("lifecycle_days", _days),
    "buildspecs": ("buildspec_paths", _paths),
    "dockerfiles": ("dockerfile_paths", _paths),
    "ignore_paths": ("ignore_paths", _ignore_globs),
    "reorder": ("reorder", _bool),
    "reorder_unlocked": ("reorder_unlocked", _bool),
    "dockerignore": ("dockerignore", _bool),
    "builder_image": ("builder_image", _image),
    "builder_name": ("builder_name", _builder_name),
    "cache_errors": ("cache_errors", _cache_errors),
    # Read from the organization's `.github` repository: opts a large first install in to pull requests.
    "install": ("install", _install),
}
KNOWN_KEYS = tuple(_FIELDS)


def options_from_mapping(raw: Mapping[str, Any], base: Options | None = None) -> Options:
    """Validate a mapping of config keys into Options; raise ConfigError listing every bad key."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key not in _FIELDS:
            hint = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            suggestion = f" (did you mean `{hint[0]}`?)" if hint else ""
            problems.append(f"unknown key `{key}`{suggestion}; known keys: {', '.join(KNOWN_KEYS)}")
            continue
        field_name, convert = _FIELDS[key]
        try:
            changes[field_name] = convert(key, value)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems), tuple(problems))
    return dataclasses.replace(base or Options(), **changes)


def parse_repo_config(text: str | None, path: str = CONFIG_PATH) -> tuple[Options, list[Finding]]:
    """Options from the config text (None or empty: defaults); an invalid file gives an error finding."""
    if text is None or not text.strip():
        return Options(), []
    if len(text.encode("utf-8", "surrogateescape")) > MAX_CONFIG_BYTES:
        return Options(), [Finding(path, "error", "config-too-large",
                                   f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; it is not read.")]
    try:
        raw = by.safe_load(text.lstrip("\ufeff"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc) if isinstance(exc, (by.TooLarge, by.TooDeep, by.NotText))
                                                     else "it is not valid YAML")
        return Options(), [Finding(path, "error", "config-invalid-yaml", f"{path}{where}: {problem}")]
    if raw is None:
        return Options(), []
    if not isinstance(raw, dict):
        return Options(), [Finding(path, "error", "config-not-mapping",
                                   f"{path} must be a mapping of keys such as `region:`, got {type(raw).__name__}")]
    try:
        return options_from_mapping(raw), []
    except ConfigError as exc:
        return Options(), [Finding(path, "error", "config-invalid", f"{path}: {problem}") for problem in exc.problems]
