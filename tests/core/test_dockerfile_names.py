"""Only real Dockerfile names count: never a source file whose name starts with `dockerfile`."""

from __future__ import annotations

import pytest

from bot.app.events import is_relevant_path
from bot.core.discover import discover, is_dockerfile, may_change_plan
from bot.core.model import Options, RepoSnapshot


@pytest.mark.parametrize(
    "path",
    [
        "Dockerfile",
        "dockerfile",
        "DOCKERFILE",
        "svc/Dockerfile",
        "Dockerfile.dev",
        "Dockerfile.prod",
        "Dockerfile.alpine",
        "Dockerfile.test",
        "Dockerfile_arm.cpu",
        "Dockerfile_stag",
        "Dockerfile-worker",
        "api.Dockerfile",
        "w/worker.dockerfile",
        "Tinyllama.Dockerfile",
        "Containerfile",
        "img/Containerfile.fedora",
        "base.Containerfile",
    ],
)
def test_real_dockerfile_names_count(path: str) -> None:
    assert is_dockerfile(path)


@pytest.mark.parametrize(
    "path",
    [
        "bot/core/dockerfile/parse.py",
        "pkg/build/dockerfile.go",
        "src/dockerfile-lint.ts",
        "lib/dockerfile_util.rb",
        "Dockerfile.py",
        "Dockerfile.js",
        "Dockerfile.md",
        "Dockerfile.txt",
        "DockerfileHelper.java",
        "docs/dockerfile-guide.md",
        "scripts/dockerfile_build.sh",
        "ci/dockerfile-check.yml",
        "Dockerfile.json",
        "Dockerfile.dockerignore",
        "api.Dockerfile.dockerignore",
        "Dockerfiles/README",
        "notdockerfile",
        "containerfile_test.go",
    ],
)
def test_source_and_other_files_do_not(path: str) -> None:
    assert not is_dockerfile(path)


def test_discovery_and_push_routing_use_the_same_names() -> None:
    paths = ("Dockerfile.dev", "bot/core/dockerfile/parse.py", "app/api.Dockerfile", "pkg/dockerfile.go")
    found = discover(RepoSnapshot(paths, {}), Options())
    assert found.dockerfiles == ("Dockerfile.dev", "app/api.Dockerfile")
    assert [p for p in paths if may_change_plan(p)] == ["Dockerfile.dev", "app/api.Dockerfile"]
    assert [p for p in paths if is_relevant_path(p)] == ["Dockerfile.dev", "app/api.Dockerfile"]


def test_a_configured_glob_still_adds_any_file() -> None:
    """A team that really builds from `build/image.py.df`-like names lists them; the name rules do not veto it."""
    found = discover(RepoSnapshot(("images/base.txt",), {}), Options(dockerfile_paths=("images/*.txt",)))
    assert found.dockerfiles == ("images/base.txt",)
