"""Builds that break today (issue 10): each shape, built here, must leave a working build working."""

from __future__ import annotations

import json

from buildspec_support import plan_text

from bot.core import planner
from bot.core.buildspec import codebuild_images
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.model import Finding, Options, Plan, RepoSnapshot

# Dependencies installed before the source is copied: a build the registry cache really speeds up.
DOCKERFILE = (
    "FROM python:3.12-slim\nCOPY requirements.txt /app/\nRUN pip install -r /app/requirements.txt\n"
    'COPY . /app\nCMD ["python", "/app/main.py"]\n'
)


def _spec(pre: str, build: str = "docker build -t $REPO:latest .", head: str = "") -> str:
    return (
        f"version: 0.2\n{head}phases:\n  pre_build:\n    commands:\n{pre}"
        f"  build:\n    commands:\n      - {build}\n      - docker push $REPO:latest\n"
    )


def _plan(text: str, options: Options | None = None) -> Plan:
    snap = RepoSnapshot(
        ("buildspec.yml", "Dockerfile", "main.py", "requirements.txt"),
        {
            "buildspec.yml": text,
            "Dockerfile": DOCKERFILE,
            "main.py": "print(1)\n",
            "requirements.txt": "flask==3.0.0\n",
        },
    )
    return planner.plan(snap, options or Options())


def _buildspec_edit(text: str) -> str | None:
    _, part = plan_text(text)
    edits = [e for e in part.edits if e.path == "buildspec.yml"]
    if not edits:
        return None
    assert verify_buildspec_edit(text, edits[0].content) is None
    return edits[0].content


def _findings(text: str, code: str) -> list[Finding]:
    _, part = plan_text(text)
    return [f for f in part.findings if f.code == code]


# 1. A legacy login whose output is stored or parsed is data, not a command.

STORED_LOGIN = _spec(
    "      - ECR_LOGIN=$(aws ecr get-login --region eu-west-1 --no-include-email)\n"
    "      - $ECR_LOGIN\n"
    "      - PASSWORD=$(echo $ECR_LOGIN | cut -d' ' -f6)\n"
)


def test_stored_legacy_login_leaves_the_buildspec_untouched_with_its_line() -> None:
    assert _buildspec_edit(STORED_LOGIN) is None
    (finding,) = _findings(STORED_LOGIN, "legacy-login-output")
    assert finding.level == "warning"
    assert "buildspec.yml:5" in finding.message
    assert "get-login-password" in finding.message


def test_stored_legacy_login_in_a_block_scalar_names_the_line_of_its_use() -> None:
    text = _spec("      - |\n        echo logging in\n        ECR_LOGIN=$(aws ecr get-login --region eu-west-1)\n")
    (finding,) = _findings(text, "legacy-login-output")
    assert finding.line == 7
    assert "buildspec.yml:7:" in finding.message


def test_legacy_login_inside_a_pipeline_or_argument_is_data_too() -> None:
    for line in (
        "      - echo $(aws ecr get-login --region eu-west-1) > login.sh\n",
        "      - aws ecr get-login --no-include-email --region eu-west-1 | sh\n",
        "      - docker login -u AWS -p $(aws ecr get-login --region eu-west-1 | cut -d' ' -f6) x\n",
    ):
        text = _spec(line)
        assert _buildspec_edit(text) is None, line
        assert [f.message for f in _findings(text, "legacy-login-output")], line


def test_legacy_login_run_as_a_command_is_replaced_in_every_spelling() -> None:
    want = (
        "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
        "$AWS_ACCOUNT_ID.dkr.ecr.eu-west-1.amazonaws.com"
    )
    for line in (
        "$(aws ecr get-login --region eu-west-1 --no-include-email)",
        "eval $(aws ecr get-login --region eu-west-1 --no-include-email)",
        'eval "$(aws ecr get-login --region eu-west-1 --no-include-email)"',
        "echo login; `aws ecr get-login --region eu-west-1 --no-include-email`",
        "echo login && $(aws ecr get-login --region=eu-west-1 --no-include-email)",
    ):
        out = _buildspec_edit(_spec(f"      - {line}\n"))
        assert out is not None, line
        assert want in out, line
        assert "get-login " not in out.replace("get-login-password", ""), line


