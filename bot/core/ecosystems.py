"""One table of package ecosystems: manifests, lock files, install commands, and what makes a move unsafe."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.shell.run_commands import ShellCommand, looks_like_path

Exists = Callable[[str], bool]
Read = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Ecosystem:
    """What one package manager needs copied before it installs, and what it leaves behind."""

    name: str
    manifests: tuple[str, ...]
    locks: tuple[str, ...]
    optional: tuple[str, ...]
    ignore: tuple[str, ...]
    cache_targets: tuple[str, ...]
    tools: tuple[str, ...]


TABLE: dict[str, Ecosystem] = {
    e.name: e
    for e in (
        Ecosystem(
            "npm",
            ("package.json",),
            ("package-lock.json", "npm-shrinkwrap.json"),
            (".npmrc",),
            ("**/node_modules", "npm-debug.log"),
            ("node_modules",),
            ("npm",),
        ),
        Ecosystem(
            "yarn",
            ("package.json",),
            ("yarn.lock",),
            (".npmrc", ".yarnrc"),
            ("**/node_modules", "yarn-error.log"),
            ("node_modules",),
            ("yarn",),
        ),
        Ecosystem(
            "pnpm",
            ("package.json",),
            ("pnpm-lock.yaml",),
            (".npmrc", ".pnpmfile.cjs"),
            ("**/node_modules",),
            ("node_modules",),
            ("pnpm",),
        ),
        Ecosystem("pip", (), (), (), ("**/__pycache__", "**/*.pyc", ".venv"), (), ("pip", "pip3", "uv")),
        Ecosystem(
            "pipenv", ("Pipfile",), ("Pipfile.lock",), (), ("**/__pycache__", "**/*.pyc", ".venv"), (), ("pipenv",)
        ),
        Ecosystem(
            "poetry",
            ("pyproject.toml",),
            ("poetry.lock",),
            ("poetry.toml",),
            ("**/__pycache__", "**/*.pyc", ".venv"),
            (),
            ("poetry",),
        ),
        Ecosystem(
            "uv",
            ("pyproject.toml",),
            ("uv.lock",),
            (".python-version", "uv.toml"),
            ("**/__pycache__", "**/*.pyc", ".venv"),
            (),
            ("uv",),
        ),
        Ecosystem("go", ("go.mod",), ("go.sum",), (), (), ("/go/pkg/mod", "pkg/mod"), ("go",)),
        Ecosystem(
            "bundler", ("Gemfile",), ("Gemfile.lock",), (), (".bundle", "vendor/bundle"), (), ("bundle", "bundler")
        ),
        Ecosystem("maven", ("pom.xml",), (), (), ("target",), (".m2",), ("mvn", "mvnw")),
        Ecosystem(
            "gradle",
            ("build.gradle", "build.gradle.kts"),
            (),
            ("settings.gradle", "settings.gradle.kts", "gradle.properties", "gradlew"),
            (".gradle",),
            (".gradle",),
            ("gradle", "gradlew"),
        ),
        Ecosystem("composer", ("composer.json",), ("composer.lock",), ("auth.json",), ("vendor",), (), ("composer",)),
        Ecosystem(
            "dotnet",
            (),
            (),
            (
                "NuGet.config",
                "nuget.config",
                "NuGet.Config",
                "global.json",
                "Directory.Build.props",
                "Directory.Packages.props",
                "Directory.Build.targets",
            ),
            ("**/bin", "**/obj"),
            (".nuget",),
            ("dotnet",),
        ),
        Ecosystem(
            "cargo", ("Cargo.toml",), ("Cargo.lock",), (), ("target",), ("target", ".cargo/registry"), ("cargo",)
        ),
    )
}

UNSUPPORTED_TOOLS = frozenset({"sbt", "lein", "mix", "stack", "cabal", "swift", "dart", "flutter", "conan"})
DOTNET_PROJECTS = (".csproj", ".fsproj", ".vbproj", ".sln", ".slnx")
# The Maven wrapper (`mvnw` and `.mvn/wrapper/`) pins the Maven version, as `gradlew` pins Gradle's.
MANIFEST_NAMES = frozenset(n for e in TABLE.values() for n in e.manifests + e.locks + e.optional) | {
    "requirements.txt",
    "mvnw",
    "maven-wrapper.properties",
}
# Files whose text the planner needs to judge safety (for discover.paths_to_read).
CONTENT_FILES = (
    "package.json",
    "Pipfile",
    "pyproject.toml",
    "go.mod",
    "Gemfile",
    "composer.json",
    "pom.xml",
    "settings.gradle",
    "settings.gradle.kts",
    "build.gradle",
    "build.gradle.kts",
    "NuGet.config",
    "nuget.config",
    "NuGet.Config",
    ".dockerignore",
)
CONTENT_PATTERNS = (r"(^|/)requirements[^/]*\.(txt|in)$", r"(^|/)constraints[^/]*\.txt$", r"\.dockerignore$")


def is_manifest_name(name: str) -> bool:
    """A dependency manifest or lock file, judged by its base name (globs like `package*.json` too)."""
    base = posixpath.basename(name.rstrip("/"))
    if base in MANIFEST_NAMES or base.endswith(DOTNET_PROJECTS):
        return True
    if re.fullmatch(r"requirements[^/]*\.(txt|in)|constraints[^/]*\.txt", base):
        return True
    if any(c in base for c in "*?["):
        pattern = re.compile("^" + re.escape(base).replace(r"\*", ".*").replace(r"\?", ".") + "$")
        return any(pattern.match(n) for n in MANIFEST_NAMES) and not pattern.match("main.go")
    return False


@dataclass(frozen=True)
class Install:
    """One recognised command of an ecosystem in a RUN.

    ``deps_only``: it reads only manifests as written. ``prefetch``: a dependencies-only command to run
    before the source copy when the command itself needs the sources (None: no such rule).
    """

    ecosystem: str
    command: ShellCommand
    deps_only: bool
    prefetch: str | None = None
    files: tuple[str, ...] = ()
    note: str = ""


def _flags_only(words: list[str]) -> bool:
    return all(w.startswith("-") for w in words)


def _pip_files(args: list[str]) -> tuple[list[str], list[str], bool]:
    """Requirement files, positional packages, and whether `-e`/local paths are installed."""
    files: list[str] = []
    pos: list[str] = []
    local = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-r", "--requirement", "-c", "--constraint") and i + 1 < len(args):
            files.append(args[i + 1])
            i += 2
            continue
        if a.startswith(("--requirement=", "--constraint=")):
            files.append(a.split("=", 1)[1])
        elif a.startswith(("-r", "-c")) and len(a) > 2 and not a.startswith("--"):
            files.append(a[2:])
        elif a in ("-e", "--editable") or a.startswith("--editable="):
            local = True
        elif a.startswith("--find-links=") or (a.startswith("-f") and len(a) > 2 and not a.startswith("--")):
            link = a.split("=", 1)[1] if a.startswith("--") else a[2:].removeprefix("=")
            if "://" not in link or link.startswith("file:"):
                local = True
        elif a in (
            "-t",
            "--target",
            "--prefix",
            "--root",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "--trusted-host",
            "--platform",
            "--python-version",
            "--implementation",
            "--abi",
            "--progress-bar",
            "--cache-dir",
            "--src",
        ) and i + 1 < len(args):
            link = args[i + 1]
            if a in ("-f", "--find-links") and (
                looks_like_path(link) and "://" not in link or link.startswith("file:")
            ):
                local = True
            i += 2
            continue
        elif not a.startswith("-"):
            pos.append(a)
            if looks_like_path(a):
                local = True
        i += 1
    return files, pos, local


def recognise(cmd: ShellCommand) -> Install | None:
    """The ecosystem command ``cmd`` is, if any."""
    w = list(cmd.words)
    if not w:
        return None
    name = cmd.name
    if name in ("python", "python3") and w[1:3] == ["-m", "pip"]:
        w, name = ["pip", *w[3:]], "pip"
    sub = w[1] if len(w) > 1 else ""
    rest = w[2:]
    if name == "npm":
        if sub in ("ci", "install", "i", "clean-install", "isntall") and _flags_only(rest) and "-g" not in rest:
            return Install("npm", cmd, True)
        if sub in ("run", "run-script", "test", "start", "build", "exec", "rebuild", "prune"):
            return Install("npm", cmd, False)
        return None
    if name == "yarn":
        if sub in ("", "install") and _flags_only(w[1:] if sub != "install" else rest):
            return Install("yarn", cmd, True)
        if sub not in ("config", "global", "cache", "set", "policies") and sub:
            return Install("yarn", cmd, False)
        return None
    if name == "pnpm":
        if sub in ("install", "i", "fetch") and _flags_only(rest):
            return Install("pnpm", cmd, True)
        if sub in ("run", "build", "exec", "test", "deploy"):
            return Install("pnpm", cmd, False)
        return None
    if re.fullmatch(r"pip[0-9.]*", name) or (name == "uv" and sub == "pip"):
        args = w[3:] if name == "uv" else rest
        verb = w[2] if name == "uv" and len(w) > 2 else sub
        if verb == "sync" and name == "uv":
            files = [a for a in args if not a.startswith("-")]
            return Install("pip", cmd, True, files=tuple(files))
        if verb != "install":
            return None
        files, pos, local = _pip_files(args)
        if local:
            return Install("pip", cmd, False, note="installs the project itself (`-e`, `.` or a local path)")
        if files:
            return Install("pip", cmd, True, files=tuple(files))
        return None
    if name == "uv" and sub == "sync":
        deps = "--no-install-project" in rest or "--no-install-workspace" in rest
        pre = None if deps else " ".join([*w[:2], *rest, "--no-install-project"])
        return Install("uv", cmd, deps, prefetch=pre)
    if name == "pipenv" and sub in ("install", "sync") and _flags_only(rest):
        return Install("pipenv", cmd, True)
    if name == "poetry" and sub == "install" and _flags_only([a for a in rest if "=" in a or a.startswith("-")]):
        if "--only-root" in rest:
            return Install("poetry", cmd, False)
        deps = "--no-root" in rest
        pre = None if deps else " ".join([*w[:2], *rest, "--no-root"])
        return Install("poetry", cmd, deps, prefetch=pre)
    if name == "go":
        if w[1:3] == ["mod", "download"] and all(a.startswith("-") for a in w[3:]):
            return Install("go", cmd, True)
        if sub in ("build", "test", "vet", "generate", "run") or (
            sub == "install" and not all("@" in a for a in rest if not a.startswith("-"))
        ):
            return Install("go", cmd, False, prefetch="go mod download")
        return None
    if (
        name in ("bundle", "bundler")
        and sub == "install"
        and _flags_only([a for a in rest if not re.fullmatch(r"\d+|[a-z_:]+", a) or a.startswith("-")])
    ):
        return Install("bundler", cmd, True)
    if name in ("mvn", "mvnw"):
        goals = [a for a in w[1:] if not a.startswith("-")]
        if goals and all(g.startswith("dependency:") for g in goals):
            return Install("maven", cmd, True)
        if not any(a in ("-f", "--file", "-s", "--settings", "-pl", "--projects") for a in w):
            keep = [
                a
                for a in w[1:]
                if a in ("-B", "--batch-mode", "-q", "--quiet", "-ntp", "--no-transfer-progress", "-U")
                or a.startswith("-D")
            ]
            # The wrapper keeps its spelling (`./mvnw`): it runs from the project folder.
            return Install(
                "maven",
                cmd,
                False,
                prefetch=" ".join([w[0] if name == "mvnw" else "mvn", *keep, "dependency:go-offline"]),
            )
        return Install(
            "maven",
            cmd,
            False,
            note="names a POM, settings file or module list (`-f`, `-s` or "
            "`-pl`) that the bot does not follow, so it adds no "
            "dependencies-only step for it",
        )
    if name in ("gradle", "gradlew"):
        tasks = [a for a in w[1:] if not a.startswith("-")]
        if tasks and all(t in ("dependencies", "androidDependencies", "resolveDependencies") for t in tasks):
            return Install("gradle", cmd, True)
        return Install(
            "gradle",
            cmd,
            False,
            note="resolves the dependencies and compiles in one step, and Gradle "
            "has no built-in task that only downloads them, so the bot adds "
            "no dependencies-only step for it",
        )
    if name == "composer" and sub in ("install", "i"):
        deps = "--no-scripts" in rest and "--no-autoloader" in rest
        keep = [
            a
            for a in rest
            if a
            not in (
                "--optimize-autoloader",
                "-o",
                "--classmap-authoritative",
                "-a",
                "--apcu-autoloader",
                "--no-scripts",
                "--no-autoloader",
            )
        ]
        pre = None if deps else " ".join([*w[:2], "--no-scripts", "--no-autoloader", *keep])
        return Install("composer", cmd, deps, prefetch=pre)
    if name == "dotnet":
        if sub == "restore":
            return Install("dotnet", cmd, True, files=tuple(a for a in rest if not a.startswith("-"))[:1])
        if sub in ("publish", "build", "test", "pack"):
            restore = _dotnet_restore(w)
            note = "" if restore else "sets `--arch`/`--os`, so the bot cannot derive the matching `dotnet restore`"
            return Install("dotnet", cmd, False, prefetch=restore, note=note)
        return None
    if name in UNSUPPORTED_TOOLS:
        return Install(name, cmd, False)
    if (
        name == "cargo"
        and sub in ("build", "test", "install", "chef")
        and not (sub == "install" and "--path" not in rest)
    ):
        return Install("cargo", cmd, False)
    return None


def _dotnet_restore(w: list[str]) -> str | None:
    """`dotnet restore` for the same project and runtime identifier as a publish/build."""
    out = ["dotnet", "restore"]
    i = 2
    project = None
    while i < len(w):
        a = w[i]
        if a in ("-r", "--runtime") and i + 1 < len(w):
            out += [a, w[i + 1]]
            i += 2
            continue
        if a.startswith("--runtime="):
            out.append(a)
        elif a in (
            "-c",
            "--configuration",
            "-o",
            "--output",
            "-f",
            "--framework",
            "-p",
            "--property",
            "-v",
            "--verbosity",
            "--os",
            "-a",
            "--arch",
        ) and i + 1 < len(w):
            if a in ("--os", "-a", "--arch"):
                return None
            i += 2
            continue
        elif not a.startswith("-") and project is None:
            project = a
        i += 1
    if project:
        out.insert(2, project)
    return " ".join(out)


# Without a lock file these still install from the manifest alone (what every Docker guide reorders); the other
# ecosystems' lock files also carry what the install reads (go.sum checksums, Cargo.lock, Gemfile.lock platforms).
UNLOCKED_REORDERABLE = frozenset({"npm", "yarn", "pnpm", "composer"})


def missing_lock(install: Install, project: str, exists: Exists) -> str | None:
    """The lock file names (`package-lock.json or npm-shrinkwrap.json`) when the project has none."""
    eco = TABLE[install.ecosystem]
    if eco.locks and not any(exists(posixpath.normpath(posixpath.join(project, lock))) for lock in eco.locks):
        return " or ".join(eco.locks)
    return None


def unsafe_reason(install: Install, project: str, exists: Exists, read: Read, unlocked: bool = False) -> str | None:
    """Why installing with only the manifests copied is not provably the same; None when it is.

    ``project`` is the context-relative folder the install runs in; ``unlocked``: a Node or PHP install
    without a lock file is accepted.
    """
    eco = TABLE[install.ecosystem]

    def at(name: str) -> str:
        return posixpath.normpath(posixpath.join(project, name))

    for manifest in eco.manifests:
        if eco.name == "gradle":
            break
        if not exists(at(manifest)):
            return f"{eco.name}: `{at(manifest)}` is not in the build context"
    if eco.name == "gradle" and not any(exists(at(m)) for m in eco.manifests):
        return f"gradle: no build.gradle or build.gradle.kts in `{project}`"
    locks = missing_lock(install, project, exists)
    if locks is not None and not (unlocked and eco.name in UNLOCKED_REORDERABLE):
        return f"{eco.name}: no lock file ({locks}) in `{project}`, so the install is not pinned"
    check = _CHECKS.get(eco.name)
    return check(install, project, at, exists, read) if check else None


def _json_file(path: str, read: Read, unread: str = "") -> tuple[object, str | None]:
    """The JSON document in the file ``path``, or why there is none (not read, not JSON, nested too deeply)."""
    text = read(path)
    if text is None:
        return None, f"`{path}` was not read{unread}"
    try:
        return json.loads(text), None
    except ValueError:
        return None, f"`{path}` is not valid JSON"
    except RecursionError:
        return None, f"`{path}` nests too deeply to read"


def _check_node(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    data, why = _json_file(at("package.json"), read, ", so its install scripts cannot be checked")
    if why:
        return why
    if not isinstance(data, dict):
        return f"`{at('package.json')}` is not a JSON object"
    if "workspaces" in data:
        return f"`{at('package.json')}` declares `workspaces`, whose packages live in the source tree"
    scripts = data.get("scripts") or {}
    ignore = "--ignore-scripts" in install.command.words
    hooks = [
        k
        for k in ("preinstall", "install", "postinstall", "prepare", "prepublish", "preprepare", "postprepare")
        if isinstance(scripts, dict) and k in scripts
    ]
    if hooks and not ignore:
        return (
            f"`{at('package.json')}` has the install script `{hooks[0]}` "
            f"(`{scripts[hooks[0]]}`), which may need the sources"
        )
    pnpm_section = data.get("pnpm")
    pnpm: dict[str, object] = pnpm_section if isinstance(pnpm_section, dict) else {}
    if pnpm.get("patchedDependencies"):
        return f"`{at('package.json')}` applies `pnpm.patchedDependencies`, whose patches live in the source tree"
    sections = [
        data.get(s)
        for s in (
            "dependencies",
            "devDependencies",
            "optionalDependencies",
            "peerDependencies",
            "overrides",
            "resolutions",
        )
    ] + [pnpm.get("overrides")]
    for deps in sections:
        if not isinstance(deps, dict):
            continue
        for dep, spec in _flat_specs(deps):
            tarball = spec.endswith((".tgz", ".tar.gz", ".tar")) and "://" not in spec
            if spec.startswith(("file:", "link:", "portal:", "patch:", "workspace:", ".", "/", "~/")) or tarball:
                return f"`{at('package.json')}` has the local dependency `{dep}: {spec}`"
    for rc in TABLE[install.ecosystem].optional:
        if not rc.startswith(".") or not rc.endswith("rc") or not exists(at(rc)):
            continue
        rc_text = read(at(rc))
        if rc_text is None:
            return f"`{at(rc)}` was not read, so the settings it gives the install cannot be checked"
        # Only the rc file is copied early: a setting naming a path (cafile, an offline mirror) needs more.
        # `yarn-path ".yarn/releases/yarn-1.22.19.cjs"`: a relative path needs no `./`.
        if re.search(r"""^[^#;\n]*(=|\s)\s*["']?(\.{1,2}/|file:|\.?[\w-]+/)""", rc_text, re.M):
            return f"`{at(rc)}` names a path in the source tree"
    if install.ecosystem == "yarn" and exists(at(".yarnrc.yml")):
        return "Yarn Berry (`.yarnrc.yml`) may need `.yarn/releases` and plugins from the source tree"
    if install.ecosystem == "pnpm" and exists(at("pnpm-workspace.yaml")):
        return f"`{at('pnpm-workspace.yaml')}` makes this a pnpm workspace"
    return None


def _flat_specs(deps: dict[str, object]) -> list[tuple[str, str]]:
    """(name, spec) pairs of a dependency map; npm `overrides` nest maps inside maps."""
    out: list[tuple[str, str]] = []
    for name, spec in deps.items():
        if isinstance(spec, str):
            out.append((name, spec))
        elif isinstance(spec, dict):
            out += _flat_specs(spec)
    return out


_LOCAL_REQ = re.compile(r"^(-e|--editable)\b|^\.|^/|^~|file:|^[^#\s]*/[^#\s]*$")


def requirement_closure(files: tuple[str, ...], cwd: str, read: Read) -> tuple[list[str], str | None]:
    """Every requirements file read (following `-r`/`-c`), or why that is unknown or unsafe."""
    seen: list[str] = []
    todo = [posixpath.normpath(posixpath.join(cwd, f)) for f in files]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        text = read(path)
        if text is None:
            return seen, f"`{path}` was not read, so its includes cannot be followed"
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(-r|--requirement|-c|--constraint)[\s=]+(\S+)", line)
            if m:
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(path), m.group(2))))
                continue
            if line.startswith("-") and not line.startswith(("-e", "--editable")):
                if re.match(r"^(-f|--find-links)[\s=]+(?!\w+://)|^(-f|--find-links)[\s=]+file:", line):
                    return seen, f"`{path}` uses a local `--find-links` folder"
                continue
            if _LOCAL_REQ.search(line) and ("://" not in line or "file://" in line):
                return seen, f"`{path}` installs the local path `{line}`"
    return seen, None


