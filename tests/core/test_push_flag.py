"""`--push` where it is clearly better (issue 12): when the only later use of a build's image is `docker push`
of exactly its tags, the build pushes itself and those push lines go; anything else keeps `--load`."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.model import FileEdit, Options, Plan, RepoSnapshot

DOCKERFILE = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
URI = "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com/shop"
LOGIN = (
    "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
    "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com"
)
BUILD = f"docker build -t {URI}:latest -t {URI}:$CODEBUILD_RESOLVED_SOURCE_VERSION ."
PUSH_LATEST = f"docker push {URI}:latest"
PUSH_SHA = f"docker push {URI}:$CODEBUILD_RESOLVED_SOURCE_VERSION"


def _spec(build: list[str], post: list[str] | None = None) -> str:
    text = "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - " + LOGIN + "\n"
    text += "  build:\n    commands:\n" + "".join(f"      - {c}\n" for c in build)
    if post:
        text += "  post_build:\n    commands:\n" + "".join(f"      - {c}\n" for c in post)
    return text


def _plan(spec: str) -> Plan:
    files = {"buildspec.yml": spec, "Dockerfile": DOCKERFILE, "requirements.txt": "flask==3.0.0\n"}
    return planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(region="eu-west-1"))


def _edit(plan: Plan) -> FileEdit:
    (edit,) = [e for e in plan.edits if e.path == "buildspec.yml"]
    return edit


def _build_line(edit: FileEdit) -> str:
    return next(line for line in edit.content.splitlines() if "docker buildx build" in line)


def test_a_build_whose_tags_are_only_pushed_pushes_itself() -> None:
    plan = _plan(
        _spec(
            [BUILD],
            [
                "echo pushing",
                PUSH_LATEST,
                PUSH_SHA,
                'printf \'[{"imageUri":"%s"}]\' ' + URI + ":latest > imagedefinitions.json",
            ],
        )
    )
    edit = _edit(plan)
    line = _build_line(edit)
    assert line.count(" --push ") == 1
    assert "--load" not in line
    # Pushed from the builder, the tag must stay a plain image manifest (no provenance index), as before.
    assert " --push --provenance=false " in line
    assert any("`--provenance=false`" in r for r in edit.reasons)
    assert f"-t {URI}:latest" in line and f"-t {URI}:$CODEBUILD_RESOLVED_SOURCE_VERSION" in line
    assert PUSH_LATEST not in edit.content and PUSH_SHA not in edit.content
    assert "echo pushing" in edit.content and "imagedefinitions.json" in edit.content
    removed = [r for r in edit.reasons if "docker push" in r and "removed" in r]
    assert len(removed) == 2 and all("--push" in r for r in removed)
    assert plan.builds[0].output == "push"
    assert verify_buildspec_edit(edit.original or "", edit.content) is None
    files = {"buildspec.yml": edit.content, "Dockerfile": DOCKERFILE, "requirements.txt": "flask==3.0.0\n"}
    again = planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(region="eu-west-1"))
    assert not [e for e in again.edits if e.path == "buildspec.yml"]


def test_pushes_in_the_same_phase_right_after_the_build_count() -> None:
    edit = _edit(_plan(_spec([BUILD, PUSH_LATEST, PUSH_SHA])))
    assert " --push" in _build_line(edit) and "docker push" not in edit.content


def test_each_of_several_builds_pushed_right_after_it_pushes_itself() -> None:
    other = "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com/worker:latest"
    edit = _edit(
        _plan(
            _spec(
                [
                    f"docker build -t {URI}:latest .",
                    PUSH_LATEST,
                    f"docker build -f Dockerfile -t {other} .",
                    f"docker push {other}",
                    "echo done",
                ]
            )
        )
    )
    builds = [line for line in edit.content.splitlines() if "docker buildx build" in line]
    assert len(builds) == 2 and all(" --push" in b for b in builds) and "docker push" not in edit.content


@pytest.mark.parametrize(
    "later",
    [
        f"docker run --rm {URI}:latest pytest",
        f"docker save {URI}:latest -o image.tar",
        f"docker tag {URI}:latest {URI}:stable",
        f"docker inspect {URI}:latest",
        f"trivy image {URI}:latest",
        "docker compose up -d",
        "./scripts/smoke-test.sh",
    ],
)
def test_anything_else_after_the_build_keeps_load(later: str) -> None:
    edit = _edit(_plan(_spec([BUILD], [PUSH_LATEST, PUSH_SHA, later])))
    assert "--load" in _build_line(edit) and " --push" not in _build_line(edit)
    assert PUSH_LATEST in edit.content and PUSH_SHA in edit.content


def test_a_command_that_may_fail_between_build_and_push_keeps_load() -> None:
    # With --push the image would be pushed before the tests run: a failing test must still stop the push.
    edit = _edit(_plan(_spec([BUILD, "python -m pytest"], [PUSH_LATEST, PUSH_SHA])))
    assert "--load" in _build_line(edit) and PUSH_LATEST in edit.content


def test_a_tag_that_is_never_pushed_keeps_load() -> None:
    edit = _edit(_plan(_spec([BUILD], [PUSH_LATEST])))
    assert "--load" in _build_line(edit) and PUSH_LATEST in edit.content


def test_a_push_in_the_build_item_itself_keeps_load() -> None:
    edit = _edit(_plan(_spec([f"{BUILD} && {PUSH_LATEST} && {PUSH_SHA}"])))
    assert "--load" in _build_line(edit)


def test_a_phase_that_only_pushes_is_left_with_its_pushes() -> None:
    edit = _edit(_plan(_spec([BUILD], [PUSH_LATEST, PUSH_SHA])))
    assert "--load" in _build_line(edit) and PUSH_LATEST in edit.content


def test_the_verifier_accepts_only_push_lines_of_a_build_that_now_pushes() -> None:
    original = _spec([BUILD], [PUSH_LATEST, PUSH_SHA, "aws ecs update-service --cluster c --service s"])
    edit = _edit(_plan(original))
    assert verify_buildspec_edit(original, edit.content) is None
    # A push line removed while the build still loads, or another line removed, is not the bot's change.
    loads = edit.content.replace(" --push", " --load")
    assert verify_buildspec_edit(original, loads) is not None
    with_push = _spec([BUILD], [PUSH_LATEST, PUSH_SHA, "echo done"])
    edited = _edit(_plan(with_push)).content
    assert verify_buildspec_edit(with_push, edited.replace("      - echo done\n", "")) is not None
