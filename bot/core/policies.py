"""Lifecycle-policy and IAM-policy JSON for the cache repository, and the one-time setup commands."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml

from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.analysis import command_values
from bot.core.buildspec.image_refs import ImageRef, buildspec_images, classify
from bot.core.model import AwsSetup, BuildLink, Options
from bot.core.names import (
    account_id_problem,
    ecr_repository_problem,
    partition_for_region,
    region_problem,
)

POLICY_DIR = "ecr-cache"
LIFECYCLE_PATH = f"{POLICY_DIR}/lifecycle-policy.json"
IAM_PATH = f"{POLICY_DIR}/iam-policy.json"
DEFAULT_CACHE_REPOSITORY = "ecr-build-cache"
ROLE_PLACEHOLDER = "YOUR-CODEBUILD-SERVICE-ROLE"  # left in the setup for the operator to replace
REGION_PLACEHOLDER = "REGION"
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
IMAGE_PLACEHOLDER = "IMAGE_REPOSITORY"

# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html
PUSH_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
PULL_ACTIONS = PUSH_PULL_ACTIONS[:3]
# ECR Public: login needs both actions on `*`, a push the five layer/image actions on the repository
# (https://docs.aws.amazon.com/AmazonECR/latest/public/public-repository-policy-examples.html); its ARN has no
# region (Service Authorization Reference: arn:${Partition}:ecr-public::${Account}:repository/${RepositoryName}).
PUBLIC_LOGIN_ACTIONS = ("ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken")
PUBLIC_PUSH_ACTIONS = (
    "ecr-public:BatchCheckLayerAvailability",
    "ecr-public:InitiateLayerUpload",
    "ecr-public:UploadLayerPart",
    "ecr-public:CompleteLayerUpload",
    "ecr-public:PutImage",
)
_IMAGE_REPO_VARIABLES = (
    "IMAGE_REPO_NAME",
    "ECR_REPO_NAME",
    "ECR_REPOSITORY",
    "ECR_REPOSITORY_NAME",
    "REPOSITORY_NAME",
    "REPO_NAME",
    "IMAGE_NAME",
)
_REGISTRY_LITERAL = re.compile(
    r"\b(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?"
    r"(?:/(?P<repo>[a-z0-9][a-z0-9._/-]*[a-z0-9]))?"
)


MAX_PROTECTED_TAGS = 20
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
# Per-task tags (`cache-x-$CODEBUILD_BATCH_BUILD_IDENTIFIER`) become one wildcard rule that keeps this many.
TASK_TAGS_KEPT = 100


def _keep_rule(priority: int, description: str, pattern: str, count: int) -> dict[str, object]:
    return {
        "rulePriority": priority,
        "description": description,
        "selection": {
            "tagStatus": "tagged",
            "tagPatternList": [pattern],
            "countType": "imageCountMoreThan",
            "countNumber": count,
        },
        "action": {"type": "expire"},
    }


def lifecycle_policy(cache_tag: str, days: int, live_tags: Iterable[str] = ()) -> dict[str, object]:
    """Keep every live cache tag, expire other `<tag>-*` tags ``days`` after their last push, untagged after 1 day.

    The rule descriptions are those of the reference policy (shared/examples/seed-app).
    """
    # An image matched by a higher-priority rule cannot be expired by a lower-priority rule, so the keep
    # rules shield the live tags the builds write; an `any`+age rule would delete the live cache.
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html#lifecycle_policy_evaluation
    rules = [_keep_rule(1, "Keep the live cache of the default branch", cache_tag, 1)]
    patterns = dict.fromkeys(_VARIABLE.sub("*", tag) for tag in live_tags if tag != cache_tag)
    for pattern in list(patterns)[:MAX_PROTECTED_TAGS]:
        count = TASK_TAGS_KEPT if "*" in pattern else 1
        description = f"Keep the live cache tag{'s' if count > 1 else ''} {pattern}"
        rules.append(_keep_rule(len(rules) + 1, description, pattern, count))
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"Expire branch and task caches not refreshed for {days} days",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [f"{cache_tag}-*"],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": days,
            },
            "action": {"type": "expire"},
        }
    )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": "Expire superseded cache manifests",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        }
    )
    return {"rules": rules}


_DEFAULT_SUFFIX = "-build-cache"
_NAME_SEPARATORS = re.compile(r"[._-]*([._-])[._-]*")


def default_cache_repository(repository: str | None) -> str | None:
    """`<repository name>-build-cache`, sanitised to the ECR name pattern; None when no usable name is left.

    The last part of `owner/name` is used: the CLI (a checkout's folder or its origin) and the App (the GitHub
    full name) then plan the same name for the same repository.
    """
    if not repository:
        return None
    base = repository.rstrip("/").rsplit("/", 1)[-1].lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", base)
    base = _NAME_SEPARATORS.sub(lambda m: m.group(1), base).strip("._-")
    base = base[: 256 - len(_DEFAULT_SUFFIX)].rstrip("._-")
    name = f"{base}{_DEFAULT_SUFFIX}"
    return name if base and ecr_repository_problem(name) is None else None


def _rule_rank(selection: Mapping[str, object]) -> int:
    """Keep rules first (they shield the live tags), then tagged age rules, untagged, and `any` rules last."""
    status = selection.get("tagStatus")
    if status == "any":
        return 3  # ECR requires an `any` rule to have the lowest priority
    if status == "untagged":
        return 2
    return 0 if selection.get("countType") == "imageCountMoreThan" else 1


def _rule_key(selection: Mapping[str, object]) -> tuple[object, ...]:
    if selection.get("tagStatus") == "untagged":
        return ("untagged",)
    patterns, prefixes = selection.get("tagPatternList") or [], selection.get("tagPrefixList") or []
    assert isinstance(patterns, list) and isinstance(prefixes, list)
    return (selection.get("tagStatus"), selection.get("countType"), tuple(patterns), tuple(prefixes))


def merge_lifecycle_policies(current: Mapping[str, object], ours: Mapping[str, object]) -> dict[str, object]:
    """The lifecycle policy that covers both: every rule of either, one per tag pattern, renumbered.

    For one pattern the larger count or age wins (the rule that deletes less); one untagged rule (the one already
    there); an `any` rule expiring by age is dropped, since it would delete the live cache of every repository.
    `MERGE_SCRIPT` is this function for the operator's shell; a test keeps the two equal.
    """
    merged: dict[tuple[object, ...], dict[str, object]] = {}
    for rule in [*(current.get("rules") or []), *(ours.get("rules") or [])]:  # type: ignore[misc]
        selection = rule.get("selection") or {}
        if selection.get("tagStatus") == "any" and selection.get("countType") == "sinceImagePushed":
            continue
        key = _rule_key(selection)
        kept = merged.get(key)
        if kept is None:
            merged[key] = json.loads(json.dumps(rule))
        elif key != ("untagged",):
            sel = kept["selection"]
            assert isinstance(sel, dict)
            sel["countNumber"] = max(sel.get("countNumber", 0), selection.get("countNumber", 0))
    rules = sorted(merged.values(), key=lambda r: _rule_rank(r["selection"]))  # type: ignore[arg-type]
    for priority, rule in enumerate(rules, 1):
        rule["rulePriority"] = priority
    return {"rules": rules}


# `merge_lifecycle_policies` for the operator's shell: python3 is there wherever AWS CLI v1 runs, on macOS,
# AWS CloudShell and the usual Linux images. argv: our policy file, the current policy file.
MERGE_SCRIPT = (
    "import json,sys\n"
    "o,c=(json.load(open(f)) for f in sys.argv[1:3])\n"
    "m={}\n"
    'for r in (c.get("rules") or [])+(o.get("rules") or []):\n'
    ' s=r.get("selection") or {}\n'
    ' if s.get("tagStatus")=="any" and s.get("countType")=="sinceImagePushed": continue\n'
    ' k=("untagged",) if s.get("tagStatus")=="untagged" else (s.get("tagStatus"),s.get("countType"),'
    'tuple(s.get("tagPatternList") or ()),tuple(s.get("tagPrefixList") or ()))\n'
    " if k not in m: m[k]=json.loads(json.dumps(r))\n"
    ' elif k!=("untagged",): t=m[k]["selection"]; t["countNumber"]=max(t.get("countNumber",0),'
    's.get("countNumber",0))\n'
    "def rank(s):\n"
    ' t=s.get("tagStatus")\n'
    ' return 3 if t=="any" else 2 if t=="untagged" else 0 if s.get("countType")=="imageCountMoreThan" else 1\n'
    'rs=sorted(m.values(),key=lambda r:rank(r["selection"]))\n'
    'for i,r in enumerate(rs,1): r["rulePriority"]=i\n'
    'print(json.dumps({"rules":rs},indent=2))\n'
)


def repository_arn(region: str, account: str, name: str) -> str:
    """ARN of an ECR repository, partition derived from the region."""
    partition = partition_for_region(region) if region != REGION_PLACEHOLDER else "aws"
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def public_repository_arn(account: str, name: str) -> str:
    """ARN of an ECR Public repository (ECR Public lives in the `aws` partition only, without a region)."""
    return f"arn:aws:ecr-public::{account}:repository/{name}"


def iam_policy(
    region: str,
    account: str,
    repositories: Iterable[str],
    extra_arns: Iterable[str] = (),
    pull_only_arns: Iterable[str] = (),
    public_arns: Iterable[str] = (),
    base_arns: Iterable[str] = (),
) -> dict[str, object]:
    """Least-privilege policy: ECR login on `*`, push/pull on the named repositories, pull on the builder image
    and private base images, ECR Public login and push on the public repositories a build pushes to."""
    arns = list(dict.fromkeys([*extra_arns, *(repository_arn(region, account, n) for n in repositories)]))
    statements: list[dict[str, object]] = [
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "PushPullImageAndCache",
            "Effect": "Allow",
            "Action": list(PUSH_PULL_ACTIONS),
            "Resource": arns,
        },
    ]
    pulls = [a for a in dict.fromkeys(pull_only_arns) if a not in arns]
    if pulls:
        statements.append(
            {"Sid": "PullBuilderImage", "Effect": "Allow", "Action": list(PULL_ACTIONS), "Resource": pulls}
        )
    bases = [a for a in dict.fromkeys(base_arns) if a not in arns and a not in pulls]
    if bases:
        statements.append({"Sid": "PullBaseImages", "Effect": "Allow", "Action": list(PULL_ACTIONS), "Resource": bases})
    public = list(dict.fromkeys(public_arns))
    if public:
        statements.append(
            {"Sid": "EcrPublicLogin", "Effect": "Allow", "Action": list(PUBLIC_LOGIN_ACTIONS), "Resource": "*"}
        )
        statements.append(
            {"Sid": "PushPublicImage", "Effect": "Allow", "Action": list(PUBLIC_PUSH_ACTIONS), "Resource": public}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def render_json(document: Mapping[str, object]) -> str:
    """Stable, reviewable JSON text with a final newline."""
    return json.dumps(document, indent=2) + "\n"


def render_lifecycle_json(document: Mapping[str, object]) -> str:
    """Lifecycle policy text with one line per rule field, as AWS's examples lay it out."""
    rules = document["rules"]
    assert isinstance(rules, list)
    lines = ["{", '  "rules": [']
    for index, rule in enumerate(rules):
        lines.append("    {")
        fields = list(rule.items())
        for position, (key, value) in enumerate(fields):
            comma = "," if position < len(fields) - 1 else ""
            lines.append(f"      {json.dumps(key)}: {json.dumps(value, separators=(', ', ': '))}{comma}")
        lines.append("    }" + ("," if index < len(rules) - 1 else ""))
    lines.extend(["  ]", "}"])
    return "\n".join(lines) + "\n"


