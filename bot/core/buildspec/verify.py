"""Prove a buildspec edit: the new data equals the old data plus only the changes the bot makes."""

from __future__ import annotations

import dataclasses
import re

import yaml

from bot.core.buildspec import codebuild_images
from bot.core.buildspec import yaml_text as by
from bot.core.shell.docker_build import (
    CacheFlags,
    apply_splices,
    build_splices,
    find_legacy_logins,
    is_china,
    output_flag,
    parse_bot_flags,
    parse_build,
)
from bot.core.shell.words import simple_commands

ECR_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
ACCOUNT_LINE = "AWS_ACCOUNT_ID=${AWS_ACCOUNT_ID:-$(echo $CODEBUILD_BUILD_ARN | cut -d':' -f5)}"
# Written into buildspecs: earlier output is recognised by this exact text (the image comes from the table).
GUARD_LINE = (
    f'docker buildx version || {{ echo "docker buildx is missing - use {codebuild_images.RECOMMENDED} '
    'or newer"; exit 1; }'
)
_REGION = r"(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|[a-z]{2}(?:-[a-z]+)+-\d)"
_SUFFIX = r"amazonaws\.com(?:\.cn)?"
_BOT_LINES = (
    re.compile(re.escape(ACCOUNT_LINE)),
    re.compile(re.escape(GUARD_LINE)),
    re.compile(rf"CACHE_URI=\$AWS_ACCOUNT_ID\.dkr\.ecr\.{_REGION}\.{_SUFFIX}/\$CACHE_REPO_NAME"),
    re.compile(
        r"docker buildx create --name (?P<n>[A-Za-z0-9_.-]+) --driver docker-container"
        r"(?: --driver-opt image=[^\s;|&]+)? --use --bootstrap \|\| docker buildx use (?P=n)"
    ),
    re.compile(
        r"docker buildx create --name (?P<n>[A-Za-z0-9_.-]+) --driver docker-container"
        r"(?: --driver-opt image=[^\s;|&]+)? --use --bootstrap \|\| docker buildx inspect --bootstrap (?P=n)"
        r" && docker buildx use (?P=n) \|\| \{ echo \"ecr-cache - [^\"$`\\]*\"; docker buildx use default; "
        r"CACHE_URI=\"\"; \}"
    ),
    re.compile(
        rf"aws ecr get-login-password --region {_REGION} \| docker login --username AWS "
        rf"--password-stdin \$AWS_ACCOUNT_ID\.dkr\.ecr\.{_REGION}\.{_SUFFIX}"
    ),
    # The login to the registry of a private base image in another account or region.
    re.compile(
        r"aws ecr get-login-password --region (?P<r>[a-z]{2}(?:-[a-z]+)+-\d) \| docker login --username AWS "
        rf"--password-stdin \d{{12}}\.dkr\.ecr\.(?P=r)\.{_SUFFIX}"
    ),
)
BOT_ENV = {"DOCKER_BUILDKIT", "CACHE_REPO_NAME"}
_PHASE_ORDER = ("install", "pre_build", "build", "post_build")


def builder_line(name: str, image: str | None, best_effort: bool) -> str:
    """The setup line that creates and selects the docker-container builder.

    Best effort: when the builder cannot start (its image is pulled on every build, from Docker Hub unless
    ``image`` says otherwise), the build goes on with the default builder and an empty CACHE_URI, which drops
    the cache flags. `buildx create --bootstrap` keeps a builder it could not boot, so the branch for a builder
    that already exists boots it (`inspect --bootstrap`) before selecting it.
    """
    opt = f" --driver-opt image={image}" if image else ""
    create = f"docker buildx create --name {name} --driver docker-container{opt} --use --bootstrap"
    if not best_effort:
        return f"{create} || docker buildx use {name}"
    why = f"could {image} be pulled?" if image else "Docker Hub outage or rate limit?"
    say = f"ecr-cache - the BuildKit builder could not start ({why}), so this build runs without the layer cache"
    return (
        f"{create} || docker buildx inspect --bootstrap {name} && docker buildx use {name} "
        f'|| {{ echo "{say}"; docker buildx use default; CACHE_URI=""; }}'
    )


