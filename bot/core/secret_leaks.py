"""Credentials a registry cache export would carry out of the build machine: such a build keeps its buildspec lines.

`mode=max` exports the layers of every stage the build runs, `mode=min` only those of the final image
(https://docs.docker.com/build/cache/backends/). Before the bot's change those layers never left the CodeBuild
machine, so a layer that holds a token (a `.git/config` with the clone URL, a `.npmrc` written by a RUN) or a
build argument that carries one (recorded in the image history, https://docs.docker.com/build/building/secrets/)
would be a new leak.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.core.buildspec.analysis import Analysis, Build, BuildspecCommand, _Shell
from bot.core.buildspec.build_args import passed_args
from bot.core.dockerfile.cachetable import built_stages
from bot.core.dockerfile.dockerignore import Matcher, brings, needed_sources, read_patterns
from bot.core.dockerfile.parse import Dockerfile, DockerfileParseError, Instruction, Stage, parse, split_words
from bot.core.dockerfile.reorder import _join, copy_parts, stage_cwds
from bot.core.model import Options, RepoSnapshot
from bot.core.shell.run_commands import run_commands
from bot.core.shell.words import simple_commands

SECRETS_DOC = "https://docs.docker.com/build/building/secrets/"
CACHE_DOC = "https://docs.docker.com/build/cache/backends/"
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|_KEY$|^NPM_AUTH|CREDENTIAL|CREDS\b|PRIVATE_?KEY|API_?KEY"
    r"|(?:^|_)PAT(?:_|$)",
    re.I,
)
_CRED_FILES = frozenset(
    {".netrc", "_netrc", ".npmrc", ".pypirc", "pip.conf", "pip.ini", ".git-credentials", ".gitconfig"}
)
# The user-info part of an HTTPS (or git://) URL: `https://user:$TOKEN@`, `https://$TOKEN@`, `https://ci@`.
_USERINFO = re.compile(r"\b(?:https?|git)://([^/@\s\"']+)@")
# Tokens GitHub and GitLab accept as the user name of an HTTPS URL.
_LITERAL_TOKEN = re.compile(r"^(gh[pousr]_|github_pat_|glpat-)|^[A-Za-z0-9_-]{32,}$")
_AUTH_WORDS = re.compile(r"password|passwd|_auth|token|secret|authorization", re.I)
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_CLONE_VALUE_OPTS = frozenset(
    {
        "--depth",
        "-b",
        "--branch",
        "-o",
        "--origin",
        "-c",
        "--config",
        "--reference",
        "--separate-git-dir",
        "-j",
        "--jobs",
        "-u",
        "--upload-pack",
        "--template",
        "--shallow-since",
        "--shallow-exclude",
        "--filter",
        "--server-option",
    }
)


def is_secret_name(name: str) -> bool:
    """True when a variable's name says it holds a credential (`NPM_TOKEN`, `DB_PASSWORD`, `API_KEY`)."""
    return _SECRET_NAME.search(name) is not None and "PUBLIC" not in name.upper()


@dataclass(frozen=True)
class Checkout:
    """A folder (repository-relative) whose `.git/config` a buildspec command fills with a token."""

    path: str
    line: int
    text: str


@dataclass(frozen=True)
class Leak:
    """One credential in one stage of one build: what holds it, where, and what to do instead."""

    what: str
    fix: str
    stage: int
    path: str | None = None  # where the secret lies in that stage's filesystem (None: not a file, or unknown)
    is_file: bool = True


# --- the buildspec side: checkouts with a token in .git/config --------------------------------------------------


def url_tokens(text: str) -> list[str]:
    """The user-info parts of the URLs in ``text`` that hold a credential.

    `user:password@` (literal or a variable), a variable whose name says it is secret (`https://$TOKEN@`), or a
    literal token (`https://ghp_...@`); a bare user name (`https://ci@`, `https://$USER@`) is no credential.
    """
    out = []
    for m in _USERINFO.finditer(text):
        info = m[1]
        user, colon, password = info.partition(":")
        names = _VAR.findall(info)
        if colon and password or any(is_secret_name(n) for n in names) or not names and _LITERAL_TOKEN.search(user):
            out.append(info)
    return out


