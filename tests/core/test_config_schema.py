"""The JSON Schema of `.github/ecr-cache.yml`: published, the validator's one list of keys, and the README's
example passes it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import repo_config
from bot.core.config_schema import SCHEMA
from bot.core.model import Options

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "schema" / "ecr-cache.schema.json"


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Repo config", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "README's Repo config section has no yaml block"
    return match.group(1)


def test_the_published_schema_is_the_one_the_validator_uses() -> None:
    assert json.loads(PUBLISHED.read_text()) == SCHEMA


def test_the_published_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--check-metaschema", str(PUBLISHED)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_schema_key_has_a_converter_and_no_other_key_is_accepted() -> None:
    assert set(repo_config.KNOWN_KEYS) == set(SCHEMA["properties"]) == set(repo_config._FIELDS)
    options, findings = repo_config.parse_repo_config("colour: red\n")
    assert [f.code for f in findings] == ["config-invalid"] and "unknown key `colour`" in findings[0].message


def test_the_readme_example_passes_the_schema_and_the_validator() -> None:
    example = _readme_example()
    assert "labels:" in example and "reviewers:" in example  # the example shows the pull-request settings
    jsonschema.validate(yaml.safe_load(example), SCHEMA)
    options, findings = repo_config.parse_repo_config(example)
    assert findings == [] and options.region == "us-east-1"


def test_the_readme_tells_editors_where_the_schema_is() -> None:
    text = (ROOT / "README.md").read_text()
    assert "# yaml-language-server: $schema=" in text and "schema/ecr-cache.schema.json" in text


# Values the schema rejects must be rejected by the validator (and the other way round except where the
# converter checks what a schema cannot: AWS names, relative paths).
SAMPLES: list[tuple[str, Any]] = [
    ("lifecycle_days", 0),
    ("lifecycle_days", 3651),
    ("lifecycle_days", 1.5),
    ("lifecycle_days", True),
    ("lifecycle_days", 30),
    ("mode", "max"),
    ("mode", "turbo"),
    ("enabled", "yes"),
    ("enabled", False),
    ("buildspecs", []),
    ("buildspecs", "ci/*.yml"),
    ("buildspecs", [1]),
    ("ignore_paths", []),
    ("labels", ["ok"]),
    ("labels", "ok"),
    ("labels", ["x" * 51]),
    ("labels", [""]),
    ("labels", ["a", "a"]),
    ("reviewers", ["octocat"]),
    ("reviewers", ["-octocat"]),
    ("reviewers", ["a--b"]),
    ("reviewers", "octocat"),
    ("team_reviewers", ["my-org/platform"]),
    ("team_reviewers", ["platform"]),
    ("team_reviewers", ["a b"]),
    ("assignees", [f"u{i}" for i in range(11)]),
    ("assignees", ["octocat"]),
    ("draft", True),
    ("draft", "no"),
    ("extends", False),
    ("extends", "no"),
    ("cache_errors", "fatal"),
    ("cache_errors", "loud"),
    ("account_id", 123456789012),
    ("account_id", ["123456789012"]),
    ("region", 5),
    ("builder_name", ""),
]


@pytest.mark.parametrize(("key", "value"), SAMPLES)
def test_the_validator_rejects_whatever_the_schema_rejects(key: str, value: Any) -> None:
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid({key: value})
    try:
        repo_config.options_from_mapping({key: value})
        validator_ok = True
    except repo_config.ConfigError as exc:
        validator_ok = False
        assert f"`{key}`" in str(exc)  # the message names the key
    assert validator_ok == schema_ok


def test_every_error_is_listed_with_its_line() -> None:
    text = "# settings\nregion: Europe\nmode: min\nlifecycle_days: 0\nreviewers: [-x]\n"
    options, findings = repo_config.parse_repo_config(text)
    assert options == Options()
    assert [(f.line, f.message.split(": ", 1)[1].split("`")[1]) for f in findings] == [
        (2, "region"),
        (4, "lifecycle_days"),
        (5, "reviewers"),
    ]


def test_a_yaml_error_carries_its_line() -> None:
    _, (finding,) = repo_config.parse_repo_config("region: us-east-1\nmode: [min\n")
    assert finding.code == "config-invalid-yaml" and finding.line == 3


def test_pull_request_settings_are_read() -> None:
    options, findings = repo_config.parse_repo_config(
        "labels: [dependencies, ci]\nreviewers: [octocat]\nteam_reviewers: [acme/platform]\n"
        "assignees: [hubot]\ndraft: true\n"
    )
    assert findings == []
    assert (options.labels, options.reviewers, options.team_reviewers, options.assignees, options.draft) == (
        ("dependencies", "ci"),
        ("octocat",),
        ("platform",),
        ("hubot",),
        True,
    )


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["max", "min", "fatal", "octocat", "a/b", "-x"]),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SCHEMA["properties"])), _VALUES)
def test_no_value_the_schema_rejects_gets_through(key: str, value: Any) -> None:
    if jsonschema.Draft202012Validator(SCHEMA).is_valid({key: value}):
        return
    with pytest.raises(repo_config.ConfigError) as info:
        repo_config.options_from_mapping({key: value})
    assert f"`{key}`" in str(info.value)
