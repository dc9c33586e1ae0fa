"""The repo config `.github/ecr-cache.yml`: parse and validate it into `Options` (defaults need no file)."""

from __future__ import annotations

import dataclasses
import difflib
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from bot.core import config_schema
from bot.core.buildspec import yaml_text as by
from bot.core.findings import Code
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
        raise ConfigError(
            f"`{key}` must be an image reference such as 'public.ecr.aws/x/buildkit:v0.16', got {_shown(text)}"
        )
    return text


def _cache_errors(key: str, value: Any) -> str:
    if value not in ("ignore", "fatal"):
        raise ConfigError(
            f"`{key}` must be `ignore` (a failed cache export or builder never fails the build) or "
            f"`fatal`, got {_shown(value)}"
        )
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


def _names(pattern: str, what: str, limit: int | None = None) -> Callable[[str, Any], tuple[str, ...]]:
    """A converter for a list of GitHub names (logins, team slugs) that must match the schema's ``pattern``."""
    regex = re.compile(pattern)

    def convert(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            raise ConfigError(f"`{key}` must be a list of {what}, got {_shown(value)}")
        bad = [i for i in value if not regex.match(i)]
        if bad:
            raise ConfigError(f"`{key}`: {_shown(bad[0])} is not a {what[:-1]}")
        if limit is not None and len(value) > limit:
            raise ConfigError(f"`{key}` may name at most {limit} {what}, got {len(value)}")
        return tuple(dict.fromkeys(value))

    return convert


def _labels(key: str, value: Any) -> tuple[str, ...]:
    item = config_schema.SCHEMA["properties"][key]["items"]
    if not isinstance(value, list) or not all(isinstance(i, str) and i.strip() for i in value):
        raise ConfigError(f"`{key}` must be a list of label names, got {_shown(value)}")
    long = [i for i in value if len(i) > item["maxLength"]]
    if long:
        raise ConfigError(f"`{key}`: {_shown(long[0])} is longer than {item['maxLength']} characters")
    return tuple(dict.fromkeys(i.strip() for i in value))


def _team(key: str, value: Any) -> tuple[str, ...]:
    # The review-request API takes the slug alone: `my-org/platform` becomes `platform`.
    return tuple(dict.fromkeys(i.rpartition("/")[2] for i in _TEAMS(key, value)))


_TEAMS = _names(config_schema.TEAM_PATTERN, "team slugs")
_PROPERTIES: Mapping[str, Any] = config_schema.SCHEMA["properties"]
_FIELDS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "extends": ("", _bool),  # read by `merge_configs`; not an option
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
    "labels": ("labels", _labels),
    "reviewers": ("reviewers", _names(config_schema.LOGIN_PATTERN, "GitHub user names")),
    "team_reviewers": ("team_reviewers", _team),
    "assignees": (
        "assignees",
        _names(config_schema.LOGIN_PATTERN, "GitHub user names", _PROPERTIES["assignees"]["maxItems"]),
    ),
    "draft": ("draft", _bool),
}
# The schema is the one list of keys: a key it lacks has no converter, and the other way round (a test checks).
KNOWN_KEYS = config_schema.KEYS
_VALIDATORS = {key: Draft202012Validator(_PROPERTIES[key]) for key in KNOWN_KEYS}


def field_of(key: str) -> str:
    """The `Options` field a config key sets ("" for `extends` and unknown keys)."""
    return _FIELDS[key][0] if key in _FIELDS else ""


def _problem(key: str, value: Any) -> tuple[str, Any]:
    """The option field and value of one key, or raise ConfigError: the schema decides what is valid, the
    converter words the message (and checks what a schema cannot, such as an AWS region code)."""
    field_name, convert = _FIELDS[key]
    error = next(iter(_VALIDATORS[key].iter_errors(value)), None)
    converted = convert(key, value)  # raises with the friendly message
    if error is not None:  # the schema is stricter than the converter: its own words, with the key
        raise ConfigError(f"`{key}`: {error.message[:200]}")
    return field_name, converted


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
        try:
            field_name, converted = _problem(key, value)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if field_name:
            changes[field_name] = converted
    if problems:
        raise ConfigError("; ".join(problems), tuple(problems))
    return dataclasses.replace(base or Options(), **changes)


