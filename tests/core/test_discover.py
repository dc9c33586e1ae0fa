"""Discovery: which files are CodeBuild buildspecs and Dockerfiles, and which files the planner reads."""

from __future__ import annotations

import fnmatch
import posixpath

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.core import discover as discover_module
from bot.core.discover import classify, discover, may_change_plan, paths_to_read
from bot.core.model import Options, RepoSnapshot

SPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build .\n"


def test_buildspec_and_dockerfile_names() -> None:
    paths = (
        "buildspec.yml",
        "ci/buildspec.yaml",
        "buildspec-prod.yml",
        "ci/dev-buildspec.yml",
        "svc/buildspec_prod.yml",
        "notes/buildspec.md",
        "Dockerfile",
        "dockerfile",
        "app/api.Dockerfile",
        "w/worker.dockerfile",
        "Dockerfile.prod",
        "Dockerfile_stag",
        "docker/Containerfile",
        "Dockerfile.dockerignore",
        "node_modules/x/buildspec.yml",
        "vendor/y/Dockerfile",
        "README.md",
    )
    snap = RepoSnapshot(paths, {p: SPEC for p in paths if p.endswith((".yml", ".yaml"))})
    found = discover(snap, Options())
    assert found.buildspecs == (
        "buildspec.yml",
        "ci/buildspec.yaml",
        "buildspec-prod.yml",
        "ci/dev-buildspec.yml",
        "svc/buildspec_prod.yml",
    )
    assert found.dockerfiles == (
        "Dockerfile",
        "dockerfile",
        "app/api.Dockerfile",
        "w/worker.dockerfile",
        "Dockerfile.prod",
        "Dockerfile_stag",
        "docker/Containerfile",
    )


def test_configured_globs_add_files() -> None:
    paths = ("deploy/pipeline.yml", "images/base.img", "buildspec.yml")
    snap = RepoSnapshot(paths, {"deploy/pipeline.yml": SPEC, "buildspec.yml": SPEC})
    found = discover(snap, Options(buildspec_paths=("deploy/*.yml",), dockerfile_paths=("images/*.img",)))
    assert set(found.buildspecs) == {"deploy/pipeline.yml", "buildspec.yml"}
    assert found.dockerfiles == ("images/base.img",)


def test_non_codebuild_files_are_findings() -> None:
    workflow = "name: ci\non:\n  push:\njobs:\n  b:\n    steps:\n      - run: docker build .\n"
    files = {
        "a/buildspec.yml": workflow,
        "b/buildspec.yml": SPEC.replace("0.2", "0.1"),
        "c/buildspec.yml": "version: 0.2\nenv:\n  shell: powershell.exe\n" + SPEC.split("\n", 1)[1],
        "d/buildspec.yml": "version: 0.2\nphases: [oops\n",
        "e/buildspec.yml": SPEC,
    }
    found = discover(RepoSnapshot(tuple(files), files), Options())
    assert found.buildspecs == ("e/buildspec.yml",)
    reasons = {f.path: f.message for f in found.findings}
    assert "GitHub Actions workflow" in reasons["a/buildspec.yml"]
    assert "version 0.1" in reasons["b/buildspec.yml"]
    assert "powershell" in reasons["c/buildspec.yml"]
    assert "not valid YAML" in reasons["d/buildspec.yml"]
    assert all(f.code == "not-a-buildspec" for f in found.findings)


def test_classify_accepts_plain_buildspec() -> None:
    assert classify(SPEC) is None
    assert classify("- a\n- b\n") == "not a YAML mapping"


def test_batch_build_list_buildspecs_are_followed() -> None:
    root = (
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n      buildspec: ci/images.yml\n"
        "phases:\n  build:\n    commands:\n      - echo batch\n"
    )
    files = {"buildspec.yml": root, "ci/images.yml": SPEC}
    found = discover(RepoSnapshot(("buildspec.yml", "ci/images.yml"), files), Options())
    assert found.buildspecs == ("buildspec.yml", "ci/images.yml")
    assert found.batch_buildspecs == ("ci/images.yml",)


def test_paths_to_read_picks_specs_dockerfiles_ignores_and_manifests() -> None:
    paths = (
        "buildspec.yml",
        "Dockerfile",
        ".dockerignore",
        "api/.dockerignore",
        "package.json",
        "package-lock.json",
        "api/requirements-dev.txt",
        "api/constraints.txt",
        "go.mod",
        "go.sum",
        "app.gemspec",
        "Gemfile.lock",
        "build.gradle.kts",
        "settings.gradle",
        "src/App.csproj",
        "App.sln",
        "Directory.Build.props",
        "NuGet.config",
        "Cargo.lock",
        ".npmrc",
        "pnpm-lock.yaml",
        "uv.lock",
        "node_modules/left-pad/package.json",
        "vendor/lib/composer.json",
        ".git/config",
        "src/main.py",
        "README.md",
    )
    chosen = paths_to_read(paths, Options())
    assert "src/main.py" not in chosen and "README.md" not in chosen
    assert not any(p.startswith(("node_modules/", "vendor/", ".git/")) for p in chosen)
    expected = set(paths) - {
        "src/main.py",
        "README.md",
        "node_modules/left-pad/package.json",
        "vendor/lib/composer.json",
        ".git/config",
    }
    assert set(chosen) == expected
    assert len(chosen) == len(set(chosen))


