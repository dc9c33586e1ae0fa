"""Which `--build-arg`s a buildspec passes a value that changes on every build (commit, build number, time)."""

from __future__ import annotations

import re
from collections.abc import Mapping

# CodeBuild variables whose value differs from one build to the next
# (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html).
_PER_BUILD_VARS = re.compile(
    r"\$\{?CODEBUILD_(RESOLVED_SOURCE_VERSION|SOURCE_VERSION|BUILD_NUMBER|BUILD_ID|START_TIME"
    r"|LOG_PATH|PUBLIC_BUILD_URL|WEBHOOK_MERGE_COMMIT|WEBHOOK_PREV_COMMIT)(?![A-Za-z0-9_])"
    r"|\$\{?RANDOM(?![A-Za-z0-9_])"
)
# CODEBUILD_BUILD_ARN is left out: buildspecs read it for the account id (`cut -d: -f5`), which never changes.
# Commands whose output changes with every commit or every run.
_PER_BUILD_COMMANDS = re.compile(r"(\$\(|`)\s*(date|uuidgen|git\s+(rev-parse|describe|log|show))\b")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_MAX_DEPTH = 8


def changes_every_build(text: str, variables: Mapping[str, str]) -> bool:
    """True when ``text`` (a shell word) reads a per-build value, directly or through assigned variables."""
    seen: set[str] = set()
    pending = [(text, 0)]
    while pending:
        current, depth = pending.pop()
        if _PER_BUILD_VARS.search(current) or _PER_BUILD_COMMANDS.search(current):
            return True
        if depth >= _MAX_DEPTH:
            continue
        for name in dict.fromkeys(_VAR.findall(current)):
            if name in variables and name not in seen:  # each variable once: no blow-up on `$A$A$A...`
                seen.add(name)
                pending.append((variables[name], depth + 1))
    return False


def volatile_build_args(build_args: list[str], variables: Mapping[str, str]) -> tuple[str, ...]:
    """Names of the `--build-arg NAME[=VALUE]` values that change on every build.

    ``variables`` maps a shell variable to the raw text last assigned to it (buildspec `env` or a command).
    A bare `--build-arg NAME` takes the value of the variable NAME from the environment.
    """
    out: list[str] = []
    for arg in build_args:
        name, eq, value = arg.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        if changes_every_build(value if eq else f"${name}", variables):
            out.append(name)
    return tuple(dict.fromkeys(out))


OPAQUE = "*"  # a build whose arguments the bot cannot read (`docker build $ARGS .`): any ARG may be passed


def unknown_build_args(build_args: list[str], variables: Mapping[str, str]) -> tuple[str, ...]:
    """Names passed a value the bot cannot pin down: not per-build for sure, not a constant either."""
    out: list[str] = []
    for arg in build_args:
        name, eq, value = arg.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        text = value if eq else f"${name}"
        if changes_every_build(text, variables) or _constant(text, variables):
            continue
        out.append(name)
    return tuple(dict.fromkeys(out))


def _constant(text: str, variables: Mapping[str, str], depth: int = 0) -> bool:
    """True when ``text`` is a literal, or reads only variables the buildspec sets to literals."""
    if "`" in text or "$(" in text:
        return False
    names = _VAR.findall(text)
    if depth >= _MAX_DEPTH and names:
        return False
    return all(name in variables and _constant(variables[name], variables, depth + 1) for name in names)
