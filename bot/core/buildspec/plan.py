"""Plan the buildspec edits: BuildKit + a registry cache in ECR for every `docker build`."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace

import yaml
from yaml.nodes import MappingNode, ScalarNode

from bot.core import secret_leaks
from bot.core.buildspec import codebuild_images
from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import PHASES, Analysis, Build, BuildspecCommand, analyse, command_line
from bot.core.buildspec.checks import builder_switch, dockerhub_pushes, loaded_images, local_base, refusals
from bot.core.buildspec.edit import Edit, Parsed, prove, splice
from bot.core.buildspec.image_refs import classify, dockerfile_bases
from bot.core.buildspec.tags import assign_tags, existing_tag
from bot.core.buildspec.verify import (
    ACCOUNT_LINE,
    BOT_ENV,
    GUARD_LINE,
    builder_line,
    is_bot_line,
    push_target,
    pushed_tag,
    tag_key,
    valid_repo_name,
    verify_buildspec_edit,
)
from bot.core.discover import Discovery
from bot.core.findings import Code
from bot.core.model import BuildLink, FileEdit, Finding, Options, PartialPlan, RepoSnapshot
from bot.core.policies import default_cache_repository
from bot.core.shell.docker_build import (
    CacheFlags,
    apply_splices,
    build_splices,
    is_pull,
    login_command,
    output_flag,
    parse_bot_flags,
    parse_build,
    registry_host,
)
from bot.core.shell.words import simple_commands

__all__ = ["plan_buildspecs", "verify_buildspec_edit"]

_ACCOUNT_USE = re.compile(r"\$\{?AWS_ACCOUNT_ID\b")
_ACCOUNT_SET = re.compile(r"(?:^|[\s;&|(])(?:export\s+)?AWS_ACCOUNT_ID=")
_REPO_KEYS = (
    "IMAGE_REPO_NAME",
    "IMAGE_REPOSITORY_NAME",
    "ECR_REPO_NAME",
    "ECR_REPOSITORY_NAME",
    "REPO_NAME",
    "REPOSITORY_NAME",
)


def plan_buildspecs(
    snapshot: RepoSnapshot,
    options: Options,
    found: Discovery,
    ignores: Mapping[str, str] | None = None,
    skip: frozenset[tuple[str, int]] = frozenset(),
) -> PartialPlan:
    """Return buildspec edits, findings and the BuildLinks of every `docker build`.

    ``ignores``: the text of each `.dockerignore` the same plan creates or extends (it decides whether `.git` is
    left out of a build context). ``skip``: builds (buildspec, index) to leave as they are, as far as
    `_skippable` allows.
    """
    findings: list[Finding] = []
    parsed: list[Parsed] = []
    all_paths = frozenset(snapshot.paths)
    for path in found.buildspecs:
        text = snapshot.text(path)
        if text is None:
            continue
        try:
            root = by.compose(text)
        except yaml.YAMLError as exc:
            findings.append(
                Finding(
                    path,
                    "warning",
                    Code.BUILDSPEC_UNPARSABLE,
                    f"{path} is not valid YAML, left untouched: {_first_line(exc)}",
                )
            )
            continue
        if not isinstance(root, MappingNode):
            continue
        parsed.append(Parsed(path, text, root, analyse(root, path, all_paths)))
    tags = assign_tags([(p.path, p.root, p.analysis) for p in parsed], options, frozenset(found.batch_buildspecs))
    skip = _skippable(parsed, skip)
    edits: list[FileEdit] = []
    links: list[BuildLink] = []
    repos: dict[str, str] = {}
    for p in parsed:
        edit, more, blinks, repo = _plan_one(p, options, tags, snapshot, ignores or {}, skip)
        if edit is None:
            # That warning says the layers are exported; a buildspec left as it is exports nothing.
            more = [f for f in more if f.code != Code.SECRET_BUILD_ARG]
            blinks = [
                link if b.build.rewritten else replace(link, cached=False)
                for link, b in zip(blinks, p.analysis.builds, strict=False)
            ]
        findings.extend(more)
        links.extend(blinks)
        if edit is not None:
            edits.append(edit)
        if repo and blinks:
            repos[p.path] = repo
    if links:
        first = links[0].buildspec
        findings.append(
            Finding(
                first,
                "info",
                Code.PRIVILEGED_MODE,
                "The CodeBuild project must run in privileged mode to use Docker "
                "(Environment > Privileged); a buildspec cannot turn it on.",
            )
        )
        findings.append(
            Finding(
                first,
                "info",
                Code.BUILDX_REQUIRED,
                "The added steps need `docker buildx`, which ships on "
                f"{codebuild_images.summary(True)}; on an image without it "
                f"({codebuild_images.summary(False)}) the added guard stops the build with a clear "
                "message.",
            )
        )
        if not options.builder_image:
            findings.append(
                Finding(
                    first,
                    "info",
                    Code.BUILDER_IMAGE,
                    "`docker buildx create --bootstrap` pulls the `moby/buildkit` image from Docker "
                    "Hub on every build; CodeBuild machines share public IP addresses, so anonymous "
                    "pulls can hit Docker Hub's rate limit. Copy the image to ECR and set "
                    "`builder_image` in .github/ecr-cache.yml to avoid that.",
                )
            )
        elif ".dkr.ecr." in options.builder_image:
            registry = options.builder_image.split("/", 1)[0]
            findings.append(
                Finding(
                    first,
                    "info",
                    Code.BUILDER_IMAGE_LOGIN,
                    f"The builder image comes from `{registry}`. The buildspec logs in only to "
                    "this account's registry in the build's region before `docker buildx create`, "
                    "so if the image is in another account or region, add a `docker login` for "
                    "that registry first (the IAM policy already allows pulling it).",
                )
            )
    return PartialPlan(
        edits=tuple(edits),
        findings=tuple(findings),
        builds=tuple(links),
        extra={"cache_repositories": repos, "skipped": skip},
    )


def _blocked(p: Parsed) -> tuple[Code, str] | None:
    """(code, why) when a build cannot move to a docker-container builder with one cache ref of its own."""
    for b in p.analysis.builds:
        if b.build.rewritten or len(b.build.real_positionals) != 1:
            continue
        line = command_line(p.text, b.command, b.build.verbs[0].start)
        if b.build.command.loops:
            return (
                Code.BUILD_IN_LOOP,
                f"line {line}: this build runs inside a shell loop, so every iteration would write the same "
                "cache tag (two images on one cache ref keep evicting each other). Give each image its own "
                "build command, or set the cache flags by hand with a tag per iteration.",
            )
        reuse = _local_use_after_push(p, b)
        if reuse:
            return (
                Code.BUILD_PUSH_LOCAL_IMAGE,
                f"line {line}: this build pushes with `--push`, and `{reuse}` then reads its image from the "
                "local image store. The default builder keeps pushed images there; the docker-container "
                "builder needed for the registry cache does not (and `--push --load` together needs buildx "
                "0.13 or newer), so this build was left as it is.",
            )
        hosts = [
            f
            for f in b.build.global_flags
            if f.split("=")[0] in ("-H", "--host", "-c", "--context") or f.startswith("-H")
        ]
        if hosts:
            return (
                Code.BUILD_DOCKER_HOST,
                f"line {line}: `docker {' '.join(b.build.global_flags)}` builds on another Docker daemon, but "
                "the cache builder is created on the default one, where `--load` would put the image.",
            )
        if any(f.split("=")[0] == "--config" for f in b.build.global_flags):
            # buildx keeps its builders beside the CLI config, so this build would not see the cache builder.
            return (
                Code.BUILD_DOCKER_HOST,
                f"line {line}: `docker {' '.join(b.build.global_flags)}` uses another Docker CLI config, where "
                "the cache builder created with the default config does not exist.",
            )
        inline = {a.raw.split("=", 1)[0]: a.raw for a in b.build.command.assignments}
        moved = sorted(
            set(inline) & {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "BUILDX_CONFIG", "BUILDX_BUILDER"}
        )
        if moved:
            return (
                Code.BUILD_DOCKER_HOST,
                f"line {line}: `{inline[moved[0]]}` makes this one build use another Docker daemon, CLI config "
                "or builder than the cache builder the bot sets up.",
            )
        if "DOCKER_BUILDKIT=0" in inline.values():
            return (
                Code.BUILDKIT_DISABLED,
                f"line {line}: this build sets `DOCKER_BUILDKIT=0`, so it runs on the legacy builder on "
                "purpose; the registry cache needs BuildKit, and some legacy flags are refused by `buildx build`.",
            )
        images = [
            v
            for v in b.build.values("--output", "-o")
            if re.search(r"(^|,)type=image\b", v) and not re.search(r"(^|,)push=true\b", v)
        ]
        if images and not b.build.has("--load", "--push"):
            return (
                Code.BUILD_OUTPUT_IMAGE,
                f"line {line}: `--output {images[0]}` keeps the image in the local image store with the "
                "default builder; the docker-container builder needed for the registry cache keeps it inside "
                "the builder, so later steps would not find it.",
            )
        networks = [v for v in b.build.values("--network") if v not in ("default", "none")]
        if networks:
            # docker-container builders run RUN steps in the builder's own container network, and buildx
            # before v0.13 refuses `network.host` without an entitlement (docker/buildx#2255), and the
            # recommended CodeBuild image ships an older one (codebuild_images names the versions).
            return (
                Code.BUILD_NETWORK,
                f"line {line}: `--network {networks[0]}` would run the RUN steps inside the docker-container "
                "builder's own network (needed for the registry cache), not the one this build uses today, "
                "and older buildx versions refuse `--network host` there without an entitlement.",
            )
    env = {**p.analysis.env_vars, **{k: v for k, v in p.analysis.literal_vars.items() if v is not None}}
    if env.get("DOCKER_BUILDKIT", "").strip("\"'") in ("0", "false"):
        return (
            Code.BUILDKIT_DISABLED,
            "`DOCKER_BUILDKIT` is set to `0`, so the builds run on the legacy builder on purpose; the "
            "registry cache needs BuildKit.",
        )
    phases = by.get(p.root, "phases")
    for name in PHASES:
        ph = by.get(phases[1] if phases else None, name)
        if ph is not None and by.get(ph[1], "run-as") is not None:
            return (
                Code.BUILDSPEC_UNSUPPORTED,
                f"phase `{name}` sets `run-as`: the buildx builder and the ECR login are kept in the home "
                "directory of the user who creates them, so they would not be found by a phase that runs "
                "as another user.",
            )
    return None


def _secret_refusal(
    p: Parsed, snapshot: RepoSnapshot, options: Options, ignores: Mapping[str, str], skip: frozenset[tuple[str, int]]
) -> list[Finding]:
    """One warning per credential a build's cache export would carry out of the build machine."""
    out: list[Finding] = []
    for k, b in enumerate(p.analysis.builds):
        if b.build.rewritten or len(b.build.real_positionals) != 1 or (p.path, k) in skip:
            continue
        for why in secret_leaks.build_refusal(
            p.analysis, b, p.path, snapshot, options, ignores, lambda c, o: command_line(p.text, c, o)
        ):
            out.append(
                Finding(
                    p.path,
                    "warning",
                    Code.SECRET_IN_CACHE,
                    f"{p.path} left untouched: {why}",
                    line=command_line(p.text, b.command, b.build.verbs[0].start),
                )
            )
    return out