def is_bot_line(value: object) -> bool:
    """True when ``value`` is exactly one of the command lines the bot inserts."""
    return isinstance(value, str) and any(p.fullmatch(value) for p in _BOT_LINES)


def tag_key(value: str) -> str:
    """A tag as compared across commands: `${NAME}` spelled `$NAME` (a build's `-t` and its `docker push`)."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", r"$\1", value)


def rewrite_command(
    old: str,
    flags: list[CacheFlags],
    china: bool = False,
    pushed: frozenset[str] = frozenset(),
    switched: set[str] | None = None,
) -> str | None:
    """Apply the bot's command rewrite to ``old`` with the given per-build flags (None on mismatch).

    ``pushed``: tags whose later `docker push` lines were removed; a build whose every tag is one of them may
    get `--push` instead of `--load` (its tags are added to ``switched``).
    """
    splices = [(lg.start, lg.end, lg.replacement(china)) for lg in find_legacy_logins(old)]
    builds = [b for b in (parse_build(c) for c in simple_commands(old)) if b is not None]
    todo = [b for b in builds if not b.rewritten and len(b.real_positionals) == 1]
    if len(todo) != len(flags):
        return None
    for b, f in zip(todo, flags, strict=True):
        # The output flag follows from the original command; the regex cannot tell it from a user's `--push`.
        output = output_flag(b)
        tags = {tag_key(t) for t in b.tags}
        if f.output == "--push" and output == "--load" and tags and tags <= pushed:
            output = "--push"
            if switched is not None:
                switched.update(tags)
        splices.extend(build_splices(b, dataclasses.replace(f, output=output)))
    return apply_splices(old, splices)


def _command_changed_ok(
    old: object, new: object, china: bool, pushed: frozenset[str] = frozenset(), switched: set[str] | None = None
) -> bool:
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    flags = [f for f in parse_bot_flags(new) if f not in parse_bot_flags(old)]
    return rewrite_command(old, flags, china, pushed, switched) == new


def pushed_tag(command: object) -> str | None:
    """The tag when ``command`` is exactly `docker push TAG` (or `docker image push TAG`), else None."""
    if not isinstance(command, str):
        return None
    commands = simple_commands(command)
    if len(commands) != 1 or commands[0].assignments or commands[0].writes:
        return None
    return push_target([w.value for w in commands[0].words])


def push_target(words: list[str]) -> str | None:
    """The tag when the command ``words`` are exactly `docker push TAG` (or `docker image push TAG`), else None."""
    if (
        words[:2] == ["docker", "push"]
        and len(words) == 3
        or words[:3] == ["docker", "image", "push"]
        and len(words) == 4
    ):
        return None if words[-1].startswith("-") else tag_key(words[-1])
    return None


def _bot_pushed_tags(phases: dict[object, object]) -> frozenset[str]:
    """Tags of the builds the bot's flags end with `--push` in the edited buildspec."""
    out: set[str] = set()
    for ph in phases.values():
        commands = ph.get("commands") if isinstance(ph, dict) else None
        for command in commands if isinstance(commands, list) else []:
            if not isinstance(command, str):
                continue
            rewritten = [b for b in (parse_build(c) for c in simple_commands(command)) if b and b.rewritten]
            for b, f in zip(rewritten, parse_bot_flags(command), strict=False):
                if f.output == "--push":
                    out.update(tag_key(t) for t in b.tags)
    return frozenset(out)


def _commands_ok(
    old: object,
    new: object,
    china: bool = False,
    pushed: frozenset[str] = frozenset(),
    switched: set[str] | None = None,
    dropped: set[str] | None = None,
) -> str | None:
    if not isinstance(old, list) or not isinstance(new, list):
        return None if old == new else "a phase's commands changed shape"
    i = 0
    for j, item in enumerate(new):
        while True:
            if i < len(old) and (item == old[i] or _command_changed_ok(old[i], item, china, pushed, switched)):
                i += 1
                break
            if is_bot_line(item):
                break
            tag = pushed_tag(old[i]) if i < len(old) else None
            # Only a push after its build went `--push` may go (``switched`` holds the builds seen so far).
            if tag is None or tag not in pushed or switched is not None and tag not in switched:
                return f"command {j + 1} is neither original, a bot rewrite of it, nor a bot line: {item!r:.120}"
            if dropped is not None:
                dropped.add(tag)
            i += 1
    while i < len(old) and pushed_tag(old[i]) in pushed and (switched is None or pushed_tag(old[i]) in switched):
        if dropped is not None:
            dropped.add(str(pushed_tag(old[i])))
        i += 1
    if i < len(old):
        return f"original command {i + 1} is missing: {old[i]!r:.120}"
    return None


