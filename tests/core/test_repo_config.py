"""The repo config: defaults without a file, every key validated, errors name the key."""

import pytest

from bot.core.model import Options
from bot.core.repo_config import ConfigError, options_from_mapping, parse_repo_config


def test_no_file_gives_defaults() -> None:
    assert parse_repo_config(None) == (Options(), [])
    assert parse_repo_config("") == (Options(), [])
    assert parse_repo_config("# only a comment\n") == (Options(), [])


def test_full_config_maps_every_key() -> None:
    text = """
enabled: true
region: eu-west-1
account_id: 123456789012
cache_repository: team/app-cache
image_repository: team/app
cache_tag: buildcache
mode: min
lifecycle_days: 30
buildspecs: [ci/*.yml, build/spec.yaml]
dockerfiles: docker/app.df
reorder: false
dockerignore: false
builder_image: public.ecr.aws/vend/moby/buildkit:buildx-stable-1
builder_name: team-cache
"""
    options, findings = parse_repo_config(text)
    assert findings == []
    assert options == Options(
        region="eu-west-1",
        account_id="123456789012",
        cache_repository="team/app-cache",
        image_repository="team/app",
        cache_tag="buildcache",
        mode="min",
        lifecycle_days=30,
        buildspec_paths=("ci/*.yml", "build/spec.yaml"),
        dockerfile_paths=("docker/app.df",),
        reorder=False,
        dockerignore=False,
        builder_image="public.ecr.aws/vend/moby/buildkit:buildx-stable-1",
        builder_name="team-cache",
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("region: Europe\n", "region"),
        ("cache_repository: My_Cache\n", "cache_repository"),
        ("mode: maximal\n", "mode"),
        ("lifecycle_days: 0\n", "lifecycle_days"),
        ("lifecycle_days: true\n", "lifecycle_days"),
        ("reorder: 'yes'\n", "reorder"),
        ("buildspecs: [../outside.yml]\n", "buildspecs"),
        ("cache_tag: '-bad'\n", "cache_tag"),
        ("account_id: 42\n", "account_id"),
        ("builder_image: 'two words'\n", "builder_image"),
    ],
)
def test_invalid_values_name_the_key(text: str, key: str) -> None:
    options, findings = parse_repo_config(text)
    assert options == Options()
    assert [f.level for f in findings] == ["error"]
    assert f"`{key}`" in findings[0].message


def test_unknown_key_suggests_the_close_one() -> None:
    _, findings = parse_repo_config("cache_repo: x-cache\n")
    assert findings[0].code == "config-invalid"
    assert "unknown key `cache_repo`" in findings[0].message
    assert "did you mean `cache_repository`" in findings[0].message


def test_malformed_yaml_reports_the_line() -> None:
    _, findings = parse_repo_config("region: us-east-1\nmode: [max\n")
    assert findings[0].code == "config-invalid-yaml"
    assert "line" in findings[0].message


def test_not_a_mapping() -> None:
    _, findings = parse_repo_config("- region\n")
    assert findings[0].code == "config-not-mapping"


def test_huge_config_is_refused_without_parsing() -> None:
    _, findings = parse_repo_config("a: " + "x" * 70_000)
    assert findings[0].code == "config-too-large"


def test_flags_override_file_values() -> None:
    base, _ = parse_repo_config("region: eu-west-1\ncache_tag: c1\n")
    merged = options_from_mapping({"cache_tag": "c2"}, base)
    assert merged.region == "eu-west-1" and merged.cache_tag == "c2"
    with pytest.raises(ConfigError, match="`mode`"):
        options_from_mapping({"mode": "all"}, base)


def test_organization_install_key_is_accepted_and_validated() -> None:
    options, findings = parse_repo_config("install: open-pull-requests\n")
    assert findings == [] and options.install == "open-pull-requests"
    _, findings = parse_repo_config("install: yes-please\n")
    assert "`install`" in findings[0].message
