"""No shared cache by accident: the default cache repository is named after the GitHub repository, and a cache
repository shared on purpose gets a merged lifecycle policy, never a replaced one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from buildspec_support import plan_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli.local_repo import read_snapshot
from bot.core import planner, policies
from bot.core.buildspec.verify import valid_repo_name
from bot.core.model import Options, RepoSnapshot

NO_IMAGE_NAME = """\
version: 0.2
phases:
  build:
    commands:
      - docker build -t $IMAGE_URI .
      - docker push $IMAGE_URI
"""


def _snapshot(repository: str | None) -> RepoSnapshot:
    return RepoSnapshot(("buildspec.yml", "Dockerfile"), {"buildspec.yml": NO_IMAGE_NAME}, repository=repository)


def _cache_repo_name(repository: str | None, options: Options | None = None) -> str:
    _, part = plan_snapshot(_snapshot(repository), options)
    assert len(part.edits) == 1
    line = next(x for x in part.edits[0].content.splitlines() if "CACHE_REPO_NAME:" in x)
    return line.split('"')[1]


# --- the default name ---------------------------------------------------------------------------------------------


def test_two_repositories_of_one_account_get_two_cache_repositories() -> None:
    shop, blog = _cache_repo_name("octo/shop"), _cache_repo_name("octo/blog")
    assert shop == "shop-build-cache" and blog == "blog-build-cache"
    _, part = plan_snapshot(_snapshot("octo/shop"))
    finding = next(f for f in part.findings if f.code == "cache-repository-default")
    assert "`shop-build-cache`" in finding.message and "cache_repository" in finding.message
    assert "ecr-build-cache" not in finding.message


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("Octo/My.Service_API", "my.service_api-build-cache"),
        ("octo/--weird..name__", "weird.name-build-cache"),
        ("octo/" + "x" * 300, "x" * (256 - len("-build-cache")) + "-build-cache"),
        ("plain-folder", "plain-folder-build-cache"),
    ],
)
def test_the_name_is_sanitised_to_the_ecr_pattern(repository: str, expected: str) -> None:
    name = policies.default_cache_repository(repository)
    assert name == expected and valid_repo_name(name)


@given(st.text(min_size=0, max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_repository_name_gives_a_valid_name_or_none(repository: str) -> None:
    name = policies.default_cache_repository(repository)
    assert name is None or valid_repo_name(name)


def test_without_a_repository_name_the_old_default_stays() -> None:
    assert _cache_repo_name(None) == "ecr-build-cache"
    _, part = plan_snapshot(_snapshot(None))
    assert [f.code for f in part.findings].count("cache-repository-default") == 1
    assert policies.default_cache_repository("octo/__") is None


def test_configured_and_image_names_still_win() -> None:
    assert _cache_repo_name("octo/shop", Options(cache_repository="team-cache")) == "team-cache"
    assert _cache_repo_name("octo/shop", Options(image_repository="shop-api")) == "shop-api-cache"


def test_the_setup_and_iam_policy_use_the_derived_name() -> None:
    plan = planner.plan(_snapshot("octo/shop"), Options())
    assert plan.setup is not None and plan.setup.cache_repositories == ("shop-build-cache",)
    assert "repository/shop-build-cache" in plan.setup.iam_policy_json
    assert any("--repository-name shop-build-cache" in c for c in plan.setup.commands)


def test_the_cli_names_it_after_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "Billing-Service"
    root.mkdir()
    (root / "buildspec.yml").write_text(NO_IMAGE_NAME)
    (root / "Dockerfile").write_text("FROM python:3.12\nRUN pip install flask\nCOPY . /app\n")
    assert read_snapshot(root).repository == "Billing-Service"
    git = root / ".git"
    git.mkdir()
    (git / "config").write_text(
        '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:octo/payments.git\n'
        '\tfetch = +refs/heads/*:refs/remotes/origin/*\n[remote "fork"]\n'
        "\turl = https://github.com/me/other.git\n"
    )
    assert read_snapshot(root).repository == "octo/payments"
    (git / "config").write_text('[remote "origin"]\n\turl = https://token@github.com/octo/pay-ments\n')
    assert read_snapshot(root).repository == "octo/pay-ments"


def test_the_cli_never_follows_a_symlinked_git_config(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / ".git").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.write_text('[remote "origin"]\n\turl = https://github.com/evil/name.git\n')
    (root / ".git" / "config").symlink_to(outside)
    (root / "buildspec.yml").write_text(NO_IMAGE_NAME)
    assert read_snapshot(root).repository == "checkout"


# --- merged lifecycle policy for a cache repository shared on purpose ---------------------------------------------


def _policy(tag: str, days: int, live: tuple[str, ...] = ()) -> dict[str, object]:
    return policies.lifecycle_policy(tag, days, live)


def _keep_patterns(policy: dict[str, object]) -> set[tuple[str, ...]]:
    rules = policy["rules"]
    assert isinstance(rules, list)
    return {
        tuple(r["selection"].get("tagPatternList") or r["selection"].get("tagPrefixList") or ())
        for r in rules
        if r["selection"]["tagStatus"] == "tagged" and r["selection"]["countType"] == "imageCountMoreThan"
    }


def _check(merged: dict[str, object], *inputs: dict[str, object]) -> None:
    rules = merged["rules"]
    assert isinstance(rules, list)
    assert [r["rulePriority"] for r in rules] == list(range(1, len(rules) + 1))
    for policy in inputs:
        assert _keep_patterns(policy) <= _keep_patterns(merged)
    selections = [r["selection"] for r in rules]
    assert not any(s["tagStatus"] == "any" and s["countType"] == "sinceImagePushed" for s in selections)
    untagged = [s for s in selections if s["tagStatus"] == "untagged"]
    had_untagged = any(r["selection"]["tagStatus"] == "untagged" for p in inputs for r in p["rules"])  # type: ignore[attr-defined]
    assert len(untagged) == (1 if had_untagged else 0)
    kinds = [(s["tagStatus"], s["countType"]) for s in selections]
    keeps = [n for n, k in enumerate(kinds) if k == ("tagged", "imageCountMoreThan")]
    ages = [n for n, k in enumerate(kinds) if k == ("tagged", "sinceImagePushed")]
    # A keep rule must outrank every age rule: an image matched by a higher-priority rule cannot be expired by a
    # lower one (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html).
    assert not keeps or not ages or max(keeps) < min(ages)
    anys = [n for n, k in enumerate(kinds) if k[0] == "any"]
    assert all(n > m for n in anys for m in range(len(kinds)) if kinds[m][0] != "any")


def test_a_second_repository_adds_its_keep_rules_to_the_first() -> None:
    first = _policy("cache", 14, ("cache", "cache-web"))
    second = _policy("cache", 30, ("cache-api", "cache-worker-$CODEBUILD_BATCH_BUILD_IDENTIFIER"))
    merged = policies.merge_lifecycle_policies(first, second)
    _check(merged, first, second)
    assert {("cache",), ("cache-web",), ("cache-api",), ("cache-worker-*",)} <= _keep_patterns(merged)
    age = [
        r
        for r in merged["rules"]
        if r["selection"]["countType"] == "sinceImagePushed"  # type: ignore[attr-defined]
        and r["selection"]["tagStatus"] == "tagged"
    ]
    assert [r["selection"]["countNumber"] for r in age] == [30]  # the longer of the two windows
    assert policies.merge_lifecycle_policies(merged, second) == merged


def test_an_any_age_rule_already_there_is_dropped_and_an_any_count_rule_stays_last() -> None:
    current = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire everything old",
                "selection": {
                    "tagStatus": "any",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 30,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 5,
                "description": "keep 50",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 9,
                "description": "old untagged",
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 3},
                "action": {"type": "expire"},
            },
        ]
    }
    ours = _policy("cache", 14)
    merged = policies.merge_lifecycle_policies(current, ours)
    _check(merged, current, ours)
    assert merged["rules"][-1]["description"] == "keep 50"  # type: ignore[index]


_rule_tag = st.from_regex(r"cache(-[a-z]{1,6})?", fullmatch=True)


@st.composite
def _policies(draw: st.DrawFn) -> dict[str, object]:
    tag = draw(st.sampled_from(["cache", "main", "build-cache"]))
    live = draw(st.lists(_rule_tag, max_size=4))
    return _policy(tag, draw(st.integers(1, 365)), tuple(live))


@given(st.lists(_policies(), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_merging_the_setups_of_many_repositories_keeps_every_keep_rule(setups: list[dict[str, object]]) -> None:
    merged: dict[str, object] = {"rules": []}
    for policy in setups:
        merged = policies.merge_lifecycle_policies(merged, policy)
    _check(merged, *setups)
    assert policies.merge_lifecycle_policies(merged, setups[-1]) == merged


def test_a_shared_cache_repository_is_merged_by_the_setup_commands() -> None:
    plan = planner.plan(_snapshot("octo/shop"), Options(cache_repository="team-cache"))
    assert plan.setup is not None
    joined = "\n".join(plan.setup.commands)
    assert "aws ecr get-lifecycle-policy --repository-name team-cache" in joined
    assert "LifecyclePolicyNotFoundException" in joined
    assert "python3 -c" in joined
    assert f"--lifecycle-policy-text file://{policies.LIFECYCLE_PATH}" not in joined
    own = planner.plan(_snapshot("octo/shop"), Options())
    assert own.setup is not None
    assert f"--lifecycle-policy-text file://{policies.LIFECYCLE_PATH}" in "\n".join(own.setup.commands)


@pytest.mark.skipif(shutil.which("python3") is None, reason="the merge command runs python3")
@given(st.lists(_policies(), min_size=1, max_size=3), _policies())
@settings(max_examples=25, deadline=None)
def test_the_shell_merge_equals_the_core_merge(
    tmp_path_factory: pytest.TempPathFactory, existing: list[dict[str, object]], ours: dict[str, object]
) -> None:
    current: dict[str, object] = {"rules": []}
    for policy in existing:
        current = policies.merge_lifecycle_policies(current, policy)
    folder = tmp_path_factory.mktemp("merge")
    (folder / "ours.json").write_text(policies.render_lifecycle_json(ours))
    (folder / "current.json").write_text(json.dumps(current))
    result = subprocess.run(
        [sys.executable, "-c", policies.MERGE_SCRIPT, str(folder / "ours.json"), str(folder / "current.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == policies.merge_lifecycle_policies(current, ours)


def test_the_app_names_the_snapshot_after_the_github_repository() -> None:
    from bot.app import handlers as jobs
    from bot.github.gateway import RepoState

    class Gateway:
        def read_tree(self, repo: str, tree: str) -> dict[str, str]:
            return {"buildspec.yml": "b1", "Dockerfile": "d1"}

        def read_blobs(self, repo: str, blobs: list[str]) -> dict[str, str]:
            return {"buildspec.yml": NO_IMAGE_NAME}

    state = RepoState("octo/shop", False, False, False, "main", "oid", "tree", None, None, ())
    plan, _ = jobs.read_plan(Gateway(), state, Options())  # type: ignore[arg-type]
    assert plan.setup is not None and plan.setup.cache_repositories == ("shop-build-cache",)


_AWS_STUB = """#!/bin/sh
case "$2" in
  get-lifecycle-policy)
    case "$STUB_MODE" in
      found) cat "$STUB_DIR/current.json" ;;
      missing) echo "An error occurred (LifecyclePolicyNotFoundException) when calling the GetLifecyclePolicy \\
