"""Recognise `docker build` / `docker image build` / `docker buildx build` and rewrite it for the ECR cache."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.shell.words import SimpleCommand, Word, simple_commands, substitutions

# Flags of `docker build` / `docker buildx build` that take a value
# (https://docs.docker.com/reference/cli/docker/buildx/build/).
_VALUE_LONG = frozenset(
    {
        "add-host",
        "allow",
        "annotation",
        "attest",
        "build-arg",
        "build-context",
        "builder",
        "cache-from",
        "cache-to",
        "call",
        "cgroup-parent",
        "cpu-period",
        "cpu-quota",
        "cpu-shares",
        "cpuset-cpus",
        "cpuset-mems",
        "file",
        "iidfile",
        "isolation",
        "label",
        "memory",
        "memory-swap",
        "metadata-file",
        "network",
        "no-cache-filter",
        "output",
        "platform",
        "progress",
        "provenance",
        "sbom",
        "secret",
        "security-opt",
        "shm-size",
        "ssh",
        "tag",
        "target",
        "ulimit",
    }
)
_VALUE_SHORT = frozenset("ftmco")
_DOCKER_GLOBAL_VALUE = frozenset({"-H", "--host", "--config", "-c", "--context", "-l", "--log-level"})
_VAR_ONLY = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")
MARKER = "type=registry,ref=$CACHE_URI:"
IGNORE_ERROR = ",ignore-error=true"
NO_PROVENANCE = "--provenance=false"
_TAG = r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\}|[^\s,{}])+"
# The bot's own `${CACHE_URI:+--cache-from ...}` words are cache flags; any other conditional word stays a
# positional (a `${FRESH:+--no-cache}` of the user's is not always on).
_CONDITIONAL_FLAG = re.compile(r"\$\{CACHE_URI:\+(?P<name>--cache-(?:from|to)) (?P<value>\S+)\}")


@dataclass(frozen=True)
class Option:
    """One flag of a build command and the span it covers (flag and its value)."""

    name: str
    value: str | None
    start: int
    end: int


@dataclass(frozen=True)
class DockerBuild:
    """One build command found in a shell string, with offsets into that string."""

    command: SimpleCommand
    docker: Word
    verbs: tuple[Word, ...]
    options: tuple[Option, ...]
    positionals: tuple[Word, ...]
    flag_vars: tuple[str, ...]

    @property
    def kind(self) -> str:
        """`build`, `image` or `buildx` — how the user spelled the command."""
        return self.verbs[0].value if len(self.verbs) > 1 else "build"

    def values(self, *names: str) -> list[str]:
        """Values of every option whose name is one of ``names``."""
        return [o.value for o in self.options if o.name in names and o.value is not None]

    def has(self, *names: str) -> bool:
        """True when one of the flags ``names`` is present."""
        return any(o.name in names for o in self.options)

    @property
    def dockerfile(self) -> str | None:
        """The `-f/--file` value as written (last one wins, like the CLI)."""
        files = self.values("-f", "--file")
        return files[-1] if files else None

    @property
    def real_positionals(self) -> tuple[Word, ...]:
        """Positional words that are not a bare `$VAR` which may expand to flags."""
        if len(self.positionals) == 1:
            return self.positionals
        return tuple(p for p in self.positionals if p.raw not in self.flag_vars)

    @property
    def context(self) -> str | None:
        """The context argument as written, or None when absent or ambiguous."""
        real = self.real_positionals
        return real[0].value if len(real) == 1 else None

    @property
    def tags(self) -> list[str]:
        """Every `-t/--tag` value."""
        return self.values("-t", "--tag")

    @property
    def global_flags(self) -> tuple[str, ...]:
        """Flags between `docker` and the build verb (`-H tcp://...`, `--context x`)."""
        words = self.command.words
        return tuple(w.value for w in words[words.index(self.docker) + 1 : words.index(self.verbs[0])])

    @property
    def rewritten(self) -> bool:
        """True when the bot's cache flags are already on this command."""
        return any(o.name == "--cache-from" and (o.value or "").startswith(MARKER) for o in self.options)