def key_lines(text: str) -> dict[str, int]:
    """The 1-based line of each top-level key of a YAML mapping (empty when the text is not one)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _load(text: str | None, path: str) -> tuple[dict[str, Any], dict[str, int], list[Finding]]:
    """The raw mapping of a config file, its keys' lines, and the findings that stop it from being read."""
    if text is None or not text.strip():
        return {}, {}, []
    if len(text.encode("utf-8", "surrogateescape")) > MAX_CONFIG_BYTES:
        return (
            {},
            {},
            [
                Finding(
                    path,
                    "error",
                    Code.CONFIG_TOO_LARGE,
                    f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; it is not read.",
                )
            ],
        )
    text = text.lstrip("\ufeff")
    try:
        raw = by.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (
            str(exc) if isinstance(exc, (by.TooLarge, by.TooDeep, by.NotText)) else "it is not valid YAML"
        )
        return (
            {},
            {},
            [
                Finding(
                    path,
                    "error",
                    Code.CONFIG_INVALID_YAML,
                    f"{path}{where}: {problem}",
                    mark.line + 1 if mark is not None else None,
                )
            ],
        )
    if raw is None:
        return {}, {}, []
    if not isinstance(raw, dict):
        return (
            {},
            {},
            [
                Finding(
                    path,
                    "error",
                    Code.CONFIG_NOT_MAPPING,
                    f"{path} must be a mapping of keys such as `region:`, got {type(raw).__name__}",
                )
            ],
        )
    return raw, key_lines(text), []


def _errors(raw: Mapping[str, Any], lines: Mapping[str, int], path: str) -> list[Finding]:
    """One finding per bad key, on the key's line."""
    findings = []
    for key, value in raw.items():
        try:
            options_from_mapping({key: value})
        except ConfigError as exc:
            findings += [
                Finding(path, "error", Code.CONFIG_INVALID, f"{path}: {problem}", lines.get(str(key)))
                for problem in exc.problems
            ]
    return findings


def parse_repo_config(text: str | None, path: str = CONFIG_PATH) -> tuple[Options, list[Finding]]:
    """Options from the config text (None or empty: defaults); an invalid file gives an error finding."""
    raw, lines, findings = _load(text, path)
    findings = findings or _errors(raw, lines, path)
    if findings or not raw:
        return Options(), findings
    return options_from_mapping(raw), []


def merge_configs(
    org_text: str | None, repo_text: str | None, org_path: str, repo_path: str = CONFIG_PATH
) -> tuple[Options, list[Finding]]:
    """The repository's config over the organization's defaults, key by key (`extends: false` in the repository
    ignores the defaults); ``Options.sources`` names the file each key set came from. Errors in either file are
    findings naming that file."""
    repo_raw, repo_lines, findings = _load(repo_text, repo_path)
    findings = findings or _errors(repo_raw, repo_lines, repo_path)
    extends = repo_raw.get("extends", True) is not False
    org_raw: dict[str, Any] = {}
    if extends and org_text is not None:
        org_raw, org_lines, org_findings = _load(org_text, org_path)
        # `install` is the organization's answer for its large installs (bot/app/fanout.py checks it), no
        # repository's setting: a bad one must not stop every repository.
        org_raw = {k: v for k, v in org_raw.items() if k not in ("extends", "install")}
        findings += org_findings or _errors(org_raw, org_lines, org_path)
    if findings:
        return Options(), findings
    merged = dict(org_raw)
    sources = {k: org_path for k in merged}
    for key, value in repo_raw.items():
        if key != "extends":
            merged[key] = value
            sources[key] = repo_path
    options = options_from_mapping(merged)
    return dataclasses.replace(options, sources=tuple(sources.items())), []
