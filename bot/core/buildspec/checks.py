"""Findings about a buildspec as a whole: chained local images, Docker Hub pushes, the builder switch, refusals."""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from bot.core.buildspec import codebuild_images
from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import PHASES, BuildspecCommand, command_line
from bot.core.buildspec.edit import Parsed
from bot.core.buildspec.image_refs import ARG_DEFAULT, FROM_IMAGE
from bot.core.findings import Code
from bot.core.model import Finding, RepoSnapshot
from bot.core.shell.docker_build import find_builds
from bot.core.shell.words import simple_commands, substitutions

_ARG_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_LOAD = re.compile(r"\bdocker\s+(?:image\s+)?(?:load|import)\b")


def loaded_images(p: Parsed) -> list[Finding]:
    """`docker load`/`docker import` before a build: a Dockerfile may start FROM an image the builder cannot see."""
    builds = {id(b.command) for b in p.analysis.builds}
    for c in p.analysis.commands:
        if id(c) in builds:
            return []
        if _LOAD.search(c.value or ""):
            return [
                Finding(
                    p.path,
                    "warning",
                    Code.LOCAL_BASE_IMAGE,
                    f"{p.path}:{c.node.start_mark.line + 1}: `docker load`/`docker import` puts an image in "
                    "the local image store only; a Dockerfile that starts FROM it fails on the "
                    "docker-container builder (which cannot see that store): push it to ECR and build "
                    "FROM its registry reference.",
                    line=c.node.start_mark.line + 1,
                )
            ]
    return []


def _expand(ref: str, args: dict[str, str]) -> str:
    return _ARG_REF.sub(lambda v: args.get(v[1], v[0]), ref)


def _image_name(ref: str) -> str:
    ref = ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    return (head + "/" if head else "") + last.split(":", 1)[0]


def local_base(p: Parsed, snapshot: RepoSnapshot) -> str | None:
    """Why the builds cannot move to a docker-container builder (a later build starts FROM an earlier one)."""
    an = p.analysis
    built: dict[str, int] = {}
    first = None
    order = {id(c): n for n, c in enumerate(an.commands)}
    tagged = _local_tags(p)
    for b in an.builds:
        line = b.command.node.start_mark.line + 1
        first = line if first is None else first
        text = snapshot.text(b.dockerfile) if b.dockerfile else None
        args = dict(ARG_DEFAULT.findall(text or ""))
        args.update(a.partition("=")[::2] for a in b.build.values("--build-arg") if "=" in a)
        for m in FROM_IMAGE.finditer(text or ""):
            # `FROM ${BASE}` with `--build-arg BASE=<an image built above>` is the same chain.
            name = _image_name(_expand(m[1], args))
            tag = next((t for t in tagged if t[0] <= order[id(b.command)] and t[1] == name), None)
            if tag is not None:
                return (
                    f"line {line}: `{b.dockerfile}` starts `FROM {m[1]}`, a name that `docker tag` gives an "
                    f"image on line {tag[2]} in the local Docker image store only. A docker-container builder "
                    "(needed to export a registry cache) cannot see that store and would look for the name "
                    "in a registry, so this build must be changed by hand (build FROM the registry "
                    "reference that was pulled, or pass it with `--build-context`)."
                )
            if name in built:
                return (
                    f"line {line}: `{b.dockerfile}` starts `FROM {m[1]}`, the image built on line "
                    f"{built[name]}. A docker-container builder (needed to export a registry cache) "
                    "cannot see images in the local Docker image store, so this chain of builds must "
                    "be changed by hand (push the base image and build FROM its registry reference, "
                    "or pass it with `--build-context`)."
                )
        for t in b.build.tags:
            name = _image_name(t)
            if "$" not in name:
                built.setdefault(name, line)
    if built and first is not None:
        for c in an.commands:
            line = c.node.start_mark.line + 1
            for m in FROM_IMAGE.finditer((c.value or "").replace("\\n", "\n")):
                name = _image_name(m[1].split("$", 1)[0].rstrip(":")) if "$" in m[1] else _image_name(m[1])
                if line > first and name in built:
                    return (
                        f"line {line} writes a Dockerfile `FROM {m[1]}`, the image built on line "
                        f"{built[name]}; a docker-container builder (needed to export a registry cache) "
                        "cannot see images in the local Docker image store, so this chain of builds "
                        "must be changed by hand."
                    )
    return None