def parse_build(cmd: SimpleCommand) -> DockerBuild | None:
    """The build in one simple command, or None when it is not a build."""
    words = list(cmd.words)
    if not words or words[0].value not in ("docker", "/usr/bin/docker", "/usr/local/bin/docker"):
        return None
    i = 1
    while i < len(words) and words[i].value.startswith("-"):
        i += 2 if words[i].value in _DOCKER_GLOBAL_VALUE else 1
    verbs: list[Word] = []
    if i < len(words) and words[i].value == "build":
        verbs = [words[i]]
    elif i + 1 < len(words) and words[i].value in ("image", "buildx") and words[i + 1].value == "build":
        verbs = [words[i], words[i + 1]]
    if not verbs:
        return None
    options: list[Option] = []
    positionals: list[Word] = []
    j = words.index(verbs[-1]) + 1
    only_positional = False
    while j < len(words):
        w = words[j]
        v = w.value
        conditional = None if only_positional else _CONDITIONAL_FLAG.fullmatch(v)
        if conditional:
            options.append(Option(conditional["name"], conditional["value"], w.start, w.end))
            j += 1
            continue
        if only_positional or not v.startswith("-") or v == "-":
            positionals.append(w)
            j += 1
            continue
        if v == "--":
            only_positional = True
            j += 1
            continue
        if v.startswith("--"):
            name, eq, val = v.partition("=")
            if eq:
                options.append(Option(name, val, w.start, w.end))
            elif name[2:] in _VALUE_LONG and j + 1 < len(words):
                options.append(Option(name, words[j + 1].value, w.start, words[j + 1].end))
                j += 1
            else:
                options.append(Option(name, None, w.start, w.end))
            j += 1
            continue
        short = v[1:2]
        if short in _VALUE_SHORT:
            name = "-" + short
            if len(v) > 2:
                options.append(Option(name, v[2:].removeprefix("="), w.start, w.end))
            elif j + 1 < len(words):
                options.append(Option(name, words[j + 1].value, w.start, words[j + 1].end))
                j += 1
            else:
                options.append(Option(name, None, w.start, w.end))
        else:
            options.append(Option(v, None, w.start, w.end))
        j += 1
    # A bare `$VAR` standing where a context would be is far more often a context than flags.
    flag_vars = [] if len(positionals) == 1 else [p.raw for p in positionals if _VAR_ONLY.match(p.raw)]
    return DockerBuild(cmd, words[0], tuple(verbs), tuple(options), tuple(positionals), tuple(flag_vars))


def is_pull(words: list[str]) -> bool:
    """True when the command ``words`` are a `docker pull` (or `docker image pull`): it only reads an image."""
    return words[:2] == ["docker", "pull"] or words[:3] == ["docker", "image", "pull"]


def find_builds(s: str) -> list[DockerBuild]:
    """Every build command in the shell string ``s`` (commented-out lines are not commands)."""
    if "build" not in s:
        return []
    return [b for b in (parse_build(c) for c in simple_commands(s)) if b is not None]


@dataclass(frozen=True)
class CacheFlags:
    """What the bot adds to one build: its cache tag, the cache mode, the output flag, and whether cache errors
    are ignored (`best_effort`) or fail the build."""

    tag: str
    mode: str = "max"
    output: str | None = "--load"
    best_effort: bool = False


def cache_ref(tag: str) -> str:
    """The registry cache reference of one cache tag (`type=registry,ref=$CACHE_URI:<tag>`)."""
    return f"{MARKER}{tag}"


def cache_flags(ref: str, mode: str) -> tuple[str, str]:
    """The `--cache-from` and `--cache-to` words for the cache reference ``ref`` (see `cache_ref`) and ``mode``."""
    return f"--cache-from {ref}", f"--cache-to {ref},mode={mode},image-manifest=true,oci-mediatypes=true"


def cache_flags_text(flags: CacheFlags) -> str:
    """The exact flag text inserted after `build`."""
    cache_from, cache_to = cache_flags(cache_ref(flags.tag), flags.mode)
    if flags.best_effort:
        # `ignore-error` keeps a failed export (no repository yet, no push permission) from failing the build
        # (https://docs.docker.com/build/cache/backends/); a failed import is only a warning anyway
        # (moby/buildkit#948). `${CACHE_URI:+...}` drops both flags when the builder could not start and the
        # setup emptied CACHE_URI: the default `docker` driver refuses a cache export.
        text = f" ${{CACHE_URI:+{cache_from}}} ${{CACHE_URI:+{cache_to}{IGNORE_ERROR}}}"
    else:
        text = f" {cache_from} {cache_to}"
    if flags.output == "--push":
        # Pushed from a docker-container builder, buildx (0.10+) adds a provenance attestation and the tag becomes
        # an image index, which `docker push` of a loaded image never produced and AWS Lambda rejects
        # (docker/buildx#1533): keep pushing a plain image manifest.
        return text + f" {flags.output} {NO_PROVENANCE}"
    return text + (f" {flags.output}" if flags.output else "")


