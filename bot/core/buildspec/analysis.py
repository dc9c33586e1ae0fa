"""Walk a buildspec's commands in CodeBuild order: working directory, variables, builds, ECR logins."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.build_args import OPAQUE, unknown_build_args, volatile_build_args
from bot.core.model import WrittenFile
from bot.core.shell.docker_build import (
    DockerBuild,
    LegacyLogin,
    Option,
    find_legacy_logins,
    is_china,
    is_pull,
    legacy_login_uses,
    parse_build,
)
from bot.core.shell.words import Word, simple_commands

# CodeBuild runs the phases in this order; with buildspec 0.2 one shell session carries the working
# directory and variables from command to command and phase to phase
# (https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-cmd.html).
PHASES = ("install", "pre_build", "build", "post_build")
SRC = "\0SRC"
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# A region variable where the buildspec talks to ECR: a registry host, or `--region` of an `aws ecr` command.
_REGION_VAR = re.compile(
    r"(?:\.dkr\.ecr\.|\baws\s+ecr\s[^|;&\n()`]*?--region[= ]+)[\"']?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"
)


@dataclass
class BuildspecCommand:
    """One item of a phase's `commands` list."""

    phase: str
    index: int
    node: Node
    seq: SequenceNode
    key: Node

    @property
    def value(self) -> str | None:
        """The command string (None for a non-scalar item)."""
        return self.node.value if isinstance(self.node, ScalarNode) else None


@dataclass
class Build:
    """One build command, where it stands and what it resolves to."""

    command: BuildspecCommand
    build: DockerBuild
    dockerfile: str | None
    context: str | None
    unresolved: tuple[str, ...]
    flag_values: dict[str, str] = field(default_factory=dict)
    volatile_args: tuple[str, ...] = ()
    target: str | None = None
    written_before: tuple[WrittenFile, ...] = ()
    unknown_args: tuple[str, ...] = ()


@dataclass
class Analysis:
    """Everything the planner needs to know about one buildspec's commands."""

    commands: list[BuildspecCommand] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    legacy: list[tuple[BuildspecCommand, LegacyLogin]] = field(default_factory=list)
    legacy_uses: list[tuple[BuildspecCommand, str]] = field(default_factory=list)
    logins: list[tuple[BuildspecCommand, str]] = field(default_factory=list)
    region_vars: list[tuple[int, str]] = field(default_factory=list)
    assigned: dict[str, list[int]] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    env_names: set[str] = field(default_factory=set)
    cred_helper: bool = False
    flow_phases: list[str] = field(default_factory=list)
    account_vars: set[str] = field(default_factory=set)
    literal_vars: dict[str, str | None] = field(default_factory=dict)
    china: bool = False


