""".dockerignore matching (moby/patternmatcher semantics) and the entries the bot adds to a build context."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core import ecosystems
from bot.core.dockerfile.parse import Dockerfile, split_words
from bot.core.dockerfile.reorder import _assignments, _join, copy_parts, stage_cwds
from bot.core.model import WrittenFile
from bot.core.shell.run_commands import ShellCommand, run_commands, split_commands, system_only

Read = Callable[[str], "str | None"]
HEADER = "# Added by ecr-cache-bot: not needed in the image; a change here must not invalidate the layer cache."


def read_patterns(text: str) -> list[str]:
    """Patterns of a .dockerignore file, cleaned as moby/patternmatcher/ignorefile.ReadAll does."""
    out: list[str] = []
    for n, raw in enumerate(text.split("\n")):
        line = raw.lstrip("\ufeff") if n == 0 else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if pattern.startswith("//"):
                pattern = "/" + pattern.lstrip("/")
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        out.append(("!" if invert else "") + pattern)
    return out


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str] | None
    kind: str


def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """(match type, regex) exactly as patternmatcher's Pattern.compile (slash separator)."""
    reg = "^"
    kind = "exact"
    i = 0
    n = len(pattern)
    first = True
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                if i + 1 >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg += ".*"
                        kind = "regexp"
                else:
                    reg += "(.*/)?"
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                reg += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            reg += "[^/]"
            kind = "regexp"
        elif ch in ".+()|{}$":
            reg += "\\" + ch
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                reg += "\\" + pattern[i]
                kind = "regexp"
            else:
                reg += "\\\\"
        elif ch in "[]":
            reg += ch
            kind = "regexp"
        else:
            reg += ch
        i += 1
        first = False
    if kind == "regexp":
        try:
            return kind, re.compile(reg + "$")
        except re.error:
            return "bad", None
    return kind, None


