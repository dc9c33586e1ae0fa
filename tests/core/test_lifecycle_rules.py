"""ECR's documented lifecycle-policy rules (moto accepts invalid policies, so we check them ourselves)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from buildspec_support import corpus_snapshot, golden_cases, read

from bot.core import planner
from bot.core.lifecycle_rules import lifecycle_problems
from bot.core.model import Options, Plan, RepoSnapshot

REPO_ROOT = Path(__file__).resolve().parents[2]


def _rule(priority: int, status: str, count_type: str, number: int, **extra: Any) -> dict[str, Any]:
    selection: dict[str, Any] = {"tagStatus": status, "countType": count_type, "countNumber": number}
    selection.update({k: v for k, v in extra.items() if k != "action"})
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    return {
        "rulePriority": priority,
        "description": f"rule {priority}",
        "selection": selection,
        "action": extra.get("action", {"type": "expire"}),
    }


def _policy() -> dict[str, Any]:
    """A sound policy written here by hand, with every kind of rule ECR documents."""
    return {
        "rules": [
            _rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["build-cache"]),
            _rule(2, "tagged", "imageCountMoreThan", 50, tagPatternList=["build-cache-*-job*"]),
            _rule(3, "tagged", "sinceImagePushed", 30, tagPrefixList=["build-cache-"]),
            _rule(
                4,
                "tagged",
                "sinceImagePulled",
                60,
                tagPrefixList=["release-"],
                action={"type": "transition", "targetStorageClass": "archive"},
            ),
            _rule(5, "tagged", "sinceImageTransitioned", 120, tagPrefixList=["release-"], storageClass="archive"),
            _rule(6, "untagged", "sinceImagePushed", 2),
            _rule(9, "any", "imageCountMoreThan", 500),
        ]
    }


LIVE = ("build-cache", "build-cache-web-job$CODEBUILD_BATCH_BUILD_IDENTIFIER")


def test_a_sound_policy_has_no_problem_as_object_or_as_text() -> None:
    assert lifecycle_problems(_policy(), LIVE) == []
    assert lifecycle_problems(json.dumps(_policy(), indent=2), LIVE) == []


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Set `rules.N.key...` (value None deletes the key)."""

    def change(policy: dict[str, Any]) -> None:
        parts = path.split(".")
        node: Any = policy["rules"][int(parts[0])]
        for part in parts[1:-1]:
            node = node[part]
        if value is None:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value

    return change


