"""Build args the buildspec sets to a per-build value make their ARG volatile, whatever its name."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.buildspec.build_args import unknown_build_args, volatile_build_args
from bot.core.model import Options, RepoSnapshot


@pytest.mark.parametrize(
    ("args", "variables", "expected"),
    [
        (["REV=$CODEBUILD_RESOLVED_SOURCE_VERSION"], {}, ("REV",)),
        (["REV=${CODEBUILD_BUILD_NUMBER}"], {}, ("REV",)),
        (["STAMP=$(date +%s)"], {}, ("STAMP",)),
        (["DESCR=`git describe --tags`"], {}, ("DESCR",)),
        # Through the buildspec's own assignments, several levels deep.
        (
            ["LABEL=$IMAGE_TAG"],
            {"IMAGE_TAG": "$(echo $COMMIT_HASH | cut -c 1-7)", "COMMIT_HASH": "$CODEBUILD_RESOLVED_SOURCE_VERSION"},
            ("LABEL",),
        ),
        # A bare `--build-arg NAME` passes the variable of that name.
        (["CODEBUILD_BUILD_ID"], {}, ("CODEBUILD_BUILD_ID",)),
        (["TAG"], {"TAG": "build-$CODEBUILD_START_TIME"}, ("TAG",)),
        # Values that stay the same from build to build.
        (["NODE_ENV=production", "PORT=8080"], {}, ()),
        (["REGION=$AWS_DEFAULT_REGION"], {}, ()),
        (["CODEBUILD_SOURCE_REPO_URL"], {}, ()),
        (["REV=$CODEBUILD_RESOLVED_SOURCE_VERSION_X"], {}, ()),
        # A self-referencing variable does not loop.
        (["A=$A"], {"A": "$A"}, ()),
        # The account id read from the build ARN never changes (the line the bot itself writes).
        (
            ["AWS_ACCOUNT_ID=$AWS_ACCOUNT_ID"],
            {"AWS_ACCOUNT_ID": "${AWS_ACCOUNT_ID:-$(echo $CODEBUILD_BUILD_ARN | cut -d':' -f5)}"},
            (),
        ),
        # Not a name.
        (["=x", "1X=$CODEBUILD_BUILD_ID"], {}, ()),
    ],
)
def test_volatile_build_args(args: list[str], variables: dict[str, str], expected: tuple[str, ...]) -> None:
    assert volatile_build_args(args, variables) == expected


REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
BUILDSPEC = f"""version: 0.2
env:
  variables:
    IMAGE_REPO_NAME: web
phases:
  pre_build:
    commands:
      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin {REGISTRY}
      - SHORT=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-7)
  build:
    commands:
      - docker build --build-arg LABEL_REF=$SHORT --target app -t {REGISTRY}/web:latest .
