"""Find CodeBuild buildspecs and Dockerfiles in a file listing, and the files the planner must read."""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from dataclasses import dataclass

import yaml

from bot.core import globs
from bot.core.buildspec import yaml_text as by
from bot.core.findings import Code
from bot.core.model import Finding, Options, RepoSnapshot
from bot.core.repo_config import CONFIG_PATH

# Installed third-party code: never read. `vendor/` is left out of buildspec/Dockerfile discovery by the default
# `ignore_paths` only (a team may vendor its own images), and its manifests are never read.
_SKIP_DIRS = frozenset(
    {"node_modules", ".git", ".venv", "venv", "__pycache__", ".terraform", "bower_components", ".tox", "site-packages"}
)
_NO_MANIFESTS = _SKIP_DIRS | {"vendor"}
_BUILDSPEC = re.compile(r"(?i)^.*buildspec.*\.ya?ml$")
# `Dockerfile`, `Dockerfile.dev`, `Dockerfile_prod`, `api.Dockerfile` and the same with `Containerfile` (Podman's name).
_DOCKERFILE = re.compile(r"(?i)^(?:(?:docker|container)file(?:[._-].+)?|.+\.(?:docker|container)file)$")
# A last extension that makes `dockerfile_parse.py`, `dockerfile.go` or `Dockerfile.md` a source file or a document,
# never a Dockerfile (`Dockerfile.dev`, `Dockerfile.alpine`, `Dockerfile_arm.cpu` keep counting).
_NOT_DOCKERFILE = frozenset(
    {
        "py",
        "pyc",
        "pyi",
        "ipynb",
        "js",
        "mjs",
        "cjs",
        "jsx",
        "ts",
        "tsx",
        "mts",
        "cts",
        "vue",
        "svelte",
        "go",
        "rb",
        "java",
        "kt",
        "kts",
        "scala",
        "groovy",
        "gradle",
        "cs",
        "fs",
        "vb",
        "rs",
        "c",
        "h",
        "cc",
        "cpp",
        "cxx",
        "hpp",
        "php",
        "pl",
        "pm",
        "swift",
        "dart",
        "lua",
        "r",
        "ex",
        "exs",
        "erl",
        "clj",
        "hs",
        "ml",
        "sql",
        "sh",
        "bash",
        "zsh",
        "fish",
        "ps1",
        "psm1",
        "bat",
        "cmd",
        "md",
        "markdown",
        "rst",
        "adoc",
        "txt",
        "html",
        "htm",
        "css",
        "scss",
        "json",
        "yml",
        "yaml",
        "toml",
        "xml",
        "lock",
        "tf",
        "hcl",
        "csv",
        "log",
        "diff",
        "patch",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "pdf",
        "dockerignore",
    }
)
_MANIFESTS = frozenset(
    {
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
        "Pipfile",
        "Pipfile.lock",
        "pyproject.toml",
        "poetry.lock",
        "uv.lock",
        "setup.py",
        "setup.cfg",
        "go.mod",
        "go.sum",
        "Gemfile",
        "Gemfile.lock",
        "composer.json",
        "composer.lock",
        "pom.xml",
        "NuGet.config",
        "nuget.config",
        "Cargo.toml",
        "Cargo.lock",
        ".npmrc",
        ".yarnrc",
        ".yarnrc.yml",
        "packages.lock.json",
        "global.json",
        "mix.exs",
        "mix.lock",
        "build.sbt",
    }
)
_MANIFEST_GLOBS = (
    "requirements*.txt",
    "constraints*.txt",
    "*.gemspec",
    "build.gradle*",
    "settings.gradle*",
    "*.csproj",
    "*.fsproj",
    "*.vbproj",
    "*.sln",
    "Directory.*.props",
    "gradle.properties",
)
# The globs as one pattern: exactly `any(fnmatchcase(base, g))`, in one scan instead of eleven (webhook hot path).
_MANIFEST_GLOB = re.compile("|".join(fnmatch.translate(g) for g in _MANIFEST_GLOBS))
_MAX_SPECS = 200
_MAX_DOCKERFILES = 300
_MAX_MANIFESTS = 600


def _skipped(path: str, dirs: frozenset[str] = _SKIP_DIRS) -> bool:
    return any(part in dirs for part in path.split("/")[:-1])


