"""The one-time AWS setup as code: the CloudFormation template passes cfn-lint, the Terraform configuration parses
with python-hcl2 and uses only AWS provider resource types and arguments, both say what the setup says."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import pytest
import yaml
from cfnlint.api import ManualArgs, lint

from bot.core import iac, planner
from bot.core.model import AwsSetup, Options, RepoSnapshot

DOCKERFILE = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
KNOWN = (
    "version: 0.2\nphases:\n  build:\n    commands:\n"
    "      - docker build -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest .\n"
    "      - docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:latest\n"
)
UNKNOWN = (
    "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t $REPOSITORY_URI:latest .\n"
    "      - docker push $REPOSITORY_URI:latest\n"
)

# Arguments of the AWS provider's resources (registry.terraform.io/providers/hashicorp/aws/latest/docs, as the
# provider-generated pulumi.com/registry/packages/aws/api-docs/ecr/repository and ecr/lifecyclepolicy pages show
# them): aws_ecr_repository (name, image_tag_mutability, ...), aws_ecr_lifecycle_policy (repository, policy,
# region), aws_iam_role_policy (name, name_prefix, role, policy); only those the snippet uses are listed.
TF_RESOURCES = {
    "aws_ecr_repository": {"name", "image_tag_mutability"},
    "aws_ecr_lifecycle_policy": {"repository", "policy"},
    "aws_iam_role_policy": {"name", "role", "policy"},
}
TF_DATA: dict[str, set[str]] = {"aws_caller_identity": set(), "aws_partition": set()}
TF_VARIABLE_ARGS = {"type", "default", "description"}


def _setup(spec: str, **options: object) -> AwsSetup:
    files = {"buildspec.yml": spec, "Dockerfile": DOCKERFILE, "requirements.txt": "flask==3.0.0\n"}
    plan = planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options(**options))  # type: ignore[arg-type]
    assert plan.setup is not None
    return plan.setup


def _cfn(text: str) -> dict[str, Any]:
    body = yaml.safe_load(text)
    assert isinstance(body, dict)
    return body


def _unquote(key: str) -> str:
    return key.strip('"')


def _blocks(parsed: dict[str, Any], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, arguments) of every `resource`/`data` block, as python-hcl2 parses them."""
    out = []
    for block in parsed.get(kind, []):
        for type_, named in block.items():
            for name, args in named.items():
                out.append((_unquote(type_), _unquote(name), {k: v for k, v in args.items() if not k.startswith("__")}))
    return out


def _heredoc_text(value: str) -> str:
    """The text of a `<<-EOT` heredoc value as python-hcl2 keeps it (indent stripped as Terraform does)."""
    lines = value.split("\n")[1:-1]
    indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
    return "\n".join(x[indent:] for x in lines)