"""
DOCKERFILE = """FROM python:3.12-slim AS app
ARG LABEL_REF
WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
LABEL ref=$LABEL_REF
FROM app AS tests
RUN pip install pytest
"""


def _snapshot(dockerfile: str = DOCKERFILE) -> RepoSnapshot:
    files = {
        "buildspec.yml": BUILDSPEC,
        "Dockerfile": dockerfile,
        "requirements.txt": "flask==3.0.0\n",
        ".dockerignore": ".git\n",
    }
    return RepoSnapshot(paths=(*sorted(files), "app.py"), files=files)


def test_an_arg_named_anything_moves_when_the_buildspec_passes_a_commit() -> None:
    result = planner.plan(_snapshot(), Options(region="eu-west-1"))
    edit = next(e for e in result.edits if e.path == "Dockerfile")
    assert edit.content == DOCKERFILE.replace("ARG LABEL_REF\n", "").replace("LABEL ref=", "ARG LABEL_REF\nLABEL ref=")
    assert any(
        "LABEL_REF" in r and "the buildspec passes it a value that changes on every build" in r for r in edit.reasons
    )
    table = next(t for t in result.cache_tables if t.dockerfile == "Dockerfile")
    # Before: every RUN after the ARG re-runs on every build; after: the install stays cached.
    install_before = next(s for s in table.before if "pip install -r" in s.instruction)
    install_after = next(s for s in table.after if "pip install -r" in s.instruction)
    assert install_before.reruns_on_source_change and "LABEL_REF" in install_before.reason
    assert not install_after.reruns_on_source_change


def test_the_same_arg_stays_when_the_buildspec_passes_a_constant() -> None:
    snapshot = _snapshot()
    files = dict(snapshot.files)
    files["buildspec.yml"] = BUILDSPEC.replace("LABEL_REF=$SHORT", "LABEL_REF=stable")
    result = planner.plan(RepoSnapshot(snapshot.paths, files), Options(region="eu-west-1"))
    assert not any(e.path == "Dockerfile" for e in result.edits)


def test_target_leaves_unbuilt_stages_out_of_the_cache_table() -> None:
    result = planner.plan(_snapshot(), Options(region="eu-west-1"))
    table = next(t for t in result.cache_tables if t.dockerfile == "Dockerfile")
    assert {s.stage for s in table.before} == {"app"}
    assert not any("pytest" in s.instruction for s in table.after)


def test_no_target_builds_the_last_stage_and_what_it_needs() -> None:
    snapshot = _snapshot(DOCKERFILE + "FROM python:3.12-slim AS runtime\nCOPY --from=app /app /app\n")
    files = dict(snapshot.files)
    files["buildspec.yml"] = BUILDSPEC.replace(" --target app", "")
    result = planner.plan(RepoSnapshot(snapshot.paths, files), Options(region="eu-west-1"))
    table = next(t for t in result.cache_tables if t.dockerfile == "Dockerfile")
    assert {s.stage for s in table.before} == {"app", "runtime"}


def test_variables_referring_to_each_other_many_times_are_followed_once() -> None:
    # V0 reads V1 twelve times, V1 reads V2 twelve times, ...: each variable is looked at once.
    variables = {f"V{n}": f"${{V{n + 1}}}" * 12 for n in range(6)}
    assert volatile_build_args(["X=$V0"], variables) == ()
    assert unknown_build_args(["X=$V0"], variables) == ("X",)  # V6 is not set in the buildspec
    variables["V6"] = "$CODEBUILD_BUILD_ID"
    assert volatile_build_args(["X=$V0"], variables) == ("X",)
    assert unknown_build_args(["X=$V0"], variables) == ()
    variables["V6"] = "stable"
    assert unknown_build_args(["X=$V0"], variables) == () and volatile_build_args(["X=$V0"], variables) == ()


def test_the_bot_s_own_account_line_does_not_make_an_arg_volatile() -> None:
    buildspec = BUILDSPEC.replace("--build-arg LABEL_REF=$SHORT", "--build-arg AWS_ACCOUNT_ID=$AWS_ACCOUNT_ID")
    dockerfile = DOCKERFILE.replace("LABEL_REF", "AWS_ACCOUNT_ID")
    files = {
        "buildspec.yml": buildspec,
        "Dockerfile": dockerfile,
        "requirements.txt": "flask==3.0.0\n",
        ".dockerignore": ".git\n",
    }
    first = planner.plan(RepoSnapshot((*sorted(files), "app.py"), files), Options(region="eu-west-1"))
    assert not any(e.path == "Dockerfile" for e in first.edits)
    merged = files | {e.path: e.content for e in first.edits}
    again = planner.plan(RepoSnapshot(tuple(sorted({*merged, "app.py"})), merged), Options(region="eu-west-1"))
    assert again.edits == ()


def test_second_plan_is_idempotent() -> None:
    snapshot = _snapshot()
    first = planner.plan(snapshot, Options(region="eu-west-1"))
    files = dict(snapshot.files) | {e.path: e.content for e in first.edits}
    paths = tuple(sorted(set(snapshot.paths) | {e.path for e in first.edits}))
    again = planner.plan(RepoSnapshot(paths, files), Options(region="eu-west-1"))
    assert again.edits == ()


def test_an_arg_the_builds_never_pass_keeps_its_default_and_stays() -> None:
    # `ARG VERSION=1.0` is constant when no build passes VERSION: no move, and the install stays cached.
    dockerfile = DOCKERFILE.replace("ARG LABEL_REF\n", "ARG VERSION=1.0\n").replace("$LABEL_REF", "$VERSION")
    result = planner.plan(_snapshot(dockerfile), Options(region="eu-west-1"))
    assert not any(e.path == "Dockerfile" for e in result.edits)
    table = next(t for t in result.cache_tables if t.dockerfile == "Dockerfile")
    assert not next(s for s in table.before if "pip install -r" in s.instruction).reruns_on_source_change


def test_an_arg_passed_from_a_project_variable_is_judged_by_its_name() -> None:
    # `$VERSION` is not set in the buildspec (a project variable): its name says it may change.
    snapshot = _snapshot(DOCKERFILE.replace("LABEL_REF", "VERSION"))
    files = dict(snapshot.files)
    files["buildspec.yml"] = BUILDSPEC.replace("--build-arg LABEL_REF=$SHORT", "--build-arg VERSION=$VERSION")
    result = planner.plan(RepoSnapshot(snapshot.paths, files), Options(region="eu-west-1"))
    edit = next(e for e in result.edits if e.path == "Dockerfile")
    assert any("its name says it holds a per-build value" in r for r in edit.reasons)