def _bot_flags_pattern(group: str, best_effort: bool) -> str:
    """A regex for the text `cache_flags_text` writes, its groups named ``group`` + tag/mode/out."""
    tag, mode = "TAGxPLACEHOLDER", "MODExPLACEHOLDER"  # re.escape leaves letters as they are
    text = re.escape(cache_flags_text(CacheFlags(tag, mode, None, best_effort)))
    first = text.index(tag)
    text = text[:first] + f"(?P<{group}tag>{_TAG})" + text[first + len(tag) :].replace(tag, f"(?P={group}tag)")
    output = rf"(?P<{group}out> --load| --push(?: {re.escape(NO_PROVENANCE)})?)?"
    return text.replace(mode, f"(?P<{group}mode>max|min)") + output


# Strict flags (`cache_errors: fatal`, and every build the bot rewrote before `ignore-error` existed), or
# best-effort flags: the export ignores errors and both flags vanish when the setup emptied CACHE_URI.
_BOT_FLAGS = re.compile(f"{_bot_flags_pattern('', False)}|{_bot_flags_pattern('b', True)}")


def output_flag(build: DockerBuild) -> str | None:
    """`--load` unless the build already pushes, loads or exports (then nothing is added)."""
    # A docker-container builder keeps its result in its own cache unless told otherwise; `--load`
    # (`--output=type=docker`) puts the image in the local image store for later `docker tag/push/run`
    # and scanners (https://docs.docker.com/reference/cli/docker/buildx/build/#load).
    if build.has("--push", "--load", "--output", "-o"):
        return None
    return "--load"


Splice = tuple[int, int, str]


def build_splices(build: DockerBuild, flags: CacheFlags) -> list[Splice]:
    """Text splices (start, end, replacement) in the command string turning ``build`` into a cached build."""
    splices: list[Splice] = []
    verb_start = build.verbs[0].start
    verb_end = build.verbs[-1].end
    splices.append((verb_start, verb_end, "buildx build" + cache_flags_text(flags)))
    words = build.command.words
    for opt in build.options:
        if opt.name in ("--cache-from", "--cache-to"):
            prev = max((w.end for w in words if w.end <= opt.start), default=opt.start)
            splices.append((prev, opt.end, ""))
    return splices


def parse_bot_flags(command: str) -> list[CacheFlags]:
    """The cache flags the bot added to ``command``, in order (used to verify an edit)."""
    out = []
    for m in _BOT_FLAGS.finditer(command):
        best = m["btag"] is not None
        output = ((m["bout"] if best else m["out"]) or "").split()
        out.append(
            CacheFlags(
                m["btag"] if best else m["tag"], m["bmode"] if best else m["mode"], output[0] if output else None, best
            )
        )
    return out


def apply_splices(s: str, splices: list[Splice]) -> str:
    """Apply non-overlapping splices to ``s``."""
    out = s
    for start, end, rep in sorted(splices, key=lambda t: t[0], reverse=True):
        out = out[:start] + rep + out[end:]
    return out


@dataclass(frozen=True)
class LegacyLogin:
    """One `$(aws ecr get-login ...)` (AWS CLI v1 only) and its replacement."""

    start: int
    end: int
    region: str
    registry_ids: tuple[str, ...]

    def replacement(self, china: bool = False) -> str:
        """`aws ecr get-login-password | docker login` per registry account."""
        accounts = self.registry_ids or ("$AWS_ACCOUNT_ID",)
        return " && ".join(login_command(self.region, registry_host(acct, self.region, china)) for acct in accounts)


def _dns_suffix(region: str, china: bool = False) -> str:
    # ECR endpoints of the aws-cn partition end in amazonaws.com.cn
    # (https://docs.amazonaws.cn/en_us/aws/latest/userguide/endpoints-Beijing.html).
    return "amazonaws.com.cn" if china or region.startswith("cn-") else "amazonaws.com"


def is_china(text: str) -> bool:
    """True when ``text`` already talks to ECR in the aws-cn partition."""
    return ".amazonaws.com.cn" in text


def registry_host(account: str, region: str, china: bool = False) -> str:
    """ECR registry host for an account and a region (literal or `$VAR`); ``china`` for the aws-cn partition."""
    return f"{account}.dkr.ecr.{region}.{_dns_suffix(region, china)}"


