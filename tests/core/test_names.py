"""AWS name validation follows the ECR and region patterns."""

import pytest

from bot.core.names import (
    account_id_problem,
    dns_suffix_for_region,
    ecr_repository_problem,
    image_tag_problem,
    partition_for_region,
    region_problem,
)


@pytest.mark.parametrize("name", ["my-app-cache", "team/app_cache", "a.b", "ab", "x" * 256])
def test_valid_repository_names(name: str) -> None:
    assert ecr_repository_problem(name) is None


@pytest.mark.parametrize("name", ["a", "My-App", "app-", "-app", "team//app", "a..b", "x" * 257, "app cache"])
def test_invalid_repository_names(name: str) -> None:
    assert ecr_repository_problem(name)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-5"])
def test_valid_regions(region: str) -> None:
    assert region_problem(region) is None


@pytest.mark.parametrize("region", ["us-east", "US-EAST-1", "useast1", "$AWS_REGION", ""])
def test_invalid_regions(region: str) -> None:
    assert region_problem(region)


def test_account_ids() -> None:
    assert account_id_problem("123456789012") is None
    assert account_id_problem("12345678901")
    assert account_id_problem("12345678901a")


def test_image_tags() -> None:
    assert image_tag_problem("cache") is None
    assert image_tag_problem("cache-api_v2.1") is None
    assert image_tag_problem("-cache")
    assert image_tag_problem("c" * 129)


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("us-east-1", "aws", "amazonaws.com"),
        ("cn-northwest-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-east-1", "aws-us-gov", "amazonaws.com"),
        ("us-iso-east-1", "aws-iso", "amazonaws.com"),
        ("us-isob-east-1", "aws-iso-b", "amazonaws.com"),
    ],
)
def test_partition_and_dns_suffix(region: str, partition: str, suffix: str) -> None:
    assert partition_for_region(region) == partition
    assert dns_suffix_for_region(region) == suffix