# Commands that never read the local Docker image store: after a build they do not need its image there.
_STORE_FREE = frozenset(
    {
        "echo",
        "printf",
        "aws",
        "cat",
        "sed",
        "jq",
        "envsubst",
        "ls",
        "mkdir",
        "cp",
        "mv",
        "rm",
        "tee",
        "cd",
        "export",
        "true",
        "test",
        "[",
        "[[",
        "git",
        "kubectl",
        "helm",
        "sleep",
        "date",
        "pwd",
        "env",
        "grep",
        "awk",
        "head",
        "tail",
        "tr",
        "cut",
        "zip",
        "unzip",
        "touch",
    }
)
# ... and cannot fail in a way that should stop a push (allowed between the build and its pushes).
_QUIET = frozenset({"echo", "printf"})


def _push_only(p: Parsed, b: Build) -> list[int] | None:
    """The `docker push` commands to remove when ``b`` can push its tags itself (`--push`), else None.

    Only when every tag is pushed by a command of its own that follows the build with nothing but echo/printf
    between (a failing step there must still stop the push), and no later command may read the local image:
    each is a build, a registry login or a command known never to touch the image store, and no `finally`
    block runs after it (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html).
    """
    db = b.build
    if output_flag(db) != "--load" or not db.tags or db.global_flags or db.command.loops or db.command.depth:
        return None
    tags = {tag_key(t) for t in db.tags}
    if any(_daemon_only_registry(t) for t in tags):
        return None
    own = simple_commands(b.command.value or "")
    after_build = [sc for sc in own if sc.words and sc.words[0].start > db.docker.start]
    if any(sc.words[0].value not in _QUIET for sc in after_build) or _has_finally(p, b.command.phase):
        return None
    commands = p.analysis.commands
    start = next(n for n, c in enumerate(commands) if c is b.command)
    drops: list[int] = []
    pushed: set[str] = set()
    other = False
    for n in range(start + 1, len(commands)):
        value = commands[n].value
        if value is None:
            return None
        tag = pushed_tag(value)
        if tag is not None and tag in tags:
            if other:
                return None
            drops.append(n)
            pushed.add(tag)
            continue
        for sc in simple_commands(value):
            words = [w.value for w in sc.words]
            if any("$(" in w.raw or "`" in w.raw for w in (*sc.assignments, *sc.words)):
                return None
            if words[:1] and words[0] in _QUIET:
                continue
            other = True
            # A later build FROM this image is refused as a chain (local_base); a push of another name reads
            # another image (a new name for this one needs `docker tag`, which keeps `--load`).
            if (
                parse_build(sc) is not None
                or words[:2] in (["docker", "login"], ["docker", "logout"])
                or push_target(words) is not None
            ):
                continue
            if words and words[0] not in _STORE_FREE:
                return None
    if pushed != tags:
        return None
    # A phase whose every command would go is left as it is: `commands:` with no item is no valid buildspec.
    for phase in {commands[n].phase for n in drops}:
        if all(n in drops for n, c in enumerate(commands) if c.phase == phase):
            return None
    return drops