def _clone_dir(words: list[str]) -> tuple[str, str] | None:
    """(URL, folder) of a `git clone`."""
    operands: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in _CLONE_VALUE_OPTS:
            skip = True
        elif not w.startswith("-"):
            operands.append(w)
    if not operands:
        return None
    url = operands[0]
    folder = operands[1] if len(operands) > 1 else posixpath.basename(url.rstrip("/")).removesuffix(".git")
    return url, folder


def _token_target(words: list[str]) -> str | None:
    """The folder (relative to the command's directory) whose `.git/config` this git command puts a token in."""
    where = "."
    while len(words) > 2 and words[1] == "-C":
        where = posixpath.join(where, words[2])
        words = [words[0], *words[3:]]
    sub = words[1:2]
    text = " ".join(words)
    if sub == ["clone"]:
        found = _clone_dir(words[2:])
        if found and url_tokens(found[0]):
            return posixpath.join(where, found[1])
        return None
    if sub == ["remote"] and words[2:3] in (["set-url"], ["add"]) and url_tokens(text):
        return where
    if sub == ["config"] and not set(words) & {"--global", "--system", "--file", "-f", "--get", "--unset"}:
        keyed = any(re.match(r"(?i)url\..*\.(push)?insteadof$", w) for w in words[2:])
        header = any(re.match(r"(?i)http\..*extraheader$", w) for w in words[2:]) and "$" in text
        if (keyed and url_tokens(text)) or header:
            return where
    return None


def token_checkouts(
    an: Analysis, until: BuildspecCommand, offset: int, line_of: Callable[[BuildspecCommand, int], int]
) -> list[Checkout]:
    """Folders whose `.git/config` holds a token when the build at ``offset`` of command ``until`` starts.

    The commands run in one shell session (buildspec version 0.2), so a `cd` carries over.
    """
    known = {k: (v if "$" not in v and "`" not in v else None) for k, v in an.env_vars.items()}
    shell = _Shell(known, an.env_vars)
    out: list[Checkout] = []
    for cmd in an.commands:
        for sc in simple_commands(cmd.value or ""):
            if cmd is until and (sc.words[0].start if sc.words else offset) >= offset:
                break
            shell.at_depth(sc.depth)
            words = [w.value for w in sc.words]
            if not words:
                for a in sc.assignments:
                    name, _, raw = a.raw.partition("=")
                    shell.assign(name, raw)
                continue
            if words[0] == "export":
                for w in sc.words[1:]:
                    name, eq, raw = w.raw.partition("=")
                    if eq:
                        shell.assign(name, raw)
            elif words[0] == "cd":
                shell.cd([w for w in words[1:] if not w.startswith("-") or w == "-"])
            elif words[0] == "pushd":
                shell.stack.append((shell.cwd, shell.cwd_unresolved))
                shell.cd(words[1:])
            elif words[0] == "popd" and shell.stack:
                shell.cwd, shell.cwd_unresolved = shell.stack.pop()
            elif words[0] == "git":
                target = _token_target(words)
                path = shell.resolve(target)[0] if target is not None else None
                if path is not None:
                    text = " ".join(words)
                    out.append(Checkout(path, line_of(cmd, sc.words[0].start), text[:100]))
        shell.at_depth(0)  # the next command starts at the top level
        if cmd is until:
            break
    return out


# --- the Dockerfile side -------------------------------------------------------------------------------------


def _label(stage: Stage) -> str:
    return f"`{stage.name}`" if stage.name else f"{stage.index}"


def _final_chain(df: Dockerfile, target: str | None) -> list[Stage]:
    """The stage the build outputs and the stages it is built FROM: their layers are the final image's."""
    stages = list(df.stages)
    final = df.stage_ref(target, len(stages)) if target else stages[-1] if stages else None
    if final is None:
        return stages  # an unknown --target: count every stage as the image's
    chain: list[Stage] = []
    while final is not None:
        chain.append(final)
        final = df.stage_ref(final.base, final.index)
    return chain


def _home(path: str) -> str:
    return re.sub(r"^(~|\$\{?HOME\}?)(?=/|$)", "/root", path)


