"""ECR's documented lifecycle-policy rules, and the bot's own: never expire a live cache tag.

ECR checks a policy only when it is put, and test doubles such as moto accept anything, so the bot checks
its own policies against the documentation:
https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html (properties),
https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html#lp_evaluation_rules (evaluation),
https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_PutLifecyclePolicy.html (text length),
https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html (rules per policy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

# PutLifecyclePolicy: lifecyclePolicyText "Minimum length of 100. Maximum length of 30720."
MIN_TEXT_LENGTH = 100
MAX_TEXT_LENGTH = 30720
MAX_RULES = 50  # service quota "Rules per lifecycle policy", not adjustable
MAX_WILDCARDS = 4  # "a maximum limit of four wildcards (*) per string" in tagPatternList
# "Archived images have a minimum storage duration of 90 days. You cannot configure lifecycle policies that
# delete images that have been in archive for less than 90 days." (archive-image.html)
MIN_ARCHIVE_DAYS = 90
TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
AGE_COUNT_TYPES = COUNT_TYPES[1:]
ACTION_TYPES = ("expire", "transition")
_RULE_KEYS = ("rulePriority", "description", "selection", "action")
_SELECTION_KEYS = (
    "tagStatus",
    "tagPatternList",
    "tagPrefixList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
)
_ACTION_KEYS = ("type", "targetStorageClass")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")


def lifecycle_problems(document: str | Mapping[str, object], live_tags: Iterable[str] = ()) -> list[str]:
    """Why ECR would refuse this lifecycle policy, or why it could delete a live cache tag; empty when sound.

    ``document`` is the policy text as sent to ECR (its length is checked too) or the parsed policy;
    ``live_tags`` are the cache tags builds write (``$VAR`` parts stand for any value).
    """
    problems: list[str] = []
    if isinstance(document, str):
        if not MIN_TEXT_LENGTH <= len(document) <= MAX_TEXT_LENGTH:
            problems.append(
                f"the policy text is {len(document)} characters; ECR accepts {MIN_TEXT_LENGTH} to {MAX_TEXT_LENGTH}"
            )
        try:
            parsed: object = json.loads(document)
        except ValueError as exc:
            return [*problems, f"the policy is not JSON: {exc}"]
    else:
        parsed = document
    if not isinstance(parsed, Mapping):
        return [*problems, "the policy must be a JSON object with a `rules` list"]
    problems.extend(f"unknown top-level field `{key}`" for key in parsed if key != "rules")
    rules = parsed.get("rules")
    if not isinstance(rules, list) or not rules:
        return [*problems, "`rules` must be a list of one or more rules"]
    if len(rules) > MAX_RULES:
        problems.append(f"{len(rules)} rules; ECR allows at most {MAX_RULES} per policy")
    valid: list[Mapping[str, object]] = []
    for index, rule in enumerate(rules, start=1):
        rule_problems = _rule_problems(rule)
        problems.extend(f"rule {index}: {p}" for p in rule_problems)
        if not rule_problems and isinstance(rule, Mapping):
            valid.append(rule)
    problems.extend(_policy_problems(rules))
    problems.extend(_live_tag_problems(valid, live_tags))
    return problems


def _is_count(value: object) -> bool:
    """A JSON integer of 1 or more (a bool is not an integer in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _rule_problems(rule: object) -> list[str]:
    """What one rule breaks of the documented properties."""
    if not isinstance(rule, Mapping):
        return ["a rule must be a JSON object"]
    problems = [f"unknown field `{key}`" for key in rule if key not in _RULE_KEYS]
    if not _is_count(rule.get("rulePriority")):
        problems.append("`rulePriority` must be an integer of 1 or more")
    if "description" in rule and not isinstance(rule["description"], str):
        problems.append("`description` must be a string")
    selection, action = rule.get("selection"), rule.get("action")
    if not isinstance(selection, Mapping):
        problems.append("`selection` must be an object")
    else:
        problems.extend(_selection_problems(selection))
    if not isinstance(action, Mapping):
        problems.append("`action` must be an object")
    else:
        problems.extend(_action_problems(action, selection if isinstance(selection, Mapping) else {}))
    return problems


def _tag_list_problems(name: str, value: object, wildcards: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"`{name}` must be a non-empty list of strings"]
    problems = []
    for item in value:
        if not isinstance(item, str) or not item:
            problems.append(f"`{name}` holds {item!r}, not a non-empty string")
        elif wildcards and item.count("*") > MAX_WILDCARDS:
            problems.append(f"`{name}` entry {item!r} has {item.count('*')} wildcards; ECR allows {MAX_WILDCARDS}")
    return problems


def _selection_problems(selection: Mapping[str, object]) -> list[str]:
    problems = [f"unknown selection field `{key}`" for key in selection if key not in _SELECTION_KEYS]
    status = selection.get("tagStatus")
    has_patterns, has_prefixes = "tagPatternList" in selection, "tagPrefixList" in selection
    if status not in TAG_STATUSES:
        problems.append(f"`tagStatus` is {status!r}; ECR accepts {', '.join(TAG_STATUSES)}")
    elif status == "tagged":
        if has_patterns and has_prefixes:
            problems.append("a tagged rule takes `tagPatternList` or `tagPrefixList`, not both")
        elif not (has_patterns or has_prefixes):
            problems.append("a tagged rule needs `tagPatternList` or `tagPrefixList`")
    elif has_patterns or has_prefixes:
        problems.append(f"a rule with tagStatus {status!r} must omit `tagPatternList` and `tagPrefixList`")
    if has_patterns:
        problems.extend(_tag_list_problems("tagPatternList", selection["tagPatternList"], wildcards=True))
    if has_prefixes:
        problems.extend(_tag_list_problems("tagPrefixList", selection["tagPrefixList"], wildcards=False))
    count_type = selection.get("countType")
    if count_type not in COUNT_TYPES:
        problems.append(f"`countType` is {count_type!r}; ECR accepts {', '.join(COUNT_TYPES)}")
    elif count_type in AGE_COUNT_TYPES:
        if selection.get("countUnit") != "days":
            problems.append(f'`countUnit` must be "days" with countType {count_type}')
    elif "countUnit" in selection:
        problems.append(f"`countUnit` is only allowed with countType {', '.join(AGE_COUNT_TYPES)}")
    if not _is_count(selection.get("countNumber")):
        problems.append("`countNumber` must be a positive integer (0 is not accepted)")
    storage = selection.get("storageClass")
    if count_type == "sinceImageTransitioned":
        if storage != "archive":
            problems.append('countType sinceImageTransitioned needs `storageClass` "archive"')
    elif "storageClass" in selection and storage != "standard":
        problems.append(f'`storageClass` must be "standard" with countType {count_type}')
    return problems


def _action_problems(action: Mapping[str, object], selection: Mapping[str, object]) -> list[str]:
    problems = [f"unknown action field `{key}`" for key in action if key not in _ACTION_KEYS]
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        problems.append(f"action `type` is {kind!r}; ECR accepts {', '.join(ACTION_TYPES)}")
    if kind == "transition" and action.get("targetStorageClass") != "archive":
        problems.append('a transition action needs `targetStorageClass` "archive"')
    number = selection.get("countNumber")
    if (
        kind == "expire"
        and selection.get("countType") == "sinceImageTransitioned"
        and _is_count(number)
        and isinstance(number, int)
        and number < MIN_ARCHIVE_DAYS
    ):
        problems.append(f"archived images cannot be expired before {MIN_ARCHIVE_DAYS} days in archive")
    return problems


def _selection_of(rule: object) -> Mapping[str, object]:
    selection = rule.get("selection") if isinstance(rule, Mapping) else None
    return selection if isinstance(selection, Mapping) else {}


def _policy_problems(rules: list[object]) -> list[str]:
    """Rules across the policy: unique priorities and tag lists, one untagged rule, `any` evaluated last."""
    problems: list[str] = []
    priorities = [r.get("rulePriority") for r in rules if isinstance(r, Mapping) and _is_count(r.get("rulePriority"))]
    duplicates = sorted({p for p in priorities if priorities.count(p) > 1}, key=str)
    if duplicates:
        problems.append(
            f"rulePriority {', '.join(map(str, duplicates))} is used by more than one rule; "
            "each rule needs a unique rulePriority"
        )
    selections = [_selection_of(r) for r in rules]
    if sum(s.get("tagStatus") == "untagged" for s in selections) > 1:
        problems.append("more than one rule selects untagged images; ECR allows one")
    # "The set of rules must contain a unique set of tag prefixes"; a rule on archived images (storageClass
    # archive) selects other images than one on standard images, so the storage class is part of the set.
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for selection in selections:
        for key in ("tagPatternList", "tagPrefixList"):
            value = selection.get(key)
            if selection.get("tagStatus") == "tagged" and isinstance(value, list):
                signature = (str(selection.get("storageClass", "standard")), key, tuple(sorted(map(str, value))))
                if signature in seen:
                    problems.append(
                        f"two rules select the same {key} {list(signature[2])}; "
                        "the rules must select a unique set of tags"
                    )
                seen.add(signature)
    numbered = [(r.get("rulePriority"), _selection_of(r)) for r in rules if isinstance(r, Mapping)]
    top = max((p for p, _ in numbered if isinstance(p, int)), default=None)
    for priority, selection in numbered:
        if selection.get("tagStatus") != "any":
            continue
        if priority != top or sum(p == top for p, _ in numbered) > 1:
            problems.append(
                f'the rule with tagStatus "any" (rulePriority {priority}) must have the highest '
                "rulePriority of the policy and be evaluated last"
            )
        if selection.get("countType") in AGE_COUNT_TYPES:
            # The bot's own rule (DESIGN): an age rule on every image also expires the live cache tag.
            problems.append(
                f'rule {priority} expires every image by age (tagStatus "any" with '
                f"{selection.get('countType')}); that deletes the live cache"
            )
    return problems


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def _matches(selection: Mapping[str, object], tag: str) -> bool:
    """Does a rule's tag selection take an image carrying ``tag``? (every listed pattern/prefix must match)."""
    status = selection.get("tagStatus")
    if status == "any":
        return True
    if status != "tagged":
        return False
    patterns, prefixes = selection.get("tagPatternList"), selection.get("tagPrefixList")
    if isinstance(patterns, list):
        return all(_glob(str(p)).fullmatch(tag) is not None for p in patterns)
    if isinstance(prefixes, list):
        return all(tag.startswith(str(p)) for p in prefixes)
    return False


def _live_tag_problems(rules: list[Mapping[str, object]], live_tags: Iterable[str]) -> list[str]:
    """The rule that decides a live tag (the first whose selection takes it) must keep its newest image."""
    problems = []
    ordered = sorted(rules, key=lambda r: int(str(r.get("rulePriority"))))
    for live in dict.fromkeys(live_tags):
        # A `$VAR` part stands for any value the build puts there; one sample value decides the match.
        tag = _VARIABLE.sub("0", live)
        decider = next((r for r in ordered if _matches(_selection_of(r), tag)), None)
        if decider is None:
            continue
        selection, action = _selection_of(decider), decider.get("action")
        kind = action.get("type") if isinstance(action, Mapping) else None
        # Only a tagged count rule keeps the newest image of this tag; an `any` count rule keeps the newest
        # images of the whole repository, which need not include it.
        if (
            selection.get("tagStatus") != "tagged"
            or selection.get("countType") != "imageCountMoreThan"
            or kind != "expire"
        ):
            problems.append(
                f"the live cache tag {live!r} is decided by rule {decider.get('rulePriority')} "
                f"({selection.get('tagStatus')}, {selection.get('countType')}, {kind}), "
                "which does not keep its newest image"
            )
    return problems
