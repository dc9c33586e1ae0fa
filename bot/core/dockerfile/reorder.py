"""Per stage: copy the dependency manifests and install before the whole source is copied, only when safe."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.core import ecosystems
from bot.core.dockerfile.parse import Dockerfile, Instruction, Stage, split_words
from bot.core.dockerfile.splice import Splice
from bot.core.findings import Code
from bot.core.markdown import code_span
from bot.core.model import Note
from bot.core.shell.run_commands import (
    _FIRST_ARG_NOT_PATH,
    _PATH_TOOLS,
    ShellCommand,
    _named_install,
    overwrites,
    run_commands,
    system_only,
    under,
)

# Folders an install writes inside the project: the later source copy must not bring its own.
# (Poetry puts its virtualenv there with `virtualenvs.in-project`, a common Docker setting.)
_OUTPUTS = {
    "npm": "node_modules",
    "yarn": "node_modules",
    "pnpm": "node_modules",
    "composer": "vendor",
    "uv": ".venv",
    "poetry": ".venv",
    "pipenv": ".venv",
    "gradle": ".gradle",
}
_COPY_FLAGS_KEPT = ("chown", "chmod", "link")
_FREE_KEYWORDS = {"LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "CMD", "ENTRYPOINT", "MAINTAINER", "SHELL", "USER"}
CARGO_CHEF = "https://github.com/LukeMathWalker/cargo-chef"


@dataclass(frozen=True)
class BuildContext:
    """The build context of one Dockerfile: a folder of the repository and its .dockerignore."""

    root: str
    paths: frozenset[str]
    files: Mapping[str, str]
    excluded: Callable[[str], bool] = field(default=lambda _p: False)
    # Reorder Node and PHP installs without a lock file (repo setting `reorder_unlocked`).
    unlocked: bool = False

    def repo_path(self, rel: str) -> str:
        """Repository path of a context-relative path."""
        rel = posixpath.normpath(rel)
        if rel == ".":
            return self.root or "."
        return posixpath.normpath(posixpath.join(self.root, rel)) if self.root else rel

    def tracked(self, rel: str) -> bool:
        """True when the repository holds this context-relative file, even if .dockerignore leaves it out."""
        return self.repo_path(rel) in self.paths

    def exists(self, rel: str) -> bool:
        """True when the context holds this file."""
        return self.repo_path(rel) in self.paths and not self.excluded(posixpath.normpath(rel))

    def read(self, rel: str) -> str | None:
        """Text of a context-relative file, if it was read."""
        return self.files.get(self.repo_path(rel))

    def is_dir(self, rel: str) -> bool:
        """True when some file lies under this context-relative folder."""
        rel = posixpath.normpath(rel)
        if rel == ".":
            return True
        prefix = self.repo_path(rel) + "/"
        return any(p.startswith(prefix) for p in self.paths)

    def rel_paths(self) -> tuple[str, ...]:
        """Every file of the context, context-relative."""
        if not self.root:
            return tuple(sorted(self.paths))
        prefix = self.root.rstrip("/") + "/"
        return tuple(sorted(p[len(prefix) :] for p in self.paths if p.startswith(prefix)))


@dataclass
class ReorderResult:
    """What the reorder decided for one Dockerfile."""

    text: str | None = None
    reasons: list[str] = field(default_factory=list)
    findings: list[Note] = field(default_factory=list)


Op = tuple[str, int, int, str]  # ("insert", before, 0, line) or ("move_after", index, after, "")
StagePlan = tuple[list[Op], list[str], list[Note]]
Cwd = tuple[str, str] | None  # (anchor, absolute-looking path); anchor "" = known, "?" = the base image's


def _join(cwd: Cwd, path: str) -> Cwd:
    if cwd is None or "$" in path:
        return None
    if path.startswith("/"):
        return ("", posixpath.normpath(path))
    return (cwd[0], posixpath.normpath(posixpath.join(cwd[1], path)))


def stage_cwds(df: Dockerfile) -> dict[int, Cwd]:
    """The working directory in effect at each instruction (before it runs)."""
    out: dict[int, Cwd] = {}
    final: dict[str, Cwd] = {}
    for stage in df.stages:
        cwd: Cwd = final.get(stage.base.lower(), ("?" + str(stage.index), "/"))
        for inst in df.stage_instructions(stage):
            out[inst.index] = cwd
            if inst.keyword == "WORKDIR":
                cwd = _join(cwd, inst.args.strip())
        if stage.name:
            final[stage.name] = cwd
        final[str(stage.index)] = cwd
    return out


@dataclass(frozen=True)
class CopyAll:
    """A COPY/ADD of a whole context folder (`COPY . .`)."""

    inst: Instruction
    source: str
    dest: str
    flags: tuple[str, ...]


def copy_parts(inst: Instruction) -> tuple[list[str], str] | None:
    """Sources and destination of a COPY/ADD (heredoc or malformed: None)."""
    if inst.heredocs:
        return None
    words = inst.json_args()
    if words is None:
        words = split_words(inst.args)
    if len(words) < 2:
        return None
    return words[:-1], words[-1]


def copy_all(inst: Instruction, ctx: BuildContext) -> CopyAll | None:
    """The instruction as a whole-folder copy from the context, if it is one."""
    if inst.keyword not in ("COPY", "ADD") or inst.flag("from") is not None:
        return None
    parts = copy_parts(inst)
    if not parts or len(parts[0]) != 1:
        return None
    src = parts[0][0]
    norm = posixpath.normpath(src.lstrip("/") or ".")
    if "$" in src or any(c in src for c in "*?[") or "://" in src:
        return None
    if norm != "." and not ctx.is_dir(norm):
        return None
    return CopyAll(inst, norm, parts[1], inst.flags)


@dataclass
class _Step:
    inst: Instruction
    installs: list[ecosystems.Install]
    files: list[str] = field(default_factory=list)


def _classify_run(inst: Instruction, root: str | None, cwd: Cwd = None) -> tuple[str, list[ecosystems.Install], str]:
    """('install'|'free'|'dep', deps-only installs, why dependent) for a RUN after the source copy; ``cwd`` is
    the RUN's working directory (None: unknown)."""
    for flag in inst.flags:
        if flag.startswith("--mount") and "type=bind" in flag and "from=" not in flag:
            return "dep", [], f"{_short(inst)} bind-mounts the build context"
    cmds = run_commands(inst)
    if cmds is None:
        return "dep", [], f"{_short(inst)} is a shell script this bot does not analyse"
    installs: list[ecosystems.Install] = []
    for cmd in cmds:
        found = ecosystems.recognise(cmd)
        if found is not None:
            if not found.deps_only:
                why = found.note or "needs the sources"
                return "dep", [found], f"`{cmd.text}` {why}"
            installs.append(found)
            continue
        if cmd.name in ("npm", "yarn", "pnpm") and len(cmd.words) > 1 and cmd.words[1] == "cache":
            continue
        blocked = system_only(cmd, root) or _names_parent(cmd, root)
        if blocked:
            return "dep", [], blocked
        # A path in a flag's value or a glob (`-o/app/x`, `--directory=/app`, `/app/*`), or a download or unpack
        # into a working directory that holds the copy: the copy moved below it would overwrite what it wrote.
        overwritten = overwrites(cmd, root, cwd[1] if cwd is not None and cwd[0] == "" else None)
        if overwritten:
            return "dep", [], overwritten
    return ("install" if installs else "free"), installs, ""