class Matcher:
    """MatchesOrParentMatches over a list of cleaned patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            exclusion = p.startswith("!")
            body = p[1:] if exclusion else p
            kind, regex = _compile(body)
            self.patterns.append(_Pattern(body, exclusion, regex, kind))

    def _match(self, pat: _Pattern, path: str) -> bool:
        if pat.kind == "exact":
            return path == pat.text
        if pat.kind == "prefix":
            return path.startswith(pat.text[:-2])
        if pat.kind == "suffix":
            suffix = pat.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        if pat.kind == "regexp" and pat.regex is not None:
            return pat.regex.match(path) is not None
        return False

    def excluded(self, path: str) -> bool:
        """True when the context-relative ``path`` (or a parent folder) is excluded."""
        path = posixpath.normpath(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path)
        dirs = parent.split("/") if parent else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = self._match(pat, path)
            if not hit and parent:
                hit = any(self._match(pat, "/".join(dirs[: i + 1])) for i in range(len(dirs)))
            if hit:
                matched = not pat.exclusion
        return matched


def _covered(matcher: Matcher, pattern: str) -> bool:
    """True when ``matcher`` already excludes what ``pattern`` would (top level and, for `**/`, nested)."""
    top = pattern.replace("**/", "").replace("*", "x")
    samples = [top, "sub/" + top] if pattern.startswith("**/") else [top]
    return all(matcher.excluded(s) for s in samples)


@dataclass(frozen=True)
class Candidate:
    """One entry the bot would add, and why."""

    pattern: str
    why: str


def candidates(dockerfiles: Iterable[Dockerfile]) -> list[Candidate]:
    """Entries worth ignoring for these Dockerfiles: `.git`, and output folders of tools they run."""
    out = [Candidate(".git", "the Git history is never needed in the image")]
    seen: set[str] = set()
    for df in dockerfiles:
        for inst in df.instructions:
            if inst.keyword != "RUN":
                continue
            for cmd in run_commands(inst) or []:
                found = ecosystems.recognise(cmd)
                if found is None or found.ecosystem in seen or found.ecosystem not in ecosystems.TABLE:
                    continue
                seen.add(found.ecosystem)
                for pattern in ecosystems.TABLE[found.ecosystem].ignore:
                    out.append(
                        Candidate(pattern, f"local {found.ecosystem} output; the image runs `{cmd.text}` itself")
                    )
    unique: dict[str, Candidate] = {}
    for c in out:
        unique.setdefault(c.pattern, c)
    return list(unique.values())


def needed_sources(dockerfiles: Iterable[Dockerfile]) -> tuple[list[str], bool]:
    """Context sources named by COPY/ADD/bind mounts (whole-context copies left out), and whether git runs."""
    sources: list[str] = []
    uses_git = False
    for df in dockerfiles:
        for inst in df.instructions:
            if inst.keyword == "RUN":
                if re.search(r"\bgit\b", df.block(inst)):
                    uses_git = True
                for flag in inst.flags:
                    if flag.startswith("--mount") and "type=bind" in flag and "from=" not in flag:
                        opts = dict(p.split("=", 1) for p in flag.split("=", 1)[1].split(",") if "=" in p)
                        sources.append(opts.get("source", opts.get("src", ".")))
            if inst.keyword in ("COPY", "ADD") and inst.flag("from") is None:
                parts = copy_parts(inst)
                if parts:
                    sources += [s for s in parts[0] if "://" not in s]
                if inst.flag("keep-git-dir") is not None:
                    uses_git = True
    return [posixpath.normpath(s.lstrip("/") or ".") for s in sources], uses_git


def _glob(source: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(source).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$")


def brings(source: str, path: str) -> bool:
    """True when a COPY of ``source`` brings the tracked context ``path`` in (a folder copies what is under it)."""
    if source == ".":
        return True
    if any(c in source for c in "*?["):
        rx = _glob(source)
        parts = path.split("/")
        return any(rx.match("/".join(parts[: i + 1])) for i in range(len(parts)))
    return path == source or path.startswith(source + "/")


def _reaches(pattern: str, source: str, paths: tuple[str, ...]) -> bool:
    """True when a copy of ``source`` would pick up what ``pattern`` names, were it in the context."""
    nested = pattern.startswith("**/")
    name = pattern.replace("**/", "").replace("*", "x")
    if source == ".":
        return True
    if any(c in source for c in "*?["):
        rx = _glob(source)
        if rx.match(name):
            return True
        # A glob that names folders copies their contents, where a nested pattern may match.
        return nested and any(rx.match(p.split("/", 1)[0]) for p in paths if "/" in p)
    return nested and any(p.startswith(source + "/") for p in paths)


_LIFECYCLE = ("preinstall", "install", "postinstall", "prepare", "preprepare", "postprepare")


def _runs_project_scripts(found: ecosystems.Install, paths: tuple[str, ...], read: Read) -> bool:
    """True when a Node install would run a lifecycle script of a package.json in the context."""
    if found.ecosystem not in ("npm", "yarn", "pnpm") or "--ignore-scripts" in found.command.words:
        return False
    for path in paths:
        if posixpath.basename(path) != "package.json" or "node_modules/" in path:
            continue
        text = read(path)
        if text is None:
            return True
        try:
            scripts = json.loads(text).get("scripts") or {}
        except (ValueError, AttributeError, RecursionError):
            return True
        if isinstance(scripts, dict) and any(k in scripts for k in _LIFECYCLE):
            return True
    return False


def _may_read_git(dockerfiles: Iterable[Dockerfile], paths: tuple[str, ...] = (), read: Read = lambda _p: None) -> bool:
    """True when a step after a copy of the whole context may read `.git` without naming it.

    Builds read the Git metadata on their own: Go 1.18+ stamps the revision into binaries
    (https://go.dev/doc/go1.18#go-version), Maven/Gradle/sbt plugins and setuptools-scm derive versions
    from it, Makefiles run `git describe`. Only dependency installs and system commands are known blind to it.
    """
    for df in dockerfiles:
        cwds = stage_cwds(df)
        goflags = _goflags_at(df)
        root: str | None = None
        copied = False
        for inst in df.instructions:
            if inst.keyword in ("COPY", "ADD") and inst.flag("from") is None and not copied:
                parts = copy_parts(inst)
                if parts and any(
                    posixpath.normpath(s.lstrip("/") or ".") == "." or s.startswith(("*", ".*")) for s in parts[0]
                ):
                    copied = True
                    dest = _join(cwds.get(inst.index), parts[1])
                    root = dest[1] if dest is not None and dest[0] == "" else None
                continue
            if inst.keyword != "RUN":
                continue
            binds_root = any(
                f.startswith("--mount")
                and "type=bind" in f
                and "from=" not in f
                and not re.search(r"(?:source|src)=(?!\.?/?(?:,|$))", f)
                for f in inst.flags
            )
            if not copied and not binds_root:
                continue
            commands = run_commands(inst)
            if commands is None:
                return True
            for cmd in commands:
                found = ecosystems.recognise(cmd)
                if found is not None and found.deps_only:
                    if _runs_project_scripts(found, paths, read):
                        return True
                    continue
                if _go_build_without_vcs(cmd, goflags.get(inst.index, "")):
                    continue
                if system_only(cmd, root) is not None:
                    return True
    return False


def _go_build_without_vcs(cmd: ShellCommand, env_goflags: str) -> bool:
    """True for `go build`/`go install` with `-buildvcs=false` (flag, `GOFLAGS=` on the command or in ENV).

    Without it Go 1.18+ runs git to stamp the binary; with it the build never reads `.git`
    (https://pkg.go.dev/cmd/go#hdr-Build_flags).
    """
    if cmd.name != "go" or cmd.words[1:2] not in (("build",), ("install",)):
        return False
    # GOFLAGS on the command replaces the ENV one; command-line flags come after GOFLAGS, so the last one wins
    # (`go help environment`: "Flags listed on the command line are applied after this list and therefore
    # override it"); a bare -buildvcs is -buildvcs=true.
    goflags = ([a.split("=", 1)[1] for a in cmd.assignments if a.startswith("GOFLAGS=")] or [env_goflags])[-1]
    flags = [
        w.lstrip("-")
        for w in [*goflags.split(), *cmd.words[2:]]
        if w.startswith("-") and w.lstrip("-").split("=", 1)[0] == "buildvcs"
    ]
    return bool(flags) and flags[-1] == "buildvcs=false"


def _goflags_at(df: Dockerfile) -> dict[int, str]:
    """instruction index → the GOFLAGS an earlier `ENV` of its stage set (ARG does not reach `go`'s environment)."""
    out: dict[int, str] = {}
    current: dict[int, str] = {}
    for inst in df.instructions:
        out[inst.index] = current.get(inst.stage, "")
        if inst.keyword == "ENV":
            for name, value in _assignments(inst):
                if name == "GOFLAGS":
                    current[inst.stage] = value
    return out


def _named_in(dockerfiles: Iterable[Dockerfile], path: str) -> bool:
    """True when some Dockerfile mentions the file by name (a RUN or CMD may read it)."""
    name = posixpath.basename(path)
    return any(re.search(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])", "".join(df.lines)) for df in dockerfiles)


def written_candidates(
    dockerfiles: list[Dockerfile], sources: list[str], written: Iterable[WrittenFile]
) -> list[Candidate]:
    """Entries for files the buildspec writes before the build for CodeBuild/CodePipeline, not for the image."""
    out = []
    for w in written:
        picked = any(s != "." and brings(s, w.path) for s in sources)  # `COPY *.json ./` wants it
        if w.output and not picked and not any(c in w.path for c in "*?[\\!#") and not _named_in(dockerfiles, w.path):
            out.append(
                Candidate(
                    w.path,
                    f"written by {w.where} before the build, as an output for "
                    "CodeBuild/CodePipeline; it differs on every build",
                )
            )
    return out


def written_into_copy(
    dockerfiles: list[Dockerfile],
    written: Iterable[WrittenFile],
    existing: str | None,
) -> list[WrittenFile]:
    """Files written before the build that a whole-context COPY brings in (the cache misses there every build)."""
    sources, _ = needed_sources(dockerfiles)
    whole = "." in sources  # a COPY, ADD or bind mount of the whole context
    matcher = Matcher(read_patterns(existing or ""))
    return [
        w
        for w in written
        if whole
        and not w.output
        and not matcher.excluded(w.path)
        and not any(s != "." and brings(s, w.path) for s in sources)
    ]


def _copy_roots(df: Dockerfile) -> set[str] | None:
    """Absolute folders COPY/ADD put context files in (None when one of them cannot be told)."""
    cwds = stage_cwds(df)
    roots: set[str] = set()
    for inst in df.instructions:
        if inst.keyword not in ("COPY", "ADD") or inst.flag("from") is not None:
            continue
        parts = copy_parts(inst)
        dest = _join(cwds.get(inst.index), parts[1]) if parts else None
        if dest is None:
            return None
        roots.add(dest[1])
    return roots


def _suffixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts))]