_IP_HOST = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]*\]")


def _daemon_only_registry(tag: str) -> bool:
    """True when ``tag`` names a registry that `docker push` (dockerd) may reach and the builder may not.

    The docker-container builder pushes from its own container: `localhost` there is the builder itself, and
    dockerd's insecure-registry settings and the machine's /etc/hosts do not apply
    (https://github.com/docker/buildx/issues/94, https://github.com/docker/buildx/issues/218).
    """
    first, sep, _ = tag.partition("/")
    if not sep or "$" in first or not ("." in first or ":" in first or first == "localhost"):
        return False
    host = first.rsplit(":", 1)[0] if not first.endswith("]") else first
    return host == "localhost" or "." not in host or _IP_HOST.fullmatch(host) is not None


def _has_finally(p: Parsed, phase: str) -> bool:
    """True when this phase or a later one has a `finally` block (its commands are not analysed)."""
    phases = by.get(p.root, "phases")
    for name in PHASES[PHASES.index(phase) :]:
        ph = by.get(phases[1] if phases else None, name)
        if ph is not None and by.get(ph[1], "finally") is not None:
            return True
    return False


_LOCAL_IMAGE_VERBS = frozenset({"tag", "push", "run", "save", "create", "inspect", "history"})


def _local_use_after_push(p: Parsed, b: Build) -> str | None:
    """The first later `docker tag|push|run|...` of an image that ``b`` only pushes (None if there is none)."""
    db = b.build
    pushes = db.has("--push") or any("push=true" in v or "type=registry" in v for v in db.values("--output", "-o"))
    if not pushes or db.has("--load") or not db.tags:
        return None
    commands = p.analysis.commands
    start = next(n for n, c in enumerate(commands) if c is b.command)
    for n, c in enumerate(commands[start:], start):
        for sc in simple_commands(c.value or ""):
            if n == start and sc.words[:1] and sc.words[0].start <= db.docker.start:
                continue
            words = [w.value for w in sc.words]
            verb = words[2:3] if words[1:2] in (["image"], ["container"]) else words[1:2]
            if words[:1] == ["docker"] and verb and verb[0] in _LOCAL_IMAGE_VERBS and set(words) & set(db.tags):
                return " ".join(words)[:120]
    return None


def _skippable(parsed: list[Parsed], wanted: frozenset[tuple[str, int]]) -> frozenset[tuple[str, int]]:
    """The builds of ``wanted`` (buildspec, index) that can be left as they are while others are rewritten.

    A `docker buildx build` left alone next to rewritten builds would run on the docker-container builder they
    select, without `--load`; such a build is left alone only with every build of its buildspec.
    """
    out: set[tuple[str, int]] = set()
    for p in parsed:
        todo = [
            k for k, b in enumerate(p.analysis.builds) if not b.build.rewritten and len(b.build.real_positionals) == 1
        ]
        chosen = [k for k in todo if (p.path, k) in wanted]
        whole = len(chosen) == len(todo)
        out.update((p.path, k) for k in chosen if whole or p.analysis.builds[k].build.kind != "buildx")
    return frozenset(out)