def login_command(region: str, registry: str) -> str:
    """The AWS CLI v2 ECR login line."""
    return f"aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {registry}"


# Text after which a word starts a new command (`a && $(...)`, `if x; then $(...)`): anything else before
# `$(aws ecr get-login)` (`sudo`, `time`, an assignment) changes what running its output means.
_COMMAND_OPERATORS = ("\n", ";", "&&", "||", "(")
_COMMAND_WORDS = frozenset({"{", "then", "do", "else"})


def _whole_substitution(raw: str) -> str | None:
    """The command inside a word that is exactly one `$(...)` or `` `...` `` (also double-quoted), else None."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    inner = substitutions(raw)
    if len(inner) == 1 and raw in (f"$({inner[0]})", f"`{inner[0]}`"):
        return inner[0]
    return None


def _get_login(inner: str) -> tuple[str, tuple[str, ...]] | None:
    """(region, registry ids) when ``inner`` is exactly one `aws ecr get-login` with arguments the bot knows."""
    cmds = simple_commands(inner)
    if len(cmds) != 1 or cmds[0].assignments or cmds[0].writes:
        return None
    args = [w.value for w in cmds[0].words]
    if args[:3] != ["aws", "ecr", "get-login"] or any("$(" in a or "`" in a for a in args):
        return None
    # Without --region, AWS CLI v1 used the configured region: CodeBuild sets AWS_DEFAULT_REGION.
    region = "$AWS_DEFAULT_REGION"
    ids: list[str] = []
    k = 3
    while k < len(args):
        a = args[k]
        if a.startswith("--region="):
            region = a.split("=", 1)[1]
        elif a == "--region" and k + 1 < len(args):
            region = args[k + 1]
            k += 1
        elif a.split("=", 1)[0] == "--registry-ids":
            ids.extend([a.split("=", 1)[1]] if "=" in a else [])
            while k + 1 < len(args) and not args[k + 1].startswith("-"):
                ids.append(args[k + 1])
                k += 1
        elif a not in ("--no-include-email", "--include-email"):
            return None  # `--profile`, `--endpoint-url`, ...: no equivalent the bot can prove
        k += 1
    return region, tuple(ids)


def _run_as_command(s: str, sc: SimpleCommand) -> tuple[int, int, str] | None:
    """(start, end, inner) when ``sc`` runs the output of a substitution as a command (alone or via eval)."""
    words = sc.words
    if sc.assignments or not words:
        return None
    head = s[: words[0].start].rstrip(" \t")
    last = head.split()[-1] if head.split() else ""
    if head and not head.endswith(_COMMAND_OPERATORS) and last not in _COMMAND_WORDS:
        return None
    if len(words) == 1:
        inner = _whole_substitution(words[0].raw)
        return None if inner is None else (words[0].start, words[0].end, inner)
    if len(words) == 2 and words[0].raw == "eval":
        inner = _whole_substitution(words[1].raw)
        return None if inner is None else (words[0].start, words[1].end, inner)
    return None


def find_legacy_logins(s: str) -> list[LegacyLogin]:
    """Every `$(aws ecr get-login ...)` in ``s`` that is run as a command, with its region and `--registry-ids`.

    Only a login whose output is run (`$(...)` as the whole command, `eval $(...)`, `` `...` ``) is replaced:
    where the output is stored or parsed, `get-login-password | docker login` is no equivalent.
    """
    if "get-login" not in s:
        return []
    found: list[LegacyLogin] = []
    for sc in simple_commands(s):
        run = _run_as_command(s, sc)
        login = _get_login(run[2]) if run else None
        if run and login:
            found.append(LegacyLogin(run[0], run[1], login[0], login[1]))
    return found


def legacy_login_uses(s: str) -> list[str]:
    """Every `aws ecr get-login` in ``s`` that `find_legacy_logins` does not replace (its output is data)."""
    if "get-login" not in s:
        return []
    replaced = {(lg.start, lg.end) for lg in find_legacy_logins(s)}
    uses: list[str] = []
    for sc in simple_commands(s):
        if [w.value for w in sc.words[:3]] == ["aws", "ecr", "get-login"]:
            uses.append(" ".join(w.raw for w in sc.words))
            continue
        run = _run_as_command(s, sc)
        if run and (run[0], run[1]) in replaced:
            continue
        for w in (*sc.assignments, *sc.words):
            for inner in substitutions(w.raw):
                if "get-login" in inner and legacy_login_uses(inner):
                    uses.append(w.raw)
    return uses