def run_names(dockerfiles: Iterable[Dockerfile]) -> list[str]:
    """Context-relative paths (and their trailing parts) of the files CMD/ENTRYPOINT name, exec or shell form.

    The image path maps to the context through the COPY destinations; a trailing part stands for a copy of a
    subfolder (`COPY src/ /app/` runs `/app/x.pyc` from `src/x.pyc`), so a pattern never hides any of them.
    """
    out: list[str] = []
    for df in dockerfiles:
        roots = _copy_roots(df)
        for inst in df.instructions:
            if inst.keyword not in ("CMD", "ENTRYPOINT"):
                continue
            exec_form = inst.json_args()
            # A shell string in exec form (`["sh", "-c", "exec .venv/bin/app"]`) is read like the shell form.
            scripts = [inst.args] if exec_form is None else [w for w in exec_form if " " in w]
            words = [w for w in exec_form or [] if " " not in w]
            for script in scripts:
                commands = split_commands(script)
                words += [w for c in commands for w in c.words] if commands is not None else split_words(script)
            for word in words:
                if word.startswith("-") or "://" in word or "$" in word or not re.search(r"[./]", word.strip("./")):
                    continue
                path = posixpath.normpath(word)
                if not path.startswith("/"):
                    out += _suffixes(path)
                    continue
                under = [r for r in roots or () if r == "/" or path.startswith(r.rstrip("/") + "/")]
                if roots is None:
                    out += _suffixes(path.lstrip("/"))
                for root in under:
                    out += _suffixes(posixpath.relpath(path, root))
    return list(dict.fromkeys(out))