def _scalar_map(node: Node | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and isinstance(v, ScalarNode):
                out[k.value] = v.value
    return out


def phase_commands(root: Node) -> tuple[list[BuildspecCommand], list[str]]:
    """Commands of every phase in execution order, and phases whose list is not a block sequence."""
    cmds: list[BuildspecCommand] = []
    flow: list[str] = []
    phases = by.get(root, "phases")
    for name in PHASES:
        ph = by.get(phases[1] if phases else None, name)
        if ph is None:
            continue
        cm = by.get(ph[1], "commands")
        if cm is None:
            continue
        seq = cm[1]
        if not isinstance(seq, SequenceNode):
            continue
        if seq.flow_style:
            flow.append(name)
        for i, item in enumerate(seq.value):
            cmds.append(BuildspecCommand(name, i, item, seq, cm[0]))
    return cmds, flow


class _Shell:
    """Enough of a shell to follow `cd`, `pushd`, `popd` and simple variable assignments."""

    def __init__(self, known: dict[str, str | None], env_raw: dict[str, str] | None = None) -> None:
        self.vars: dict[str, str | None] = dict(known)
        self.raw: dict[str, str] = {}
        self.env_raw: dict[str, str] = dict(env_raw or {})
        self.written: dict[str, WrittenFile] = {}
        self.cwd: str | None = "."
        self.cwd_unresolved: tuple[str, ...] = ()
        self.stack: list[tuple[str | None, tuple[str, ...]]] = []
        self.depth = 0

    def at_depth(self, depth: int) -> None:
        """Enter or leave `( ... )` subshells: a `cd` inside one ends with it."""
        while depth > self.depth:
            self.stack.append((self.cwd, self.cwd_unresolved))
            self.depth += 1
        while depth < self.depth and self.stack:
            self.cwd, self.cwd_unresolved = self.stack.pop()
            self.depth -= 1

    def expand(self, s: str) -> tuple[str | None, tuple[str, ...]]:
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            name = m[1] or m[2]
            if name == "CODEBUILD_SRC_DIR":
                return SRC
            val = self.vars.get(name)
            if val is None:
                missing.append(name)
                return ""
            return val

        out = _VAR.sub(sub, s)
        if missing or "$(" in out or "`" in out:
            return None, tuple(dict.fromkeys(missing)) or (s,)
        return out, ()

    def resolve(self, path: str) -> tuple[str | None, tuple[str, ...]]:
        """Repo-relative normalized path for ``path`` seen from the current directory."""
        val, missing = self.expand(path)
        if val is None:
            return None, missing
        if self.cwd is None:
            return None, self.cwd_unresolved
        if val.startswith(SRC):
            full = "." + val[len(SRC) :]
        elif val.startswith("/") or val.startswith("~"):
            return None, (path,)
        else:
            full = posixpath.join(self.cwd, val)
        norm = posixpath.normpath(full)
        if norm == ".." or norm.startswith("../"):
            return None, (path,)
        return norm, ()

    def assign(self, name: str, raw: str) -> None:
        self.raw[name] = raw
        val, _ = self.expand(raw.strip("\"'") if raw[:1] in "\"'" and raw[-1:] == raw[:1] else raw)
        self.vars[name] = val

    def cd(self, args: list[str]) -> None:
        if not args or args[0] in ("-", "~"):
            self.cwd, self.cwd_unresolved = None, ("cd " + " ".join(args),)
            return
        new, missing = self.resolve(args[-1])
        self.cwd, self.cwd_unresolved = new, missing


def analyse(root: Node, path: str, paths: frozenset[str] = frozenset()) -> Analysis:
    """Follow the buildspec's commands the way one CodeBuild shell session would."""
    an = Analysis()
    env = by.get(root, "env")
    env_node = env[1] if env else None
    var_pair = by.get(env_node, "variables")
    variables = _scalar_map(var_pair[1] if var_pair else None)
    an.env_vars = variables
    for section in ("variables", "parameter-store", "secrets-manager"):
        sec = by.get(env_node, section)
        if sec and isinstance(sec[1], MappingNode):
            an.env_names.update(k.value for k, _ in sec[1].value if isinstance(k, ScalarNode))
    known: dict[str, str | None] = {k: (v if "$" not in v and "`" not in v else None) for k, v in variables.items()}
    shell = _Shell(known, variables)
    an.commands, an.flow_phases = phase_commands(root)
    an.china = any(is_china(_without_comments(c.value or "")) for c in an.commands) or any(
        is_china(v) for v in variables.values()
    )
    for n, cmd in enumerate(an.commands):
        value = cmd.value
        if value is None:
            continue
        code = _without_comments(value)
        an.region_vars.extend((n, m[1]) for m in _REGION_VAR.finditer(code))
        if "ecr-login" in code:
            an.cred_helper = True
        for legacy in find_legacy_logins(value):
            an.legacy.append((cmd, legacy))
        an.legacy_uses.extend((cmd, use) for use in legacy_login_uses(value))
        _walk(an, shell, cmd, n, value, paths)
        shell.at_depth(0)  # a command that ends inside `( ... )` leaves that subshell's `cd` behind
    return an


def _without_comments(value: str) -> str:
    """The command text as the shell runs it, one simple command a line: `# ...` comments are never facts."""
    if "#" not in value:
        return value
    return "\n".join(" ".join(w.raw for w in (*sc.assignments, *sc.words)) for sc in simple_commands(value))


def _walk(an: Analysis, shell: _Shell, cmd: BuildspecCommand, n: int, value: str, paths: frozenset[str]) -> None:
    for sc in simple_commands(value):
        shell.at_depth(sc.depth)
        words = [w.value for w in sc.words]
        if not words:
            for a in sc.assignments:
                name, _, raw = a.raw.partition("=")
                _assign(an, shell, n, name, raw)
            continue
        head = words[0]
        if head == "export":
            for w in sc.words[1:]:
                name, eq, raw = w.raw.partition("=")
                if eq:
                    _assign(an, shell, n, name, raw)
        elif head == "cd":
            shell.cd([w for w in words[1:] if not w.startswith("-") or w == "-"])
        elif head == "pushd":
            shell.stack.append((shell.cwd, shell.cwd_unresolved))
            shell.cd(words[1:])
        elif head == "popd" and shell.stack:
            shell.cwd, shell.cwd_unresolved = shell.stack.pop()
        elif head == "docker" and len(words) > 1 and words[1] == "login":
            an.logins.append((cmd, _login_target(sc.words[2:], shell)))
        if head not in ("[[", "[", "test"):  # `[[ $A > $B ]]` compares strings, it writes nothing
            _record_writes(shell, cmd, sc.writes, sc.words if head == "tee" else ())
        if head in ("cp", "mv"):
            _record_writes(shell, cmd, _copy_targets(sc.words[1:]), ())
        b = parse_build(sc) if head in ("docker", "/usr/bin/docker", "/usr/local/bin/docker") else None
        if b is not None:
            an.builds.append(_link(cmd, b, shell, paths))


_OWN_ACCOUNT = re.compile(
    r"sts\s+get-caller-identity\b.*\bAccount\b|CODEBUILD_BUILD_ARN\b.*-f\s*'?5\b"
    r"|^[\"']?\$\{?AWS_ACCOUNT_ID\}?[\"']?$"
)


def _assign(an: Analysis, shell: _Shell, n: int, name: str, raw: str) -> None:
    shell.assign(name, raw)
    an.assigned.setdefault(name, []).append(n)
    # A name set once to a literal (None once it is set to anything else as well).
    value = _dequote(raw)
    literal = value if not any(ch in value for ch in "$`\\") else None
    an.literal_vars[name] = literal if an.literal_vars.get(name, literal) == literal else None
    # `ACCOUNT_ID=$(aws sts get-caller-identity --query Account ...)`: another name for this account.
    if _OWN_ACCOUNT.search(raw):
        an.account_vars.add(name)


def _login_target(words: tuple[Word, ...], shell: _Shell) -> str:
    target = ""
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w.value in ("-u", "--username", "-p", "--password"):
            skip = True
            continue
        if not w.value.startswith("-"):
            target = w.raw
    # One level of the script's own assignments (`REGISTRY_URI=${AWS_ACCOUNT_ID}.dkr.ecr...`).
    for _ in range(3):
        m = re.fullmatch(r"\"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?\"?", target)
        if not m or m[1] not in shell.raw:
            break
        target = shell.raw[m[1]]
    return target


def _link(cmd: BuildspecCommand, b: DockerBuild, shell: _Shell, paths: frozenset[str]) -> Build:
    unresolved: list[str] = []
    ctx_raw = b.context
    context: str | None = None
    if ctx_raw is None or ctx_raw == "-" or "://" in ctx_raw or ctx_raw.startswith("git@"):
        unresolved.append(ctx_raw or "<no context argument>")
    else:
        context, missing = shell.resolve(_dequote(b.real_positionals[0].raw))
        unresolved.extend(missing)
    dockerfile: str | None = None
    if b.dockerfile is not None:
        raw_f = next(o for o in reversed(b.options) if o.name in ("-f", "--file"))
        if b.dockerfile == "-":
            unresolved.append("-f -")
        else:
            dockerfile, missing = shell.resolve(_raw_value(cmd, raw_f, b))
            unresolved.extend(missing)
    elif context is not None:
        dockerfile = posixpath.normpath(posixpath.join(context, "Dockerfile"))
        # Without -f the CLI also accepts a lowercase `dockerfile` when `Dockerfile` is absent.
        lower = posixpath.normpath(posixpath.join(context, "dockerfile"))
        if dockerfile not in paths and lower in paths:
            dockerfile = lower
    values = {raw: _dequote(shell.raw[name]) for raw in b.flag_vars if (name := raw.strip("${}")) in shell.raw}
    variables = {**shell.env_raw, **shell.raw}
    targets = b.values("--target")
    return Build(
        cmd,
        b,
        dockerfile,
        context,
        tuple(dict.fromkeys(unresolved)),
        values,
        volatile_build_args(b.values("--build-arg"), variables),
        targets[-1] if targets else None,
        tuple(shell.written.values()),
        (OPAQUE,) if b.flag_vars else unknown_build_args(b.values("--build-arg"), variables),
    )


# Files a buildspec writes for CodePipeline's deploy actions, not for the image
# (https://docs.aws.amazon.com/codepipeline/latest/userguide/file-reference.html).
_DEPLOY_OUTPUTS = frozenset({"imagedefinitions.json", "imagedetail.json", "taskdef.json"})


def _record_writes(shell: _Shell, cmd: BuildspecCommand, redirects: tuple[Word, ...], tee: tuple[Word, ...]) -> None:
    """Remember source-tree files this command writes with `>`/`>>` or `tee`."""
    targets = list(redirects) + [w for w in tee[1:] if not w.value.startswith("-")]
    for word in targets:
        path, _ = shell.resolve(_dequote(word.raw))
        if word.raw.startswith((">(", "<(")):  # process substitution: a command, not a file
            continue
        if path is None or path == "." or path.startswith("/") or path.isdigit():
            continue
        output = posixpath.basename(path).lower() in _DEPLOY_OUTPUTS or path.endswith(".log")
        where = f"`{cmd.phase}` command {cmd.index + 1}"
        shell.written.setdefault(path, WrittenFile(path, where, output))


def _copy_targets(args: tuple[Word, ...]) -> tuple[Word, ...]:
    """The files a `cp`/`mv` writes: its last operand, or each source's name inside it when it is a folder."""
    if any(w.value in ("-t", "--target-directory") or w.value.startswith("--target-directory=") for w in args):
        return ()
    operands = [w for w in args if not w.value.startswith("-")]
    if len(operands) < 2:
        return ()
    dest = operands[-1]
    folder = dest.value.endswith("/") or posixpath.basename(dest.value) in (".", "..") or len(operands) > 2
    if not folder:
        return (dest,)
    base = dest.raw.rstrip("/") or "."
    return tuple(
        Word(dest.start, dest.end, f"{base}/{posixpath.basename(_dequote(s.raw).rstrip('/'))}", "")
        for s in operands[:-1]
    )


def _dequote(raw: str) -> str:
    text = raw.replace("\\\n", "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _raw_value(cmd: BuildspecCommand, opt: Option, b: DockerBuild) -> str:
    """The raw (still quoted, `$VAR`) text of an option's value, for variable expansion."""
    text = (cmd.value or "")[opt.start : opt.end]
    for prefix in ("--file=", "--file", "-f"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return _dequote(text.lstrip("= \t\n\\"))


def command_values(text: str, skip_pulls: bool = False) -> list[tuple[int, str]]:
    """(line, text) of every env variable value and every word of every command: never a YAML or shell comment.

    Words and assignments come from the shell splitter, so `# docker push ...` inside a `|` block is skipped
    too; ``skip_pulls`` also skips the words of `docker pull` (a pulled image may live in any account). An
    unparsable buildspec names nothing.
    """
    try:
        root = by.compose(text)
    except yaml.YAMLError:
        return []
    if not isinstance(root, MappingNode):
        return []
    out: list[tuple[int, str]] = []
    line_of = by.line_numbers(text)
    env = by.get(root, "env")
    variables = by.get(env[1] if env else None, "variables")
    if variables and isinstance(variables[1], MappingNode):
        out.extend((v.start_mark.line + 1, v.value) for _, v in variables[1].value if isinstance(v, ScalarNode))
    for cmd in phase_commands(root)[0]:
        node = cmd.node
        if not isinstance(node, ScalarNode):
            continue
        mapped = by.map_scalar(text, node)
        for sc in simple_commands(node.value):
            if skip_pulls and is_pull([w.value for w in sc.words[:3]]):
                continue
            for w in (*sc.assignments, *sc.words):
                pos = mapped.positions[w.start] if mapped is not None and w.start < len(mapped.positions) else -1
                line = line_of(pos) if pos >= 0 else node.start_mark.line + 1
                out.append((line, w.raw))
    return out


def command_line(text: str, cmd: BuildspecCommand, offset: int) -> int:
    """The 1-based file line of character ``offset`` of ``cmd``'s value (the command's first line when unmapped)."""
    node = cmd.node
    if isinstance(node, ScalarNode) and offset >= 0:
        m = by.map_scalar(text, node)
        if m is not None and offset < len(m.positions) and m.positions[offset] >= 0:
            return text.count("\n", 0, m.positions[offset]) + 1
    return node.start_mark.line + 1
