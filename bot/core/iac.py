"""The one-time AWS setup as code: a CloudFormation template and a Terraform configuration made from AwsSetup."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml

from bot.core.model import AwsSetup
from bot.core.policies import ACCOUNT_PLACEHOLDER, IMAGE_PLACEHOLDER, REGION_PLACEHOLDER

POLICY_NAME = "ecr-cache-bot"
_TOKEN = re.compile(rf"\b({ACCOUNT_PLACEHOLDER}|{REGION_PLACEHOLDER}|{IMAGE_PLACEHOLDER}(?:_\d+)?)\b")
# Until the region is known the policy's ARNs say `arn:aws:`; the stack's own partition replaces it.
_ARN_PARTITION = re.compile(rf"\barn:aws:(?=[a-z-]+:{REGION_PLACEHOLDER}:)")


def managed_repositories(setup: AwsSetup, shared: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The cache repositories the snippets create: all but the ``shared`` ones (named in the config, so other
    repositories may use them too and their lifecycle policy holds rules this setup must not replace)."""
    names = setup.cache_repositories or (setup.cache_repository,)
    return tuple(n for n in names if n not in shared)


def image_placeholders(setup: AwsSetup) -> tuple[str, ...]:
    """The `IMAGE_REPOSITORY`, `IMAGE_REPOSITORY_2`, ... names the IAM policy leaves for the operator."""
    found = {t for t in _TOKEN.findall(setup.iam_policy_json) if t.startswith(IMAGE_PLACEHOLDER)}
    return tuple(sorted(found, key=lambda t: (len(t), t)))


def _fill(text: str, token: Callable[[str], str], partition: str) -> str:
    """``text`` with each placeholder replaced by ``token(name)`` and a placeholder ARN's partition by
    ``partition``."""
    return _TOKEN.sub(lambda m: token(m.group(1)), _ARN_PARTITION.sub(f"arn:{partition}:", text))


def _walk(node: Any, leaf: Callable[[str], Any]) -> Any:
    """``node`` (parsed JSON) with every string passed through ``leaf``."""
    if isinstance(node, dict):
        return {k: _walk(v, leaf) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, leaf) for v in node]
    return leaf(node) if isinstance(node, str) else node


def _cfn_parameter(name: str) -> str:
    """`IMAGE_REPOSITORY_2` -> `ImageRepository2`."""
    return "".join(part.capitalize() for part in name.lower().split("_"))


_CFN_TOKENS = {ACCOUNT_PLACEHOLDER: "${AWS::AccountId}", REGION_PLACEHOLDER: "${AWS::Region}"}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the lifecycle policy text stays readable JSON)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _where(setup: AwsSetup) -> str:
    """Where to deploy, as a comment line's text."""
    region = f"region {setup.region}" if setup.region != REGION_PLACEHOLDER else "the region of your CodeBuild project"
    account = f", account {setup.account_id}" if setup.account_id else ""
    return f"Deploy in {region}{account}: the IAM policy names the repositories there."


def cloudformation(setup: AwsSetup, shared: tuple[str, ...] = ()) -> str:
    """A CloudFormation template (YAML): the cache repositories with mutable tags and their lifecycle policy, and
    the IAM policy attached to the CodeBuild service role given as a parameter."""

    def sub(text: str) -> Any:
        if not _TOKEN.search(text):
            return text
        filled = _fill(text, lambda t: _CFN_TOKENS.get(t) or "${" + _cfn_parameter(t) + "}", "${AWS::Partition}")
        return {"Fn::Sub": filled}

    parameters: dict[str, Any] = {
        "CodeBuildRoleName": {
            "Type": "String",
            "Description": "Name of the CodeBuild project's service role (the last part of its ARN)",
        }
    }
    for name in image_placeholders(setup):
        parameters[_cfn_parameter(name)] = {
            "Type": "String",
            "Default": "my-" + name.lower().replace("_", "-"),
            "Description": "An ECR repository your build pushes its image to",
        }
    resources: dict[str, Any] = {}
    for n, repo in enumerate(managed_repositories(setup, shared), 1):
        # Every build overwrites its cache tag, so the tags must stay mutable.
        resources[f"CacheRepository{n if n > 1 else ''}"] = {
            "Type": "AWS::ECR::Repository",
            "Properties": {
                "RepositoryName": repo,
                "ImageTagMutability": "MUTABLE",
                "LifecyclePolicy": {"LifecyclePolicyText": setup.lifecycle_policy_json.strip() + "\n"},
            },
        }
    resources["CacheIamPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": POLICY_NAME,
            "Roles": [{"Ref": "CodeBuildRoleName"}],
            "PolicyDocument": _walk(json.loads(setup.iam_policy_json), sub),
        },
    }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Amazon ECR layer cache for CodeBuild Docker builds (ecr-cache-bot)",
        "Parameters": parameters,
        "Resources": resources,
    }
    body = yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return f"# {_where(setup)}\n{body}"