operation: Lifecycle policy does not exist" >&2; exit 254 ;;
      *) echo "An error occurred (AccessDeniedException) when calling the GetLifecyclePolicy operation" >&2; exit 254 ;;
    esac ;;
  put-lifecycle-policy)
    for a in "$@"; do case "$a" in file://*) cp "${a#file://}" "$STUB_DIR/put.json" ;; esac; done ;;
esac
"""


@pytest.mark.skipif(shutil.which("python3") is None or shutil.which("bash") is None, reason="needs python3 and bash")
@pytest.mark.parametrize("mode", ["found", "missing", "denied"])
def test_the_merge_commands_run_in_a_shell(tmp_path: Path, mode: str) -> None:
    plan = planner.plan(_snapshot("octo/shop"), Options(cache_repository="team-cache", region="eu-west-1"))
    assert plan.setup is not None
    commands = [c for c in plan.setup.commands if "lifecycle" in c]
    assert len(commands) == 2
    ours = json.loads(plan.setup.lifecycle_policy_json)
    current = policies.lifecycle_policy("cache", 30, ("cache-api",))
    (tmp_path / "ecr-cache").mkdir()
    (tmp_path / policies.LIFECYCLE_PATH).write_text(plan.setup.lifecycle_policy_json)
    (tmp_path / "current.json").write_text(json.dumps(current))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "aws").write_text(_AWS_STUB)
    (tmp_path / "bin" / "aws").chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "STUB_MODE": mode, "STUB_DIR": str(tmp_path)}
    script = "\n".join(commands)
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    put = tmp_path / "put.json"
    if mode == "denied":
        assert not put.exists()  # never replace a policy that could not be read
        return
    expected = policies.merge_lifecycle_policies(current if mode == "found" else {"rules": []}, ours)
    assert json.loads(put.read_text()) == expected


def test_an_invalid_configured_name_falls_back_to_this_repository_s_own_cache() -> None:
    from bot.core import planner
    from bot.core.model import Options, RepoSnapshot

    files = {
        "buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n",
        "Dockerfile": "FROM python:3.12\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n",
    }
    snapshot = RepoSnapshot((*files, "requirements.txt"), files, repository="acme/orders-api")
    plan = planner.plan(snapshot, Options(cache_repository="Bad_Name!"))
    spec = next(e.content for e in plan.edits if e.path == "buildspec.yml")
    assert 'CACHE_REPO_NAME: "orders-api-build-cache"' in spec
    (warning,) = [f for f in plan.findings if f.code == "cache-repository-invalid"]
    assert "`orders-api-build-cache`" in warning.message
