"""Every sentence the bot writes is true: image facts come from one table, registry hosts settle the setup,
the IAM policy and setup ask only for the repositories a build really pushes to (issue 12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.core import planner
from bot.core.buildspec import codebuild_images
from bot.core.model import Options, Plan, RepoSnapshot
from bot.render import pull_request, report

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"


def _plan(spec: str, **options: object) -> Plan:
    files = {"buildspec.yml": spec, "Dockerfile": DOCKERFILE, "requirements.txt": "flask==3.0.0\n"}
    return planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(**options))  # type: ignore[arg-type]


def _spec(*commands: str, env: str = "") -> str:
    lines = ["version: 0.2", *([env] if env else []), "phases:", "  build:", "    commands:"]
    return "\n".join(lines + [f"      - {c}" for c in commands]) + "\n"


def _outputs(plan: Plan) -> str:
    return pull_request.render_pr_body(plan, "acme/shop") + "\n" + report.text_report(plan)


def _iam(plan: Plan) -> dict[str, object]:
    assert plan.setup is not None
    return json.loads(plan.setup.iam_policy_json)  # type: ignore[no-any-return]


def _resources(plan: Plan) -> list[str]:
    statements = _iam(plan)["Statement"]
    assert isinstance(statements, list)
    out: list[str] = []
    for s in statements:
        out.extend([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    return out


# --- item: image facts ------------------------------------------------------------------------------------

_IMAGE_FACT = re.compile(r"standard[:/ ]?\d+\.\d|amazonlinux|aws/codebuild/")


def test_no_image_fact_is_written_outside_the_table() -> None:
    """Image names and versions appear only in bot/core/buildspec/codebuild_images.py (its source is named there)."""
    files = [*sorted((ROOT / "bot").rglob("*.py")), *sorted((ROOT / "templates").rglob("*.j2")), ROOT / "README.md"]
    outside = [
        f"{f.relative_to(ROOT)}:{n}"
        for f in files
        if f.name != "codebuild_images.py"
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if _IMAGE_FACT.search(line)
    ]
    assert outside == []


def test_pr_body_names_only_the_table_images_without_buildx() -> None:
    body = pull_request.render_pr_body(_plan(_spec("docker build -t shop .")), "acme/shop")
    (line,) = [x for x in body.splitlines() if "docker buildx is missing" in x]
    assert codebuild_images.RECOMMENDED in line
    listed = re.findall(r"`([a-z0-9_-]+:\d+\.\d+)`", line.split("Switch")[0])
    assert listed == [i.short for i in codebuild_images.IMAGES if not i.buildx]


def test_the_guard_line_recommends_the_table_image() -> None:
    from bot.core.buildspec.verify import GUARD_LINE

    assert codebuild_images.RECOMMENDED in GUARD_LINE
    assert next(i for i in codebuild_images.IMAGES if i.name == codebuild_images.RECOMMENDED).buildx


# --- item: a registry host that names the account and region ----------------------------------------------

_FALSE_NAMING = re.compile(
    r"(?i)does(?: not|n't) name the AWS account|not name the (?:AWS )?(?:account|region)"
    r"|account id or region"
)


def test_a_host_naming_account_and_region_is_never_called_unnamed() -> None:
    plan = _plan(
        _spec(
            "docker build -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest .",
            "docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest",
        )
    )
    text = _outputs(plan)
    assert not _FALSE_NAMING.search(text)
    assert not re.search(r"(?<![A-Z_])ACCOUNT_ID", text)
    assert "--region $AWS_REGION" not in text and "AWS_REGION=us-east-1" not in text
    assert "arn:aws:ecr:eu-west-1:123456789012:repository/shop" in _resources(plan)
    assert "Region `eu-west-1`" in text and "--region eu-west-1" in report.text_report(plan)


def test_a_host_naming_only_the_account_is_not_said_to_leave_the_account_open() -> None:
    plan = _plan(
        _spec(
            "docker build -t 123456789012.dkr.ecr.$MY_REGION.amazonaws.com/shop:latest .",
            "docker push 123456789012.dkr.ecr.$MY_REGION.amazonaws.com/shop:latest",
        )
    )
    text = _outputs(plan)
    assert not _FALSE_NAMING.search(text)
    notes = [f.message for f in plan.findings if f.code == "iam-placeholders"]
    assert notes and all("account" not in n for n in notes)
    assert "123456789012" in plan.setup.iam_policy_json  # type: ignore[union-attr]


# --- item: only the repositories a build pushes to ----------------------------------------------------------

_ASKED = "the ECR repository your build pushes its image to"


def test_a_build_that_pushes_nothing_is_not_asked_for_an_image_repository() -> None:
    plan = _plan(_spec("docker build -t shop:test .", "docker run --rm shop:test pytest"))
    assert plan.setup is not None
    assert _ASKED not in _outputs(plan) and "IMAGE_REPOSITORY" not in "\n".join(plan.setup.commands)
    assert "IMAGE_REPOSITORY" not in plan.setup.iam_policy_json
    assert _resources(plan) == ["*", "arn:aws:ecr:REGION:ACCOUNT_ID:repository/shop-build-cache"]
    assert not any("image repository" in f.message for f in plan.findings if f.code == "iam-placeholders")


def test_a_docker_hub_push_gets_only_the_cache_repository() -> None:
    plan = _plan(_spec("docker build -t acme/shop:latest .", "docker push acme/shop:latest"))
    assert plan.setup is not None
    assert _ASKED not in _outputs(plan) and "IMAGE_REPOSITORY" not in plan.setup.iam_policy_json
    assert _resources(plan) == ["*", "arn:aws:ecr:REGION:ACCOUNT_ID:repository/shop-build-cache"]


def test_an_ecr_public_push_gets_the_ecr_public_actions_on_its_repository() -> None:
    plan = _plan(
        _spec(
            "aws ecr-public get-login-password --region us-east-1 | docker login --username AWS "
            "--password-stdin public.ecr.aws",
            "docker build -t public.ecr.aws/acme/shop:latest .",
            "docker push public.ecr.aws/acme/shop:latest",
        ),
        account_id="123456789012",
        region="eu-west-1",
    )
    assert plan.setup is not None
    assert _ASKED not in _outputs(plan) and "IMAGE_REPOSITORY" not in plan.setup.iam_policy_json
    statements = _iam(plan)["Statement"]
    assert isinstance(statements, list)
    public = [s for s in statements if any(a.startswith("ecr-public:") for a in s["Action"])]
    # https://docs.aws.amazon.com/AmazonECR/latest/public/public-repository-policy-examples.html
    login = next(s for s in public if s["Resource"] == "*")
    assert set(login["Action"]) == {"ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"}
    push = next(s for s in public if s["Resource"] != "*")
    assert push["Resource"] == ["arn:aws:ecr-public::123456789012:repository/shop"]
    assert set(push["Action"]) == {
        "ecr-public:BatchCheckLayerAvailability",
        "ecr-public:InitiateLayerUpload",
        "ecr-public:UploadLayerPart",
        "ecr-public:CompleteLayerUpload",
        "ecr-public:PutImage",
    }
    private = [
        r
        for s in statements
        if s not in public
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert private == ["*", "arn:aws:ecr:eu-west-1:123456789012:repository/shop-build-cache"]


def test_a_push_to_an_unnamed_ecr_repository_is_still_asked_for() -> None:
    plan = _plan(
        _spec(
            "docker build -t $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$APP:latest .",
            "docker push $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$APP:latest",
        )
    )
    assert plan.setup is not None
    assert "arn:aws:ecr:REGION:ACCOUNT_ID:repository/IMAGE_REPOSITORY" in _resources(plan)
    assert any(c.startswith("IMAGE_REPOSITORY=") for c in plan.setup.commands)


def test_every_pushed_repository_gets_its_own_placeholder() -> None:
    plan = _plan(
        _spec(
            "docker build -t $API_URI:latest -t $WEB_URI:latest .",
            "docker push $API_URI:latest",
            "docker push $WEB_URI:latest",
        )
    )
    assert plan.setup is not None
    assert _resources(plan) == [
        "*",
        "arn:aws:ecr:REGION:ACCOUNT_ID:repository/IMAGE_REPOSITORY",
        "arn:aws:ecr:REGION:ACCOUNT_ID:repository/IMAGE_REPOSITORY_2",
        "arn:aws:ecr:REGION:ACCOUNT_ID:repository/shop-build-cache",
    ]
    commands = "\n".join(plan.setup.commands)
    assert "IMAGE_REPOSITORY=" in commands and "IMAGE_REPOSITORY_2=" in commands
    assert "$API_URI" in commands and "$WEB_URI" in commands
    sed = next(c for c in plan.setup.commands if c.startswith("sed "))
    # The longer name is replaced first, or `s/IMAGE_REPOSITORY/` would eat the start of `IMAGE_REPOSITORY_2`.
    assert sed.index("s/IMAGE_REPOSITORY_2/") < sed.index("s/IMAGE_REPOSITORY/")


def test_every_named_repository_gets_its_own_arn() -> None:
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    plan = _plan(
        _spec(
            f"docker build -t {host}/api:latest -t {host}/web:latest .",
            f"docker push {host}/api:latest",
            f"docker push {host}/web:latest",
        )
    )
    assert _resources(plan) == [
        "*",
        "arn:aws:ecr:eu-west-1:123456789012:repository/api",
        "arn:aws:ecr:eu-west-1:123456789012:repository/web",
        "arn:aws:ecr:eu-west-1:123456789012:repository/shop-build-cache",
    ]
    assert "IMAGE_REPOSITORY" not in plan.setup.iam_policy_json  # type: ignore[union-attr]


def test_the_ecr_public_statements_name_real_actions_and_arns() -> None:
    import parliament  # the dev extras' IAM linter, which knows every action and ARN format

    plan = _plan(
        _spec("docker build -t public.ecr.aws/acme/shop:latest .", "docker push public.ecr.aws/acme/shop:latest"),
        account_id="123456789012",
        region="eu-west-1",
    )
    policy = parliament.analyze_policy_string(plan.setup.iam_policy_json)  # type: ignore[union-attr]
    issues = {f.issue for f in policy.findings}
    assert not issues & {"UNKNOWN_ACTION", "UNKNOWN_PREFIX", "RESOURCE_MISMATCH", "MALFORMED", "INVALID_ARN"}


def test_a_region_set_in_the_buildspec_and_used_by_the_pushed_host_settles_the_setup() -> None:
    plan = _plan(
        _spec(
            "export AWS_REGION=ap-northeast-1",
            "export URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com/shop",
            "docker build -t $URI:latest .",
            "docker run --rm $URI:latest pytest",
            "docker push $URI:latest",
        )
    )
    assert plan.setup is not None and plan.setup.region == "ap-northeast-1"
    assert "arn:aws:ecr:ap-northeast-1:ACCOUNT_ID:repository/shop" in _resources(plan)
    assert "arn:aws:ecr:ap-northeast-1:ACCOUNT_ID:repository/shop-cache" in _resources(plan)
    assert not any(c.startswith("AWS_REGION=") for c in plan.setup.commands)