def _first_rule(name: str, at: Callable[[str], str], read: Read, rules: tuple[tuple[str, str], ...]) -> str | None:
    """Why the file ``name`` rules the install out: it was not read, or the first rule whose pattern it matches."""
    text = read(at(name))
    if text is None:
        return f"`{at(name)}` was not read"
    return next((f"`{at(name)}` {what}" for pattern, what in rules if re.search(pattern, text, re.M)), None)


def _check_pipenv(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    return _first_rule(
        "Pipfile", at, read, ((r"\bpath\s*=|editable\s*=\s*true", "has a local-path or editable package"),)
    )


def _check_pyproject(
    install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read
) -> str | None:
    return _first_rule(
        "pyproject.toml",
        at,
        read,
        (
            (
                r"\bpath\s*=|develop\s*=\s*true|editable\s*=\s*true|\[tool\.uv\.workspace\]|workspace\s*=\s*true",
                "has a local-path, editable or workspace dependency",
            ),
        ),
    )


def _check_go(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    why = _first_rule(
        "go.mod", at, read, ((r"=>\s*(\.{1,2}/|/|\.\.?\s*$)", "has a `replace` directive to a local folder"),)
    )
    if why:
        return why
    # The go command looks for go.work in the module's folder and every folder above it.
    folder = posixpath.normpath(project)
    while True:
        work = posixpath.normpath(posixpath.join(folder, "go.work"))
        if exists(work):
            return f"`{work}` makes this a Go workspace"
        if folder in (".", "", "/"):
            break
        folder = posixpath.dirname(folder) or "."
    if exists(at("vendor/modules.txt")):
        return "the Go modules are vendored (`vendor/`), so there is nothing to download first"
    return None


def _check_bundler(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    why = _first_rule(
        "Gemfile",
        at,
        read,
        (
            (r"^\s*gemspec\b", "uses `gemspec`, which reads the gem's own sources"),
            (r"\bpath:|:path\s*=>|^\s*path\b|eval_gemfile", "has a `path:` gem from the source tree"),
            (
                r"\b(File|IO|Pathname)\.|\brequire_relative\b|^\s*load\b|\bfile:\s*[\"']",
                "reads files from the source tree (`File.read`, `ruby file:`, `require_relative`)",
            ),
        ),
    )
    if why:
        return why
    if exists(at(".bundle/config")):
        return f"`{at('.bundle/config')}` in the source tree configures `bundle install`"
    return None


def _check_maven(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    text = read(at("pom.xml"))
    if text is None:
        return f"`{at('pom.xml')}` was not read"
    if "<modules>" in text:
        return f"`{at('pom.xml')}` is a multi-module build whose modules live in the source tree"
    if (
        "<parent>" in text
        and not re.search(r"<relativePath\s*/>|<relativePath>\s*</relativePath>", text)
        and exists(posixpath.normpath(posixpath.join(project, "..", "pom.xml")))
    ):
        return f"`{at('pom.xml')}` inherits from a parent POM in the source tree"
    relative = re.search(r"<parent>.*?<relativePath>\s*([^<\s]+)\s*</relativePath>", text, re.S)
    if relative:
        target = posixpath.normpath(posixpath.join(project, relative.group(1)))
        if exists(target) or exists(posixpath.join(target, "pom.xml")):
            return f"`{at('pom.xml')}` inherits from the parent POM `{relative.group(1)}` in the source tree"
    if re.search(r"<systemPath>|<url>\s*file:", text):
        # `dependency:go-offline` resolves these too, and fails before the files they name are copied.
        return f"`{at('pom.xml')}` reads dependencies from the source tree (`<systemPath>` or a `file:` repository)"
    for name in ("extensions.xml", "maven.config", "jvm.config"):
        if exists(at(f".mvn/{name}")):
            return f"`{at('.mvn/' + name)}` configures Maven from the source tree"
    if install.command.name == "mvnw" and not (
        exists(at("mvnw")) and exists(at(".mvn/wrapper/maven-wrapper.properties"))
    ):
        return "the Maven wrapper files (`mvnw`, `.mvn/wrapper/`) are not in the build context"
    return None


def _check_gradle(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    for name in ("settings.gradle", "settings.gradle.kts"):
        if exists(at(name)):
            text = read(at(name))
            if text is None:
                return f"`{at(name)}` was not read"
            if re.search(r"^\s*include(Build)?\b", text, re.M):
                return f"`{at(name)}` includes subprojects from the source tree"
            if "versionCatalogs" in text:
                return f"`{at(name)}` defines version catalogs from files in the source tree"
    if exists(at("gradle/libs.versions.toml")):
        return f"`{at('gradle/libs.versions.toml')}` is the version catalog Gradle reads with the build script"
    for name in ("build.gradle", "build.gradle.kts"):
        if exists(at(name)):
            script = read(at(name))
            if script is None:
                return f"`{at(name)}` was not read, so the files it applies cannot be checked"
            if re.search(r"\bapply\s*\(?\s*from\b|\b(files?|fileTree)\s*\(", script):
                return f"`{at(name)}` applies scripts or reads files from the source tree"
    if exists(at("buildSrc/build.gradle")) or exists(at("buildSrc/build.gradle.kts")):
        return "`buildSrc/` is compiled from the source tree before dependencies resolve"
    if install.command.name == "gradlew" and not exists(at("gradle/wrapper/gradle-wrapper.properties")):
        return "the Gradle wrapper files (`gradle/wrapper/`) are not in the build context"
    return None


def _check_composer(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    data, why = _json_file(at("composer.json"), read)
    if why:
        return why
    repos = data.get("repositories") if isinstance(data, dict) else None
    items = repos.values() if isinstance(repos, dict) else repos if isinstance(repos, list) else []
    for repo in items:
        if isinstance(repo, dict) and repo.get("type") in ("path", "artifact"):
            return f"`{at('composer.json')}` has a `{repo.get('type')}` repository in the source tree"
    return None


def _check_dotnet(install: Install, project: str, at: Callable[[str], str], exists: Exists, read: Read) -> str | None:
    for name in ("NuGet.config", "nuget.config", "NuGet.Config"):
        if not exists(at(name)):
            continue
        text = read(at(name))
        if text is None:
            return f"`{at(name)}` was not read, so its package sources cannot be checked"
        sources = "".join(re.findall(r"<packageSources>(.*?)</packageSources>", text, re.S | re.I))
        for value in re.findall(r"<add\b[^>]*\bvalue\s*=\s*[\"']([^\"']*)[\"']", sources):
            if "://" not in value and not value.startswith("%"):
                return f"`{at(name)}` has the local package source `{value}`"
    return None


_CHECKS: dict[str, Callable[[Install, str, Callable[[str], str], Exists, Read], str | None]] = {
    "npm": _check_node,
    "yarn": _check_node,
    "pnpm": _check_node,
    "pipenv": _check_pipenv,
    "poetry": _check_pyproject,
    "uv": _check_pyproject,
    "go": _check_go,
    "bundler": _check_bundler,
    "maven": _check_maven,
    "gradle": _check_gradle,
    "composer": _check_composer,
    "dotnet": _check_dotnet,
}


def copy_files(install: Install, project: str, exists: Exists, paths: tuple[str, ...]) -> list[str]:
    """Context-relative files to copy before the install (manifests, the lock that exists, extras)."""
    eco = TABLE[install.ecosystem]

    def at(name: str) -> str:
        return posixpath.normpath(posixpath.join(project, name))

    out = [at(m) for m in eco.manifests if exists(at(m))]
    lock = next((at(lock) for lock in eco.locks if exists(at(lock))), None)
    if lock:
        out.append(lock)
    out += [at(o) for o in eco.optional if exists(at(o))]
    if eco.name == "gradle" and install.command.name == "gradlew":
        out += [p for p in paths if p.startswith(at("gradle/wrapper") + "/")]
    if eco.name == "maven" and install.command.name == "mvnw":
        out += [at("mvnw")] + [p for p in paths if p.startswith(at(".mvn/wrapper") + "/")]
    if eco.name == "dotnet":
        prefix = "" if project == "." else project + "/"
        out += sorted(
            p
            for p in paths
            if p.startswith(prefix) and p.endswith(DOTNET_PROJECTS) and "/bin/" not in p and "/obj/" not in p
        )
        out += sorted(
            p for p in paths if p.startswith(prefix) and posixpath.basename(p) in eco.optional and p not in out
        )
    return out