def _no_cache(b: Build, env: Mapping[str, str]) -> str:
    """Where this build's `--no-cache` comes from (the flag, or a variable of the buildspec set to it)."""
    if b.build.has("--no-cache"):
        return "`--no-cache`"
    for raw in b.build.flag_vars:
        value = b.flag_values.get(raw, env.get(raw.strip("${}"), ""))
        if re.search(r"(?:^|\s)--no-cache(?:\s|$)", value):
            return f"`{raw}` (`{value}`)"
    return ""


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _plan_one(
    p: Parsed,
    options: Options,
    tags: dict[tuple[str, int], str],
    snapshot: RepoSnapshot,
    ignores: Mapping[str, str],
    skip: frozenset[tuple[str, int]] = frozenset(),
) -> tuple[FileEdit | None, list[Finding], list[BuildLink], str | None]:
    an = p.analysis
    findings: list[Finding] = []
    if not an.builds:
        return None, findings, [], None
    repo = _cache_repo(an, options, p.path, findings, snapshot.repository)
    links: list[BuildLink] = []
    edit = Edit()
    positions = {id(c): n for n, c in enumerate(an.commands)}
    for k, b in enumerate(an.builds):
        links.append(_build_link(p, b, k, tags, findings, snapshot, edit, positions, options, (p.path, k) in skip))
    if not any(
        b.build.rewritten or len(b.build.real_positionals) == 1 and (p.path, k) not in skip
        for k, b in enumerate(an.builds)
    ):
        return None, findings, links, repo
    # Said even when another reason leaves the buildspec alone: fixing that one must not lead to a leak.
    leaks = _secret_refusal(p, snapshot, options, ignores, skip)
    chain = local_base(p, snapshot)
    if chain:
        findings.append(Finding(p.path, "warning", Code.LOCAL_BASE_IMAGE, f"{p.path} left untouched: {chain}"))
        return None, findings + leaks, links, repo
    blocked = _blocked(p)
    if blocked:
        findings.append(Finding(p.path, "warning", blocked[0], f"{p.path} left untouched: {blocked[1]}"))
        return None, findings + leaks, links, repo
    refused = refusals(p)
    if refused:
        findings.extend(refused)
        return None, findings + leaks, links, repo
    if leaks:
        # The whole buildspec stays as it is: a `docker buildx build` left alone among rewritten ones would run on
        # the cache builder the added setup lines select (without `--load`), so a per-build refusal is not safe.
        return None, findings + leaks, links, repo
    findings.extend(loaded_images(p))
    findings.extend(dockerhub_pushes(p))
    findings.extend(builder_switch(p))
    try:
        if an.flow_phases:
            raise by.Unsupported(
                f"the commands of phase(s) {', '.join(an.flow_phases)} are a flow "
                "sequence `[...]`, which the bot does not edit"
            )
        by.check_block_indentation(p.text)
        bases = tuple(
            dict.fromkeys(
                r for link, b in zip(links, an.builds, strict=True) if not b.build.rewritten for r in link.base_images
            )
        )
        _plan_setup(p, options, repo, edit, positions, bases)
        new_text = splice(p, edit)
    except by.Unsupported as exc:
        findings.append(Finding(p.path, "warning", Code.BUILDSPEC_UNSUPPORTED, f"{p.path} left untouched: {exc}"))
        return None, findings, links, repo
    if new_text == p.text:
        return None, findings, links, repo
    reason = prove(p, edit, new_text)
    if reason:
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.BUILDSPEC_EDIT_UNPROVEN,
                f"{p.path} left untouched: the edited file did not re-parse to exactly the intended change ({reason}).",
            )
        )
        return None, findings, links, repo
    return (FileEdit(p.path, "modify", new_text, p.text, tuple(dict.fromkeys(edit.reasons))), findings, links, repo)


def _cache_repo(
    an: Analysis, options: Options, path: str, findings: list[Finding], repository: str | None = None
) -> str:
    if "CACHE_REPO_NAME" in an.env_vars:
        return an.env_vars["CACHE_REPO_NAME"]
    if options.cache_repository:
        if valid_repo_name(options.cache_repository):
            return options.cache_repository
        fallback = default_cache_repository(repository) or "ecr-build-cache"
        findings.append(
            Finding(
                path,
                "warning",
                Code.CACHE_REPOSITORY_INVALID,
                f"cache repository {options.cache_repository!r} is not a valid ECR "
                f"repository name; using `{fallback}`.",
            )
        )
        return fallback
    image = options.image_repository
    known = _known_values(an)
    if not image:
        image = next((known[k] for k in _REPO_KEYS if k in known), None)
    if not image:
        pushed = _ecr_repositories(an)
        image = pushed[0] if len(pushed) == 1 else None
    if image:
        name = f"{image}-cache"
        if valid_repo_name(name):
            return name
    own = default_cache_repository(repository)
    if own:
        # One cache repository per GitHub repository: a shared default would let every repository of the
        # account overwrite the others' `cache` tag.
        findings.append(
            Finding(
                path,
                "info",
                Code.CACHE_REPOSITORY_DEFAULT,
                f"The image repository name is not in the buildspec, so the cache goes to "
                f"`{own}`, named after this repository; set `cache_repository` in "
                ".github/ecr-cache.yml (or edit CACHE_REPO_NAME) to choose another name.",
            )
        )
        return own
    findings.append(
        Finding(
            path,
            "info",
            Code.CACHE_REPOSITORY_DEFAULT,
            "The image repository name is not in the buildspec, so the cache goes to the "
            "shared `ecr-build-cache` repository; set `cache_repository` in "
            ".github/ecr-cache.yml (or edit CACHE_REPO_NAME) if other repositories of this "
            "AWS account use the same cache tags.",
        )
    )
    return "ecr-build-cache"


_ECR_PATH = re.compile(
    r"\.dkr\.ecr\.[^/\s\"']+?\.amazonaws\.com(?:\.cn)?/"
    r"((?:\$\{[A-Za-z_][A-Za-z0-9_]*\}|[^\s:@\"'`;|&()])+)"
)
_VAR_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _known_values(an: Analysis) -> dict[str, str]:
    """Variables with one literal value: from `env.variables`, or set once by a command."""
    known = {k: v for k, v in an.literal_vars.items() if v is not None and k not in an.env_vars}
    known.update((k, v) for k, v in an.env_vars.items() if "$" not in v and k not in an.literal_vars)
    return known