def _abs(path: str, cwd: tuple[str, str] | None, root: bool = True) -> str | None:
    """The absolute path in the stage (None: unknown); `~` is /root unless a USER came before."""
    if not root and re.match(r"(~|\$\{?HOME\b)", path):
        return None
    path = _home(path)
    if path.startswith("/"):
        return posixpath.normpath(path)
    joined = _join(cwd, path) if "$" not in path else None
    return joined[1] if joined is not None else None


@dataclass
class _Scope:
    """The variables a stage's RUN steps see with a value: ARGs with a default or passed, ENVs."""

    valued: set[str]
    env: set[str]  # what a stage built FROM this one inherits (an ARG's scope ends with its stage)


def _writes(words: tuple[str, ...], redirects: tuple[str, ...]) -> list[str]:
    """Files one simple command writes: redirect and `tee` targets, the destination of a `cp`/`mv`/`install`."""
    out = [r for r in redirects if not r.startswith("&") and not r.startswith("/dev/")]
    name = posixpath.basename(words[0]) if words else ""
    if name == "tee":
        out += [w for w in words[1:] if not w.startswith("-")]
    if name in ("cp", "mv", "install"):
        operands = [w for w in words[1:] if not w.startswith("-")]
        if len(operands) >= 2:
            out.append(operands[-1])
    if name in ("npm", "yarn", "pnpm") and (words[1:3] == ("config", "set") or words[1:2] == ("set",)):
        out.append("~/.npmrc")
    if name in ("pip", "pip3") and words[1:3] == ("config", "set"):
        out.append("~/.config/pip/pip.conf")
    if name == "docker" and words[1:2] == ("login",):
        out.append("~/.docker/config.json")
    if name == "git" and "--global" in words and words[1:2] == ("config",):
        out.append("~/.gitconfig")
    return out


def _is_cred_file(path: str) -> bool:
    return posixpath.basename(path) in _CRED_FILES or path.endswith(".docker/config.json")


def _rm_words(text: str) -> list[tuple[str, ...]]:
    """`rm` commands found in shell text the splitter cannot read (substitutions, heredocs)."""
    return [("rm", *m[1].split()) for m in re.finditer(r"\brm((?:[ \t]+[^\s;&|)]+)+)", text)]


def _removed(path: str, later: list[tuple[str, ...]]) -> bool:
    """True when a later `rm` of the same RUN deletes ``path`` (or a folder holding it)."""
    target = _home(posixpath.normpath(path))
    for words in later:
        if not words or posixpath.basename(words[0]) != "rm":
            continue
        for w in words[1:]:
            if w.startswith("-"):
                continue
            gone = _home(posixpath.normpath(w.strip("\"'")))
            if target == gone or target.startswith(gone.rstrip("/") + "/"):
                return True
    return False


def _has_value(url_part: str, valued: set[str]) -> bool:
    """A token in a URL is there when it is literal, or a variable that holds a value."""
    names = _VAR.findall(url_part)
    return not names or bool(set(names) & valued)