def test_paths_to_read_is_capped() -> None:
    many = tuple(f"pkg{i}/package.json" for i in range(5000))
    assert len(paths_to_read(many, Options())) <= 1000


def test_windows_powershell_commands_are_not_edited() -> None:
    # Windows images run buildspec commands in PowerShell by default, where the bot's sh lines fail.
    ps = (
        "version: 0.2\nphases:\n  pre_build:\n    commands:\n"
        "      - Invoke-Expression -Command (Get-ECRLoginCommand -Region $env:AWS_DEFAULT_REGION).Command\n"
        "  build:\n    commands:\n      - docker build -t app .\n"
    )
    why = classify(ps)
    assert why is not None and "PowerShell" in why
    assert classify(SPEC) is None


def test_requirement_folders_are_read_for_pip_includes() -> None:
    from bot.core.discover import paths_to_read
    from bot.core.model import Options

    paths = ("Dockerfile", "requirements/base.txt", "requirements/dev.in", "requirements/README.md", "docs/notes.txt")
    wanted = paths_to_read(paths, Options())
    assert "requirements/base.txt" in wanted and "requirements/dev.in" in wanted
    assert "requirements/README.md" not in wanted and "docs/notes.txt" not in wanted


def _may_change_plan_reference(path: str) -> bool:
    """The rule as first written (one `fnmatchcase` per glob, no cache): the fast function must agree with it."""
    base = posixpath.basename(path)
    if any(part in discover_module._SKIP_DIRS for part in path.split("/")[:-1]):
        return False
    manifest = base in discover_module._MANIFESTS or any(
        fnmatch.fnmatchcase(base, g) for g in discover_module._MANIFEST_GLOBS
    )
    folder = posixpath.basename(posixpath.dirname(path))
    manifest = manifest or (folder.lower().startswith("requirements") and base.endswith((".txt", ".in")))
    if discover_module._BUILDSPEC.match(base) or discover_module.is_dockerfile(path) or manifest:
        return True
    return base == ".dockerignore" or base.endswith(".dockerignore") or base.lower() == "packages.config"


# Fragments that hit (and nearly hit) every rule, so generated paths exercise each branch, not random noise only.
_FRAGMENTS = st.sampled_from(
    [
        "requirements",
        "Requirements",
        "constraints",
        ".txt",
        ".in",
        ".TXT",
        "-dev",
        "Dockerfile",
        "dockerfile",
        "Containerfile",
        ".",
        "_",
        "-",
        "buildspec",
        "BuildSpec",
        ".yml",
        ".yaml",
        ".gemspec",
        "build.gradle",
        "settings.gradle",
        ".kts",
        ".csproj",
        ".fsproj",
        ".vbproj",
        ".sln",
        "Directory.",
        "Build",
        ".props",
        "gradle.properties",
        "packages.config",
        "Packages.Config",
        ".dockerignore",
        "package.json",
        "go.mod",
        "Cargo.lock",
        ".py",
        ".md",
        "README",
        "src",
        "x",
        "\n",
        "*",
        "[",
        "]",
        "?",
    ]
)
_SEGMENT = st.one_of(st.lists(_FRAGMENTS, min_size=1, max_size=4).map("".join), st.text(min_size=1, max_size=8))
_DIR = st.one_of(
    st.sampled_from(
        ["node_modules", ".git", "vendor", "venv", "requirements", "Requirements-ci", "site-packages", "docker", "ci"]
    ),
    _SEGMENT,
)
_PATH = st.builds(lambda dirs, base: "/".join([*dirs, base]), st.lists(_DIR, max_size=3), _SEGMENT)


@settings(max_examples=1500, deadline=None)
@given(_PATH)
@example("requirements-dev.txt")
@example("reqs/requirements/base.in")
@example("build.gradle.kts")
@example("Directory.Build.props")
@example("node_modules/x/Dockerfile")
@example("src/service/handlers.py")
@example("a.gemspec\n")
@example("requirements.txt\nx")
@example("Packages.config")
@example("vendor/go.mod")
def test_may_change_plan_agrees_with_the_reference_rule(path: str) -> None:
    expected = _may_change_plan_reference(path)
    assert may_change_plan(path) is expected
    assert may_change_plan(path) is expected  # the cached answer too
    assert may_change_plan.__wrapped__(path) is expected


def test_may_change_plan_answers() -> None:
    relevant = (
        "requirements-dev.txt",
        "deps/requirements/base.in",
        "build.gradle.kts",
        "app/app.csproj",
        "Directory.Build.props",
        "gradle.properties",
        "api/Dockerfile.dev",
        "ci/buildspec.yml",
        "web/.dockerignore",
        "packages.config",
    )
    ignored = (
        "src/service/handlers.py",
        "README.md",
        "node_modules/a/package.json",
        "docs/requirements.md",
        "Directory.props",
        "requirements.txt.bak",
    )
    assert [p for p in relevant if not may_change_plan(p)] == []
    assert [p for p in ignored if may_change_plan(p)] == []
