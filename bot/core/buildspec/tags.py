"""Choose one cache tag per image and per batch task, so no two builds write the same cache ref."""

from __future__ import annotations

import posixpath
import re

from yaml.nodes import Node

from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import Analysis, Build
from bot.core.model import Options
from bot.core.shell.docker_build import MARKER, DockerBuild

BATCH_ID = "$CODEBUILD_BATCH_BUILD_IDENTIFIER"
_TAG_MAX = 128


def existing_tag(build: DockerBuild) -> str | None:
    """The tag of a build the bot already rewrote."""
    for o in build.options:
        if o.name == "--cache-from" and o.value and o.value.startswith(MARKER):
            return o.value[len(MARKER) :]
    return None


def is_batch(root: Node) -> bool:
    """True when the buildspec declares a batch (build-list, build-matrix or build-graph)."""
    return by.get(root, "batch") is not None


def slug(text: str) -> str:
    """Lower-case tag-safe slug."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def image_slug(b: Build, path: str, k: int, several: bool = False) -> str:
    """Name one image by its Dockerfile, else its context, else its place in the buildspec."""
    if b.dockerfile and not b.unresolved:
        df = b.dockerfile
        base = posixpath.basename(df)
        head = posixpath.dirname(df)
        if base.lower() in ("dockerfile", "containerfile"):
            s = slug(head) or "root"
        else:
            name = re.sub(r"(?i)(^dockerfile[._-]?|[._-]?dockerfile$)", "", base) or base
            s = slug(posixpath.join(head, name))
        return s or "root"
    if b.context and not b.unresolved:
        return slug(b.context) or "root"
    return spec_slug(path) + (f"-{k + 1}" if several else "")


def spec_slug(path: str) -> str:
    """Slug of a buildspec path without the word `buildspec` (`ci/dev-buildspec.yml` -> `ci-dev`)."""
    stem = posixpath.splitext(path)[0]
    return slug(re.sub(r"(?i)buildspec", "", stem)) or "buildspec"


def assign_tags(
    specs: list[tuple[str, Node, Analysis]], options: Options, batch_paths: frozenset[str] = frozenset()
) -> dict[tuple[str, int], str]:
    """Tags for every build not yet rewritten: `options.cache_tag` when the repo has a single build,
    else `<cache_tag>-<image slug>`, made unique across buildspecs; batch buildspecs add the task id."""
    taken: set[str] = set()
    total = 0
    pending: list[tuple[str, int, Build, bool, bool]] = []
    for path, root, an in sorted(specs, key=lambda t: t[0]):
        batch = is_batch(root) or path in batch_paths
        for k, b in enumerate(an.builds):
            total += 1
            tag = existing_tag(b.build)
            if tag is not None:
                taken.add(tag)
            else:
                pending.append((path, k, b, batch, len(an.builds) > 1))
    out: dict[tuple[str, int], str] = {}
    base = options.cache_tag
    for path, k, b, batch, several in pending:
        tag = base if total == 1 and not batch else f"{base}-{image_slug(b, path, k, several)}"
        suffix = f"-{BATCH_ID}" if batch else ""
        if tag + suffix in taken:
            tag = f"{tag}-{spec_slug(path)}"
        n = 2
        candidate = tag
        while candidate + suffix in taken:
            candidate = f"{tag}-{n}"
            n += 1
        final = candidate[: _TAG_MAX - len(suffix)] + suffix
        taken.add(final)
        out[(path, k)] = final
    return out