def _run_leaks(
    df: Dockerfile,
    inst: Instruction,
    scope: _Scope,
    cwd: tuple[str, str] | None,
    where: str,
    stage: Stage,
    secret_args: frozenset[str] = frozenset(),
) -> list[Leak]:
    """The credential one RUN leaves in its layer (the first one found), if any.

    ``secret_args``: build args the build passes a credential in, whatever their names.
    """
    text = df.block(inst)
    first_user = df.first_index("USER")
    root = first_user is None or first_user >= inst.index
    # `'${NPM_TOKEN}'` stays a placeholder that npm expands when it reads the file: no secret is written.
    expanded = set(_VAR.findall(re.sub(r"'[^'\n]*'", "", text)))
    run_refs = [n for n in _VAR.findall(text) if n in scope.valued and n in expanded]
    run_secret = any(is_secret_name(n) or n in secret_args for n in run_refs) or "/run/secrets/" in text
    commands = run_commands(inst)
    parts: list[tuple[tuple[str, ...], tuple[str, ...], list[tuple[str, ...]]]]
    if commands is None:
        # Substitutions or heredocs: the redirects and removals are read from the text.
        targets = re.findall(r"(?:>>?|\btee\s+(?:-a\s+)?)\s*[\"']?([~$/\w.{}-][^\s;&|\"')]*)", text)
        parts = [((), tuple(targets), _rm_words(text))]
    else:
        parts = [(c.words, c.redirects, [d.words for d in commands[n + 1 :]]) for n, c in enumerate(commands)]
    for words, redirects, later in parts:
        joined = " ".join(words) or text
        refs = [n for n in _VAR.findall(joined) if n in scope.valued and n in expanded]
        secret_refs = [n for n in refs if is_secret_name(n) or n in secret_args]
        folder = _token_target(list(words)) if words[:1] == ("git",) else None
        if folder is not None and any(_has_value(u, scope.valued) for u in url_tokens(joined)):
            path = _abs(posixpath.join(folder, ".git"), cwd, root)
            if not _removed(path or posixpath.join(folder, ".git"), later):
                return [
                    Leak(
                        f"{where} (stage {_label(stage)}) runs `{joined[:80]}`, which writes the token into "
                        "that checkout's `.git/config`, kept in the layer.",
                        _fix_file(".git/config"),
                        stage.index,
                        path,
                    )
                ]
        for target in _writes(words, redirects):
            cred = _is_cred_file(target)
            if words[:1] == ("git",) and not (url_tokens(joined) or "extraheader" in joined.lower()):
                continue
            carries = (
                bool(secret_refs)
                or "/run/secrets/" in joined
                or cred
                and (run_secret or bool(run_refs) and _AUTH_WORDS.search(text) is not None)
            )
            if not carries or _removed(target, later):
                continue
            what = f"`${secret_refs[0]}`" if secret_refs else "a credential"
            path = _abs(target, cwd, root)
            return [
                Leak(
                    f"{where} (stage {_label(stage)}) writes {what} into `{target}`, which stays in that step's layer.",
                    _fix_file(path or target),
                    stage.index,
                    path,
                )
            ]
    return []


def _fix_file(target: str) -> str:
    name = posixpath.basename(target).lstrip(".") or "secret"
    return (
        f"Mount the credential only while the step runs: `RUN --mount=type=secret,id={name},target={target} "
        f"...` with `docker buildx build --secret id={name},src=<file>` (or `env=<variable>`), see "
        f"{SECRETS_DOC}; or delete the file in the same RUN."
    )


def dockerfile_leaks(
    df: Dockerfile,
    dockerfile: str,
    target: str | None,
    passed: Mapping[str, int],
    opaque: bool,
    stages: set[int],
    build_where: str,
    per_build: frozenset[str],
    secret_args: frozenset[str] = frozenset(),
) -> list[Leak]:
    """Credentials the RUN steps and passed build args leave in the stages this build runs.

    ``passed``: build-arg name → line of the build that passes it; ``opaque``: the build may pass more args;
    ``secret_args``: the passed args whose value is a credential (`GH=$GITHUB_TOKEN`, a URL with a password).
    """
    cwds = stage_cwds(df)
    out: list[Leak] = []
    scopes: dict[int, _Scope] = {}
    by_name = {s.name: s for s in df.stages if s.name}
    for stage in df.stages:
        base = by_name.get(stage.base.lower())
        inherited = scopes.get(base.index) if base is not None and base.index < stage.index else None
        scope = _Scope(set(inherited.env) if inherited else set(), set(inherited.env) if inherited else set())
        scopes[stage.index] = scope
        for inst in df.stage_instructions(stage)[1:]:
            where = f"{dockerfile}:{inst.lineno}"
            if inst.keyword == "ARG":
                for word in split_words(inst.args):
                    name, eq, default = word.partition("=")
                    if eq and default or name in passed or opaque:
                        scope.valued.add(name)
                    if stage.index in stages and name in passed and (is_secret_name(name) or name in secret_args):
                        volatile = (
                            " It also changes on every build, so every RUN after it re-runs (the cache table shows it)."
                            if name in per_build
                            else ""
                        )
                        out.append(
                            Leak(
                                f"`ARG {name}` ({where}, stage {_label(stage)}) receives `--build-arg {name}` from "
                                f"{build_where}: build arguments are not meant for secrets, their value is in the "
                                "environment of every RUN step after it (which may write it into its layer) and is "
                                "kept "
                                f"in the image's build history.{volatile}",
                                f"Pass it as a secret instead: `--secret id={name},env={name}` on the build and "
                                f"`RUN --mount=type=secret,id={name} {name}=$(cat /run/secrets/{name}) ...` in the "
                                f"Dockerfile ({SECRETS_DOC}); or drop the build argument.",
                                stage.index,
                                None,
                                is_file=False,
                            )
                        )
            elif inst.keyword == "ENV":
                words = split_words(inst.args)
                pairs = (
                    [w.partition("=") for w in words]
                    if all("=" in w for w in words)
                    else [(words[0], "=", " ".join(words[1:]))]
                    if words
                    else []
                )
                for name, _, value in pairs:
                    refs = _VAR.findall(value)
                    if value.strip("\"'") and (not refs or set(refs) & scope.valued):
                        scope.valued.add(name)
                        scope.env.add(name)
            elif inst.keyword == "RUN" and stage.index in stages:
                out += _run_leaks(df, inst, scope, cwds.get(inst.index), where, stage, secret_args)
    return out


