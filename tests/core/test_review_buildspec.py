"""Review of the buildspec rewrite: inputs where the change would break a build that works today."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.model import Options, Plan, RepoSnapshot

DOCKERFILE = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
URI = "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com/shop"
LOGIN = (
    "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
    "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com"
)


def _spec(build: list[str], post: list[str], env: str = "") -> str:
    text = "version: 0.2\n" + env + "phases:\n  pre_build:\n    commands:\n      - " + LOGIN + "\n"
    text += "  build:\n    commands:\n" + "".join(f"      - {c}\n" for c in build)
    return text + "  post_build:\n    commands:\n" + "".join(f"      - {c}\n" for c in post)


def _plan(spec: str) -> Plan:
    files = {"buildspec.yml": spec, "Dockerfile": DOCKERFILE, "requirements.txt": "flask==3.0.0\n"}
    return planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(region="eu-west-1"))


def _buildspec_edits(plan: Plan) -> list[str]:
    return [e.content for e in plan.edits if e.path == "buildspec.yml"]


# The bot's setup line `CACHE_URI=...` would overwrite a CACHE_URI the build already has for its own purpose
# (a buildspec or project variable, a Parameter Store value, an exported variable a pipeline reads).
@pytest.mark.parametrize(
    "env",
    [
        "env:\n  variables:\n    CACHE_URI: s3://bucket/cache\n",
        "env:\n  parameter-store:\n    CACHE_URI: /ci/cache-uri\n",
        "env:\n  secrets-manager:\n    CACHE_URI: arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci:uri\n",
        "env:\n  exported-variables:\n    - CACHE_URI\n",
    ],
)
def test_a_cache_uri_of_the_buildspec_env_is_not_overwritten(env: str) -> None:
    plan = _plan(
        _spec([f"docker build -t {URI}:latest ."], [f"docker push {URI}:latest", "echo $CODEBUILD_BUILD_ID"], env)
    )
    assert _buildspec_edits(plan) == []
    assert any(f.code == "buildspec-unsupported" and "CACHE_URI" in f.message for f in plan.findings)


def test_a_cache_uri_only_read_by_the_commands_is_a_project_variable_and_not_overwritten() -> None:
    plan = _plan(
        _spec(
            [f"docker build -t {URI}:latest ."],
            [f"docker push {URI}:latest", "aws s3 sync ./reports $CACHE_URI/reports"],
        )
    )
    assert _buildspec_edits(plan) == []
    assert any(f.code == "buildspec-unsupported" and "CACHE_URI" in f.message for f in plan.findings)


# A name the bot adds to `env.variables` must not also come from Parameter Store or Secrets Manager: the
# buildspec would then define it twice, and the bot's setup would name a cache repository the build may not use.
@pytest.mark.parametrize(
    "section,name", [("parameter-store", "CACHE_REPO_NAME"), ("secrets-manager", "DOCKER_BUILDKIT")]
)
def test_a_bot_variable_from_a_store_is_not_defined_twice(section: str, name: str) -> None:
    env = f"env:\n  {section}:\n    {name}: /ci/value\n"
    plan = _plan(_spec([f"docker build -t {URI}:latest ."], [f"docker push {URI}:latest", "echo done"], env))
    assert _buildspec_edits(plan) == []
    assert any(f.code == "buildspec-unsupported" and name in f.message for f in plan.findings)


# The docker-container builder pushes from its own container: `localhost` there is the builder, and the daemon's
# insecure-registry settings and the machine's /etc/hosts are not its own (docker/buildx#94, docker/buildx#218).
# `docker push` goes through dockerd, which reaches them: such a build keeps `--load` and its push lines.
@pytest.mark.parametrize(
    "image", ["localhost:5000/shop", "127.0.0.1:5000/shop", "registry:5000/shop", "10.0.3.7:5000/shop"]
)
def test_a_push_to_a_registry_only_the_daemon_reaches_keeps_load(image: str) -> None:
    plan = _plan(_spec([f"docker build -t {image}:latest .", f"docker push {image}:latest"], ["echo done"]))
    (text,) = _buildspec_edits(plan)
    build = next(line for line in text.splitlines() if "docker buildx build" in line)
    assert " --load " in build and "--push" not in build
    assert f"- docker push {image}:latest" in text


def test_a_push_to_ecr_still_pushes_from_the_build() -> None:
    plan = _plan(_spec([f"docker build -t {URI}:latest .", f"docker push {URI}:latest"], ["echo done"]))
    (text,) = _buildspec_edits(plan)
    assert " --push " in next(line for line in text.splitlines() if "docker buildx build" in line)
    assert "docker push" not in text


def test_a_push_spelling_the_tag_s_variable_without_braces_is_the_same_tag() -> None:
    env = "env:\n  variables:\n    URI: " + URI + "\n"
    plan = _plan(_spec(["docker build -t ${URI}:latest .", "docker push $URI:latest"], ["echo done"], env))
    (text,) = _buildspec_edits(plan)
    assert " --push " in next(line for line in text.splitlines() if "docker buildx build" in line)
    assert "docker push" not in text


def test_a_later_push_of_another_build_s_image_still_lets_the_first_build_push() -> None:
    # The second build's `docker push` reads that build's image, not the first one's: both builds push themselves.
    plan = _plan(
        _spec(
            [
                f"docker build -t {URI}:latest .",
                f"docker push {URI}:latest",
                f"docker build -t {URI}:web --target web .",
                f"docker push {URI}:web",
            ],
            ["echo done"],
        )
    )
    (text,) = _buildspec_edits(plan)
    assert sum(" --push " in line for line in text.splitlines() if "docker buildx build" in line) == 2
    assert "docker push" not in text


# A build argument whose value is a credential leaks like one with a credential's name: a builder stage that
# writes it into a file puts it into a layer that only `mode=max` exports (before, it never left the machine).
_CA = "https://aws:$CODEARTIFACT_AUTH_TOKEN@d-1.d.codeartifact.eu-west-1.amazonaws.com/pypi/p/simple/"
_BUILDER_WRITES = (
    "FROM python:3.12 AS build\nARG {arg}\nRUN {write}\nCOPY requirements.txt .\n"
    "RUN pip wheel -w /w -r requirements.txt\nFROM python:3.12-slim\nCOPY --from=build /w /w\n"
    "RUN pip install /w/*\nCOPY . .\n"
)


@pytest.mark.parametrize(
    "arg,value,write",
    [
        (
            "PIP_INDEX_URL",
            _CA,
            'pip config set global.index-url "$PIP_INDEX_URL" > /dev/null && '
            'echo "index-url = $PIP_INDEX_URL" > /etc/pip.conf',
        ),
        ("GH", "$GITHUB_TOKEN", 'echo "$GH" > /root/gh-auth'),
    ],
)
def test_a_build_arg_whose_value_is_a_credential_refuses_the_export(arg: str, value: str, write: str) -> None:
    spec = _spec([f"docker build --build-arg {arg}={value} -t {URI}:latest .", "docker tag a b"], ["echo done"])
    files = {
        "buildspec.yml": spec,
        "Dockerfile": _BUILDER_WRITES.format(arg=arg, write=write),
        "requirements.txt": "flask==3.0.0\n",
    }
    plan = planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(region="eu-west-1"))
    assert _buildspec_edits(plan) == []
    assert any(f.code == "secret-in-cache" for f in plan.findings)


def test_a_build_arg_with_a_plain_value_is_no_credential() -> None:
    spec = _spec([f"docker build --build-arg GH=production -t {URI}:latest .", "docker tag a b"], ["echo done"])
    files = {
        "buildspec.yml": spec,
        "Dockerfile": _BUILDER_WRITES.format(arg="GH", write='echo "$GH" > /rev'),
        "requirements.txt": "flask==3.0.0\n",
    }
    plan = planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(region="eu-west-1"))
    assert len(_buildspec_edits(plan)) == 1
    assert not any(f.code == "secret-in-cache" for f in plan.findings)


def test_the_verifier_refuses_removing_a_push_that_runs_before_the_build() -> None:
    """Only a `docker push` after the build switched to `--push` may go: an earlier one pushes another image."""
    push = f"docker push {URI}:latest"
    original = _spec([f"docker build -t {URI}:latest .", push], ["echo done"]).replace(
        LOGIN + "\n", f"{LOGIN}\n      - {push}\n", 1
    )
    (edited,) = _buildspec_edits(_plan(original))
    assert verify_buildspec_edit(original, edited) is None
    assert f"      - {push}\n" in edited  # the planner keeps the early push
    tampered = edited.replace(f"      - {push}\n", "", 1)
    assert verify_buildspec_edit(original, tampered) is not None


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
def test_a_push_on_the_last_line_without_a_line_break_is_removed(nl: str) -> None:
    """A file that ends in the push line, with no final line break, still gets the cache (and `--push`)."""
    original = _spec([f"docker build -t {URI}:latest ."], ["echo pushing", f"docker push {URI}:latest"])
    original = original.rstrip("\n").replace("\n", nl)
    (edited,) = _buildspec_edits(_plan(original))
    assert " --push " in edited and "docker push" not in edited
    assert edited.endswith("      - echo pushing") and "\n" not in edited.replace(nl, "")
    assert verify_buildspec_edit(original, edited) is None
    assert _buildspec_edits(_plan(edited)) == []


def test_a_cd_inside_a_subshell_ends_with_it_for_the_next_command() -> None:
    from buildspec_support import plan_text

    text = "version: 0.2\nphases:\n  build:\n    commands:\n      - (cd web && npm ci)\n      - docker build -t app .\n"
    _, part = plan_text(text)
    (build,) = part.builds
    assert build.context == "." and build.dockerfile == "Dockerfile"