def _add(rule: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda policy: policy["rules"].insert(0, rule)


# Each documented rule broken once: (what, change, words the problem must contain).
VIOLATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("priority not unique", _set("1.rulePriority", 1), "unique rulePriority"),
    ("priority zero", _set("1.rulePriority", 0), "`rulePriority` must be an integer"),
    ("priority a string", _set("1.rulePriority", "2"), "`rulePriority` must be an integer"),
    ("priority missing", _set("1.rulePriority", None), "`rulePriority` must be an integer"),
    ("tagStatus unknown", _set("0.selection.tagStatus", "TAGGED"), "`tagStatus` is 'TAGGED'"),
    ("tagged without a tag list", _set("0.selection.tagPatternList", None), "needs `tagPatternList` or"),
    ("tagged with both lists", _set("2.selection.tagPatternList", ["x*"]), "not both"),
    ("untagged with a tag list", _set("5.selection.tagPrefixList", ["x"]), "must omit `tagPatternList`"),
    ("any with a tag list", _set("6.selection.tagPatternList", ["x"]), "must omit `tagPatternList`"),
    ("five wildcards", _set("1.selection.tagPatternList", ["*a*b*c*d*"]), "has 5 wildcards"),
    ("empty pattern list", _set("1.selection.tagPatternList", []), "non-empty list"),
    ("empty prefix", _set("2.selection.tagPrefixList", [""]), "not a non-empty string"),
    ("countType unknown", _set("0.selection.countType", "imageCountLessThan"), "`countType` is"),
    ("countUnit with a count rule", _set("0.selection.countUnit", "days"), "`countUnit` is only allowed"),
    ("countUnit missing on an age rule", _set("2.selection.countUnit", None), '`countUnit` must be "days"'),
    ("countUnit hours", _set("2.selection.countUnit", "hours"), '`countUnit` must be "days"'),
    ("countNumber zero", _set("1.selection.countNumber", 0), "`countNumber` must be a positive integer"),
    ("countNumber a float", _set("1.selection.countNumber", 2.5), "`countNumber` must be a positive integer"),
    ("countNumber true", _set("1.selection.countNumber", True), "`countNumber` must be a positive integer"),
    ("action unknown", _set("0.action.type", "delete"), "action `type` is 'delete'"),
    ("transition without target", _set("3.action.targetStorageClass", None), '`targetStorageClass` "archive"'),
    ("transitioned without archive class", _set("4.selection.storageClass", None), '`storageClass` "archive"'),
    ("archive class on a push-age rule", _set("2.selection.storageClass", "archive"), 'must be "standard"'),
    ("archived expired too early", _set("4.selection.countNumber", 30), "before 90 days in archive"),
    ("unknown rule field", _set("0.priority", 1), "unknown field `priority`"),
    ("unknown selection field", _set("0.selection.tagPattern", ["x"]), "unknown selection field"),
    ("selection missing", _set("0.selection", None), "`selection` must be an object"),
    ("any not last", _set("5.rulePriority", 10), "must have the highest rulePriority"),
    ("two untagged rules", _add(_rule(20, "untagged", "imageCountMoreThan", 5)), "more than one rule selects untagged"),
    (
        "same tag list twice",
        _add(_rule(21, "tagged", "imageCountMoreThan", 3, tagPrefixList=["release-"])),
        "select the same tagPrefixList",
    ),
    (
        "any with an age rule",
        _set(
            "6.selection", {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 90}
        ),
        "deletes the live cache",
    ),
    (
        "live tag left to the any rule",
        _set("0.selection.tagPatternList", ["other"]),
        "'build-cache' is decided by rule 9 (any",
    ),
    (
        "live tag aged out",
        _set(
            "0.selection",
            {
                "tagStatus": "tagged",
                "tagPatternList": ["build-cache"],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
        ),
        "'build-cache' is decided by rule 1",
    ),
    (
        "live batch tag archived",
        _set("1.action", {"type": "transition", "targetStorageClass": "archive"}),
        "'build-cache-web-job$CODEBUILD_BATCH_BUILD_IDENTIFIER' is decided by rule 2",
    ),
]


@pytest.mark.parametrize("change,words", [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS])
def test_each_documented_rule_broken_once_is_reported(change: Callable[[dict[str, Any]], None], words: str) -> None:
    policy = copy.deepcopy(_policy())
    change(policy)
    policy["rules"].sort(key=lambda r: r.get("rulePriority") if isinstance(r.get("rulePriority"), int) else 0)
    problems = lifecycle_problems(policy, LIVE)
    assert any(words in p for p in problems), problems


def test_the_live_batch_rule_only_counts_when_it_comes_first() -> None:
    # The same age rule after the keep rule is harmless: an image a higher-priority rule selects is never
    # expired by a lower one.
    policy = _policy()  # rule 3 (`build-cache-` older than 30 days) also selects the live batch tags
    assert lifecycle_problems(policy, LIVE) == []
    policy["rules"][1]["rulePriority"] = 8
    assert lifecycle_problems(policy, LIVE) == [
        "the live cache tag 'build-cache-web-job$CODEBUILD_BATCH_BUILD_IDENTIFIER' is decided by rule 3 "
        "(tagged, sinceImagePushed, expire), which does not keep its newest image"
    ]


def test_policy_text_limits_and_shape() -> None:
    assert any("not JSON" in p for p in lifecycle_problems("{'rules': []}" + " " * 100))
    assert lifecycle_problems('{"rules": []}') == [
        "the policy text is 13 characters; ECR accepts 100 to 30720",
        "`rules` must be a list of one or more rules",
    ]
    assert any("ECR accepts 100 to 30720" in p for p in lifecycle_problems(json.dumps(_policy()) + " " * 30720))
    assert any(
        "at most 50" in p
        for p in lifecycle_problems(
            {"rules": [_rule(i, "tagged", "imageCountMoreThan", 1, tagPatternList=[f"t{i}"]) for i in range(1, 52)]}
        )
    )
    assert lifecycle_problems({"rules": []}) == ["`rules` must be a list of one or more rules"]
    assert lifecycle_problems({"rules": [_rule(1, "untagged", "imageCountMoreThan", 1)], "Version": "1"}) == [
        "unknown top-level field `Version`"
    ]
    assert lifecycle_problems("[]" + " " * 100) == ["the policy must be a JSON object with a `rules` list"]
    assert lifecycle_problems({"rules": ["expire"]}) == ["rule 1: a rule must be a JSON object"]


def _live_tags(plan: Plan, options: Options) -> list[str]:
    return [options.cache_tag, *(b.cache_tag for b in plan.builds)]


def _assert_sound(plan: Plan, options: Options, where: str) -> int:
    """The plan's lifecycle policy (setup and file) passes every rule; returns 1 when the plan has one."""
    if plan.setup is None:
        return 0
    live = _live_tags(plan, options)
    assert lifecycle_problems(plan.setup.lifecycle_policy_json, live) == [], where
    for edit in plan.edits:
        if edit.path.endswith("lifecycle-policy.json"):
            assert lifecycle_problems(edit.content, live) == [], (where, edit.path)
    return 1


OPTION_VARIANTS = [
    Options(),
    Options(cache_tag="build-cache", lifecycle_days=1),
    Options(cache_tag="c", lifecycle_days=365, cache_repository="shared/cache"),
]


@pytest.mark.parametrize("case", golden_cases(), ids=[c.name for c in golden_cases()])
def test_every_golden_plan_emits_a_sound_lifecycle_policy(case: Path) -> None:
    extra = case / "paths.txt"
    paths = tuple(extra.read_text().split()) if extra.exists() else ("Dockerfile",)
    snapshot = RepoSnapshot(("buildspec.yml", *paths), {"buildspec.yml": read(case / "before.yml")})
    emitted = sum(_assert_sound(planner.plan(snapshot, o), o, f"{case.name} {o}") for o in OPTION_VARIANTS)
    assert emitted == len(OPTION_VARIANTS)


def test_the_example_emits_a_sound_lifecycle_policy() -> None:
    from bot.cli.local_repo import read_snapshot

    example = read_snapshot(REPO_ROOT / "examples" / "node-service")
    assert sum(_assert_sound(planner.plan(example, o), o, "example") for o in OPTION_VARIANTS) == 3


def test_the_seed_app_emits_a_sound_lifecycle_policy(shared: Path) -> None:
    seed = shared / "examples" / "seed-app"
    snapshot = RepoSnapshot(
        ("buildspec.yml", "Dockerfile"),
        {"buildspec.yml": read(seed / "buildspec.before.yml"), "Dockerfile": read(seed / "Dockerfile.before")},
    )
    assert sum(_assert_sound(planner.plan(snapshot, o), o, "seed-app") for o in OPTION_VARIANTS) == 3


def test_every_corpus_plan_emits_a_sound_lifecycle_policy(corpus: Path) -> None:
    trees = corpus / "real" / "_trees"
    emitted = 0
    for repo in sorted(p for p in (corpus / "real").iterdir() if p.is_dir() and not p.name.startswith("_")):
        snapshot = corpus_snapshot(repo, trees)
        emitted += sum(_assert_sound(planner.plan(snapshot, o), o, repo.name) for o in OPTION_VARIANTS)
    # Most corpus repositories build with `docker build` in a buildspec, so most plans carry a policy.
    assert emitted >= 20 * len(OPTION_VARIANTS)


def test_the_planner_never_proposes_a_policy_that_breaks_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core import policies

    files = {
        "buildspec.yml": (
            "version: 0.2\nphases:\n  build:\n    commands:\n"
            "      - docker build -t 111122223333.dkr.ecr.eu-west-1.amazonaws.com/app .\n"
        ),
        "Dockerfile": "FROM python:3.12\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n",
    }
    snapshot = RepoSnapshot(tuple(files) + ("requirements.txt",), files)
    good = planner.plan(snapshot, Options())
    assert policies.LIFECYCLE_PATH in {e.path for e in good.edits}
    assert "lifecycle-policy-invalid" not in {f.code for f in good.findings}

    def any_and_age(cache_tag: str, days: int, live_tags: Any = ()) -> dict[str, object]:
        return {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "any",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": days,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }

    monkeypatch.setattr(policies, "lifecycle_policy", any_and_age)
    bad = planner.plan(snapshot, Options())
    assert policies.LIFECYCLE_PATH not in {e.path for e in bad.edits}
    (finding,) = [f for f in bad.findings if f.code == "lifecycle-policy-invalid"]
    assert finding.level == "error" and "any" in finding.message