def is_dockerfile(path: str) -> bool:
    """True when the file name is a Dockerfile's: `Dockerfile[.*]`, `*.Dockerfile`, `Containerfile`, not code."""
    base = posixpath.basename(path)
    if not _DOCKERFILE.match(base):
        return False
    lower = base.lower()
    if lower.endswith(("dockerfile", "containerfile")):
        return True
    return "." not in base or lower.rsplit(".", 1)[1] not in _NOT_DOCKERFILE


def _ignored(path: str, options: Options) -> bool:
    return globs.matches_any(path, options.ignore_paths)


def _is_manifest(path: str) -> bool:
    base = posixpath.basename(path)
    if base in _MANIFESTS or _MANIFEST_GLOB.match(base):
        return True
    # `requirements/base.txt`-style folders: pip `-r`/`-c` includes the reorder must follow.
    folder = posixpath.basename(posixpath.dirname(path))
    return folder.lower().startswith("requirements") and base.endswith((".txt", ".in"))


# Bounded: paths come from webhook payloads; a push repeats its paths across commits and pushes repeat paths.
@functools.lru_cache(maxsize=4096)
def may_change_plan(path: str) -> bool:
    """True when a change to ``path`` can change the plan: what discovery reads, by name (config globs aside)."""
    base = posixpath.basename(path)
    if _skipped(path):
        return False  # never read, whatever the config says
    if _BUILDSPEC.match(base) or is_dockerfile(path) or _is_manifest(path):
        return True
    return base == ".dockerignore" or base.endswith(".dockerignore") or base.lower() == "packages.config"


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, g) or path == g.removeprefix("./") for g in patterns)


def configured_matches(paths: tuple[str, ...], pattern: str) -> list[str]:
    """The paths a `buildspecs:`/`dockerfiles:` entry (or `--buildspec`/`--dockerfile`) names."""
    return [p for p in paths if not _skipped(p) and _matches(p, (pattern,))]


def buildspec_candidates(paths: tuple[str, ...], options: Options) -> list[str]:
    """Paths that look like buildspecs by name (outside `ignore_paths`) or are configured as such."""
    out = [
        p
        for p in paths
        if not _skipped(p)
        and (
            (_BUILDSPEC.match(posixpath.basename(p)) and not _ignored(p, options))
            or _matches(p, options.buildspec_paths)
        )
    ]
    return out[:_MAX_SPECS]


def dockerfile_candidates(paths: tuple[str, ...], options: Options) -> list[str]:
    """Paths that look like Dockerfiles by name (outside `ignore_paths`) or are configured as such."""
    out = [
        p
        for p in paths
        if not _skipped(p)
        and ((is_dockerfile(p) and not _ignored(p, options)) or _matches(p, options.dockerfile_paths))
    ]
    return out[:_MAX_DOCKERFILES]


Candidates = tuple[list[str], list[str]]


def candidates(paths: tuple[str, ...], options: Options) -> Candidates:
    """(buildspec, Dockerfile) candidates in one pass: a repository's tree can hold many thousand paths."""
    kept = tuple(p for p in paths if not _skipped(p))
    specs = [
        p
        for p in kept
        if (_BUILDSPEC.match(posixpath.basename(p)) and not _ignored(p, options))
        or _matches(p, options.buildspec_paths)
    ]
    dockerfiles = [
        p for p in kept if (is_dockerfile(p) and not _ignored(p, options)) or _matches(p, options.dockerfile_paths)
    ]
    return specs[:_MAX_SPECS], dockerfiles[:_MAX_DOCKERFILES]


def _unmatched(paths: tuple[str, ...], options: Options) -> list[Finding]:
    """A configured path or glob that names no file: a typo the user must hear about, not a silent no-op."""
    out = []
    for key, patterns in (("dockerfiles", options.dockerfile_paths), ("buildspecs", options.buildspec_paths)):
        for pattern in patterns:
            if not configured_matches(paths, pattern):
                out.append(
                    Finding(
                        CONFIG_PATH,
                        "warning",
                        Code.CONFIG_GLOB_UNMATCHED,
                        f"`{key}` entry `{pattern}` matches no file the bot reads (none outside "
                        "node_modules, .git and virtualenv folders), so it adds nothing; correct the "
                        "path or remove it.",
                    )
                )
    return out


