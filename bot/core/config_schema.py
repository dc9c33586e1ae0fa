"""The JSON Schema of `.github/ecr-cache.yml`: the one list of keys and types (published as
`schema/ecr-cache.schema.json`, which a test keeps equal to this dict)."""

from __future__ import annotations

from typing import Any

# GitHub user names: letters, digits and single hyphens, at most 39 characters.
LOGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$"
# A team's slug, optionally after its organization (`my-org/platform`), as Dependabot writes team reviewers.
TEAM_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*$"

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_PATHS: dict[str, Any] = {"oneOf": [_TEXT, {"type": "array", "minItems": 1, "items": _TEXT}]}
_BOOL: dict[str, Any] = {"type": "boolean"}


def _list(item: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": item, "uniqueItems": True, "description": description, **extra}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ecr-cache-bot repository config (.github/ecr-cache.yml)",
    "description": "Every key is optional. In an organization's `.github` repository the same file gives every "
    "repository its defaults; a repository's own file overrides them key by key.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "extends": {**_BOOL, "description": "false: ignore the organization defaults in <owner>/.github."},
        "enabled": {**_BOOL, "description": "false: the bot leaves this repository alone."},
        "region": {**_TEXT, "description": "AWS region of the cache repository, such as us-east-1."},
        "account_id": {"type": ["string", "integer"], "description": "12-digit AWS account id (IAM policy only)."},
        "cache_repository": {**_TEXT, "description": "ECR repository that holds the cache."},
        "image_repository": {**_TEXT, "description": "ECR repository of the built image."},
        "cache_tag": {**_TEXT, "description": "The live cache tag; per-image tags are cache-<name>."},
        "mode": {"enum": ["max", "min"], "description": "max caches every stage, min only the final one."},
        "lifecycle_days": {
            "type": "integer",
            "minimum": 1,
            "maximum": 3650,
            "description": "Days other cache-* tags are kept after their last push.",
        },
        "buildspecs": {**_PATHS, "description": "Extra buildspec paths or globs."},
        "dockerfiles": {**_PATHS, "description": "Extra Dockerfile paths or globs."},
        "ignore_paths": {
            "oneOf": [_TEXT, {"type": "array", "items": _TEXT}],
            "description": "Globs discovery leaves out (replaces the default list; [] ignores nothing).",
        },
        "reorder": {**_BOOL, "description": "Reorder Dockerfiles when provably safe."},
        "reorder_unlocked": {**_BOOL, "description": "Reorder Node/PHP installs that have no lock file."},
        "dockerignore": {**_BOOL, "description": "Create or extend .dockerignore."},
        "builder_image": {**_TEXT, "description": "BuildKit image of the docker-container builder."},
        "builder_name": {**_TEXT, "description": "Name of the buildx builder."},
        "cache_errors": {
            "enum": ["ignore", "fatal"],
            "description": "fatal: a failed cache export or builder fails the build.",
        },
        "install": {
            "enum": ["open-pull-requests", "preview"],
            "description": "Organization config only: open pull requests on a large first install.",
        },
        "labels": _list(
            {"type": "string", "minLength": 1, "maxLength": 50},
            "Labels added to the pull request (labels people add are kept).",
        ),
        "reviewers": _list(
            {"type": "string", "pattern": LOGIN_PATTERN},
            "GitHub users asked to review the pull request when it is opened.",
        ),
        "team_reviewers": _list(
            {"type": "string", "pattern": TEAM_PATTERN},
            "Team slugs (or org/slug) asked to review the pull request when it is opened.",
        ),
        "assignees": _list(
            {"type": "string", "pattern": LOGIN_PATTERN}, "GitHub users assigned to the pull request.", maxItems=10
        ),
        "draft": {**_BOOL, "description": "Open the pull request as a draft."},
    },
}
KEYS: tuple[str, ...] = tuple(SCHEMA["properties"])
