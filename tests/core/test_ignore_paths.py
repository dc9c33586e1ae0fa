"""`ignore_paths` steers discovery (Renovate's defaults, replaced when set); config globs that match nothing are
reported; every config error is listed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.core import planner
from bot.core.discover import discover, paths_to_read
from bot.core.model import DEFAULT_IGNORE_PATHS, Options, RepoSnapshot
from bot.core.repo_config import parse_repo_config

SPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n"
DOCKERFILE = "FROM alpine:3.20\nCOPY . /app\n"
FIXTURES = (
    "tests/golden/reorder/Dockerfile.before",
    "test/Dockerfile",
    "web/__tests__/Dockerfile",
    "web/__fixtures__/buildspec.yml",
    "examples/demo/Dockerfile",
    "examples/demo/buildspec.yml",
    "pkg/vendor/lib/Dockerfile",
    "ui/node_modules/x/Dockerfile",
)
REAL = (
    "Dockerfile",
    "buildspec.yml",
    "services/tests-runner/Dockerfile",
    "latest/Dockerfile",
    "contest/buildspec.yml",
    "testing/Dockerfile",
)


def _snapshot(paths: tuple[str, ...]) -> RepoSnapshot:
    return RepoSnapshot(paths, {p: SPEC if p.endswith(".yml") else DOCKERFILE for p in paths})


def test_defaults_are_renovates_module_and_test_folders() -> None:
    # https://docs.renovatebot.com/presets-default/#ignoremodulesandtests (less bower_components, always skipped)
    assert (
        Options().ignore_paths
        == DEFAULT_IGNORE_PATHS
        == (
            "**/node_modules/**",
            "**/vendor/**",
            "**/test/**",
            "**/tests/**",
            "**/__tests__/**",
            "**/__fixtures__/**",
            "**/examples/**",
        )
    )


def test_default_ignore_leaves_fixtures_out_and_keeps_look_alike_folders() -> None:
    found = discover(_snapshot(FIXTURES + REAL), Options())
    assert found.dockerfiles == (
        "Dockerfile",
        "services/tests-runner/Dockerfile",
        "latest/Dockerfile",
        "testing/Dockerfile",
    )
    assert found.buildspecs == ("buildspec.yml", "contest/buildspec.yml")


def test_setting_ignore_paths_replaces_the_defaults() -> None:
    options, findings = parse_repo_config("ignore_paths: ['**/examples/**', latest]\n")
    assert findings == [] and options.ignore_paths == ("**/examples/**", "latest")
    found = discover(_snapshot(FIXTURES + REAL), options)
    assert "test/Dockerfile" in found.dockerfiles and "tests/golden/reorder/Dockerfile.before" in found.dockerfiles
    assert "web/__fixtures__/buildspec.yml" in found.buildspecs
    # A plain folder name ignores that folder (not `latest2/`), a glob only what it matches.
    assert "latest/Dockerfile" not in found.dockerfiles and "examples/demo/Dockerfile" not in found.dockerfiles


def test_an_empty_list_ignores_nothing_but_installed_dependencies() -> None:
    options, _ = parse_repo_config("ignore_paths: []\n")
    found = discover(_snapshot(FIXTURES + REAL), options)
    assert "examples/demo/Dockerfile" in found.dockerfiles and "pkg/vendor/lib/Dockerfile" in found.dockerfiles
    assert "ui/node_modules/x/Dockerfile" not in found.dockerfiles  # installed packages are never read


def test_listed_paths_win_over_ignore_paths() -> None:
    options = Options(dockerfile_paths=("examples/demo/Dockerfile",), buildspec_paths=("examples/*/*.yml",))
    found = discover(_snapshot(FIXTURES + REAL), options)
    assert "examples/demo/Dockerfile" in found.dockerfiles and "examples/demo/buildspec.yml" in found.buildspecs
    assert "test/Dockerfile" not in found.dockerfiles


def test_ignored_files_are_not_read_but_manifests_there_still_are() -> None:
    paths = FIXTURES + REAL + ("tests/requirements.txt", "examples/demo/package.json")
    wanted = paths_to_read(paths, Options())
    assert not set(FIXTURES) & set(wanted)
    # A manifest is read as part of a build context wherever it is (a root `COPY . .` copies `tests/` too).
    assert {"tests/requirements.txt", "examples/demo/package.json"} <= set(wanted)
    # The App reads what planner.paths_to_read names, with the repo config's options.
    options, _ = parse_repo_config("ignore_paths: [services]\n")
    app_wanted = planner.paths_to_read(paths, options)
    assert "test/Dockerfile" in app_wanted and "services/tests-runner/Dockerfile" not in app_wanted


@pytest.mark.parametrize(
    "text", ["ignore_paths: 3\n", "ignore_paths: [/abs/**]\n", "ignore_paths: ['../x']\n", "ignore_paths: [ok, '']\n"]
)
def test_bad_ignore_paths_name_the_key(text: str) -> None:
    options, findings = parse_repo_config(text)
    assert options == Options() and [f.level for f in findings] == ["error"]
    assert "`ignore_paths`" in findings[0].message


def test_every_config_error_is_listed() -> None:
    options, findings = parse_repo_config("mode: turbo\nregion: Europe\nreorder: 'yes'\ncolour: red\n")
    assert options == Options()
    assert [f.code for f in findings] == ["config-invalid"] * 4
    text = " ".join(f.message for f in findings)
    for key in ("`mode`", "`region`", "`reorder`", "`colour`"):
        assert key in text


def test_config_globs_that_match_nothing_are_reported() -> None:
    snap = _snapshot(("buildspec.yml", "Dockerfile", "docker/app.df"))
    found = discover(snap, Options(dockerfile_paths=("docker/*.df", "images/*.img"), buildspec_paths=("ci/*.yml",)))
    unmatched = [f for f in found.findings if f.code == "config-glob-unmatched"]
    assert [(f.path, f.level) for f in unmatched] == [(".github/ecr-cache.yml", "warning")] * 2
    assert "`dockerfiles`" in unmatched[0].message and "images/*.img" in unmatched[0].message
    assert "`buildspecs`" in unmatched[1].message and "ci/*.yml" in unmatched[1].message
    assert not [f for f in discover(snap, Options(dockerfile_paths=("docker/*.df",))).findings]


@pytest.fixture()
def fixture_repo(repo: Path) -> Path:
    """The example checkout plus test fixtures and an example folder the bot must not touch."""
    for folder in ("tests/golden/case", "examples/other"):
        (repo / folder).mkdir(parents=True)
        shutil.copy2(repo / "Dockerfile", repo / folder / "Dockerfile.before")
        shutil.copy2(repo / "buildspec.yml", repo / folder / "buildspec.yml")
    return repo


def test_cli_plan_leaves_fixtures_alone(fixture_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(fixture_repo), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    touched = {c["path"] for c in document["changes"]} | {f["path"] for f in document["findings"]}
    assert not [p for p in touched if p.startswith(("tests/", "examples/"))]
    assert "buildspec.yml" in {c["path"] for c in document["changes"]}


def test_cli_config_errors_are_all_printed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("mode: turbo\nlifecycle_days: 0\n")
    assert main(["check", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "`mode`" in err and "`lifecycle_days`" in err


def test_cli_flag_glob_that_matches_nothing_is_an_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(repo), "--dockerfile", "docker/*.df"]) == 2
    assert "--dockerfile" in capsys.readouterr().err
    assert main(["plan", str(repo), "--buildspec", "buildspec.yml", "--json"]) == 0


def test_cli_config_glob_that_matches_nothing_is_shown(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github").mkdir()
    (repo / ".github" / "ecr-cache.yml").write_text("dockerfiles: [docker/*.df]\n")
    assert main(["check", str(repo)]) == 1
    assert "docker/*.df" in capsys.readouterr().err


def test_the_app_skips_a_repository_with_only_fixtures_unless_its_config_says_otherwise() -> None:
    from bot.app.handlers import nothing_to_plan
    from bot.github.gateway import TreeFile

    tree = {
        p: TreeFile(p, "100644", "0" * 40, 10)
        for p in ("tests/golden/a/Dockerfile.before", "examples/b/buildspec.yml", "README.md")
    }
    assert nothing_to_plan(tree)
    # A repo config may set `ignore_paths: []` or list the files: then the repository is planned with it.
    tree[".github/ecr-cache.yml"] = TreeFile(".github/ecr-cache.yml", "100644", "1" * 40, 10)
    assert not nothing_to_plan(tree)


def test_push_routing_keeps_ignored_names_but_drops_installed_packages() -> None:
    """Routing cannot see the repo config (which may set `ignore_paths: []`), so a push to a Dockerfile under a
    default-ignored folder still re-plans (the plan then applies the config); `node_modules` is never read."""
    from bot.app.events import is_relevant_path

    assert is_relevant_path("tests/e2e/Dockerfile")
    assert not is_relevant_path("ui/node_modules/left-pad/package.json")
    assert not is_relevant_path("bot/core/dockerfile/parse.py")


def test_a_build_of_an_ignored_dockerfile_still_gets_the_cache() -> None:
    """What the README says: the Dockerfile is not read (so not analysed), the buildspec's build is cached."""
    spec = SPEC.replace("docker build -t app .", "docker build -t app -f test/img/Dockerfile test/img")
    paths = ("buildspec.yml", "test/img/Dockerfile")
    files = {"buildspec.yml": spec, "test/img/Dockerfile": DOCKERFILE}
    snapshot = RepoSnapshot(paths, {p: files[p] for p in planner.paths_to_read(paths, Options())})
    assert "test/img/Dockerfile" not in snapshot.files
    result = planner.plan(snapshot, Options())
    assert [(b.dockerfile, b.cached) for b in result.builds] == [("test/img/Dockerfile", True)]
    assert "buildspec.yml" in {e.path for e in result.edits}
    assert not [e for e in result.edits if e.path.startswith("test/")]
    listed = planner.plan(RepoSnapshot(paths, files), Options(dockerfile_paths=("test/img/Dockerfile",)))
    assert "test/img/Dockerfile" in listed.dockerfiles