def paths_to_read(paths: tuple[str, ...], options: Options) -> tuple[str, ...]:
    """Return the paths whose contents the planner needs: buildspecs, Dockerfiles, ignores, manifests."""
    chosen = dict.fromkeys(buildspec_candidates(paths, options) + dockerfile_candidates(paths, options))
    ignores = [p for p in paths if not _skipped(p) and posixpath.basename(p).endswith(".dockerignore")]
    chosen.update(dict.fromkeys(ignores[:_MAX_DOCKERFILES]))
    manifests = [p for p in paths if not _skipped(p, _NO_MANIFESTS) and _is_manifest(p)]
    chosen.update(dict.fromkeys(manifests[:_MAX_MANIFESTS]))
    return tuple(chosen)


@dataclass(frozen=True)
class Discovery:
    """Files the planner will look at, and files it rejected with a reason."""

    buildspecs: tuple[str, ...] = ()
    dockerfiles: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    batch_buildspecs: tuple[str, ...] = ()


def classify(text: str) -> str | None:
    """None when ``text`` is a CodeBuild buildspec the bot can edit; else why it is not."""
    return _load(text)[1]


def _load(text: str) -> tuple[object, str | None]:
    """(loaded YAML data, None when it is a CodeBuild buildspec the bot can edit, else why it is not)."""
    try:
        data = by.safe_load(text)
    except yaml.YAMLError as exc:
        return None, "not valid YAML: " + " ".join(str(exc).split())[:200]
    return data, _why_not(data)


def _why_not(data: object) -> str | None:
    """Why loaded YAML data is no Linux CodeBuild buildspec the bot can edit (None: it is one)."""
    if not isinstance(data, dict):
        return "not a YAML mapping"
    if "jobs" in data or True in data or "on" in data:
        return "a GitHub Actions workflow (`on:`/`jobs:`), not a CodeBuild buildspec"
    version = data.get("version")
    if str(version) not in ("0.2",):
        if str(version) == "0.1":
            return (
                "buildspec version 0.1 runs every command in its own shell, so variables set by one "
                "command are lost; move it to version 0.2 first"
            )
        return f"`version: {version}` is not a CodeBuild buildspec version (0.2)"
    if not isinstance(data.get("phases"), dict) and "batch" not in data:
        return "no `phases` mapping"
    env = data.get("env")
    if isinstance(env, dict) and str(env.get("shell", "")).lower() in (
        "powershell.exe",
        "powershell",
        "cmd",
        "cmd.exe",
        "pwsh",
    ):
        return f"runs Windows `{env.get('shell')}` commands; only Linux shells are supported"
    # Windows images run commands in PowerShell unless `env.shell` says otherwise
    # (https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html, env/shell).
    if any(_POWERSHELL.search(t) for t in _strings(data.get("phases"))):
        return "runs Windows PowerShell commands (`$env:`, `Get-ECRLoginCommand`, ...); only Linux shells are supported"
    return None


def _strings(node: object) -> list[str]:
    """Every string value inside loaded YAML data."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _strings(v)]
    if isinstance(node, list):
        return [t for v in node for t in _strings(v)]
    return []


_POWERSHELL = re.compile(r"\$env:[A-Za-z_]|Get-ECRLoginCommand|Invoke-Expression|Write-Host\b")


def _batch_refs(data: object) -> list[str]:
    """`buildspec:` paths named by a batch build-list/build-graph/build-matrix of loaded buildspec data."""
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "buildspec" and isinstance(v, str):
                    refs.append(posixpath.normpath(v.lstrip("./")) if v.startswith("./") else v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    if isinstance(data, dict):
        walk(data.get("batch"))
    return refs


def discover(snapshot: RepoSnapshot, options: Options, found: Candidates | None = None) -> Discovery:
    """Return the CodeBuild buildspecs and Dockerfiles of the snapshot (``found``: its candidates, if known)."""
    findings = _unmatched(snapshot.paths, options)
    spec_candidates, dockerfile_names = found or candidates(snapshot.paths, options)
    queue = list(spec_candidates)
    seen: set[str] = set()
    specs: list[str] = []
    batch_refs: list[str] = []
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = snapshot.text(path)
        if text is None:
            continue
        data, why = _load(text)  # loaded once: the batch references come from the same data
        if why is not None:
            findings.append(Finding(path, "info", Code.NOT_A_BUILDSPEC, f"{path} is left alone: {why}."))
            continue
        specs.append(path)
        for ref in _batch_refs(data):
            if ref not in seen and ref in snapshot.files:
                batch_refs.append(ref)
                queue.append(ref)
    return Discovery(tuple(specs), tuple(dockerfile_names), tuple(findings), tuple(batch_refs))