def checkout_leaks(
    df: Dockerfile | None,
    dockerfile: str,
    context: str,
    checkouts: list[Checkout],
    ignore: Matcher,
    ignore_path: str,
    stages: set[int],
    buildspec: str,
) -> list[Leak]:
    """Whole-context copies that bring a checkout's token-holding `.git/config` into a layer."""
    out: list[Leak] = []
    for co in checkouts:
        if context not in (".", "") and co.path != context and not co.path.startswith(context + "/"):
            continue
        rel = posixpath.relpath(co.path, context or ".")
        git = ".git" if rel == "." else f"{rel}/.git"
        if ignore.excluded(f"{git}/config"):
            continue
        said = (
            f"{buildspec}:{co.line} (`{co.text}`) writes a token into `{git}/config` in the build context, and "
            f"`{ignore_path}` does not leave `{git}` out"
        )
        unhook = (
            "take the token out of the Git configuration before the build (clone without it and give it to Git "
            "through a credential helper, or `git remote set-url` to the URL without it)"
        )
        runs_git = df is not None and needed_sources([df])[1]
        fix = (
            f"The Dockerfile runs git, so keep `{git}` and {unhook}."
            if runs_git
            else f"Add `{git}` to `{ignore_path}`, or {unhook}."
        )
        if df is None:
            out.append(
                Leak(
                    f"{said}; `{dockerfile}` could not be read, so a COPY of the whole context may copy it "
                    "into a layer.",
                    fix,
                    -1,
                    None,
                )
            )
            continue
        cwds = stage_cwds(df)
        for inst in df.instructions:
            if inst.keyword not in ("COPY", "ADD") or inst.flag("from") is not None or inst.stage not in stages:
                continue
            parts = copy_parts(inst)
            sources = [posixpath.normpath(s.lstrip("/") or ".") for s in parts[0]] if parts else []
            hit = next((s for s in sources if brings(s, f"{git}/config")), None)
            if parts is None or hit is None:
                continue
            dest = _join(cwds.get(inst.index), parts[1])
            inside = posixpath.relpath(git, hit) if hit != "." else git
            path = posixpath.normpath(posixpath.join(dest[1], inside)) if dest is not None else None
            stage = df.stages[inst.stage]
            out.append(
                Leak(
                    f"{said}; `{' '.join(inst.line_text.split())[:60]}` ({dockerfile}:{inst.lineno}, stage "
                    f"{_label(stage)}) copies it into a layer.",
                    fix,
                    stage.index,
                    path,
                )
            )
            break
    return out


def _min_safe(df: Dockerfile, leaks: list[Leak], target: str | None) -> bool:
    """True when no leak is in the final image's layers: `mode=min` exports only those."""
    chain = _final_chain(df, target)
    held = {leak.stage for leak in leaks}
    if any(s.index in held for s in chain) or any(leak.stage < 0 for leak in leaks):
        return False
    names = {s.index: {str(s.index), s.name or str(s.index)} for s in df.stages}
    for stage in chain:
        for inst in df.stage_instructions(stage):
            src_stage = (inst.flag("from") or "").lower() if inst.keyword in ("COPY", "ADD") else ""
            for leak in leaks:
                if not src_stage or src_stage not in names[leak.stage] or not leak.is_file:
                    continue
                parts = copy_parts(inst)
                if leak.path is None or parts is None:
                    return False
                for src in parts[0]:
                    s = posixpath.normpath(_home(src))
                    if any(c in s for c in "*?[$") or s == "/" or leak.path == s or leak.path.startswith(s + "/"):
                        return False
    return True