@pytest.mark.parametrize("spec", [KNOWN, UNKNOWN], ids=["account-and-region-known", "placeholders"])
def test_cloudformation_passes_cfn_lint(spec: str) -> None:
    setup = _setup(spec)
    text = iac.cloudformation(setup)
    assert lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1"])) == []
    resources = _cfn(text)["Resources"]
    (repo,) = [r for r in resources.values() if r["Type"] == "AWS::ECR::Repository"]
    assert repo["Properties"]["RepositoryName"] == setup.cache_repository
    assert repo["Properties"]["ImageTagMutability"] == "MUTABLE"
    lifecycle = repo["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    assert json.loads(lifecycle) == json.loads(setup.lifecycle_policy_json)
    (policy,) = [r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"]
    assert policy["Properties"]["Roles"] == [{"Ref": "CodeBuildRoleName"}]


def test_a_broken_template_fails_cfn_lint() -> None:
    """The lint is real: a property CloudFormation does not know is reported."""
    text = iac.cloudformation(_setup(KNOWN)).replace("ImageTagMutability:", "ImageTagMutable:")
    assert lint(text, config=ManualArgs(regions=["us-east-1"])) != []


def test_cloudformation_policy_is_the_setup_policy_with_stack_values_for_placeholders() -> None:
    known = _setup(KNOWN)
    document = _cfn(iac.cloudformation(known))["Resources"]["CacheIamPolicy"]["Properties"]["PolicyDocument"]
    assert document == json.loads(known.iam_policy_json)  # nothing to fill in: the very same policy
    assert "Deploy in region eu-west-1, account 123456789012" in iac.cloudformation(known)
    unknown = _setup(UNKNOWN)
    text = iac.cloudformation(unknown)
    assert "ACCOUNT_ID" not in text and ":REGION:" not in text and "IMAGE_REPOSITORY" not in text
    assert "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ImageRepository}" in text
    assert _cfn(text)["Parameters"]["ImageRepository"]["Default"] == "my-image-repository"


@pytest.mark.parametrize("spec", [KNOWN, UNKNOWN], ids=["account-and-region-known", "placeholders"])
def test_terraform_parses_and_uses_only_aws_provider_types_and_arguments(spec: str) -> None:
    setup = _setup(spec)
    text = iac.terraform(setup)
    parsed = hcl2.loads(text)
    resources = _blocks(parsed, "resource")
    assert {t for t, _, _ in resources} == set(TF_RESOURCES)
    for type_, name, args in resources:
        assert set(args) <= TF_RESOURCES[type_], (type_, name, set(args) - TF_RESOURCES[type_])
    for type_, _, args in _blocks(parsed, "data"):
        assert type_ in TF_DATA and set(args) <= TF_DATA[type_]
    for variable in parsed.get("variable", []):
        for args in variable.values():
            assert {k for k in args if not k.startswith("__")} <= TF_VARIABLE_ARGS
    (repo,) = [a for t, _, a in resources if t == "aws_ecr_repository"]
    assert repo["name"] == f'"{setup.cache_repository}"' and repo["image_tag_mutability"] == '"MUTABLE"'
    (lifecycle,) = [a for t, _, a in resources if t == "aws_ecr_lifecycle_policy"]
    assert lifecycle["repository"] == "${aws_ecr_repository.cache.name}"
    assert json.loads(_heredoc_text(lifecycle["policy"])) == json.loads(setup.lifecycle_policy_json)
    (role_policy,) = [a for t, _, a in resources if t == "aws_iam_role_policy"]
    assert role_policy["role"] == "${var.codebuild_role_name}"


def test_terraform_policy_fills_placeholders_with_references_and_keeps_known_values() -> None:
    known = iac.terraform(_setup(KNOWN))
    assert 'data "aws_caller_identity"' not in known and "var.region" not in known
    assert "arn:aws:ecr:eu-west-1:123456789012:repository/shop" in known
    unknown = iac.terraform(_setup(UNKNOWN))
    assert (
        "arn:${data.aws_partition.current.partition}:ecr:${var.region}:"
        "${data.aws_caller_identity.current.account_id}:repository/${var.image_repository}"
    ) in unknown
    assert re.search(r"\b(ACCOUNT_ID|IMAGE_REPOSITORY)\b", unknown) is None
    for variable in ("codebuild_role_name", "region", "image_repository"):
        assert any(f'"{variable}"' in v for v in hcl2.loads(unknown)["variable"]), variable


def test_a_shared_cache_repository_is_left_out_of_the_snippets() -> None:
    """A repository named in the config may hold other repositories' keep rules: IaC would replace them."""
    setup = _setup(KNOWN, cache_repository="team-cache")
    assert iac.managed_repositories(setup, ("team-cache",)) == ()
    cfn = _cfn(iac.cloudformation(setup, ("team-cache",)))["Resources"]
    assert [r["Type"] for r in cfn.values()] == ["AWS::IAM::Policy"]
    assert "team-cache" in json.dumps(cfn)  # the role may still push to it
    tf = iac.terraform(setup, ("team-cache",))
    assert "aws_ecr_repository" not in tf and "aws_ecr_lifecycle_policy" not in tf and "repository/team-cache" in tf
    assert iac.managed_repositories(setup) == ("team-cache",)