def _ecr_repositories(an: Analysis) -> list[str]:
    """ECR repositories the buildspec tags, pushes or names (not the images it only pulls)."""
    known = _known_values(an)
    texts = list(an.env_vars.values())
    for c in an.commands:
        for sc in simple_commands(c.value or ""):
            if is_pull([w.value for w in sc.words[:3]]):
                continue
            texts.extend(w.raw for w in (*sc.assignments, *sc.words))
    names: list[str] = []
    for text in texts:
        for m in _ECR_PATH.finditer(text):
            # An unknown variable may name yet another repository: it stays a candidate of its own.
            name = _VAR_REF.sub(lambda v: known.get(v[1], "\0"), m[1])
            names.append(name if "$" not in name and valid_repo_name(name) else "\0" + m[1])
    unique = list(dict.fromkeys(names))
    return [] if any(n.startswith("\0") for n in unique) else unique


def _build_link(
    p: Parsed,
    b: Build,
    k: int,
    tags: dict[tuple[str, int], str],
    findings: list[Finding],
    snapshot: RepoSnapshot,
    edit: Edit,
    positions: dict[int, int],
    options: Options,
    skip: bool = False,
) -> BuildLink:
    db = b.build
    cmd = b.command
    line = command_line(p.text, cmd, db.verbs[0].start)
    where = f"{p.path}:{line}"
    tag = existing_tag(db) or tags.get((p.path, k), options.cache_tag)
    output = "load"
    drops = None if db.rewritten or skip or len(db.real_positionals) != 1 else _push_only(p, b)
    if db.has("--push") or drops:
        output = "push"
    elif db.has("--output", "-o") and not db.has("--load"):
        output = "none"
    malformed = len(db.real_positionals) != 1
    if b.unresolved and not malformed:
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.BUILD_PATH_UNRESOLVED,
                f"{where}: cannot tell which Dockerfile/context this build uses: "
                f"{', '.join('`' + u + '`' for u in b.unresolved)} is not set in "
                "env/variables (a project variable or a value computed at build time); "
                "the Dockerfile was not analysed.",
                line=line,
            )
        )
    elif b.dockerfile and b.dockerfile not in snapshot.paths and snapshot.paths:
        near = posixpath.normpath(posixpath.join(posixpath.dirname(p.path), b.dockerfile))
        hint = (
            f" `{near}` sits next to the buildspec: it is used only if this project's source root is "
            f"`{posixpath.dirname(p.path)}`."
            if near in snapshot.paths and near != b.dockerfile
            else ""
        )
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.DOCKERFILE_MISSING,
                f"{where}: CodeBuild runs commands from the source root ($CODEBUILD_SRC_DIR), so "
                f"this build reads `{b.dockerfile}`, which is not in the repository.{hint}",
                line=line,
            )
        )
    link = BuildLink(
        p.path,
        cmd.phase,
        cmd.index,
        line,
        b.dockerfile if not b.unresolved else None,
        b.context,
        tag,
        output,  # type: ignore[arg-type]
        b.unresolved,
        b.volatile_args,
        b.target,
        b.written_before,
        b.unknown_args,
        no_cache=_no_cache(b, p.analysis.env_vars),
        cached=db.rewritten or not (skip or malformed),
        base_images=_base_images(b, snapshot),
    )
    if db.rewritten or skip:
        return link
    if malformed:
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.DOCKER_BUILD_MALFORMED,
                f"{where}: this build has {len(db.real_positionals)} positional arguments "
                f"({' '.join(w.raw for w in db.real_positionals) or 'none'}); docker accepts "
                "exactly one context, so the command was left as it is.",
                line=line,
            )
        )
        return link
    flags = CacheFlags(tag, options.mode, "--push" if drops else output_flag(db), options.cache_errors == "ignore")
    pos = positions[id(cmd)]
    edit.mods.setdefault(pos, []).extend(build_splices(db, flags))
    spelled = "docker " + " ".join(w.value for w in db.verbs)
    keep = "" if flags.output is None else ", with `--load` so the later steps find the image locally"
    if drops:
        keep = (
            ", with `--push`: it pushes every `-t` tag itself, since the only later use of the image is "
            "`docker push` of those tags, and skips exporting the whole image into the local image store; "
            "`--provenance=false` keeps each pushed tag a plain image manifest, as `docker push` gave (with a "
            "provenance attestation it would become an image index, which AWS Lambda, for one, rejects)"
        )
        for n in drops:
            edit.drop.add(n)
            edit.reasons.append(
                f"Line {p.analysis.commands[n].node.start_mark.line + 1} (before this change): "
                f"`{(p.analysis.commands[n].value or '').strip()}` removed: the build on line "
                f"{line} now pushes that tag itself with `--push`, which leaves no copy in the local "
                'image store, so this push would fail with "An image does not exist locally".'
            )
    edit.reasons.append(
        f"Line {line} (before this change): `{spelled}` becomes `docker buildx build` importing "
        f"and exporting its layer cache at `$CACHE_URI:{tag}` (mode={options.mode}, image manifest "
        f"+ OCI media types, which ECR requires){keep}."
    )
    if flags.best_effort:
        edit.reasons.append(
            f"Line {line} (before this change): the export has `ignore-error=true`, so a missing "
            "cache repository or push permission (merging before the one-time AWS setup) never "
            "fails the build, and a missing cache on import is only a warning; set "
            "`cache_errors: fatal` in .github/ecr-cache.yml to make cache errors fail it."
        )
    for o in db.options:
        if o.name in ("--cache-from", "--cache-to"):
            edit.reasons.append(
                f"Line {line} (before this change): removed `{o.name} {o.value}`; the ECR registry cache replaces it."
            )
            findings.append(
                Finding(
                    p.path,
                    "info",
                    Code.CACHE_FROM_REPLACED,
                    f"{where}: the existing `{o.name} {o.value}` was replaced by the ECR "
                    "registry cache (a pulled image only seeds the cache when it was built "
                    "with inline cache metadata).",
                    line=line,
                )
            )
    for name in db.values("--builder"):
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.OWN_BUILDER,
                f"{where}: the build selects its own builder `{name}`; it must use the "
                "docker-container driver, or the registry cache export fails.",
                line=line,
            )
        )
    if db.has("--no-cache"):
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.NO_CACHE,
                f"{where}: `--no-cache` is kept, so this build never imports the cache (it "
                "still exports it). Remove `--no-cache` to get cached builds.",
                line=line,
            )
        )
    secrets = [a.split("=", 1)[0] for a in db.values("--build-arg") if _SECRET_ARG.search(a.split("=", 1)[0])]
    if secrets and options.mode == "max":
        # mode=max exports the layers of every stage, not only the pushed image's
        # (https://docs.docker.com/build/cache/backends/: use --secret, not ARG, for credentials).
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.SECRET_BUILD_ARG,
                f"{where}: {', '.join('`' + n + '`' for n in secrets)} reaches the build as a "
                "build argument; with `mode=max` the layers of every stage (also build stages "
                "that never left this machine before) are exported to the cache repository. Pass "
                "credentials with `--secret` and `RUN --mount=type=secret`, or use `mode: min`.",
                line=line,
            )
        )
    for var, value in b.flag_values.items():
        if re.search(r"(?:^|\s)--no-cache(?:\s|$)", value):
            findings.append(
                Finding(
                    p.path,
                    "warning",
                    Code.NO_CACHE,
                    f"{where}: `{var}` is set to `{value}` in this buildspec; its `--no-cache` "
                    "means this build never imports the cache (it still exports it).",
                    line=line,
                )
            )
    for var in db.flag_vars:
        findings.append(
            Finding(
                p.path,
                "warning",
                Code.BUILD_FLAGS_VARIABLE,
                f"{where}: `{var}` may expand to extra build flags the bot cannot see (for "
                "example `--cache-from` or `--no-cache`); check that it does not conflict "
                "with the registry cache flags.",
                line=line,
            )
        )
    if b.unresolved and tags.get((p.path, k)):
        findings.append(
            Finding(
                p.path,
                "info",
                Code.CACHE_TAG_SHARED,
                f"{where}: if several CodeBuild projects run this buildspec with different "
                f"values of {', '.join(b.unresolved)}, they share the cache tag `{tag}`; give "
                "each its own tag to keep their caches apart.",
                line=line,
            )
        )
    return link