def _env_variables(text: str) -> dict[str, str]:
    try:
        data = by.safe_load(text.lstrip("\ufeff"))
    except yaml.YAMLError:
        return {}
    if not isinstance(data, dict):
        return {}
    env = data.get("env")
    variables = env.get("variables") if isinstance(env, dict) else None
    if not isinstance(variables, dict):
        return {}
    return {str(k): str(v) for k, v in variables.items() if isinstance(v, str | int | float)}


def _first_valid(candidates: Iterable[str | None], problem: object) -> str | None:
    for value in candidates:
        if value and callable(problem) and problem(value) is None:
            return value
    return None


_REGISTRY_HOST = re.compile(r"(?P<account>\$\{\w+\}|\$?\w+)\.dkr\.ecr\.(?P<region>\$\{\w+\}|\$?[\w-]+)\.amazonaws\.com")
_CACHE_URI_LINE = re.compile(r"CACHE_URI=(?P<account>\S+?)\.dkr\.ecr\.(?P<region>\S+?)\.amazonaws\.com(?:\.cn)?/")


def _resolve(token: str, variables: Mapping[str, str]) -> str | None:
    """A literal, or the literal value of a `$NAME`/`${NAME}` set in env.variables."""
    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", token)
    return variables.get(match.group(1)) if match else token