# 2. A bare `$(aws ecr get-login)` exits 252 on AWS CLI v2.


def test_bare_legacy_login_is_recognised_and_uses_the_build_region() -> None:
    out = _buildspec_edit(_spec("      - $(aws ecr get-login)\n"))
    assert out is not None
    assert "$(aws ecr get-login)" not in out
    assert (
        "aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com"
    ) in out


# 3. Comments are never facts.

COMMENTED = """version: 0.2
env:
  parameter-store:
    REPOSITORY_URI: /app/repository-uri
# - REPOSITORY_URI=111122223333.dkr.ecr.ap-south-1.amazonaws.com/old-app
phases:
  pre_build:
    commands:
      # - CACHE_URI=111122223333.dkr.ecr.ap-south-1.amazonaws.com/old-cache
      - |
        # docker pull 111122223333.dkr.ecr.ap-south-1.amazonaws.com/old-app:latest
        aws ecr get-login-password | docker login --username AWS --password-stdin ${REPOSITORY_URI%%/*}
  build:
    commands:
      - docker build -t $REPOSITORY_URI:latest .
      - docker push $REPOSITORY_URI:latest
"""


def test_a_registry_named_only_in_comments_feeds_nothing() -> None:
    result = _plan(COMMENTED)
    assert result.setup is not None
    everything = result.setup.iam_policy_json + "\n".join(result.setup.commands)
    for fact in ("111122223333", "ap-south-1", "old-app", "old-cache"):
        assert fact not in everything, fact
    assert result.setup.region == "REGION" and result.setup.account_id is None
    # The repository really pushed to keeps its placeholder.
    assert "IMAGE_REPOSITORY" in result.setup.iam_policy_json
    edit = next(e for e in result.edits if e.path == "buildspec.yml")
    assert edit.content.count("old-app") == COMMENTED.count("old-app")
    assert 'CACHE_REPO_NAME: "old-app-cache"' not in edit.content


def test_a_commented_out_login_names_no_region_variable_or_partition() -> None:
    block = (
        "      - |\n"
        "        # aws ecr get-login-password --region $OLD_REGION | docker login --username AWS \\\n"
        "        #   --password-stdin 111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn\n"
        "        echo logging in\n"
    )
    out = _buildspec_edit(_spec(block))
    assert out is not None
    assert "CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$CACHE_REPO_NAME" in out
    assert "--region $OLD_REGION |" not in out.replace(block, "")


# 4. Old build images: a runtime pin only images without buildx offer.


def _pinned(runtime: str, version: str) -> str:
    return _spec("      - echo hi\n", head="").replace(
        "phases:\n", f"phases:\n  install:\n    runtime-versions:\n      {runtime}: {version}\n"
    )


def test_old_only_runtime_pin_leaves_the_buildspec_untouched() -> None:
    for runtime, version in (
        ("python", "3.8"),
        ("php", "7.3"),
        ("golang", "1.14"),
        ("docker", "18"),
        ("docker", "19"),
        ("nodejs", "12"),
    ):
        text = _pinned(runtime, version)
        assert _buildspec_edit(text) is None, (runtime, version)
        (finding,) = _findings(text, "old-build-image")
        assert finding.level == "warning"
        assert "buildspec.yml:5" in finding.message
        assert "standard:7.0" in finding.message


def test_a_pin_a_buildx_image_offers_is_edited() -> None:
    for runtime, version in (
        ("python", "3.11"),
        ("python", "3.9"),
        ("golang", "1.20"),
        ("docker", "23"),
        ("php", "8.1"),
        ("python", "3.x"),
    ):
        text = _pinned(runtime, version)
        assert _buildspec_edit(text) is not None, (runtime, version)
        assert not _findings(text, "old-build-image"), (runtime, version)