def _local_tags(p: Parsed) -> list[tuple[int, str, int]]:
    """(command index, image name, line) of every `docker tag SRC DST` / `docker image tag SRC DST`."""
    out = []
    for n, c in enumerate(p.analysis.commands):
        for sc in simple_commands(c.value or ""):
            words = [w.value for w in sc.words]
            rest = words[2:] if words[1:2] == ["tag"] else words[3:] if words[1:3] == ["image", "tag"] else None
            if words[:1] == ["docker"] and rest is not None:
                args = [w for w in rest if not w.startswith("-")]
                if len(args) == 2 and "$" not in args[1]:
                    out.append((n, _image_name(args[1]), c.node.start_mark.line + 1))
    return out


_COMPOSE_BUILD = re.compile(r"\bdocker(?:-compose|\s+compose)\b[^\n;&|]*\s(?:build|up\b[^\n;&|]*--build)\b")


def _follows_selected_builder(text: str) -> bool:
    """True when a build in ``text`` runs on the builder `docker buildx use` selected.

    Since Docker 23 a plain `docker build` keeps the default builder whatever `buildx use` selected
    (https://docs.docker.com/build/builders/#difference-between-docker-build-and-docker-buildx-build);
    `docker buildx build` follows the selection unless it names `--builder`.
    """
    return any(b.kind == "buildx" and not b.has("--builder") for b in find_builds(text))


def builder_switch(p: Parsed) -> list[Finding]:
    """Builds the bot does not rewrite but that run on the builder it selects: say where."""
    out: list[Finding] = []
    for b in p.analysis.builds:
        if (
            len(b.build.real_positionals) != 1
            and not b.build.rewritten
            and b.build.kind == "buildx"
            and not b.build.has("--builder")
        ):
            out.append(
                Finding(
                    p.path,
                    "warning",
                    Code.BUILDER_SWITCH,
                    f"{p.path}:{b.command.node.start_mark.line + 1}: this build is not rewritten but "
                    "runs after `docker buildx use` selected the docker-container builder; add "
                    "`--load` to it (or `--builder default`) once it is fixed.",
                    line=b.command.node.start_mark.line + 1,
                )
            )
    phases = by.get(p.root, "phases")
    for name in PHASES:
        ph = by.get(phases[1] if phases else None, name)
        fin = by.get(ph[1] if ph else None, "finally")
        items = fin[1].value if fin is not None and isinstance(fin[1], SequenceNode) else []
        for item in items:
            if isinstance(item, ScalarNode) and _follows_selected_builder(item.value):
                out.append(
                    Finding(
                        p.path,
                        "warning",
                        Code.BUILDER_SWITCH,
                        f"{p.path}:{item.start_mark.line + 1}: this build in `{name}.finally` is not "
                        "rewritten but runs on the docker-container builder selected for the cache: "
                        "add `--load` to it (or `--builder default`) so its image reaches the local "
                        "image store.",
                        line=item.start_mark.line + 1,
                    )
                )
    for c in p.analysis.commands:
        hidden = [
            inner
            for sc in simple_commands(c.value or "")
            for w in (*sc.assignments, *sc.words)
            for inner in substitutions(w.raw)
            if _follows_selected_builder(inner)
        ]
        if hidden:
            out.append(
                Finding(
                    p.path,
                    "warning",
                    Code.BUILDER_SWITCH,
                    f"{p.path}:{c.node.start_mark.line + 1}: the build inside `$({hidden[0].strip()[:80]})` "
                    "is not rewritten but runs on the docker-container builder selected for the cache, "
                    "so its image does not reach the local image store: add `--load` to it (or "
                    "`--builder default`).",
                    line=c.node.start_mark.line + 1,
                )
            )
        if _COMPOSE_BUILD.search(c.value or ""):
            out.append(
                Finding(
                    p.path,
                    "warning",
                    Code.BUILDER_SWITCH,
                    f"{p.path}:{c.node.start_mark.line + 1}: Docker Compose builds here may use the "
                    "docker-container builder selected for the cache; check that their images still "
                    "reach the local image store (or run them before the builder is created).",
                    line=c.node.start_mark.line + 1,
                )
            )
    return out


_PUSH = re.compile(r"docker\s+(?:image\s+)?push\s+(?:--?\S+\s+)*\"?([^\s\"]+)")


def dockerhub_pushes(p: Parsed) -> list[Finding]:
    """Pushes to Docker Hub: the cache still lives in ECR, which the reviewer should know."""
    out: list[Finding] = []
    for c in p.analysis.commands:
        for m in _PUSH.finditer(c.value or ""):
            ref = m[1]
            first = ref.split("/", 1)[0] if "/" in ref else ""
            hub_var = re.search(r"(?i)docker_?hub|docker_?user", first)
            if ".dkr.ecr." in ref or (first and ("." in first or ":" in first or ("$" in first and not hub_var))):
                continue
            if "$" in ref and not hub_var:
                continue
            out.append(
                Finding(
                    p.path,
                    "info",
                    Code.DOCKERHUB_PUSH,
                    f"{p.path}:{c.node.start_mark.line + 1}: pushes `{ref}` to Docker Hub, not ECR; "
                    "the layer cache still goes to the ECR cache repository.",
                    line=c.node.start_mark.line + 1,
                )
            )
            return out
    return out


