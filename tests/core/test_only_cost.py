"""Changes that only cost: when no real step is reused on a source-only change, before or after, the build is
left alone (a builder, a login, `--load` and an export only make it slower) with a finding that says why."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.dockerfile import cachetable
from bot.core.dockerfile.parse import parse
from bot.core.model import Options, RepoSnapshot
from bot.render import pull_request

BUILDSPEC = """\
version: 0.2
env:
  variables:
    IMAGE_REPO_NAME: "site"
phases:
  build:
    commands:
      - docker build -t $IMAGE_REPO_NAME:latest .
      - docker push $IMAGE_REPO_NAME:latest
"""

STATIC_SITE = "FROM nginx:1.27\nCOPY . /usr/share/nginx/html\n"
HOST_JAR = 'FROM eclipse-temurin:21-jre\nADD target/app.jar app.jar\nENTRYPOINT ["java", "-jar", "app.jar"]\n'
TRIVIAL_ONLY = """\
FROM nginx:1.27
RUN addgroup -S web && adduser -S web -G web
RUN mkdir -p /srv/www && chown web:web /srv/www
WORKDIR /srv/www
ENV PORT=8080
LABEL team=web
EXPOSE 8080
COPY . /srv/www
RUN chmod -R a+r /srv/www && ln -sf /srv/www /usr/share/nginx/html/app
"""
INSTALLS_FIRST = "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask gunicorn\nCOPY . /app\n"
REORDERABLE = """\
FROM node:20
WORKDIR /app
COPY . .
RUN npm ci
CMD ["node", "server.js"]
"""


def _plan(dockerfile: str, buildspec: str = BUILDSPEC, extra: dict[str, str] | None = None) -> planner.Plan:
    files = {"buildspec.yml": buildspec, "Dockerfile": dockerfile, **(extra or {})}
    return planner.plan(RepoSnapshot(tuple(files), files, repository="octo/site"), Options())


def _edited(plan: planner.Plan) -> set[str]:
    return {e.path for e in plan.edits}


@pytest.mark.parametrize(
    "dockerfile",
    [STATIC_SITE, HOST_JAR, TRIVIAL_ONLY, "FROM nginx:1.27\n"],
    ids=["static-site", "host-jar", "trivial-steps", "from-only"],
)
def test_a_build_that_reuses_nothing_is_left_alone(dockerfile: str) -> None:
    plan = _plan(dockerfile)
    assert "buildspec.yml" not in _edited(plan)
    assert not any(p.startswith("ecr-cache/") for p in _edited(plan))  # no policies without a cache
    finding = next(f for f in plan.findings if f.code == "cache-reuses-nothing")
    assert finding.path == "buildspec.yml" and finding.level == "info"
    assert "buildspec.yml:8" in finding.message  # the build's line
    assert "re-runs" in finding.message and "slower" in finding.message
    # ... and what would help, for this shape of Dockerfile.
    expected = "copies a file built on the build host" if dockerfile is HOST_JAR else "there is nothing slow to reuse"
    assert expected in finding.message.partition("What would help: ")[2]


def test_the_finding_names_the_host_built_jar() -> None:
    plan = _plan(HOST_JAR)
    finding = next(f for f in plan.findings if f.code == "cache-reuses-nothing")
    assert "ADD target/app.jar app.jar" in finding.message
    assert "multi-stage" in finding.message


# `worker-requirement.txt` is no manifest name the bot knows, so the table counts it as changed (its worst case),
# but a source-only change rarely touches it: that is no proof that nothing is reused.
UNKNOWN_MANIFEST = """\
FROM python:3.12-slim
COPY worker-requirement.txt .
RUN pip install --no-cache-dir -r worker-requirement.txt
COPY worker.py .
"""
SINGLE_SOURCE_FILE = "FROM nginx:1.27\nCOPY site/index.html /usr/share/nginx/html/index.html\n"


def test_a_worst_case_guess_is_no_reason_to_leave_a_build_alone() -> None:
    plan = _plan(UNKNOWN_MANIFEST)
    assert "buildspec.yml" in _edited(plan)
    assert not any(f.code == "cache-reuses-nothing" for f in plan.findings)
    assert "buildspec.yml" not in _edited(_plan(SINGLE_SOURCE_FILE))


@pytest.mark.parametrize("dockerfile", [INSTALLS_FIRST, REORDERABLE], ids=["install-first", "reordered"])
def test_a_build_that_reuses_a_real_step_is_still_cached(dockerfile: str) -> None:
    extra = {"package.json": '{"name": "x"}\n', "package-lock.json": '{"lockfileVersion": 3}\n'}
    plan = _plan(dockerfile, extra=extra if dockerfile is REORDERABLE else None)
    assert "buildspec.yml" in _edited(plan)
    assert not any(f.code == "cache-reuses-nothing" for f in plan.findings)


NO_CACHE = BUILDSPEC.replace("docker build -t", "docker build --no-cache -t")
BUILD_OPT = BUILDSPEC.replace(
    '    IMAGE_REPO_NAME: "site"\n', '    IMAGE_REPO_NAME: "site"\n    BUILD_OPT: "--no-cache --pull"\n'
).replace("docker build -t", "docker build $BUILD_OPT -t")


@pytest.mark.parametrize("buildspec", [NO_CACHE, BUILD_OPT], ids=["no-cache", "build-opt"])
def test_a_build_run_with_no_cache_is_left_alone(buildspec: str) -> None:
    plan = _plan(INSTALLS_FIRST, buildspec)
    assert "buildspec.yml" not in _edited(plan)
    finding = next(f for f in plan.findings if f.code == "cache-reuses-nothing")
    assert "--no-cache" in finding.message
    table = next(t for t in plan.cache_tables if t.dockerfile == "Dockerfile")
    # The cache table shows it: with `--no-cache` every step re-runs.
    assert all(s.reruns_on_source_change for s in (*table.before, *table.after))


def test_one_useful_build_keeps_the_buildspec_edit_and_names_the_other() -> None:
    buildspec = BUILDSPEC.replace(
        "      - docker push $IMAGE_REPO_NAME:latest\n",
        "      - docker build -f web/Dockerfile -t web:latest web\n      - docker push $IMAGE_REPO_NAME:latest\n",
    )
    plan = _plan(INSTALLS_FIRST, buildspec, {"web/Dockerfile": STATIC_SITE})
    assert "buildspec.yml" in _edited(plan)
    finding = next(f for f in plan.findings if f.code == "cache-reuses-nothing")
    assert "buildspec.yml:9" in finding.message and "web/Dockerfile" in finding.message


def test_trivial_steps_are_marked_in_the_table() -> None:
    steps = cachetable.steps(parse(TRIVIAL_ONLY))
    assert [s.trivial for s in steps] == [True, True, True, True]
    assert [s.trivial for s in cachetable.steps(parse(INSTALLS_FIRST))] == [False, True]
    assert cachetable.reuses_nothing(cachetable.steps(parse(STATIC_SITE)))
    assert not cachetable.reuses_nothing(cachetable.steps(parse(INSTALLS_FIRST)))


def test_the_pr_never_promises_a_warm_start() -> None:
    plan = _plan(INSTALLS_FIRST)
    body = pull_request.render_pr_body(plan, "octo/site", Options())
    assert "warm" not in body.lower()


def test_a_conditional_no_cache_of_the_user_is_not_always_on() -> None:
    buildspec = BUILDSPEC.replace("docker build -t", "docker build ${FRESH:+--no-cache} -t")
    plan = _plan(INSTALLS_FIRST, buildspec)
    # (The word is no context and no flag the bot can read, so the build is reported as it was before.)
    assert not any(f.code == "cache-reuses-nothing" for f in plan.findings)