def needed_files(dockerfiles: list[Dockerfile], sources: list[str], written: Iterable[WrittenFile]) -> list[str]:
    """Files the image needs that the tree listing does not show: written before the build and brought in by a
    COPY (an output for CodeBuild is left to `written_candidates`), and files CMD/ENTRYPOINT run."""
    made = [w.path.replace("*", "x") for w in written if not w.output and any(brings(s, w.path) for s in sources)]
    return list(dict.fromkeys(made + run_names(dockerfiles)))


def extend(
    existing: str | None,
    dockerfiles: list[Dockerfile],
    context_paths: tuple[str, ...],
    repo_root: bool = True,
    read: Read = lambda _p: None,
    written: Iterable[WrittenFile] = (),
) -> tuple[str | None, list[Candidate]]:
    """New .dockerignore text (None: nothing to add) and the entries added.

    ``repo_root``: the context is the repository root, the only folder where `.git` lives; ``read`` gives the
    text of a context file (None when unknown); ``written``: files the buildspec writes into the context
    before the build (context-relative). An entry is
    added only when some COPY/ADD would otherwise bring what it names into the image (BuildKit transfers
    and checksums only what the COPY sources name, https://docs.docker.com/build/cache/invalidation/),
    and never when it would drop a tracked file a COPY brings in.
    """
    current = read_patterns(existing or "")
    before = Matcher(current)
    sources, uses_git = needed_sources(dockerfiles)
    dockerfiles = list(dockerfiles)
    written = list(written)
    needed = needed_files(dockerfiles, sources, written)
    added: list[Candidate] = []
    for cand in candidates(dockerfiles) + written_candidates(dockerfiles, sources, written):
        names_git = any(s == ".git" or s.startswith(".git/") for s in sources)
        if cand.pattern == ".git" and (
            not repo_root or uses_git or names_git or _may_read_git(dockerfiles, context_paths, read)
        ):
            continue
        if _covered(before, cand.pattern):
            continue
        if not any(_reaches(cand.pattern, s, context_paths) for s in sources):
            continue
        base = cand.pattern.replace("**/", "").replace("*", "x").rsplit("/", 1)[-1]
        if any(p.startswith("!") and base.split(".")[0] in p for p in current):
            continue
        trial = Matcher(current + [a.pattern for a in added] + [cand.pattern])
        if _needs(trial, before, Matcher([cand.pattern]), sources, context_paths):
            continue
        if any(trial.excluded(n) and not before.excluded(n) for n in needed):
            continue  # dropped rather than re-included with `!`: the image path maps to the context only loosely
        added.append(cand)
    if not added:
        return None, []
    nl = "\r\n" if existing and "\r\n" in existing else "\n"
    lines = [HEADER] + [a.pattern for a in added]
    if existing:
        sep = "" if existing.endswith("\n") else nl
        return existing + sep + nl.join(lines) + nl, added
    return nl.join(lines) + nl, added


def _needs(trial: Matcher, before: Matcher, alone: Matcher, sources: list[str], paths: tuple[str, ...]) -> bool:
    """True when ``trial`` newly excludes something a COPY needs: a source itself, or a tracked file a source
    brings in (dropping it would change the image). ``alone`` is the new pattern by itself: only what it
    matches can be newly excluded, which keeps this linear in the tree."""
    newly = [p for p in paths if alone.excluded(p) and trial.excluded(p) and not before.excluded(p)]
    if any(brings(s, p) for p in newly for s in sources):
        return True
    # A source the tree does not hold (built before `docker build`, e.g. target/app.jar) is checked by name.
    return any(
        s != "." and trial.excluded(s) and not before.excluded(s) and not any(brings(s, p) for p in paths)
        for s in sources
    )
