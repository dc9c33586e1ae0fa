"""Buildspecs whose builds would break on a docker-container builder, found in review and each reproduced."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.model import Options, PartialPlan, RepoSnapshot

REG = "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com"
LOGIN = f"      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin {REG}\n"


def _buildspec(pre: str, build: str) -> str:
    return "version: 0.2\nphases:\n  pre_build:\n    commands:\n" + LOGIN + pre + "  build:\n    commands:\n" + build


# A Dockerfile with a step the cache can reuse: a build that reuses nothing is left alone for that reason alone.
REUSABLE = "FROM alpine\nRUN apk add --no-cache curl\nCOPY . /app\n"


def _plan(buildspec: str, dockerfile: str = REUSABLE) -> PartialPlan:
    files = {"buildspec.yml": buildspec, "Dockerfile": dockerfile}
    return planner.plan(RepoSnapshot(tuple(files), files), Options())


def _buildspec_edit(plan: PartialPlan) -> str | None:
    return next((e.content for e in plan.edits if e.path == "buildspec.yml"), None)


UNTOUCHED = {
    "docker --config": (
        _buildspec("", f"      - docker --config /tmp/dcfg build -t {REG}/app:latest .\n"),
        "FROM alpine\n",
        "build-docker-host",
    ),
    "DOCKER_CONFIG on the build": (
        _buildspec("", f"      - DOCKER_CONFIG=/tmp/d docker build -t {REG}/app .\n"),
        "FROM alpine\n",
        "build-docker-host",
    ),
    "DOCKER_BUILDKIT=0 on the build": (
        _buildspec("", f"      - DOCKER_BUILDKIT=0 docker build --disable-content-trust=false -t {REG}/app .\n"),
        "FROM alpine\n",
        "buildkit-disabled",
    ),
    "DOCKER_BUILDKIT 0 in env": (
        'version: 0.2\nenv:\n  variables:\n    DOCKER_BUILDKIT: "0"\n'
        + _buildspec("", f"      - docker build -t {REG}/app .\n").removeprefix("version: 0.2\n"),
        "FROM alpine\n",
        "buildkit-disabled",
    ),
    "--output type=image without push": (
        _buildspec(
            "",
            f"      - docker build --output type=image,name={REG}/app:latest .\n      - docker push {REG}/app:latest\n",
        ),
        "FROM alpine\n",
        "build-output-image",
    ),
    "FROM a locally re-tagged image": (
        _buildspec(
            f"      - docker pull {REG}/base-images:python-3.12\n"
            f"      - docker tag {REG}/base-images:python-3.12 company/python-base:3.12\n",
            f"      - docker build -t {REG}/app:latest .\n",
        ),
        "FROM company/python-base:3.12\nCOPY . /app\n",
        "local-base-image",
    ),
}


@pytest.mark.parametrize("case", sorted(UNTOUCHED))
def test_left_untouched_with_the_reason(case: str) -> None:
    buildspec, dockerfile, code = UNTOUCHED[case]
    plan = _plan(buildspec, dockerfile)
    assert _buildspec_edit(plan) is None
    assert any(f.code == code for f in plan.findings), [f.code for f in plan.findings]


def test_pushed_output_and_a_pulled_base_are_still_rewritten() -> None:
    pushed = _buildspec("", f"      - docker buildx build --output type=image,name={REG}/app,push=true .\n")
    assert _buildspec_edit(_plan(pushed)) is not None
    pulled = _buildspec(f"      - docker pull {REG}/base:1\n", f"      - docker build -t {REG}/app .\n")
    base = f"{REG.replace('$AWS_ACCOUNT_ID', '111122223333')}/base:1"
    assert _buildspec_edit(_plan(pulled, f"FROM {base}\nRUN make deps\nCOPY . /app\n"))


def test_the_buildspec_s_own_builder_is_kept() -> None:
    create = (
        "      - docker buildx create --name insecure --driver docker-container "
        "--buildkitd-flags '--allow-insecure-entitlement security.insecure' --use\n"
    )
    buildspec = _buildspec(create, f"      - docker buildx build --allow security.insecure -t {REG}/app --push .\n")
    edited = _buildspec_edit(_plan(buildspec))
    assert edited is not None
    assert "--name ecr-cache" not in edited and "buildx use ecr-cache" not in edited
    assert "--cache-to type=registry,ref=$CACHE_URI:cache" in edited
    assert _buildspec_edit(_plan(edited)) is None


def test_setup_goes_before_the_build_when_the_earlier_phase_continues_on_failure() -> None:
    buildspec = _buildspec(f"      - docker pull {REG}/app:latest\n", f"      - docker build -t {REG}/app:latest .\n")
    buildspec = buildspec.replace("  pre_build:\n", "  pre_build:\n    on-failure: CONTINUE\n")
    edited = _buildspec_edit(_plan(buildspec))
    assert edited is not None
    build_phase = edited.split("  build:\n", 1)[1]
    for line in ("CACHE_URI=", "docker buildx version", "docker buildx create --name ecr-cache"):
        assert line in build_phase
        assert build_phase.index(line) < build_phase.index("docker buildx build")
    # Without on-failure the setup stays at the end of pre_build.
    plain = _buildspec_edit(_plan(buildspec.replace("    on-failure: CONTINUE\n", "")))
    assert plain is not None and "CACHE_URI=" in plain.split("  build:\n", 1)[0]
