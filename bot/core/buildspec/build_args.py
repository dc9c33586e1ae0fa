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
# Credentials CodeBuild hands each build: the container-credentials path and the role's temporary keys
# (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html). They count only when the
# buildspec does not set them itself (then their value is followed like any other).
_PER_BUILD_CREDENTIALS = re.compile(
    r"\$\{?(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI|AWS_CONTAINER_CREDENTIALS_FULL_URI|AWS_CONTAINER_AUTHORIZATION_TOKEN"
    r"|AWS_SESSION_TOKEN|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID)(?![A-Za-z0-9_])"
)
# CODEBUILD_BUILD_ARN is left out: buildspecs read it for the account id (`cut -d: -f5`), which never changes.
# Commands whose output changes with every commit or every run.
_PER_BUILD_COMMANDS = re.compile(r"(\$\(|`)\s*(date|uuidgen|git\s+(rev-parse|describe|log|show))\b")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_MAX_DEPTH = 8


def _reachable(text: str, variables: Mapping[str, str]) -> list[str]:
    """``text`` and the values of every variable it reads, directly or through others; each variable once.

    Past _MAX_DEPTH levels a `$(...)` stands for the rest, so the value counts as unknown.
    """
    seen: set[str] = set()
    texts = [text]
    pending = [(text, 0)]
    while pending:
        current, depth = pending.pop()
        if depth >= _MAX_DEPTH:
            texts.append("$(...)")
            continue
        for name in _VAR.findall(current):
            if name in variables and name not in seen:  # each variable once: no blow-up on `$A$A$A...`
                seen.add(name)
                texts.append(variables[name])
                pending.append((variables[name], depth + 1))
    return texts


def _unset_or_computed(texts: list[str], variables: Mapping[str, str]) -> bool:
    """True when some text reads a variable the buildspec does not set, or runs a command for its value."""
    return any("`" in t or "$(" in t or any(n not in variables for n in _VAR.findall(t)) for t in texts)


def _per_build(texts: list[str], variables: Mapping[str, str]) -> bool:
    return any(
        _PER_BUILD_VARS.search(t)
        or _PER_BUILD_COMMANDS.search(t)
        or any(m not in variables for m in _PER_BUILD_CREDENTIALS.findall(t))
        for t in texts
    )


def changes_every_build(text: str, variables: Mapping[str, str]) -> bool:
    """True when ``text`` (a shell word) reads a per-build value, directly or through assigned variables."""
    return _per_build(_reachable(text, variables), variables)


def passed_args(build_args: list[str]) -> list[tuple[str, str]]:
    """(name, value text) of each `--build-arg NAME[=VALUE]`; a bare NAME passes the variable of that name."""
    return _passed(build_args)


def _passed(build_args: list[str]) -> list[tuple[str, str]]:
    """(name, value text) of each `--build-arg NAME[=VALUE]`; a bare NAME passes the variable of that name."""
    out = []
    for arg in build_args:
        name, eq, value = arg.partition("=")
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            out.append((name, value if eq else f"${name}"))
    return out


def volatile_build_args(build_args: list[str], variables: Mapping[str, str]) -> tuple[str, ...]:
    """Names of the `--build-arg NAME[=VALUE]` values that change on every build.

    ``variables`` maps a shell variable to the raw text last assigned to it (buildspec `env` or a command).
    """
    return tuple(dict.fromkeys(name for name, text in _passed(build_args) if changes_every_build(text, variables)))


OPAQUE = "*"  # a build whose arguments the bot cannot read (`docker build $ARGS .`): any ARG may be passed


def unknown_build_args(build_args: list[str], variables: Mapping[str, str]) -> tuple[str, ...]:
    """Names passed a value the bot cannot pin down: not per-build for sure, not a constant either."""
    out = []
    for name, text in _passed(build_args):
        texts = _reachable(text, variables)
        per_build = _per_build(texts, variables)
        if not per_build and _unset_or_computed(texts, variables):
            out.append(name)
    return tuple(dict.fromkeys(out))
