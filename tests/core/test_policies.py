"""Lifecycle and IAM policies: the reference documents, partitions, placeholders, setup commands."""

import dataclasses
import json
from pathlib import Path

from bot.core.model import BuildLink, Options
from bot.core.policies import (
    IAM_PATH,
    LIFECYCLE_PATH,
    aws_setup,
    iam_policy,
    lifecycle_policy,
    render_json,
    render_lifecycle_json,
    setup_commands,
)

BUILD = BuildLink("buildspec.yml", "build", 0, 10, "Dockerfile", ".", "cache")

SPEC = """version: 0.2
env:
  variables:
    AWS_DEFAULT_REGION: "us-east-1"
    IMAGE_REPO_NAME: "my-app"
    CACHE_REPO_NAME: "my-app-cache"
phases:
  build:
    commands:
      - docker build .
"""


def test_lifecycle_matches_the_reference(shared: Path) -> None:
    reference = json.loads((shared / "examples/seed-app/lifecycle-policy.json").read_text())
    assert lifecycle_policy("cache", 14) == reference


def test_lifecycle_text_is_laid_out_like_the_reference(shared: Path) -> None:
    reference = (shared / "examples/seed-app/lifecycle-policy.json").read_text()
    assert render_lifecycle_json(lifecycle_policy("cache", 14)) == reference


def test_iam_text_is_laid_out_like_the_reference(shared: Path) -> None:
    reference = (shared / "examples/seed-app/iam-policy.json").read_text()
    assert render_json(iam_policy("us-east-1", "123456789012", ["my-app", "my-app-cache"])) == reference


def test_lifecycle_never_expires_the_live_tag_by_age() -> None:
    rules = lifecycle_policy("cache", 7)["rules"]
    assert isinstance(rules, list)
    for rule in rules:
        selection = rule["selection"]
        assert selection["tagStatus"] != "any"
        if selection["countType"] == "sinceImagePushed" and selection["tagStatus"] == "tagged":
            assert "cache" not in selection["tagPatternList"]
    assert rules[0]["selection"]["tagPatternList"] == ["cache"]
    assert [r["rulePriority"] for r in rules] == [1, 2, 3]


def test_iam_matches_the_reference(shared: Path) -> None:
    reference = json.loads((shared / "examples/seed-app/iam-policy.json").read_text())
    assert iam_policy("us-east-1", "123456789012", ["my-app", "my-app-cache"]) == reference


def test_iam_partition_follows_the_region() -> None:
    statement = iam_policy("cn-north-1", "123456789012", ["a-cache"])["Statement"]
    assert isinstance(statement, list)
    assert statement[1]["Resource"] == ["arn:aws-cn:ecr:cn-north-1:123456789012:repository/a-cache"]
    gov = iam_policy("us-gov-west-1", "123456789012", ["a-cache"])["Statement"]
    assert isinstance(gov, list)
    assert gov[1]["Resource"][0].startswith("arn:aws-us-gov:ecr:us-gov-west-1:")


def test_setup_reads_names_from_the_buildspec() -> None:
    setup = aws_setup({"buildspec.yml": SPEC}, Options(), (BUILD,))
    assert setup.region == "us-east-1"
    assert setup.cache_repository == "my-app-cache"
    assert setup.image_repositories == ("my-app",)
    assert setup.files == (LIFECYCLE_PATH, IAM_PATH)
    document = json.loads(setup.iam_policy_json)
    assert document["Statement"][1]["Resource"] == [
        "arn:aws:ecr:us-east-1:ACCOUNT_ID:repository/my-app",
        "arn:aws:ecr:us-east-1:ACCOUNT_ID:repository/my-app-cache",
    ]
    assert any(
        c == "aws ecr create-repository --repository-name my-app-cache --region us-east-1 "
        "--image-tag-mutability MUTABLE"
        for c in setup.commands
    )
    assert any("put-lifecycle-policy" in c and LIFECYCLE_PATH in c for c in setup.commands)
    assert any("get-caller-identity" in c for c in setup.commands)


def test_literal_image_registry_keeps_its_own_account_and_region() -> None:
    spec = SPEC.replace('IMAGE_REPO_NAME: "my-app"', "REPO: 987654321098.dkr.ecr.eu-west-1.amazonaws.com/shop")
    spec = spec.replace('    AWS_DEFAULT_REGION: "us-east-1"\n', "")
    spec += "      - CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$CACHE_REPO_NAME\n"
    setup = aws_setup({"buildspec.yml": spec}, Options(cache_repository="shop-cache"), (BUILD,))
    # The only registry the buildspec names gives the setup its region and account, and says so.
    assert setup.region == "eu-west-1"
    assert setup.account_id == "987654321098"
    assert setup.commands[0].startswith(
        "# region eu-west-1 (from the ECR registry named at buildspec.yml:4) and "
        "account 987654321098 (from the ECR registry named at buildspec.yml:4)"
    )
    assert setup.cache_repositories == ("shop-cache", "my-app-cache")
    assert setup.image_repositories == ("shop",)
    resources = json.loads(setup.iam_policy_json)["Statement"][1]["Resource"]
    assert resources == [
        "arn:aws:ecr:eu-west-1:987654321098:repository/shop",
        "arn:aws:ecr:eu-west-1:987654321098:repository/shop-cache",
        "arn:aws:ecr:eu-west-1:987654321098:repository/my-app-cache",
    ]
    # An explicit region still wins, and the registry's region then only fills the account.
    other = aws_setup({"buildspec.yml": spec}, Options(region="us-west-2"), (BUILD,))
    assert other.region == "us-west-2" and other.commands[0].startswith("# account 987654321098 (from ")