@dataclass(frozen=True)
class _Named:
    """The account and region registry hosts name (None when absent or when hosts disagree), and notes."""

    region: str | None = None
    account: str | None = None
    notes: tuple[str, ...] = ()


def _named_by_hosts(hosts: list[tuple[str, str, str]], region: str | None, account: str | None) -> _Named:
    """The region/account of the registry hosts, used where nothing surer set them, and where they came from."""
    regions = {r for _, r, _ in hosts if region_problem(r) is None}
    accounts = {a for a, _, _ in hosts if account_id_problem(a) is None}
    found = _Named(
        None if region or len(regions) != 1 else regions.pop(),
        None if account or len(accounts) != 1 else accounts.pop(),
    )
    where_region = next((w for _, r, w in hosts if r == found.region), "")
    where_account = next((w for a, _, w in hosts if a == found.account), "")
    used = [
        f"region {found.region} (from the ECR registry named at {where_region})" if found.region else "",
        f"account {found.account} (from the ECR registry named at {where_account})" if found.account else "",
    ]
    if not any(used):
        return found
    # The buildspec's CACHE_URI follows the build's own account and region: these are a default to check.
    note = f"# {' and '.join(u for u in used if u)}: use your CodeBuild project's own if they differ"
    return _Named(found.region, found.account, (note,))