def _base_images(b: Build, snapshot: RepoSnapshot) -> tuple[str, ...]:
    """The private ECR images the build's Dockerfile starts FROM."""
    text = snapshot.text(b.dockerfile) if b.dockerfile and not b.unresolved else None
    if not text:
        return ()
    args = dict(a.split("=", 1) for a in b.build.values("--build-arg") if "=" in a)
    return dockerfile_bases(text, args)


_SECRET_ARG = re.compile(r"(?i)token|passw|secret|private_?key|access_?key|api_?key|credential")
_OWN_HOST = re.compile(r"^\$\{?AWS_ACCOUNT_ID\}?\.dkr\.ecr\.([a-z]{2}(?:-[a-z]+)+-\d)\.")


def _region(an: Analysis, options: Options, setup_pos: int, build_pos: int) -> tuple[str, bool]:
    """The cache registry's region, and whether the setup must wait until just before the first build.

    Configured region, else a region variable of the buildspec's ECR commands that is set by the time the
    setup lines run, else the literal region of its own-account login, else the build's own region.
    """
    if options.region:
        return options.region, False
    for _, var in an.region_vars:
        ready = _ready(an, var, setup_pos, build_pos)
        if ready is not None:
            return f"${var}", ready
    for _, lg in an.legacy:
        if not lg.registry_ids and "$" not in lg.region:
            return lg.region, False
    for _, target in an.logins:
        m = _OWN_HOST.match(_norm(target))
        if m:
            return m[1], False
    return "$AWS_DEFAULT_REGION", False


# CodeBuild sets both for every build (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html).
_PREDEFINED_REGION = frozenset({"AWS_DEFAULT_REGION", "AWS_REGION"})


def _ready(an: Analysis, var: str, setup_pos: int, build_pos: int) -> bool | None:
    """False: ``var`` is set before the setup lines; True: only before the first build; None: too late."""
    sets = an.assigned.get(var, [])
    # Never assigned in the buildspec: a project variable, present from the start.
    if var in an.env_names or var in _PREDEFINED_REGION or not sets:
        return False
    # A build in POST_BUILD also runs after a failed BUILD, so what BUILD sets may be missing there.
    post = an.commands[build_pos].phase == "post_build"
    usable = [n for n in sets if not (post and an.commands[n].phase == "build")]
    if usable and min(usable) < setup_pos:
        return False
    return True if usable and min(usable) < build_pos else None


def _norm(s: str) -> str:
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", r"$\1", s).strip("\"'").removeprefix("https://")


def _login_covers(an: Analysis, region: str, options: Options, before: int, positions: dict[int, int]) -> bool:
    """True when a login to this account's registry in ``region`` runs before command ``before``."""
    if an.cred_helper:
        return True
    host = _norm(registry_host("$AWS_ACCOUNT_ID", region, an.china))
    accounts = (
        {"$AWS_ACCOUNT_ID"}
        | {f"${v}" for v in an.account_vars}
        | ({options.account_id} if options.account_id else set())
    )
    for cmd, lg in an.legacy:
        if positions[id(cmd)] > before:
            continue
        if _norm(lg.region) == _norm(region) and (not lg.registry_ids or accounts & set(lg.registry_ids)):
            return True
    for cmd, target in an.logins:
        if positions[id(cmd)] > before:
            continue
        t = _norm(target)
        if t.startswith(host) or any(t.startswith(_norm(registry_host(a, region, an.china))) for a in accounts):
            return True
    return False