def test_the_image_table_names_its_source_and_matches_the_design_facts() -> None:
    assert "aws/aws-codebuild-docker-images" in (codebuild_images.__doc__ or "")
    by_name = {i.name: i for i in codebuild_images.IMAGES}
    assert not by_name["aws/codebuild/standard:5.0"].buildx
    assert by_name["aws/codebuild/standard:6.0"].buildx
    assert by_name["aws/codebuild/standard:7.0"].buildx
    assert not by_name["aws/codebuild/amazonlinux2-x86_64-standard:4.0"].buildx
    assert not by_name["aws/codebuild/amazonlinux2-aarch64-standard:2.0"].buildx
    assert by_name["aws/codebuild/amazonlinux-aarch64-standard:3.0"].buildx
    assert codebuild_images.old_only("python", "3.8")
    assert not codebuild_images.old_only("python", "3.12")
    assert not codebuild_images.old_only("rust", "1.0")  # offered nowhere: no evidence of an old image


def test_no_finding_claims_standard_6_lacks_buildx() -> None:
    _, part = plan_text(_spec("      - echo hi\n"))
    (note,) = [f.message for f in part.findings if f.code == "buildx-required"]
    with_buildx, _, without = note.partition("without it")
    assert "standard:6.0" in with_buildx and "standard:6.0" not in without
    assert "standard:2.0, 3.0, 4.0, 5.0" in without


# 5. A command YAML reads as a mapping: CodeBuild rejects the buildspec before anything runs.

MAPPING = _spec('      - IMAGE_TAG=latest\n      - echo "Image tag: $IMAGE_TAG"\n')


def test_command_read_as_a_mapping_is_reported_with_its_line() -> None:
    assert _buildspec_edit(MAPPING) is None
    (finding,) = _findings(MAPPING, "buildspec-command-mapping")
    assert finding.level == "warning"
    assert "buildspec.yml:6" in finding.message
    assert "'echo \"Image tag: $IMAGE_TAG\"'" in finding.message


# 6. The region and account a registry host names.

NAMED = _spec(
    "      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com\n",
    build="docker build -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest .",
).replace("docker push $REPO:latest", "docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest")


def test_a_registry_host_names_the_setup_region_and_the_iam_account() -> None:
    result = _plan(NAMED)
    assert result.setup is not None
    assert result.setup.region == "eu-west-1"
    assert result.setup.account_id == "123456789012"
    assert not any("us-east-1" in c for c in result.setup.commands)
    document = json.loads(result.setup.iam_policy_json)
    resources = json.dumps(document)
    assert "REGION" not in resources and "ACCOUNT_ID" not in resources
    assert "arn:aws:ecr:eu-west-1:123456789012:repository/shop-cache" in resources
    edited = next(e.content for e in result.edits if e.path == "buildspec.yml").splitlines()
    login = 1 + next(n for n, line in enumerate(edited) if "--password-stdin 123456789012.dkr" in line)
    assert any(c.startswith("#") and f"buildspec.yml:{login}" in c for c in result.setup.commands)
    notes = [f.message for f in result.findings if f.code == "iam-placeholders"]
    assert not any("AWS account id" in n or "region" in n for n in notes), notes


def test_a_pulled_image_names_no_account() -> None:
    text = _spec("      - docker pull 763104351884.dkr.ecr.us-east-1.amazonaws.com/base:1\n")
    result = _plan(text)
    assert result.setup is not None
    assert result.setup.account_id is None and result.setup.region == "REGION"


def test_two_accounts_named_leave_the_account_a_placeholder() -> None:
    text = NAMED.replace(
        "docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest",
        "docker push 999988887777.dkr.ecr.eu-west-1.amazonaws.com/shop:latest",
    )
    result = _plan(text)
    assert result.setup is not None
    assert result.setup.account_id is None
    assert result.setup.region == "eu-west-1"
    # Two accounts are named, so none is settled: the note must not say that none is named.
    (note,) = [f.message for f in result.findings if f.code == "iam-placeholders"]
    assert "AWS account id" in note and "does not name" not in note


def test_a_registry_host_with_a_region_variable_still_names_the_account() -> None:
    text = _spec(
        "      - aws ecr get-login-password --region $AWS_REGION | docker login --username AWS "
        "--password-stdin 123456789012.dkr.ecr.$AWS_REGION.amazonaws.com\n"
    )
    result = _plan(text)
    assert result.setup is not None
    assert result.setup.account_id == "123456789012" and result.setup.region == "REGION"
    assert "ACCOUNT_ID" not in result.setup.iam_policy_json
    (note,) = [f.message for f in result.findings if f.code == "iam-placeholders"]
    assert "AWS account id" not in note and "region" in note