def test_cache_region_comes_from_the_cache_uri_line() -> None:
    spec = SPEC.replace('    AWS_DEFAULT_REGION: "us-east-1"\n', '    REGION: "ap-south-1"\n')
    spec += "      - CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.${REGION}.amazonaws.com/$CACHE_REPO_NAME\n"
    setup = aws_setup({"buildspec.yml": spec}, Options(account_id="123456789012"), (BUILD,))
    assert setup.region == "ap-south-1"
    assert "arn:aws:ecr:ap-south-1:123456789012:repository/my-app-cache" in setup.iam_policy_json
    assert not any(c.startswith("sed ") for c in setup.commands)


def test_every_live_tag_is_kept_before_the_age_rule() -> None:
    builds = (
        dataclasses.replace(BUILD, cache_tag="cache-web"),
        dataclasses.replace(BUILD, cache_tag="cache-api"),
        dataclasses.replace(BUILD, cache_tag="cache-root-$CODEBUILD_BATCH_BUILD_IDENTIFIER"),
    )
    rules = json.loads(aws_setup({"buildspec.yml": SPEC}, Options(), builds).lifecycle_policy_json)["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2, 3, 4, 5, 6]
    kept = [r["selection"]["tagPatternList"][0] for r in rules if r["selection"]["countType"] == "imageCountMoreThan"]
    assert kept == ["cache", "cache-api", "cache-root-*", "cache-web"]
    age_rule = next(
        i
        for i, r in enumerate(rules)
        if r["selection"].get("countUnit") == "days" and r["selection"]["tagStatus"] == "tagged"
    )
    assert age_rule == 4 and rules[age_rule]["selection"]["tagPatternList"] == ["cache-*"]
    assert rules[2]["selection"]["countNumber"] == 100


def test_setup_without_names_uses_placeholders_and_fills_them() -> None:
    # The build pushes to a repository the buildspec does not name (a build that pushes nothing has no image).
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build .\n      - docker push $IMAGE_URI\n"
    setup = aws_setup({"buildspec.yml": spec}, Options(), (BUILD,))
    assert setup.region == "REGION"
    assert setup.cache_repository == "ecr-build-cache"
    assert "REGION" in setup.iam_policy_json and "ACCOUNT_ID" in setup.iam_policy_json
    sed = next(c for c in setup.commands if c.startswith("sed "))
    assert "s/ACCOUNT_ID/" in sed and "s/REGION/" in sed and "s/IMAGE_REPOSITORY/" in sed
    assert setup.commands[0].startswith("AWS_REGION=")


def test_invalid_names_in_the_buildspec_are_ignored() -> None:
    spec = SPEC.replace('"my-app-cache"', '"Bad_Name"').replace('"us-east-1"', '"$REGION"')
    setup = aws_setup({"buildspec.yml": spec}, Options(), (BUILD,))
    assert setup.cache_repository == "ecr-build-cache"
    assert setup.region == "REGION"


def test_unknown_image_repository_is_set_in_a_visible_first_command() -> None:
    commands = setup_commands(None, None, ("app-cache",), ())
    assert commands[:2] == (
        "AWS_REGION=us-east-1  # the region of your CodeBuild project and ECR repositories",
        "IMAGE_REPOSITORY=my-image-repository  # the ECR repository your build pushes its image to",
    )
    sed = next(c for c in commands if c.startswith("sed "))
    assert '"s/IMAGE_REPOSITORY/$IMAGE_REPOSITORY/g"' in sed and "my-image-repository" not in sed
    assert not any(c.startswith("IMAGE_REPOSITORY=") for c in setup_commands(None, None, ("c",), ("app",)))


def test_a_private_builder_image_is_pulled_not_pushed() -> None:
    mirror = "111122223333.dkr.ecr.us-east-1.amazonaws.com/mirror/buildkit:buildx-stable-1"
    text = SPEC + f"      - docker buildx create --driver-opt image={mirror} --use\n"
    setup = aws_setup({"buildspec.yml": text}, Options(builder_image=mirror), (BUILD,))
    statements = json.loads(setup.iam_policy_json)["Statement"]
    arn = "arn:aws:ecr:us-east-1:111122223333:repository/mirror/buildkit"
    push = next(s for s in statements if s["Sid"] == "PushPullImageAndCache")
    pull = next(s for s in statements if s["Sid"] == "PullBuilderImage")
    assert arn not in push["Resource"] and pull["Resource"] == [arn]
    assert "ecr:PutImage" not in pull["Action"] and "ecr:BatchGetImage" in pull["Action"]
    assert "mirror/buildkit" not in setup.image_repositories


def test_scratch_files_go_to_a_private_folder_never_a_fixed_tmp_path() -> None:
    from bot.core.policies import SETUP_DIR_LINE, setup_commands

    commands = setup_commands(None, None, ("team-cache",), (), shared=("team-cache",))
    text = "\n".join(commands)
    assert "/tmp/" not in text
    assert commands[0].startswith("AWS_REGION=")  # the first command stays the one the operator edits
    first_use = next(n for n, c in enumerate(commands) if "$SETUP_DIR/" in c)
    assert commands.index(SETUP_DIR_LINE) == first_use - 1
    assert SETUP_DIR_LINE.startswith("SETUP_DIR=$(mktemp -d)")
    assert SETUP_DIR_LINE not in setup_commands("eu-west-1", "123456789012", ("app-cache",), ("app",))