def _env_ok(old: object, new: object) -> str | None:
    if old is None and isinstance(new, dict) and set(new) == {"variables"}:
        old = {}
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else "env changed"
    if set(new) - set(old) - {"variables"} or set(old) - set(new):
        return "env keys changed"
    for k in old:
        if k != "variables" and old[k] != new[k]:
            return f"env.{k} changed"
    ov = old.get("variables") or {}
    nv = new.get("variables") or {}
    if not isinstance(ov, dict) or not isinstance(nv, dict):
        return None if ov == nv else "env.variables changed"
    for k, v in ov.items():
        if nv.get(k, object()) != v:
            return f"env.variables.{k} changed or removed"
    for k in set(nv) - set(ov):
        if k not in BOT_ENV:
            return f"unexpected variable {k} added"
    if "DOCKER_BUILDKIT" in set(nv) - set(ov) and nv["DOCKER_BUILDKIT"] != "1":
        return 'DOCKER_BUILDKIT added with a value other than "1"'
    name = nv.get("CACHE_REPO_NAME")
    if "CACHE_REPO_NAME" in set(nv) - set(ov) and not (isinstance(name, str) and valid_repo_name(name)):
        return f"CACHE_REPO_NAME {name!r} is not a valid ECR repository name"
    return None


def valid_repo_name(name: str) -> bool:
    """ECR repository name rule: 2-256 characters of the documented pattern."""
    return 2 <= len(name) <= 256 and ECR_NAME.fullmatch(name) is not None


def verify_buildspec_edit(original: str, edited: str) -> str | None:
    """None when ``edited`` is ``original`` plus only the bot's intended changes; else the reason."""
    try:
        old = by.safe_load(original)
        new = by.safe_load(edited)
    except yaml.YAMLError as exc:
        return f"does not parse: {str(exc).splitlines()[0]}"
    if old == new:
        return None if original == edited else "text changed without a data change"
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "top level is not a mapping"
    if set(old) - set(new) or set(new) - set(old) - {"env"}:
        return "top-level keys changed"
    for k in old:
        if k not in ("env", "phases") and old[k] != new[k]:
            return f"`{k}` changed"
    reason = _env_ok(old.get("env"), new.get("env"))
    if reason:
        return reason
    op, np_ = old.get("phases"), new.get("phases")
    if not isinstance(op, dict) or not isinstance(np_, dict):
        return None if op == np_ else "phases changed"
    if set(op) != set(np_):
        return "phase names changed"
    # A `docker push` line may go only where a build the bot switched to `--push` pushes that tag itself.
    pushed = _bot_pushed_tags(np_)
    switched: set[str] = set()
    dropped: set[str] = set()
    # In the order CodeBuild runs the phases, so that a removed push is checked against the builds before it.
    for name, ph in sorted(op.items(), key=lambda kv: _PHASE_ORDER.index(kv[0]) if kv[0] in _PHASE_ORDER else 4):
        nph = np_[name]
        if not isinstance(ph, dict) or not isinstance(nph, dict):
            if ph != nph:
                return f"phase {name} changed"
            continue
        if set(ph) != set(nph):
            return f"keys of phase {name} changed"
        for k in ph:
            if k == "commands":
                reason = _commands_ok(ph[k], nph[k], is_china(original), pushed, switched, dropped)
                if reason:
                    return f"phase {name}: {reason}"
            elif ph[k] != nph[k]:
                return f"phase {name}.{k} changed"
    if switched - dropped:
        return f"a build now pushes `{sorted(switched - dropped)[0]}` with `--push`, which no removed line pushed"
    if dropped - switched:
        return f"`docker push {sorted(dropped - switched)[0]}` was removed, but no build pushes that tag itself"
    return None