def _ignore_path(paths: frozenset[str], ignores: Mapping[str, str], context: str, dockerfile: str | None) -> str:
    """BuildKit reads `<Dockerfile>.dockerignore` first, then `<context>/.dockerignore`."""
    if dockerfile and (dockerfile + ".dockerignore" in paths or dockerfile + ".dockerignore" in ignores):
        return dockerfile + ".dockerignore"
    return posixpath.join(context, ".dockerignore") if context not in ("", ".") else ".dockerignore"


def build_refusal(
    an: Analysis,
    b: Build,
    buildspec: str,
    snapshot: RepoSnapshot,
    options: Options,
    ignores: Mapping[str, str],
    line_of: Callable[[BuildspecCommand, int], int],
) -> list[str]:
    """Why this build must not export a cache (one message per credential), or [] when it may."""
    line = line_of(b.command, b.build.verbs[0].start)
    build_where = f"{buildspec}:{line}"
    args = passed_args(b.build.values("--build-arg"))
    passed = {name: line for name, _ in args}
    # `--build-arg GH=$GITHUB_TOKEN` carries a credential under a name that does not say so.
    secret_args = frozenset(
        name for name, value in args if any(is_secret_name(n) for n in _VAR.findall(value)) or url_tokens(value)
    )
    per_build = frozenset(b.volatile_args)
    opaque = any(raw not in b.flag_values or "--build-arg" in b.flag_values[raw] for raw in b.build.flag_vars)
    text = snapshot.text(b.dockerfile) if b.dockerfile else None
    df: Dockerfile | None = None
    if text is not None:
        try:
            df = parse(text)
        except DockerfileParseError:
            df = None
    leaks: list[Leak] = []
    dockerfile = b.dockerfile or "the Dockerfile"
    context = posixpath.normpath(b.context) if b.context else None
    stages = built_stages(df, (b.target,)) if df is not None else set()
    if context is not None:
        paths = frozenset(snapshot.paths)
        ignore_path = _ignore_path(paths, ignores, context, b.dockerfile)
        ignore_text = ignores.get(ignore_path, snapshot.text(ignore_path))
        matcher = Matcher(read_patterns(ignore_text or ""))
        checkouts = token_checkouts(an, b.command, b.build.docker.start, line_of)
        leaks += checkout_leaks(df, dockerfile, context, checkouts, matcher, ignore_path, stages, buildspec)
    if df is not None:
        leaks += dockerfile_leaks(df, dockerfile, b.target, passed, opaque, stages, build_where, per_build, secret_args)
    elif options.mode == "max":
        secret = [n for n in passed if is_secret_name(n) or n in secret_args]
        if secret:
            leaks.append(
                Leak(
                    f"`--build-arg {secret[0]}` ({build_where}) passes a credential to `{dockerfile}`, "
                    "which the bot could not read, so it cannot tell which layers hold it.",
                    f"Pass it with `--secret id={secret[0]},env={secret[0]}` and read it in "
                    f"`RUN --mount=type=secret,id={secret[0]}` ({SECRETS_DOC}).",
                    -1,
                    None,
                    False,
                )
            )
    if df is not None and options.mode == "min":
        leaks = [leak for leak in leaks if not _min_safe(df, [leak], b.target)]
    if not leaks:
        return []
    min_note = ""
    if df is not None and options.mode == "max" and _min_safe(df, leaks, b.target):
        held = sorted({leak.stage for leak in leaks})
        names = ", ".join(_label(df.stages[i]) for i in held)
        min_note = (
            f" Or set `mode: min` in .github/ecr-cache.yml: the secret lives only in stage {names}, which the "
            f"final image does not contain, and `min` exports only the final image's layers ({CACHE_DOC})."
        )
    verb = "every layer of every stage it runs" if options.mode == "max" else "the final image's layers"
    return [
        f"the build on line {line} would export {verb} to the ECR cache repository (before, they never left "
        f"the build machine), and {leak.what} {leak.fix}{min_note}"
        for leak in leaks
    ]