_LOGIN_HOST = re.compile(r"(\$\w+|\d{12})\.dkr\.ecr\.([^./]+)\.")


def _base_logins(
    an: Analysis, options: Options, region: str, bases: tuple[str, ...], before: int, positions: dict[int, int]
) -> list[str]:
    """Registry hosts of private base images that no login before command ``before`` covers.

    The docker-container builder pulls base images with the docker CLI's credentials
    (https://docs.docker.com/build/drivers/docker-container/), so each registry needs its own `docker login`.
    """
    if an.cred_helper:
        return []
    targets = [_norm(t) for cmd, t in an.logins if positions[id(cmd)] <= before]
    legacy = [(_norm(lg.region), lg.registry_ids) for cmd, lg in an.legacy if positions[id(cmd)] <= before]
    out: list[str] = []
    for ref in bases:
        found = classify(ref)
        host = ref.split("/", 1)[0]
        if "$" in host or found.account is None or found.region is None:
            continue
        # A login whose account or region is a variable may be this registry's: only a login that surely goes
        # elsewhere leaves it uncovered (the bot's own login is to this account's registry in ``region``).
        logins = [(options.account_id or "$AWS_ACCOUNT_ID", region)]
        logins += [(m[1], m[2]) for m in (_LOGIN_HOST.match(t) for t in targets) if m]
        logins += [(account, r) for r, ids in legacy for account in (ids or ("$AWS_ACCOUNT_ID",))]
        covered = any(
            a == found.account or a.startswith("$") for a, r in logins if r == found.region or r.startswith("$")
        )
        if not covered and host not in out:
            out.append(host)
    return out


def _plan_setup(
    p: Parsed, options: Options, repo: str, edit: Edit, positions: dict[int, int], bases: tuple[str, ...] = ()
) -> None:
    an = p.analysis
    texts = [c.value or "" for c in an.commands]
    todo = [b for b in an.builds if not b.build.rewritten]
    for cmd, lg in an.legacy:
        edit.mods.setdefault(positions[id(cmd)], []).append((lg.start, lg.end, lg.replacement(an.china)))
        edit.reasons.append(
            f"Line {cmd.node.start_mark.line + 1} (before this change): `$(aws ecr get-login ...)` "
            'was removed in AWS CLI v2 (on every current CodeBuild image it fails with "Invalid '
            'choice"); replaced by `aws ecr get-login-password | docker login`.'
        )
    env_vars = an.env_vars
    if "DOCKER_BUILDKIT" not in env_vars:
        edit.env_add.append(("DOCKER_BUILDKIT", "1"))
    if "CACHE_REPO_NAME" not in env_vars:
        edit.env_add.append(("CACHE_REPO_NAME", repo))
    if edit.env_add:
        edit.reasons.append(
            "`env.variables`: "
            + " and ".join(f'`{k}: "{v}"`' for k, v in edit.env_add)
            + " (BuildKit on; the ECR repository that holds the layer cache)."
        )
    setup: list[str] = []
    first = an.builds[0].command
    target = _setup_target(an, first)
    if target is not None and _continues_on_failure(p, target):
        # A failed command stops the rest of its phase; with `on-failure: CONTINUE` the next phase still runs,
        # so lines appended to the end of that phase might never run before the build.
        target = None
    build_pos = positions[id(first)]
    setup_pos = build_pos if target is None else 1 + max(positions[id(c)] for c in an.commands if c.phase == target)
    region, wait = _region(an, options, setup_pos, build_pos)
    if wait:
        target, setup_pos = None, build_pos
    first_pos = positions[id(todo[0].command)] if todo else -1
    if options.builder_image and ".dkr.ecr." in options.builder_image:
        # `buildx create --bootstrap` pulls a private builder image with the CLI's credentials: log in first.
        first_pos = min(first_pos, setup_pos - 1)
    if todo and not _login_covers(an, region, options, first_pos, positions):
        setup.append(login_command(region, registry_host("$AWS_ACCOUNT_ID", region, an.china)))
        edit.reasons.append(
            "Log in to this account's ECR registry before the build: the builder reads and "
            "writes the cache there, and no existing login covers it."
        )
    for host in _base_logins(an, options, region, bases, first_pos, positions) if todo else []:
        setup.append(login_command(host.split(".")[3], host))
        edit.reasons.append(
            f"Log in to `{host}` before the build: a Dockerfile starts FROM an image there, which "
            "the docker-container builder pulls with the docker CLI's credentials, and no "
            "existing login covers that registry."
        )
    own_uri = [t for t in texts if re.search(r"(?:^|[\s;&|(])(?:export\s+)?CACHE_URI=", t)]
    if any(not is_bot_line(t) for t in own_uri):
        raise by.Unsupported(
            "the buildspec already sets `CACHE_URI` for its own purpose; the cache flags the bot adds read that name"
        )
    _check_own_names(p, texts)
    if not own_uri:
        setup.append(f"CACHE_URI={registry_host('$AWS_ACCOUNT_ID', region, an.china)}/$CACHE_REPO_NAME")
    if not any("docker buildx version" in t for t in texts):
        setup.append(GUARD_LINE)
    own_builder = _users_builder(texts, options.builder_name)
    if own_builder:
        edit.reasons.append(
            f"The builds keep the buildspec's own buildx builder ({own_builder}); it is not "
            "the `docker` driver, so it can export the registry cache."
        )
    elif not any(
        re.search(rf"docker buildx create\b.*--name[= ]{re.escape(options.builder_name)}\b", t) for t in texts
    ):
        best_effort = options.cache_errors == "ignore"
        setup.append(builder_line(options.builder_name, options.builder_image, best_effort))
        if best_effort:
            edit.reasons.append(
                "If that builder cannot start (its BuildKit image is pulled on every build, from "
                "Docker Hub unless `builder_image` is set), the build goes on with the default "
                "builder and without the layer cache, and the log says so in one line."
            )
        edit.reasons.append(
            "Create a `docker-container` buildx builder once per build (the default `docker` "
            "driver cannot export a registry cache), after checking that buildx is installed."
        )
    if setup:
        if target is None:
            edit.before.setdefault(positions[id(first)], []).extend(setup)
        else:
            edit.at_end.setdefault(target, []).extend(setup)
    _plan_account(p, edit, positions)