def aws_setup(buildspec_texts: Mapping[str, str], options: Options, builds: tuple[BuildLink, ...]) -> AwsSetup:
    """The one-time AWS setup for the cache repositories these buildspecs use."""
    regions: list[str | None] = [options.region]
    accounts: list[str | None] = [options.account_id]
    cache_names: list[str | None] = [options.cache_repository]
    image_names: list[str | None] = [options.image_repository]
    literal_images: list[re.Match[str]] = []
    # (account, region, where): registry hosts that real commands and env values name (never comments).
    hosts: list[tuple[str, str, str]] = []
    pushes: list[ImageRef] = []
    pulls: list[ImageRef] = [classify(ref) for b in builds for ref in b.base_images]
    for path in sorted({b.buildspec for b in builds} or buildspec_texts):
        text = buildspec_texts.get(path, "")
        variables = _env_variables(text)
        values = command_values(text)
        named_values = command_values(text, skip_pulls=True)
        # The cache lives where the bot's CACHE_URI line points; other registries named in the file may
        # belong to another account or region.
        for _, value in values:
            for line in _CACHE_URI_LINE.finditer(value):
                regions.append(_resolve(line.group("region"), variables))
                accounts.append(_resolve(line.group("account"), variables))
        regions.extend(variables.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_REGION"))
        accounts.extend(variables.get(k) for k in ("AWS_ACCOUNT_ID", "ACCOUNT_ID"))
        cache_names.append(variables.get("CACHE_REPO_NAME"))
        image_names.extend(variables.get(k) for k in _IMAGE_REPO_VARIABLES)
        # The builder image (`--driver-opt image=...`) is only pulled: it gets its own pull-only statement.
        builder_ref = options.builder_image or "\0"
        for number, value in named_values:
            # `123456789012.dkr.ecr.$AWS_REGION...` still names the account, `$ACCOUNT.dkr.ecr.eu-west-1...` the region.
            # Only the builder reference itself is skipped, not every host of the builder's registry.
            hosts.extend(
                (m["account"], m["region"], f"{path}:{number}")
                for m in _REGISTRY_HOST.finditer(value)
                if not value.startswith(builder_ref, m.start())
            )
        # A pulled image is only read: it never gets push rights.
        for _, value in named_values:
            literal_images.extend(
                m
                for m in _REGISTRY_LITERAL.finditer(value)
                if m.group("repo") and not value.startswith(builder_ref, m.start())
            )
        seen = buildspec_images(path, text)
        pushes.extend(seen.pushes)
        pulls.extend(seen.pulls)
        # A registry host a pushed reference expands to (`REPOSITORY_URI=...` set in the buildspec) names them too.
        hosts.extend((p.account or "", p.region or "", p.where) for p in seen.pushes if p.kind == "ecr")
    region = _first_valid(regions, region_problem)
    account = _first_valid(accounts, account_id_problem)
    named = _named_by_hosts(hosts, region, account)
    region, account = region or named.region, account or named.account
    cache_repositories = tuple(dict.fromkeys(n for n in cache_names if n and ecr_repository_problem(n) is None)) or (
        DEFAULT_CACHE_REPOSITORY,
    )
    literal_arns = {
        m.group("repo"): repository_arn(m.group("region"), m.group("account"), m.group("repo"))
        for m in literal_images
        if ecr_repository_problem(m.group("repo")) is None and m.group("repo") not in cache_repositories
    }
    region_text = region or REGION_PLACEHOLDER
    account_text = account or ACCOUNT_PLACEHOLDER
    for push in pushes:
        # `$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME` once its name is known.
        name = push.repository
        if push.kind == "ecr" and name and name not in cache_repositories and name not in literal_arns:
            literal_arns[name] = repository_arn(
                _or(push.region, region_problem, region_text), _or(push.account, account_id_problem, account_text), name
            )
    images = tuple(
        dict.fromkeys(
            [n for n in image_names if n and n not in cache_repositories and ecr_repository_problem(n) is None]
            + list(literal_arns)
        )
    )
    own_account_images = [n for n in images if n not in literal_arns]
    public = {
        f"{p.alias}/{p.repository}": public_repository_arn(account_text, p.repository)
        for p in pushes
        if p.kind == "ecr-public" and p.repository
    }
    placeholders = [] if images else _image_placeholders(pushes)
    base_arns = [
        repository_arn(
            _or(p.region, region_problem, region_text), _or(p.account, account_id_problem, account_text), p.repository
        )
        for p in pulls
        if p.kind == "ecr" and p.repository
    ]
    own_account_images += [name for name, _ in placeholders]
    live_tags = sorted({b.cache_tag for b in builds})
    lifecycle = render_lifecycle_json(lifecycle_policy(options.cache_tag, options.lifecycle_days, live_tags))
    builder = _REGISTRY_LITERAL.match(options.builder_image or "")
    builder_arns = (
        [repository_arn(builder.group("region"), builder.group("account"), builder.group("repo"))]
        if builder and builder.group("repo")
        else []
    )
    iam = render_json(
        iam_policy(
            region_text,
            account_text,
            own_account_images + list(cache_repositories),
            extra_arns=literal_arns.values(),
            pull_only_arns=builder_arns,
            public_arns=public.values(),
            base_arns=base_arns,
        )
    )
    return AwsSetup(
        region=region_text,
        cache_repository=cache_repositories[0],
        image_repositories=images + tuple(f"public.ecr.aws/{name}" for name in public),
        lifecycle_policy_json=lifecycle,
        iam_policy_json=iam,
        commands=named.notes
        + setup_commands(
            region,
            account,
            cache_repositories,
            images,
            shared=tuple(n for n in cache_repositories if n == options.cache_repository),
            placeholders=tuple(placeholders),
        ),
        cache_repositories=cache_repositories,
        account_id=account,
        files=(LIFECYCLE_PATH, IAM_PATH),
    )


def _or(value: str | None, problem: object, default: str) -> str:
    """``value`` when it is a valid literal (``problem`` says None), else ``default``."""
    return value if value and callable(problem) and problem(value) is None else default


def _image_placeholders(pushes: Iterable[ImageRef]) -> list[tuple[str, str]]:
    """(placeholder, what it stands for) for each distinct push to an ECR repository the buildspec leaves
    unnamed: a private ECR host with a variable name, or a reference whose registry is a variable."""
    seen: dict[str, list[str]] = {}
    for p in pushes:
        if p.kind == "unknown" or p.kind == "ecr" and not p.repository:
            places = seen.setdefault(p.written, [])
            if p.where not in places:
                places.append(p.where)
    out = []
    for n, (written, places) in enumerate(seen.items(), 1):
        name = IMAGE_PLACEHOLDER if n == 1 else f"{IMAGE_PLACEHOLDER}_{n}"
        where = places[0] + (f" and {len(places) - 1} more" if len(places) > 1 else "")
        out.append((name, f"the ECR repository `{written}` ({where}) pushes to, if that is in ECR"))
    return out


# Scratch files live in a private `mktemp -d` folder, never at a fixed /tmp path another user could plant first.
SETUP_DIR_LINE = "SETUP_DIR=$(mktemp -d)  # a private folder for this setup's scratch files"
_CURRENT_POLICY = "$SETUP_DIR/lifecycle-current.json"
_MERGED_POLICY = "$SETUP_DIR/lifecycle-merged.json"
_IAM_FILLED = "$SETUP_DIR/iam-policy.json"


def _merge_lifecycle_commands(name: str, region_arg: str) -> list[str]:
    """Read the repository's lifecycle policy (none yet: empty), merge ours into it, put the result."""
    return [
        f"aws ecr get-lifecycle-policy --repository-name {name} --region {region_arg} --query lifecyclePolicyText "
        f"--output text > {_CURRENT_POLICY} 2> $SETUP_DIR/lifecycle.err || {{ grep -q "
        f"LifecyclePolicyNotFoundException $SETUP_DIR/lifecycle.err && echo '{{\"rules\": []}}' > "
        f"{_CURRENT_POLICY}; }}",
        f"python3 -c '{MERGE_SCRIPT}' {LIFECYCLE_PATH} {_CURRENT_POLICY} > {_MERGED_POLICY} && "
        f"aws ecr put-lifecycle-policy --repository-name {name} --region {region_arg} "
        f"--lifecycle-policy-text file://{_MERGED_POLICY}",
    ]


def setup_commands(
    region: str | None,
    account: str | None,
    cache_repositories: tuple[str, ...],
    images: tuple[str, ...],
    shared: tuple[str, ...] = (),
    placeholders: tuple[tuple[str, str], ...] | None = None,
) -> tuple[str, ...]:
    """Shell commands an operator runs once (region and account filled in where known).

    A cache repository in ``shared`` (named in the config, so other repositories may use it too) gets its
    current lifecycle policy merged with ours instead of replaced, which would drop the others' keep rules.
    ``placeholders``: (name, what it stands for) of each image repository the operator names; None: one
    `IMAGE_REPOSITORY` when ``images`` is empty.
    """
    if placeholders is None:
        placeholders = () if images else ((IMAGE_PLACEHOLDER, ""),)
    region_arg = region or "$AWS_REGION"
    commands: list[str] = []
    if region is None:
        commands.append("AWS_REGION=us-east-1  # the region of your CodeBuild project and ECR repositories")
    for n, (name, what) in enumerate(placeholders, 1):
        value = "my-image-repository" + (f"-{n}" if n > 1 else "")
        commands.append(f"{name}={value}  # {what or 'the ECR repository your build pushes its image to'}")
    for name in cache_repositories:
        # The cache tag is overwritten by every build, so the repository must keep mutable tags.
        create = (
            f"aws ecr create-repository --repository-name {name} --region {region_arg} --image-tag-mutability MUTABLE"
        )
        if name in shared:
            # The setup of another repository sharing it may have created it (RepositoryAlreadyExistsException).
            create = (
                f"aws ecr describe-repositories --repository-names {name} --region {region_arg} "
                f"> /dev/null 2>&1 || {create}"
            )
        commands.append(create)
        if name in shared:
            commands.extend(_merge_lifecycle_commands(name, region_arg))
            continue
        commands.append(
            f"aws ecr put-lifecycle-policy --repository-name {name} --region {region_arg} "
            f"--lifecycle-policy-text file://{LIFECYCLE_PATH}"
        )
    substitutions = []
    if account is None:
        substitutions.append(
            f'-e "s/{ACCOUNT_PLACEHOLDER}/$(aws sts get-caller-identity --query Account --output text)/g"'
        )
    if region is None:
        # The ARNs say `arn:aws:` until the region is known; an operator who picks a China or GovCloud region
        # holds credentials of that partition, so the caller's own ARN names the partition to use.
        substitutions.append(
            f'-e "s/arn:aws:ecr:{REGION_PLACEHOLDER}:/arn:$(aws sts get-caller-identity --query Arn --output text'
            f' | cut -d: -f2):ecr:{REGION_PLACEHOLDER}:/g"'
        )
        substitutions.append(f'-e "s/{REGION_PLACEHOLDER}/$AWS_REGION/g"')
    # The longest name first: `s/IMAGE_REPOSITORY/` would also rewrite the start of `IMAGE_REPOSITORY_2`.
    for name, _ in sorted(placeholders, key=lambda p: (-len(p[0]), p[0])):
        substitutions.append(f'-e "s/{name}/${name}/g"')
    document = f"file://{IAM_PATH}"
    if substitutions:
        commands.append(f"sed {' '.join(substitutions)} {IAM_PATH} > {_IAM_FILLED}")
        document = f"file://{_IAM_FILLED}"
    commands.append(
        f"aws iam put-role-policy --role-name {ROLE_PLACEHOLDER} --policy-name ecr-cache-bot "
        f"--policy-document {document}"
    )
    first_use = next((n for n, c in enumerate(commands) if "$SETUP_DIR" in c), None)
    if first_use is not None:
        commands.insert(first_use, SETUP_DIR_LINE)
    return tuple(commands)