def _names_parent(cmd: ShellCommand, root: str | None) -> str | None:
    """Why a command naming a folder above the copied one (`chmod -R g+w /srv` over `/srv/app`) may change it."""
    if root is None or not root.startswith("/"):
        return None
    for word in cmd.words[1:]:
        if word.startswith("/") and posixpath.normpath(word) != posixpath.normpath(root) and under(root, word):
            return f"`{cmd.text}` names `{word}`, a folder above the copied files"
    return None


def _pip_destinations(words: tuple[str, ...]) -> list[str]:
    """Folders a pip command writes besides the interpreter's own: `--target`/`--prefix`/`--root`/`--src`,
    and the virtualenv a `venv/bin/pip` (or `venv/bin/python -m pip`) belongs to."""
    out: list[str] = []
    if "/" in words[0]:
        out.append(posixpath.dirname(posixpath.dirname(words[0])) or ".")
    for n, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name in ("-t", "--target", "--prefix", "--root", "--src"):
            if eq:
                out.append(value)
            elif n + 1 < len(words):
                out.append(words[n + 1])
        elif word.startswith("-t") and len(word) > 2 and not word.startswith("--"):
            out.append(word[2:])
    return out


# Variables through which package tools read configuration or manifests from a path.
_TOOL_VARIABLE = re.compile(
    r"^(PIP|NPM|YARN|PNPM|BUNDLE|GEM|COMPOSER|POETRY|PIPENV|UV|GO|CARGO|NUGET|DOTNET|MAVEN|"
    r"GRADLE)_|^(HOME|XDG_CONFIG_HOME|COMPOSER|GOFLAGS|GOENV)$",
    re.I,
)


def _assignments(inst: Instruction) -> list[tuple[str, str]]:
    """(name, value) pairs an ENV or ARG sets (`ENV A=1 B=2`, legacy `ENV A 1`, `ARG A=1`)."""
    words = split_words(inst.args)
    if inst.keyword == "ENV" and words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [tuple(w.split("=", 1)) for w in words if "=" in w]  # type: ignore[misc]


def _short(inst: Instruction) -> str:
    """The instruction on one line, cut to 80 characters, as a markdown code span."""
    text = " ".join(inst.line_text.split())
    return code_span(text if len(text) <= 80 else text[:77] + "...")


def _runtime(words: tuple[str, ...]) -> str | None:
    """The `-r`/`--runtime` of a dotnet command, if any."""
    for n, word in enumerate(words):
        if word in ("-r", "--runtime") and n + 1 < len(words):
            return words[n + 1]
        if word.startswith("--runtime="):
            return word.split("=", 1)[1]
    return None


def _cache_mounted(inst: Instruction, eco: ecosystems.Ecosystem) -> bool:
    """True when a RUN cache-mounts the folder the ecosystem keeps its downloaded dependencies in."""
    for flag in inst.flags:
        if flag.startswith("--mount") and "type=cache" in flag:
            m = re.search(r"(?:target|dst|destination)=([^,\s]+)", flag)
            target = m.group(1).strip("\"'").rstrip("/") if m else ""
            if any(target.endswith(c) or f"/{c}/" in target + "/" for c in eco.cache_targets):
                return True
    return False


def _indent(df: Dockerfile, inst: Instruction) -> str:
    """The leading whitespace of an instruction's first line, for lines inserted next to it."""
    line = df.lines[inst.start]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _install_kind(cmd: ShellCommand) -> str | None:
    """Why an install command stays after the source copy, if ``cmd`` is an install (not a build or a script)."""
    if len(cmd.words) < 2 or "config" in cmd.words[1:3]:
        return None
    if _named_install(cmd) == "":
        return (
            f"`{cmd.text}` installs named packages, and the bot moves a copy of the whole context only below "
            f"installs from a manifest; if it needs none of the copied files, move it above the copy"
        )
    found = ecosystems.recognise(cmd)
    verb = cmd.words[2] if cmd.words[1] == "pip" and len(cmd.words) > 2 else cmd.words[1]
    if found is None or verb not in ("install", "i", "ci", "sync", "restore"):
        return None
    return f"`{cmd.text}` {found.note or 'installs the project itself, which needs the copied sources'}"


def _makes_executable(insts: list[Instruction], program: str) -> str | None:
    """The first `chmod` in these RUNs that names ``program`` (`chmod +x mvnw` before `./mvnw package`)."""
    name = posixpath.basename(program)
    for inst in insts:
        for cmd in (run_commands(inst) or []) if inst.keyword == "RUN" else []:
            if cmd.name == "chmod" and any(posixpath.basename(w) == name for w in cmd.words[1:]):
                return cmd.text
    return None