def refusals(p: Parsed) -> list[Finding]:
    """Why this buildspec must be left untouched although its builds could be cached (empty: go ahead)."""
    return [*mapping_commands(p), *legacy_login_outputs(p), *old_runtime_pins(p)]


def _line(p: Parsed, cmd: BuildspecCommand, needle: str) -> int:
    """The file line of ``needle`` inside the command ``cmd`` (its first line when not found)."""
    return command_line(p.text, cmd, (cmd.value or "").find(needle))


def legacy_login_outputs(p: Parsed) -> list[Finding]:
    """`aws ecr get-login` whose output is stored or parsed: no replacement is equivalent, so say where."""
    out = []
    for cmd, use in p.analysis.legacy_uses:
        out.append(
            Finding(
                p.path,
                "warning",
                Code.LEGACY_LOGIN_OUTPUT,
                f"{p.path}:{_line(p, cmd, use)}: `{use[:100]}` uses the output of `aws ecr get-login`, "
                "which AWS CLI v2 (on every current CodeBuild image) no longer has. The bot replaces "
                "that login only where its output is run as a command; here it is kept or parsed, "
                "so the buildspec was left untouched. Log in with `aws ecr get-login-password "
                "--region REGION | docker login --username AWS --password-stdin REGISTRY` (the "
                "password alone is what `get-login-password` prints), then run /ecr-cache again.",
                line=_line(p, cmd, use),
            )
        )
    return out


def mapping_commands(p: Parsed) -> list[Finding]:
    """Commands YAML reads as a mapping (an unquoted `: `): CodeBuild rejects such a buildspec before it runs."""
    out = []
    for cmd in p.analysis.commands:
        node = cmd.node
        if not isinstance(node, MappingNode):
            continue
        raw = p.text[node.start_mark.index : node.end_mark.index].rstrip()
        quoted = "'" + raw.replace("'", "''") + "'"
        hint = ""
        try:
            # Suggest the quoted form only when it reads back as exactly what was written.
            if "\n" not in raw and " #" not in raw and by.safe_load(f"- {quoted}\n") == [raw]:
                hint = f" Quote the whole command to keep it as written: `- {quoted}`."
        except yaml.YAMLError:
            hint = ""
        out.append(
            Finding(
                p.path,
                "warning",
                Code.BUILDSPEC_COMMAND_MAPPING,
                f"{p.path}:{node.start_mark.line + 1}: YAML reads this `{cmd.phase}` command as a "
                f"mapping, not a string (an unquoted `: ` inside it), so CodeBuild rejects the "
                f"buildspec before any command runs; the file was left untouched.{hint}",
                line=node.start_mark.line + 1,
            )
        )
    return out


def old_runtime_pins(p: Parsed) -> list[Finding]:
    """`runtime-versions` pins that only CodeBuild images without `docker buildx` offer."""
    phases = by.get(p.root, "phases")
    install = by.get(phases[1] if phases else None, "install")
    runtimes = by.get(install[1] if install else None, "runtime-versions")
    node = runtimes[1] if runtimes else None
    out: list[Finding] = []
    for key, value in node.value if isinstance(node, MappingNode) else []:
        if not isinstance(key, ScalarNode) or not isinstance(value, ScalarNode):
            continue
        images = codebuild_images.old_only(key.value, value.value)
        if not images:
            continue
        offered = codebuild_images.recommended_versions(key.value)
        move = (
            f"pin `{key.value}: {' or '.join(offered)}` there"
            if offered
            else f"drop the `{key.value}` line (that image offers no such runtime)"
        )
        out.append(
            Finding(
                p.path,
                "warning",
                Code.OLD_BUILD_IMAGE,
                f"{p.path}:{key.start_mark.line + 1}: `runtime-versions: {key.value}: {value.value}` "
                f"is offered only by CodeBuild images without `docker buildx` "
                f"({', '.join(i.short for i in images)}), so this "
                "project builds on one of them today and the registry cache (which needs buildx) "
                "would stop that build; the file was left untouched. To move on, set the CodeBuild "
                f"project's image to {codebuild_images.RECOMMENDED} (Environment > Image), {move}, "
                "and run /ecr-cache again.",
                line=key.start_mark.line + 1,
            )
        )
    return out