def _check_own_names(p: Parsed, texts: list[str]) -> None:
    """Raise Unsupported when the build already has a CACHE_URI, or a store gives a variable the bot adds.

    The setup line `CACHE_URI=...` would overwrite the build's own value (a buildspec or project variable, or
    one a pipeline reads through `exported-variables`); a name in `parameter-store`/`secrets-manager` that the
    bot also wrote into `env.variables` would be defined twice in the buildspec.
    """
    env = by.get(p.root, "env")
    names: dict[str, set[str]] = {}
    for section in ("variables", "parameter-store", "secrets-manager", "exported-variables"):
        sec = by.get(env[1] if env else None, section)
        node = sec[1] if sec else None
        keys = (
            [k for k, _ in node.value]
            if isinstance(node, MappingNode)
            else (node.value if isinstance(node, yaml.SequenceNode) else [])
        )
        names[section] = {k.value for k in keys if isinstance(k, ScalarNode)}
    for section, found in names.items():
        if "CACHE_URI" in found:
            raise by.Unsupported(
                f"`env.{section}` names `CACHE_URI`, which the cache flags the bot adds read; the "
                "setup line would overwrite that value"
            )
    stored = names["parameter-store"] | names["secrets-manager"]
    clash = sorted(stored & BOT_ENV)
    if clash:
        raise by.Unsupported(
            f"`{clash[0]}` comes from Parameter Store or Secrets Manager, and the bot would "
            "also set it in `env.variables`"
        )
    for t in texts:
        if re.search(r"\$\{?CACHE_URI\b", t) and not is_bot_line(t) and not parse_bot_flags(t):
            raise by.Unsupported(
                "a command reads `$CACHE_URI`, which no line of the buildspec sets: a project "
                "variable of that name would be overwritten by the setup line the bot adds"
            )


def _users_builder(texts: list[str], ours: str) -> str | None:
    """The buildspec's own selected builder (`buildx create ... --use`, `buildx use X`), if it has one."""
    for text in texts:
        for sc in simple_commands(text):
            words = [w.value for w in sc.words]
            if words[:3] == ["docker", "buildx", "create"] and "--use" in words and ours not in words:
                return f"`{' '.join(words)[:80]}`"
            if words[:3] == ["docker", "buildx", "use"] and len(words) > 3 and words[-1] not in (ours, "default"):
                return f"`{' '.join(words)[:80]}`"
    return None


def _continues_on_failure(p: Parsed, phase: str) -> bool:
    """True when the phase sets `on-failure` to anything but ABORT (the next phase then runs anyway)."""
    phases = by.get(p.root, "phases")
    ph = by.get(phases[1] if phases else None, phase)
    value = by.get(ph[1], "on-failure") if ph else None
    return value is not None and str(getattr(value[1], "value", "")).strip().upper() != "ABORT"


def _setup_target(an: Analysis, first: BuildspecCommand) -> str | None:
    """The phase before the first build's phase that has commands (None: insert before the build)."""
    earlier = PHASES[: PHASES.index(first.phase)]
    for name in reversed(earlier):
        # POST_BUILD runs even after a failed BUILD, which may have stopped before lines appended to it
        # (https://docs.aws.amazon.com/codebuild/latest/userguide/view-build-details-phases.html).
        if first.phase == "post_build" and name == "build":
            continue
        if any(c.phase == name for c in an.commands):
            return name
    return None


def _plan_account(p: Parsed, edit: Edit, positions: dict[int, int]) -> None:
    """Insert the account-id derivation before its first use, unless something sets it first.

    An added line in POST_BUILD gets its own derivation when only BUILD set the id before it: POST_BUILD
    also runs after a failed BUILD (https://docs.aws.amazon.com/codebuild/latest/userguide/view-build-details-phases.html).
    """
    an = p.analysis
    if "AWS_ACCOUNT_ID" in an.env_names:
        return
    # (text, kind, command index, index in its list of added lines, phase)
    sequence: list[tuple[str, str, int, int, str]] = []
    for phase in PHASES:
        for n, c in enumerate(an.commands):
            if c.phase != phase:
                continue
            for k, line in enumerate(edit.before.get(n, [])):
                sequence.append((line, "before", n, k, phase))
            if n in edit.drop:
                continue
            value = c.value or ""
            if n in edit.mods:
                value = apply_splices(value, edit.mods[n])
            sequence.append((value, "item", n, 0, phase))
        for k, line in enumerate(edit.at_end.get(phase, [])):
            sequence.append((line, "end", -1, k, phase))
    set_in: set[str] = set()
    derived = False
    shift: dict[tuple[int, str], int] = {}
    for text, kind, n, k, phase in sequence:
        if _ACCOUNT_SET.search(text):
            set_in.add(phase)
            continue
        usable = set_in - ({"build"} if phase == "post_build" else set())
        if not _ACCOUNT_USE.search(text) or usable or (kind == "item" and (derived or set_in)):
            continue
        if not derived:
            edit.reasons.append(
                "Derive `AWS_ACCOUNT_ID` from `$CODEBUILD_BUILD_ARN` before its first use "
                "(CodeBuild does not predefine it); a project variable of that name still wins."
            )
        derived = True
        set_in.add(phase)
        if kind == "item":
            edit.before.setdefault(n, []).insert(0, ACCOUNT_LINE)
            continue
        key = (n, phase)
        lines = edit.before[n] if kind == "before" else edit.at_end[phase]
        lines.insert(k + shift.get(key, 0), ACCOUNT_LINE)
        shift[key] = shift.get(key, 0) + 1
