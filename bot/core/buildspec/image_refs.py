"""The image references a buildspec pushes and pulls, and the registry each one lives in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import yaml
from yaml.nodes import MappingNode, ScalarNode

from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import phase_commands
from bot.core.shell.docker_build import is_pull, parse_build
from bot.core.shell.words import SimpleCommand, simple_commands

Kind = Literal["ecr", "ecr-public", "other", "unknown"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html: ACCOUNT.dkr.ecr.REGION.amazonaws.com
_ECR_HOST = re.compile(r"(?P<account>[^./]+)\.dkr\.ecr\.(?P<region>[^./]+)\.amazonaws\.com(?:\.cn)?")
# https://docs.aws.amazon.com/AmazonECR/latest/public/public-repositories.html: public.ecr.aws/ALIAS/NAME
_PUBLIC_HOST = "public.ecr.aws"
_ECR_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_REGISTRY_OUTPUT = re.compile(r"(?:^|,)(?:type=registry|push=true)(?:,|$)")


@dataclass(frozen=True)
class ImageRef:
    """One image reference a command pushes or pulls, as written and as far as the buildspec resolves it."""

    written: str
    where: str
    kind: Kind
    # ECR: the registry's account and region (a literal, or the `$VAR` left unresolved); the repository name
    # (None when a variable the buildspec does not set stands in it). ECR Public: name without the alias.
    account: str | None = None
    region: str | None = None
    repository: str | None = None
    alias: str | None = None


def classify(ref: str, written: str = "", where: str = "") -> ImageRef:
    """Which registry ``ref`` (variables already expanded where known) names, and its repository."""
    written = written or ref
    name = ref.split("@", 1)[0]
    head, slash, rest = name.partition("/")
    if head.startswith("$") and not _ECR_HOST.fullmatch(head):
        # `$DOCKERHUB_USER/app`: the same reading as the Docker Hub push finding.
        hub = slash and re.fullmatch(r"\$\{?\w*(?i:docker_?hub|docker_?user)\w*\}?", head)
        return ImageRef(written, where, "other" if hub else "unknown")
    if not slash or not ("." in head or ":" in head or head == "localhost"):
        return ImageRef(written, where, "other")  # Docker Hub: `name`, `user/name`
    repo = rest.rsplit(":", 1)[0] if ":" in rest.rsplit("/", 1)[-1] else rest
    known = repo if _ECR_NAME.fullmatch(repo) and 2 <= len(repo) <= 256 else None
    host = _ECR_HOST.fullmatch(head)
    if host:
        return ImageRef(written, where, "ecr", host["account"], host["region"], known)
    if head == _PUBLIC_HOST:
        alias, _, public = repo.partition("/")
        ok = public and "$" not in alias and _ECR_NAME.fullmatch(public) is not None
        return ImageRef(written, where, "ecr-public", repository=public if ok else None, alias=alias)
    return ImageRef(written, where, "unknown" if "$" in head else "other")


def _raw_value(raw: str) -> str:
    value = raw.partition("=")[2]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value


class _Values:
    """Variables set to one value in the buildspec (env.variables, then command assignments), expanded lazily."""

    def __init__(self, env: dict[str, str]) -> None:
        self.raw: dict[str, str | None] = dict(env)

    def assign(self, name: str, value: str) -> None:
        self.raw[name] = value if self.raw.get(name, value) == value else None

    def expand(self, text: str, depth: int = 4) -> str:
        def sub(m: re.Match[str]) -> str:
            value = self.raw.get(m[1] or m[2])
            if value is None or "$(" in value or "`" in value or depth == 0:
                return m[0]
            return self.expand(value, depth - 1)

        return _VAR.sub(sub, text)


def _env(root: MappingNode) -> dict[str, str]:
    env = by.get(root, "env")
    variables = by.get(env[1] if env else None, "variables")
    node = variables[1] if variables else None
    if not isinstance(node, MappingNode):
        return {}
    return {k.value: v.value for k, v in node.value if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)}


def _pushed_words(sc: SimpleCommand) -> tuple[list[str], bool]:
    """(references this command pushes, whether it pushes something the bot cannot name)."""
    words = [w.value for w in sc.words]
    head = words[:1]
    if head in (["docker-compose"], ["podman-compose"]) and "push" in words[1:3]:
        return [], True
    if head != ["docker"]:
        return [], False
    verb = words[1:3]
    if verb[:1] == ["push"] or verb == ["image", "push"] or verb == ["manifest", "push"]:
        args = [w for w in words[(2 if verb[:1] == ["push"] else 3) :] if not w.startswith("-")]
        return args[:1], False
    if verb == ["compose", "push"] or (verb == ["buildx", "bake"] and ("--push" in words or "push" in words)):
        return [], True
    build = parse_build(sc)
    if build is not None and (
        build.has("--push") or any(_REGISTRY_OUTPUT.search(v) for v in build.values("--output", "-o"))
    ):
        names = [
            n
            for v in build.values("--output", "-o")
            for part in v.split(",")
            if part.startswith("name=")
            for n in part[5:].split(",")
        ]
        return [*build.tags, *names], not (build.tags or names)
    return [], False


def _pulled_words(sc: SimpleCommand) -> list[str]:
    words = [w.value for w in sc.words]
    if is_pull(words):
        return [w for w in words[2 if words[1] == "pull" else 3 :] if not w.startswith("-")][:1]
    return []


@dataclass(frozen=True)
class BuildspecImages:
    """What one buildspec pushes and pulls."""

    pushes: tuple[ImageRef, ...] = ()
    pulls: tuple[ImageRef, ...] = ()


def buildspec_images(path: str, text: str) -> BuildspecImages:
    """Every image reference the commands of ``path`` push (`docker push`, a build with `--push`, ...) or pull.

    A push the bot cannot name (`docker compose push`, a bake) is an `unknown` reference; comments are never
    commands. An unparsable buildspec pushes and pulls nothing the bot can see.
    """
    try:
        root = by.compose(text.lstrip("\ufeff"))
    except yaml.YAMLError:
        return BuildspecImages()
    if not isinstance(root, MappingNode):
        return BuildspecImages()
    values = _Values(_env(root))
    pushes: list[ImageRef] = []
    pulls: list[ImageRef] = []
    for cmd in phase_commands(root)[0]:
        node = cmd.node
        if not isinstance(node, ScalarNode):
            continue
        where = f"{path}:{node.start_mark.line + 1}"
        for sc in simple_commands(node.value):
            words = [w.value for w in sc.words]
            if not words or words[0] == "export":
                for a in sc.assignments if not words else sc.words[1:]:
                    if "=" in a.raw:
                        values.assign(a.raw.split("=", 1)[0], _raw_value(a.raw))
                continue
            refs, unnamed = _pushed_words(sc)
            pushes.extend(classify(values.expand(r), r, where) for r in refs)
            if unnamed:
                pushes.append(ImageRef(" ".join(words)[:80], where, "unknown"))
            pulls.extend(classify(values.expand(r), r, where) for r in _pulled_words(sc))
    return BuildspecImages(tuple(pushes), tuple(pulls))


# The image of each `FROM` line and the default of each `ARG NAME=value` of a Dockerfile's text.
FROM_IMAGE = re.compile(r"(?im)^[ \t]*FROM[ \t]+(?:--\S+[ \t]+)*([^\s\\\"']+)")
ARG_DEFAULT = re.compile(r"(?im)^[ \t]*ARG[ \t]+([A-Za-z_][A-Za-z0-9_]*)=[\"']?([^\s\"']+)")


def dockerfile_bases(text: str, build_args: dict[str, str] | None = None) -> tuple[str, ...]:
    """The `FROM` images of a Dockerfile that live in a private ECR registry (ARG defaults and build args
    expanded; a stage name is never an image)."""
    args = dict(ARG_DEFAULT.findall(text))
    args.update(build_args or {})
    stages = {m.lower() for m in re.findall(r"(?im)^[ \t]*FROM[ \t]+.*?[ \t]+AS[ \t]+(\S+)", text)}
    out: list[str] = []
    for m in FROM_IMAGE.finditer(text):
        ref = _VAR.sub(lambda v: args.get(v[1] or v[2], v[0]), m[1])
        if ref.lower() not in stages and classify(ref).kind == "ecr":
            out.append(ref)
    return tuple(dict.fromkeys(out))
