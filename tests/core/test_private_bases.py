"""Private ECR base images (issue 12): pull rights in the IAM policy, and a login before the build when none
covers their registry (the docker-container builder pulls them with the docker CLI's credentials)."""

from __future__ import annotations

import json

from bot.core import planner
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.model import Options, Plan, RepoSnapshot
from bot.core.policies import PULL_ACTIONS, PUSH_PULL_ACTIONS

OTHER = "210987654321.dkr.ecr.us-west-2.amazonaws.com"
OWN = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
STEPS = "RUN pip install flask==3.0.0\nCOPY app.py .\n"
LOGIN_OWN = f"aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin {OWN}"


def _plan(spec: str, dockerfile: str) -> Plan:
    files = {"buildspec.yml": spec, "Dockerfile": dockerfile, "app.py": "print('hi')\n"}
    return planner.plan(
        RepoSnapshot(tuple(files), files, repository="acme/shop"),
        Options(account_id="123456789012", region="eu-west-1"),
    )


def _spec(*commands: str) -> str:
    return "version: 0.2\nphases:\n  build:\n    commands:\n" + "".join(f"      - {c}\n" for c in commands)


def _statements(plan: Plan) -> list[dict[str, object]]:
    assert plan.setup is not None
    return json.loads(plan.setup.iam_policy_json)["Statement"]  # type: ignore[no-any-return]


def _actions_on(plan: Plan, arn: str) -> set[str]:
    out: set[str] = set()
    for s in _statements(plan):
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if arn in resources:  # type: ignore[operator]
            out.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])  # type: ignore[arg-type]
    return out


BUILD = (f"docker build -t {OWN}/shop:latest .", f"docker push {OWN}/shop:latest")


def test_a_from_in_another_account_gets_pull_rights_only() -> None:
    plan = _plan(_spec(LOGIN_OWN, *BUILD), f"FROM {OTHER}/base/python:3.12\n" + STEPS)
    assert _actions_on(plan, "arn:aws:ecr:us-west-2:210987654321:repository/base/python") == set(PULL_ACTIONS)
    assert _actions_on(plan, "arn:aws:ecr:eu-west-1:123456789012:repository/shop") == set(PUSH_PULL_ACTIONS)


def test_a_from_through_an_arg_default_counts() -> None:
    plan = _plan(
        _spec(LOGIN_OWN, *BUILD),
        f"ARG BASE={OTHER}/base\nFROM $BASE AS build\nRUN pip install flask==3.0.0\nFROM build\nCOPY app.py .\n",
    )
    assert _actions_on(plan, "arn:aws:ecr:us-west-2:210987654321:repository/base") == set(PULL_ACTIONS)


def test_a_docker_pull_of_a_private_image_gets_pull_rights_only() -> None:
    plan = _plan(_spec(LOGIN_OWN, f"docker pull {OTHER}/tools:1", *BUILD), "FROM python:3.12\n" + STEPS)
    assert _actions_on(plan, "arn:aws:ecr:us-west-2:210987654321:repository/tools") == set(PULL_ACTIONS)


def test_a_base_in_another_registry_gets_a_login_before_the_build() -> None:
    plan = _plan(_spec(LOGIN_OWN, *BUILD), f"FROM {OTHER}/base:1\n" + STEPS)
    (edit,) = [e for e in plan.edits if e.path == "buildspec.yml"]
    login = f"aws ecr get-login-password --region us-west-2 | docker login --username AWS --password-stdin {OTHER}"
    lines = edit.content.splitlines()
    at = next(n for n, line in enumerate(lines) if login in line)
    assert at < next(n for n, line in enumerate(lines) if "docker buildx build" in line)
    assert any(OTHER in r and "login" in r.lower() for r in edit.reasons)
    assert verify_buildspec_edit(edit.original or "", edit.content) is None
    files = {"buildspec.yml": edit.content, "Dockerfile": f"FROM {OTHER}/base:1\n" + STEPS}
    again = planner.plan(RepoSnapshot(tuple(files), files), Options(account_id="123456789012", region="eu-west-1"))
    assert not [e for e in again.edits if e.path == "buildspec.yml"]


def test_a_base_whose_registry_has_a_login_gets_no_second_one() -> None:
    other_login = (
        f"aws ecr get-login-password --region us-west-2 | docker login --username AWS --password-stdin {OTHER}"
    )
    plan = _plan(_spec(LOGIN_OWN, other_login, *BUILD), f"FROM {OTHER}/base:1\n" + STEPS)
    (edit,) = [e for e in plan.edits if e.path == "buildspec.yml"]
    assert edit.content.count(OTHER) == (edit.original or "").count(OTHER)


def test_a_login_that_may_be_to_the_base_registry_is_not_doubled() -> None:
    # `$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION...` may well be the base image's registry: no claim otherwise.
    login = (
        "aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com"
    )
    files = {
        "buildspec.yml": _spec(login, "docker build -t shop .", "docker run --rm shop pytest"),
        "Dockerfile": f"FROM {OTHER}/base:1\n" + STEPS,
        "app.py": "print('hi')\n",
    }
    plan = planner.plan(RepoSnapshot(tuple(files), files), Options())
    (edit,) = [e for e in plan.edits if e.path == "buildspec.yml"]
    assert OTHER not in edit.content and not any(OTHER in r for r in edit.reasons)
    assert _actions_on(plan, "arn:aws:ecr:us-west-2:210987654321:repository/base") == set(PULL_ACTIONS)
