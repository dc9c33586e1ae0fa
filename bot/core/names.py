"""Validation of AWS names the bot writes: ECR repositories, regions, account ids, image tags."""

from __future__ import annotations

import re

# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html#ECR-CreateRepository-request-repositoryName
_ECR_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# https://docs.docker.com/reference/cli/docker/image/tag/ : tag grammar
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
)


def ecr_repository_problem(name: str) -> str | None:
    """Why ``name`` is not a valid ECR repository name, or ``None``."""
    if not 2 <= len(name) <= 256:
        return f"ECR repository name {name!r} must be 2 to 256 characters long"
    if not _ECR_REPOSITORY.match(name):
        return (
            f"ECR repository name {name!r} must be lowercase letters, digits and single '.', '_', '-' "
            "or '/' separators between them"
        )
    return None


def region_problem(region: str) -> str | None:
    """Why ``region`` is not an AWS region code, or ``None``."""
    if not _REGION.match(region):
        return f"{region!r} is not an AWS region code such as 'us-east-1'"
    return None


def account_id_problem(account: str) -> str | None:
    """Why ``account`` is not a 12-digit AWS account id, or ``None``."""
    if not _ACCOUNT_ID.match(account):
        return f"{account!r} is not a 12-digit AWS account id"
    return None


def image_tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a valid image tag, or ``None``."""
    if not _IMAGE_TAG.match(tag):
        return f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128 characters)"
    return None


def partition_for_region(region: str) -> str:
    """The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    for prefix, partition in _PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


def dns_suffix_for_region(region: str) -> str:
    """The ECR registry DNS suffix of a region (China regions use amazonaws.com.cn)."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