def _copy_phrase(files: list[str]) -> str:
    return f"copy {_and_list(files)} first and " if files else "with the manifests already copied, "


def _and_list(items: list[str]) -> str:
    quoted = [f"`{i}`" for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _refs(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def _declared(inst: Instruction) -> set[str]:
    if inst.keyword == "ARG":
        return {w.split("=", 1)[0] for w in split_words(inst.args)}
    if inst.keyword == "ENV":
        words = split_words(inst.args)
        if words and "=" not in words[0]:
            return {words[0]}
        return {w.split("=", 1)[0] for w in words}
    return set()


class _StagePlan:
    """The reorder of one stage (at most one whole-folder copy is moved)."""

    def __init__(self, df: Dockerfile, stage: Stage, ctx: BuildContext, cwds: dict[int, Cwd]) -> None:
        self.df, self.stage, self.ctx, self.cwds = df, stage, ctx, cwds
        self.earlier: list[Instruction] = []  # the stage's instructions before the copy being planned
        self.label = f"stage `{stage.name}`" if stage.name else f"stage {stage.index + 1}"

    def copy_dest_dir(self, c: CopyAll) -> Cwd:
        return _join(self.cwds[c.inst.index], c.dest)

    def inherits_user(self) -> bool:
        """True when the stage is built FROM an earlier stage that sets USER (WORKDIR creates folders as it)."""
        base, seen = self.stage.base.lower(), set()
        while base not in seen:
            seen.add(base)
            parent = next(
                (st for st in self.df.stages[: self.stage.index] if st.name == base or str(st.index) == base), None
            )
            if parent is None:
                return False
            if any(i.keyword == "USER" for i in self.df.stage_instructions(parent)):
                return True
            base = parent.base.lower()
        return False

    def project_of(self, c: CopyAll, inst: Instruction) -> str | None:
        """Context-relative folder the RUN works in, when it lies inside the copied folder."""
        dest = self.copy_dest_dir(c)
        cwd = self.cwds[inst.index]
        if dest is None or cwd is None or dest[0] != cwd[0]:
            return None
        rel = posixpath.relpath(cwd[1], dest[1])
        if rel == ".." or rel.startswith("../"):
            return None
        return posixpath.normpath(posixpath.join(c.source, rel))

    def dest_text(self, c: CopyAll, target_rel: str, at: Instruction) -> str | None:
        """How to write the folder ``D/target_rel`` in a COPY placed just before ``at``."""
        if target_rel == ".":
            return c.dest if c.dest.endswith("/") else c.dest + "/"
        dest = self.copy_dest_dir(c)
        cwd = self.cwds[at.index]
        if dest is None or cwd is None:
            return None
        target = posixpath.normpath(posixpath.join(dest[1], target_rel))
        if c.dest.startswith("/") and dest[0] == "":
            return target.rstrip("/") + "/"
        if cwd[0] == dest[0]:
            rel = posixpath.relpath(target, cwd[1])
            if not rel.startswith(".."):
                return rel + "/"
        if dest[0] == "":
            return target.rstrip("/") + "/"
        return None

    def manifest_copies(self, c: CopyAll, files: list[str], at: Instruction) -> tuple[list[str], str | None]:
        """New COPY lines placing ``files`` (context-relative) where the whole copy would put them."""
        groups: dict[str, list[str]] = {}
        for f in files:
            if self.ctx.excluded(f):
                return [], f"`{f}` is excluded by .dockerignore"
            rel = posixpath.relpath(posixpath.dirname(f) or ".", c.source)
            if rel.startswith(".."):
                return [], f"`{f}` lies outside the copied folder `{c.source}`"
            folder = _join(self.copy_dest_dir(c), rel)
            if folder is not None and self.placed(self.earlier, folder).get(posixpath.basename(f)) == f:
                continue  # an earlier COPY already put this very file there
            groups.setdefault(rel, []).append(f)
        keyword = c.inst.line_text.split()[0]
        keyword = "copy" if keyword.islower() else "COPY"
        flags = [f for f in c.flags if f[2:].split("=", 1)[0].lower() in _COPY_FLAGS_KEPT]
        lines = []
        for rel, group in groups.items():
            dest = self.dest_text(c, rel, at)
            if dest is None:
                return [], "the destination of the copy depends on a variable or an unknown working directory"
            as_json = c.inst.json_args() is not None or any(" " in p for p in group + [dest])
            args = json.dumps(group + [dest]) if as_json else " ".join(group + [dest])
            lines.append(_indent(self.df, at) + " ".join([keyword, *flags, args]))
        return lines, None

    def install_files(self, c: CopyAll, step: _Step) -> tuple[list[str], str | None]:
        """Every file the installs of one RUN read, or why they are unsafe to run early."""
        files: list[str] = []
        project = self.project_of(c, step.inst)
        if project is None:
            return [], f"{_short(step.inst)} does not run inside the copied folder"
        env = self._env_into_copy(c, step.inst)
        if env:
            return [], env
        for install in step.installs:
            if install.ecosystem == "pip":
                inside = self._writes_into_copy(c, step.inst, _pip_destinations(install.command.words))
                if inside:
                    # Before the move the install wrote over the copied files; after it, the copy would
                    # write over the installed ones wherever their names meet.
                    return [], (
                        f"`{install.command.text}` installs into `{inside}`, inside the folder "
                        f"{_short(c.inst)} copies to, so the copy after it could overwrite installed files"
                    )
                reqs = [self._req_path(c, step.inst, f) for f in install.files]
                if any(r is None for r in reqs):
                    return [], f"`{install.command.text}` reads a file outside the copied folder"
                closure, why = ecosystems.requirement_closure(tuple(r for r in reqs if r), ".", self.ctx.read)
                if why:
                    return [], why
                for r in closure:
                    if not self.ctx.exists(r):
                        return [], f"`{r}` is not in the build context"
                files += closure
                continue
            why = ecosystems.unsafe_reason(
                install, project, self.ctx.exists, self.ctx.read, self.may_float(install, project)
            )
            if why:
                return [], why
            output = _OUTPUTS.get(install.ecosystem)
            words = install.command.words
            if install.ecosystem == "pipenv" and "--system" in words:
                output = None  # installs into the interpreter's site-packages, no virtualenv
            if install.ecosystem == "bundler" and "--deployment" in words:
                output = "vendor/bundle"  # deployment mode installs there: https://guides.rubygems.org/deploying/
            folder = posixpath.normpath(posixpath.join(project, output or "."))
            if output and self._holds(folder):
                return [], (
                    f"`{folder}` is in the build context and not in .dockerignore, "
                    f"so copying the source after `{install.command.text}` would overwrite what it installed"
                )
            if output and not self.ctx.excluded(folder):
                # Before the move the install ran after the copy and replaced any such folder; after it, the
                # copy lands on top of the installed one (a developer's local install, or one a buildspec ran
                # before `docker build`, is in the context even though the repository does not track it).
                return [], (
                    f"`{folder}` is not excluded by .dockerignore, so a `{output}` folder in the build "
                    f"context (a local install, or one the buildspec ran before `docker build`) would "
                    f"overwrite what `{install.command.text}` installed once the source is copied after it"
                )
            files += ecosystems.copy_files(install, project, self.ctx.exists, self.ctx.rel_paths())
        out: list[str] = []
        for f in files:
            if f not in out:
                out.append(f)
        return out, None

    def _touches_only_copy(self, c: CopyAll, inst: Instruction) -> bool:
        """True when a RUN only changes copied files (`chmod +x ./run.sh`): it cannot prepare a download."""
        dest = self.copy_dest_dir(c)
        root = dest[1] if dest is not None and dest[0] == "" else None
        inside_cwd = self.project_of(c, inst) is not None
        for cmd in run_commands(inst) or [ShellCommand((), ())]:
            if cmd.redirects or not cmd.words or cmd.name not in _PATH_TOOLS | {"echo", "true"}:
                return False
            args = [a for a in cmd.words[1:] if not a.startswith("-")]
            paths = args[1:] if cmd.name in _FIRST_ARG_NOT_PATH else args
            if cmd.name in ("echo", "true"):
                continue
            if cmd.name in _FIRST_ARG_NOT_PATH and any(
                a in ("-R", "--recursive") or (a.startswith("-") and not a.startswith("--") and "R" in a)
                for a in cmd.words[1:]
            ):
                return False  # would also change what the added download step put in the project folder
            for path in paths:
                if path.startswith("/") and (root is None or not under(path, root) or path.rstrip("/") == root):
                    return False
                if not path.startswith("/") and (not inside_cwd or "$" in path or path.startswith("..")):
                    return False
        return True

    def _env_into_copy(self, c: CopyAll, inst: Instruction) -> str | None:
        """Why an install reads a copied file through a tool variable (`PIP_CONFIG_FILE=/app/pip.conf`)."""
        for other in self.df.stage_instructions(self.stage):
            if other.index >= inst.index:
                break
            if other.keyword not in ("ENV", "ARG"):
                continue
            for name, value in _assignments(other):
                inside = self._tool_path_in_copy(c, inst, name, value)
                if inside:
                    return (
                        f"`{name}` (set by {_short(other)}) makes the install read `{inside}`, which the copy brings in"
                    )
        # `RUN PIP_CONSTRAINT=constraints.txt pip install ...`: an assignment on the RUN line itself.
        for name, _, value in (a.partition("=") for cmd in run_commands(inst) or () for a in cmd.assignments):
            inside = self._tool_path_in_copy(c, inst, name, value)
            if inside:
                return f"`{name}={value}` on {_short(inst)} makes the install read `{inside}`, which the copy brings in"
        return None

    def _tool_path_in_copy(self, c: CopyAll, inst: Instruction, name: str, value: str) -> str | None:
        """The file a tool variable names inside the copy's destination, if any."""
        if not _TOOL_VARIABLE.match(name):
            return None
        # A value names a file when it has a folder or a file extension (`constraints.txt`, `Gemfile.docker`).
        paths = [
            p
            for p in re.split(r"[:\s=,]+", value)
            if p
            and "$" not in p
            and "://" not in p
            and ("/" in p or re.search(r"\.[A-Za-z]\w*$", p) or p.startswith("Gemfile"))
        ]
        return self._writes_into_copy(c, inst, paths) if paths else None

    def _writes_into_copy(self, c: CopyAll, inst: Instruction, paths: list[str]) -> str | None:
        """The first of ``paths`` (as written in the RUN) that may lie inside the copy's destination."""
        dest = self.copy_dest_dir(c)
        for path in paths:
            full = _join(self.cwds[inst.index], path)
            if dest is None or full is None or full[0] != dest[0]:
                return path
            rel = posixpath.relpath(full[1], dest[1])
            if rel != ".." and not rel.startswith("../"):
                return path
        return None

    def _holds(self, folder: str) -> bool:
        """True when the context sends some file under ``folder`` (present and not ignored)."""
        prefix = "" if folder == "." else folder + "/"
        return any(p.startswith(prefix) and self.ctx.exists(p) for p in self.ctx.rel_paths())

    def _req_path(self, c: CopyAll, inst: Instruction, path: str) -> str | None:
        dest = self.copy_dest_dir(c)
        cwd = self.cwds[inst.index]
        if dest is None or cwd is None:
            return None
        full = _join(cwd, path)
        if full is None or full[0] != dest[0]:
            return None
        rel = posixpath.relpath(full[1], dest[1])
        if rel.startswith(".."):
            return None
        return posixpath.normpath(posixpath.join(c.source, rel))

    def free(self, c: CopyAll, inst: Instruction, seen_user: bool) -> str | None:
        """None when ``inst`` neither reads nor changes what the whole copy writes or means."""
        kw = inst.keyword
        copy_refs = _refs(c.inst.line_text)
        if kw in ("ENV", "ARG"):
            hit = _declared(inst) & copy_refs
            return f"{_short(c.inst)} uses `${sorted(hit)[0]}`, set by {_short(inst)}" if hit else None
        if kw == "WORKDIR":
            if not c.dest.startswith("/"):
                return f"{_short(inst)} changes the folder the relative {_short(c.inst)} copies to"
            if seen_user:
                return f"{_short(inst)} would create the folder as a non-root user"
            owned = [f for f in c.flags if f[2:].split("=", 1)[0].lower() in ("chown", "chmod")]
            if owned:
                # COPY --chown/--chmod applies to the folders the copy creates (moby/buildkit#640); a folder the
                # WORKDIR created first stays root's.
                target, dest = _join(self.cwds[inst.index], inst.args.strip()), self.copy_dest_dir(c)
                if (
                    target is None
                    or dest is None
                    or target[0] != dest[0]
                    or not posixpath.relpath(target[1], dest[1]).startswith("..")
                ):
                    return (
                        f"{_short(inst)} would create the folder before {_short(c.inst)}, which then "
                        f"no longer applies `{owned[0]}` to it"
                    )
            return None
        if kw in _FREE_KEYWORDS:
            return None
        if kw in ("COPY", "ADD"):
            return f"{_short(inst)} also writes files there, and the bot never swaps two copies"
        return f"{_short(inst)} may depend on the copied files"

    def plan(self) -> StagePlan:
        """Operations, reasons and findings for this stage."""
        insts = self.df.stage_instructions(self.stage)
        for n, inst in enumerate(insts):
            c = copy_all(inst, self.ctx)
            if c is None:
                continue
            result = self._plan_from(c, list(insts[n + 1 :]), list(insts[:n]))
            if result is not None:
                return result
        return [], [], self._unexplained_installs(insts)

    def _unexplained_installs(self, insts: tuple[Instruction, ...]) -> list[Note]:
        """A finding for each install after a copy of the whole context that no rule above spoke about."""
        whole = next((i for i in insts if (c := copy_all(i, self.ctx)) is not None and c.source == "."), None)
        if whole is None:
            return []
        out: list[Note] = []
        for inst in insts:
            if inst.index <= whole.index or inst.keyword != "RUN":
                continue
            for cmd in run_commands(inst) or []:
                found = ecosystems.recognise(cmd)
                if found is not None and self._already_first(
                    [i for i in insts if i.index < whole.index], found.ecosystem
                ):
                    continue  # its dependencies are installed before the copy; what is left needs the sources
                why = _install_kind(cmd)
                if why:
                    out.append(
                        (
                            "info",
                            Code.DOCKERFILE_INSTALL_AFTER_COPY,
                            f"{self.label}: {_short(inst)} (line {inst.lineno}) stays after {_short(whole)} "
                            f"(line {whole.lineno}), so it re-runs on every source change: {why}.",
                        )
                    )
                    break
        return out

    def _first_ecosystem(self, after: list[Instruction]) -> tuple[Instruction, ecosystems.Install] | None:
        for inst in after:
            if inst.keyword != "RUN":
                continue
            for cmd in run_commands(inst) or []:
                found = ecosystems.recognise(cmd)
                if found is not None and (
                    found.deps_only
                    or found.prefetch
                    or found.note
                    or found.ecosystem in ("cargo", "maven", "gradle")
                    or found.ecosystem not in ecosystems.TABLE
                ):
                    return inst, found
        return None

    def _already_first(self, before: list[Instruction], eco: str) -> bool:
        for inst in before:
            if inst.keyword == "RUN":
                for cmd in run_commands(inst) or []:
                    found = ecosystems.recognise(cmd)
                    if found is not None and found.ecosystem == eco and found.deps_only:
                        return True
        return False

    def _plan_from(self, c: CopyAll, after: list[Instruction], before: list[Instruction]) -> StagePlan | None:
        self.earlier = before
        first = self._first_ecosystem(after)
        if first is None:
            return None
        first_inst, first_install = first
        if self._already_first(before, first_install.ecosystem):
            return None
        if self.copy_dest_dir(c) == ("", "/"):
            return (
                [],
                [],
                [
                    (
                        "warning",
                        Code.DOCKERFILE_NOT_REORDERED,
                        f"{self.label}: {_short(c.inst)} (line {c.inst.lineno}) stays before "
                        f"{_short(first_inst)} (line {first_inst.lineno}): it copies the build context over "
                        f"the root filesystem (`/`), so every later step may read the copied files; copy the "
                        f"application into its own folder (for example `WORKDIR /app` and `COPY . .`) to let "
                        f"the dependencies install before it.",
                    )
                ],
            )
        if self.project_of(c, first_inst) is None:
            dest, cwd = self.copy_dest_dir(c), self.cwds[first_inst.index]
            if dest is not None and cwd is not None and dest[0] == cwd[0]:
                return self._plan_partial(c, first_inst, first_install, after, before)
            return (
                [],
                [],
                [
                    (
                        "warning",
                        Code.DOCKERFILE_NOT_REORDERED,
                        f"{self.label}: {_short(c.inst)} (line {c.inst.lineno}) stays before "
                        f"{_short(first_inst)} (line {first_inst.lineno}): the working directory comes "
                        f"from the base image or a variable, so it is unknown whether the install reads "
                        f"the copied files.",
                    )
                ],
            )
        where = (
            f"{self.label}: {_short(c.inst)} (line {c.inst.lineno}) stays before {_short(first_inst)} "
            f"(line {first_inst.lineno})"
        )
        bad_flags = [f for f in c.flags if f[2:].split("=", 1)[0].lower() not in _COPY_FLAGS_KEPT]
        if bad_flags:
            return (
                [],
                [],
                [
                    (
                        "warning",
                        Code.DOCKERFILE_NOT_REORDERED,
                        f"{where}: the copy flag `{bad_flags[0]}` is not understood by this bot.",
                    )
                ],
            )
        if first_install.ecosystem not in ecosystems.TABLE:
            return (
                [],
                [],
                [
                    (
                        "warning",
                        Code.DOCKERFILE_NOT_REORDERED,
                        f"{where}: `{first_install.command.text}` builds with {first_install.ecosystem}, "
                        f"for which this bot has no dependencies-only step.",
                    )
                ],
            )
        if first_install.ecosystem == "cargo":
            return (
                [],
                [],
                [
                    (
                        "info",
                        Code.DOCKERFILE_CARGO_CHEF,
                        f"{where}: `{first_install.command.text}` compiles the dependencies and the crate "
                        f"in one step, so moving lines "
                        f"cannot cache them; consider cargo-chef ({CARGO_CHEF}) to build the dependencies "
                        f"in their own layer.",
                    )
                ],
            )
        steps: list[_Step] = []
        blocker = ""
        seen_user = self.inherits_user() or any(i.keyword == "USER" for i in before)
        root = self.copy_dest_dir(c)
        root_text = root[1] if root and root[0] == "" else None
        for inst in after:
            if inst.keyword == "RUN":
                kind, installs, why = _classify_run(inst, root_text, self.cwds[inst.index])
                if kind == "install":
                    step = _Step(inst, installs)
                    files, unsafe = self.install_files(c, step)
                    if unsafe:
                        blocker = unsafe
                        break
                    step.files = files
                    steps.append(step)
                    continue
                if kind == "free":
                    continue
                blocker = why
                break
            why2 = self.free(c, inst, seen_user)
            if why2:
                blocker = why2
                break
            if inst.keyword == "USER":
                seen_user = True
        if steps:
            return self._hoist(c, steps, after)
        pre = self._prefetch(c, first_inst, first_install, after)
        if isinstance(pre, tuple):
            return pre
        reason = pre or blocker or "no rule applies"
        return [], [], [("warning", Code.DOCKERFILE_NOT_REORDERED, f"{where}: {reason}.")]

    def placed(self, before: list[Instruction], folder: tuple[str, str]) -> dict[str, str]:
        """Files earlier COPYs put directly in ``folder``: base name → context-relative source."""
        out: dict[str, str] = {}
        paths = self.ctx.rel_paths()
        for inst in before:
            if inst.keyword not in ("COPY", "ADD") or inst.flag("from") is not None:
                continue
            parts = copy_parts(inst)
            if not parts:
                continue
            sources, dest = parts
            target = _join(self.cwds[inst.index], dest)
            if target is None:
                continue
            for src in sources:
                src = posixpath.normpath(src.lstrip("/") or ".")
                matches = [src]
                if any(ch in src for ch in "*?["):
                    rx = re.compile("^" + re.escape(src).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$")
                    matches = [p for p in paths if rx.match(p)]
                for m in matches:
                    if not self.ctx.exists(m):
                        continue
                    into_dir = dest.endswith("/") or len(sources) > 1 or len(matches) > 1 or dest in (".", "./")
                    where = target if into_dir else (target[0], posixpath.dirname(target[1]))
                    name = posixpath.basename(m) if into_dir else posixpath.basename(target[1])
                    if where == folder:
                        out[name] = m
        return out

    def placed_from_stage(self, before: list[Instruction], folder: tuple[str, str]) -> Instruction | None:
        """The last `COPY --from` that writes into ``folder`` (manifests taken from another stage or image)."""
        found = None
        for inst in before:
            if inst.keyword == "COPY" and inst.flag("from") is not None:
                parts = copy_parts(inst)
                target = _join(self.cwds[inst.index], parts[1]) if parts else None
                if target == folder:
                    found = inst
        return found

    def _plan_partial(
        self,
        c: CopyAll,
        inst: Instruction,
        install: ecosystems.Install,
        after: list[Instruction],
        before: list[Instruction],
    ) -> StagePlan | None:
        """A copy of part of the sources (`COPY src ./src`) before an install that runs outside it."""
        eco = ecosystems.TABLE.get(install.ecosystem)
        cwd = self.cwds[inst.index]
        if eco is None or cwd is None or install.ecosystem in ("cargo", "dotnet", "gradle"):
            return None
        if not install.deps_only and not install.prefetch:
            return None
        placed = self.placed(before, cwd)
        where = (
            f"{self.label}: {_short(c.inst)} (line {c.inst.lineno}) stays before {_short(inst)} (line {inst.lineno})"
        )
        from_stage = self.placed_from_stage(before + after[: after.index(inst)], cwd)
        unknown: list[Note] = [
            (
                "warning",
                Code.DOCKERFILE_NOT_REORDERED,
                f"{where}: "
                + (
                    f"the manifests `{install.command.text}` reads come from another stage ({_short(from_stage)}), "
                    f"so the bot cannot check what they need."
                    if from_stage
                    else f"the files `{install.command.text}` reads are not copied into its folder by an earlier "
                    f"COPY, so it is unknown whether it reads the copied sources."
                ),
            )
        ]
        if install.ecosystem == "pip":
            names = [posixpath.normpath(f) for f in install.files]
            if not names or any("/" in n or n not in placed for n in names):
                return [], [], unknown
            closure, why = ecosystems.requirement_closure(tuple(placed[n] for n in names), ".", self.ctx.read)
            if why is None and any(posixpath.basename(f) not in placed for f in closure):
                why = "a requirements file it includes is not copied before it"
            project = "."
        else:
            first = eco.manifests[0] if eco.manifests else ""
            if first not in placed:
                return ([], [], unknown) if install.deps_only else None
            project = posixpath.dirname(placed[first]) or "."
            why = ecosystems.unsafe_reason(
                install, project, self.ctx.exists, self.ctx.read, self.may_float(install, project)
            )
        if why:
            return [], [], [("warning", Code.DOCKERFILE_NOT_REORDERED, f"{where}: {why}.")]
        between = after[: after.index(inst)]
        if not install.deps_only:
            if not install.prefetch or _cache_mounted(inst, eco):
                return None
            for other in between:
                if other.keyword in ("WORKDIR", "ENV", "ARG", "USER", "SHELL", "COPY", "ADD") or (
                    other.keyword == "RUN" and not self._touches_only_copy(c, other)
                ):
                    return (
                        [],
                        [],
                        [
                            (
                                "warning",
                                Code.DOCKERFILE_NOT_REORDERED,
                                f"{where}: {_short(other)} between "
                                "them would change how the dependencies are downloaded.",
                            )
                        ],
                    )
            chmod = _makes_executable(between + [inst], install.command.words[0])
            if chmod:
                return (
                    [],
                    [],
                    [
                        (
                            "warning",
                            Code.DOCKERFILE_NOT_REORDERED,
                            (
                                f"{where}: `{chmod}` shows `{install.command.words[0]}` may not be executable in the "
                                "repository, "
                                f"and an added download step would run it before that."
                            ),
                        )
                    ],
                )
            keyword = "run" if c.inst.line_text.split()[0].islower() else "RUN"
            mounts = [f for f in inst.flags if f.startswith("--mount") and re.search(r"type=(cache|secret|ssh)", f)]
            line = _indent(self.df, c.inst) + " ".join([keyword, *mounts, install.prefetch])
            reason = (
                f"Dockerfile {self.label}: run `{install.prefetch}` after the manifests are copied and "
                f"before {_short(c.inst)}, so the {install.ecosystem} dependencies are downloaded in "
                f"their own cached layer; `{install.command.text}` still runs after the source copy."
            )
            note = self._unlocked_note(install, project)
            return [("insert", c.inst.index, 0, line)], [reason], [note] if note else []
        root = self.copy_dest_dir(c)
        root_text = root[1] if root and root[0] == "" else None
        seen_user = self.inherits_user() or any(i.keyword == "USER" for i in before)
        for other in between + [inst]:
            if other.keyword == "RUN":
                kind, _, blocked = _classify_run(other, root_text, self.cwds[other.index])
                if kind == "dep":
                    return [], [], [("warning", Code.DOCKERFILE_NOT_REORDERED, f"{where}: {blocked}.")]
                continue
            blocked2 = self.free(c, other, seen_user)
            if blocked2:
                return [], [], [("warning", Code.DOCKERFILE_NOT_REORDERED, f"{where}: {blocked2}.")]
        reason = (
            f"Dockerfile {self.label}: moved {_short(c.inst)} below `{install.command.text}`, which reads "
            f"only the manifests copied before it, so a change to the application source no longer "
            f"re-installs the {install.ecosystem} dependencies."
        )
        note = self._unlocked_note(install, project)
        return [("move_after", c.inst.index, inst.index, "")], [reason], [note] if note else []

    def _hoist(self, c: CopyAll, steps: list[_Step], after: list[Instruction]) -> StagePlan:
        ops: list[Op] = []
        copied: list[str] = []
        for step in steps:
            lines, why = self.manifest_copies(c, step.files, step.inst)
            if why:
                where = f"{self.label}: {_short(c.inst)} (line {c.inst.lineno}) stays before {_short(step.inst)}"
                return [], [], [("warning", Code.DOCKERFILE_NOT_REORDERED, f"{where}: {why}.")]
            for line in lines:
                ops.append(("insert", step.inst.index, 0, line))
            copied += [f for f in step.files if any(f in line.split() or json.dumps(f) in line for line in lines)]
        last = steps[-1].inst
        ops.append(("move_after", c.inst.index, last.index, ""))
        notes = (
            self._rid_mismatch(steps, after)
            + self._unpinned(steps)
            + [
                note
                for s in steps
                for i in s.installs
                if (note := self._unlocked_note(i, self.project_of(c, s.inst) or "."))
            ]
        )
        tools = sorted({i.ecosystem for s in steps for i in s.installs})
        installs = _and_list([i.command.text for s in steps for i in s.installs])
        reason = (
            f"Dockerfile {self.label}: {_copy_phrase(copied)}run {installs} before "
            f"{_short(c.inst)}, so a change to the application source no longer re-installs the "
            f"{'/'.join(tools)} dependencies."
        )
        return ops, [reason], notes

    def may_float(self, install: ecosystems.Install, project: str) -> bool:
        """True when the repo setting accepts an install without a lock file and the repository has none (a lock
        file that .dockerignore leaves out is a different problem: the build does not see it). Never for an install
        that fails without one: `npm ci` (https://docs.npmjs.com/cli/commands/npm-ci), pnpm --frozen-lockfile,
        Yarn --immutable."""
        words = install.command.words
        strict = (
            (install.ecosystem == "npm" and words[1:2] in (("ci",), ("clean-install",)))
            or (install.ecosystem == "pnpm" and "--frozen-lockfile" in words)
            or (install.ecosystem == "yarn" and "--immutable" in words)
        )
        return (
            self.ctx.unlocked and not strict and ecosystems.missing_lock(install, project, self.ctx.tracked) is not None
        )

    def _unlocked_note(self, install: ecosystems.Install, project: str) -> Note | None:
        """A Node/PHP install moved before the source copy without a lock file: it now refreshes less often."""
        if install.ecosystem not in ecosystems.UNLOCKED_REORDERABLE:
            return None
        locks = ecosystems.missing_lock(install, project, self.ctx.exists)
        if locks is None:
            return None
        manifest = posixpath.normpath(posixpath.join(project, ecosystems.TABLE[install.ecosystem].manifests[0]))
        where = "the build context" if project == "." else f"`{project}`"
        return (
            "info",
            Code.DOCKERFILE_UNLOCKED_INSTALL,
            f"{self.label}: {where} has no lock file ({locks}), so `{install.command.text}` installs the "
            f"newest versions `{manifest}` allows. After this change its cached layer is rebuilt, and newer "
            f"versions picked up, only when `{manifest}` changes (before, every source change re-installed). "
            f"Commit the lock file so every build installs the same versions; to keep such installs after "
            f"the source copy, set `reorder_unlocked: false` in `.github/ecr-cache.yml`.",
        )

    def _unpinned(self, steps: list[_Step]) -> list[Note]:
        """Requirements without `==`: once the install layer is cached they stay at the versions it resolved."""
        for step in steps:
            if not any(i.ecosystem == "pip" for i in step.installs):
                continue
            for path in step.files:
                for raw in (self.ctx.read(path) or "").splitlines():
                    line = raw.split(" #", 1)[0].split(";", 1)[0].strip()
                    if not line or line.startswith(("#", "-")) or "==" in line or "@" in line or "://" in line:
                        continue
                    name = re.split(r"[<>=!~\[\s]", line, maxsplit=1)[0]
                    return [
                        (
                            "info",
                            Code.DOCKERFILE_UNPINNED_REQUIREMENTS,
                            f"{self.label}: `{path}` does not pin `{name}` with `==`; after this change the "
                            f"cached install keeps the versions it first resolved until `{path}` changes "
                            f"(before, every source change installed the newest). Pin the versions (for "
                            f"example with pip-compile) so every build installs the same ones.",
                        )
                    ]
        return []

    def _rid_mismatch(self, steps: list[_Step], after: list[Instruction]) -> list[Note]:
        """A `dotnet publish -r X` after a restore for another runtime restores again (no cache benefit)."""
        restores = [i for s in steps for i in s.installs if i.ecosystem == "dotnet"]
        if not restores:
            return []
        rid = _runtime(restores[0].command.words)
        for inst in after:
            for cmd in (run_commands(inst) or []) if inst.keyword == "RUN" else []:
                if cmd.name == "dotnet" and cmd.words[1:2] in (("publish",), ("build",)):
                    other = _runtime(cmd.words)
                    if other is not None and other != rid:
                        return [
                            (
                                "info",
                                Code.DOCKERFILE_DOTNET_RUNTIME,
                                f"{self.label}: `{cmd.text}` (line {inst.lineno}) targets runtime `{other}` but "
                                f"`{restores[0].command.text}` restores for `{rid or 'no runtime'}`, so publish "
                                f"restores again; give the restore the same `-r {other}`.",
                            )
                        ]
        return []

    def _prefetch(
        self, c: CopyAll, inst: Instruction, install: ecosystems.Install, after: list[Instruction]
    ) -> StagePlan | str | None:
        """Insert a dependencies-only install before the copy, for tools that have one."""
        if install.deps_only or not install.prefetch:
            return None
        eco = ecosystems.TABLE[install.ecosystem]
        if _cache_mounted(inst, eco):
            return f"{_short(inst)} keeps the dependencies in a cache mount, which a layer cannot pre-fill"
        for between in after:
            if between is inst:
                break
            if between.keyword in ("WORKDIR", "ENV", "ARG", "USER", "SHELL"):
                return f"{_short(between)} between them would change how the dependencies are installed"
            if between.keyword in ("COPY", "ADD"):
                return (
                    f"{_short(between)} between them may bring what the download needs (settings, credentials, "
                    f"wrapper files); an added download step would run before it"
                )
            if between.keyword == "RUN" and not self._touches_only_copy(c, between):
                return (
                    f"{_short(between)} runs between them and may prepare the download (git, credentials, "
                    f"a proxy); an added download step would run before it"
                )
        chmod = _makes_executable(after[: after.index(inst) + 1], install.command.words[0])
        if chmod:
            return (
                f"`{chmod}` shows `{install.command.words[0]}` may not be executable in the repository, and "
                f"an added download step would run it before that"
            )
        project = self.project_of(c, inst)
        if project is None:
            return f"{_short(inst)} does not run inside the copied folder"
        env = self._env_into_copy(c, inst)
        if env:
            return env
        cmd = ShellCommand(tuple(install.prefetch.split()), ())
        pre = ecosystems.recognise(cmd)
        if pre is None or not pre.deps_only:
            return None
        why = ecosystems.unsafe_reason(
            install, project, self.ctx.exists, self.ctx.read, self.may_float(install, project)
        )
        if why:
            return why
        # MSBuild and NuGet also read Directory.Build.props, Directory.Packages.props and NuGet.config from
        # every parent folder, and project references may point to sibling folders: take the whole copy.
        scan = c.source if install.ecosystem == "dotnet" else project
        files = ecosystems.copy_files(install, scan, self.ctx.exists, self.ctx.rel_paths())
        if install.ecosystem == "dotnet":
            if not any(f.endswith(ecosystems.DOTNET_PROJECTS) for f in files):
                return "no .NET project file is in the build context"
            if len({posixpath.dirname(f) for f in files}) > 8:
                return "more than 8 folders of .NET project files would have to be copied one by one"
        lines, why = self.manifest_copies(c, files, c.inst)
        if why:
            return why
        keyword = "run" if c.inst.line_text.split()[0].islower() else "RUN"
        mounts = [f for f in inst.flags if f.startswith("--mount") and re.search(r"type=(cache|secret|ssh)", f)]
        run_line = _indent(self.df, c.inst) + " ".join([keyword, *mounts, install.prefetch])
        ops: list[Op] = [("insert", c.inst.index, 0, line) for line in lines]
        ops.append(("insert", c.inst.index, 0, run_line))
        added = [f for f in files if any(f in line.split() or json.dumps(f) in line for line in lines)]
        reason = (
            f"Dockerfile {self.label}: {_copy_phrase(added)}run `{install.prefetch}` before "
            f"{_short(c.inst)}, "
            f"so the {install.ecosystem} dependencies are downloaded in their own cached layer; "
            f"`{install.command.text}` still runs after the source copy."
        )
        note = self._unlocked_note(install, project)
        return ops, [reason], [note] if note else []


def reorder(df: Dockerfile, ctx: BuildContext) -> ReorderResult:
    """Reorder every stage of ``df`` where it is provably safe."""
    outcome = ReorderResult()
    cwds = stage_cwds(df)
    splice = Splice(df)
    changed = False
    for stage in df.stages:
        ops, reasons, findings = _StagePlan(df, stage, ctx, cwds).plan()
        outcome.findings += findings
        outcome.reasons += reasons
        for op, first, second, line in ops:
            changed = True
            if op == "insert":
                splice.insert_before(first, line)
            else:
                splice.move_after(first, second)
    if changed:
        outcome.text = splice.text()
    return outcome