_TF_TOKENS = {
    ACCOUNT_PLACEHOLDER: "${data.aws_caller_identity.current.account_id}",
    REGION_PLACEHOLDER: "${var.region}",
}


def _escape(text: str) -> str:
    """``text`` with HCL's template sequences escaped, so Terraform keeps it literally."""
    return text.replace("${", "$${").replace("%{", "%%{")


def _hcl_string(value: str) -> str:
    """A quoted HCL string with no template sequences."""
    return _escape(json.dumps(value))


def _heredoc(text: str, indent: str = "    ") -> str:
    """An indented heredoc (`<<-EOT`) holding ``text``; its own `${`/`%{` are escaped, placeholders are not."""
    lines = "\n".join(indent + line if line else line for line in text.strip().splitlines())
    return f"<<-EOT\n{lines}\n  EOT"


def _tf_fill(text: str) -> str:
    """One line of the IAM policy with its placeholders as Terraform references."""
    return _fill(
        _escape(text),
        lambda t: _TF_TOKENS.get(t) or "${var." + t.lower() + "}",
        "${data.aws_partition.current.partition}",
    )


def terraform(setup: AwsSetup, shared: tuple[str, ...] = ()) -> str:
    """A Terraform configuration (AWS provider): `aws_ecr_repository` and `aws_ecr_lifecycle_policy` per cache
    repository, and an `aws_iam_role_policy` on the CodeBuild service role given as a variable."""
    policy = setup.iam_policy_json
    out = [
        f"# {_where(setup)}",
        'variable "codebuild_role_name" {\n  type        = string\n'
        '  description = "Name of the CodeBuild project\'s service role (the last part of its ARN)"\n}',
    ]
    if REGION_PLACEHOLDER in _TOKEN.findall(policy):
        out.append(
            'variable "region" {\n  type        = string\n'
            '  description = "The region of your CodeBuild project and ECR repositories"\n}'
        )
    for name in image_placeholders(setup):
        default = _hcl_string("my-" + name.lower().replace("_", "-"))
        out.append(
            f'variable "{name.lower()}" {{\n  type        = string\n  default     = {default}\n'
            '  description = "An ECR repository your build pushes its image to"\n}'
        )
    if ACCOUNT_PLACEHOLDER in _TOKEN.findall(policy):
        out.append('data "aws_caller_identity" "current" {}')
    if _ARN_PARTITION.search(policy):
        out.append('data "aws_partition" "current" {}')
    for n, repo in enumerate(managed_repositories(setup, shared), 1):
        label = "cache" if n == 1 else f"cache_{n}"
        out.append(
            f'resource "aws_ecr_repository" "{label}" {{\n  name                 = {_hcl_string(repo)}\n'
            '  image_tag_mutability = "MUTABLE" # every build overwrites its cache tag\n}'
        )
        out.append(
            f'resource "aws_ecr_lifecycle_policy" "{label}" {{\n'
            f"  repository = aws_ecr_repository.{label}.name\n"
            f"  policy     = {_heredoc(_escape(setup.lifecycle_policy_json))}\n}}"
        )
    filled = "\n".join(_tf_fill(line) for line in policy.strip().splitlines())
    out.append(
        f'resource "aws_iam_role_policy" "ecr_cache" {{\n  name   = "{POLICY_NAME}"\n'
        f"  role   = var.codebuild_role_name\n  policy = {_heredoc(filled)}\n}}"
    )
    return "\n\n".join(out) + "\n"
