"""The one-time AWS setup the report prints, run line by line with the real AWS CLI against a moto server.

Every golden buildspec, the shipped example and the shared seed-app (plus cases of our own in other partitions)
is applied to a temporary checkout with `ecr-cache-bot apply`; the setup commands its report prints then run in
one `bash -euo pipefail`, as an operator would paste them, with only the role-name placeholder filled in. The
result is read back with boto3: the cache repository in the right region with mutable tags, the lifecycle
policy the file holds, the role's inline policy granting push/pull on that repository. The attached IAM policy
is linted with parliament. moto accepts invalid lifecycle policies, so `lifecycle_problems` checks those.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from buildspec_support import GOLDEN, corpus_snapshot, golden_cases, read

from bot.cli.local_repo import read_snapshot
from bot.cli.main import build_parser, load_options, main
from bot.core import planner, policies
from bot.core.lifecycle_rules import lifecycle_problems
from bot.core.model import Options, Plan
from bot.core.policies import ROLE_PLACEHOLDER

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = REPO_ROOT.parent / "shared" / "examples" / "seed-app"
ROLE = "codebuild-orders-service-role"
MOTO_ACCOUNT = "123456789012"  # moto's default account for plain access keys
SETUP_HEADER = "One-time AWS setup"
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html: what a build needs to push and pull.
PUSH_PULL = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
}
# parliament findings above LOW that are expected, with why. ecr:GetAuthorizationToken returns a registry login
# (community auditor CREDENTIALS_EXPOSURE, MEDIUM): the build needs it to log in, and ECR's least-privilege push
# example grants it on "*" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html).
ALLOWED_FINDINGS = {("CREDENTIALS_EXPOSURE", ("ecr:getauthorizationtoken",))}

DOCKERFILE = """FROM public.ecr.aws/docker/library/node:20-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
CMD ["node", "server.js"]
"""
PACKAGE = {
    "package.json": '{"name": "svc", "version": "1.0.0", "dependencies": {}}\n',
    "package-lock.json": '{"name": "svc", "version": "1.0.0", "lockfileVersion": 3, "packages": {}}\n',
}


def _partition(region: str) -> str:
    """ARN partition of a region: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html."""
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _own_buildspec(account: str, region: str, suffix: str) -> str:
    registry = f"{account}.dkr.ecr.{region}.{suffix}"
    return f"""version: 0.2
phases:
  pre_build:
    commands:
      - aws ecr get-login-password --region {region} | docker login --username AWS --password-stdin {registry}
  build:
    commands:
      - docker build -t {registry}/orders:latest .
  post_build:
    commands:
      - docker push {registry}/orders:latest
"""


@dataclass(frozen=True)
class Case:
    """A checkout to set up: its files, and the region the operator types if the report leaves it open."""

    name: str
    files: dict[str, str]
    chosen_region: str | None = None
    pushes_to: str | None = None  # our own cases: the region of the registry the build pushes to


def _with_dockerfiles(buildspec: str, dockerfiles: tuple[str, ...]) -> dict[str, str]:
    files = {"buildspec.yml": buildspec}
    for path in dockerfiles:
        files[path] = DOCKERFILE
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        files.update({folder + name: text for name, text in PACKAGE.items()})
        files.update(PACKAGE)
    return files


def _cases() -> list[Case]:
    cases = []
    for case in golden_cases():
        extra = case / "paths.txt"
        dockerfiles = tuple(extra.read_text().split()) if extra.exists() else ("Dockerfile",)
        cases.append(Case(f"golden-{case.name}", _with_dockerfiles(read(case / "before.yml"), dockerfiles)))
    example = REPO_ROOT / "examples" / "node-service"
    cases.append(
        Case(
            "example-node-service",
            {p.relative_to(example).as_posix(): read(p) for p in example.rglob("*") if p.is_file()},
        )
    )
    if SEED.is_dir():
        # The seed app's own repository has its npm manifests beside the Dockerfile.
        cases.append(
            Case(
                "seed-app",
                {
                    "buildspec.yml": read(SEED / "buildspec.before.yml"),
                    "Dockerfile": read(SEED / "Dockerfile.before"),
                    **PACKAGE,
                },
            )
        )
    # Our own: the registry host names the partition's region and account.
    cases.append(
        Case(
            "own-cn-north-1",
            _with_dockerfiles(_own_buildspec("210987654321", "cn-north-1", "amazonaws.com.cn"), ("Dockerfile",)),
            pushes_to="cn-north-1",
        )
    )
    cases.append(
        Case(
            "own-us-gov-west-1",
            _with_dockerfiles(_own_buildspec("210987654321", "us-gov-west-1", "amazonaws.com"), ("Dockerfile",)),
            pushes_to="us-gov-west-1",
        )
    )
    # A BuildKit image copied into the same private registry (pull-only statement, and its registry must still
    # say where the cache lives).
    builder = "builder_image: 210987654321.dkr.ecr.ap-southeast-2.amazonaws.com/buildkit:buildx-stable-1\n"
    cases.append(
        Case(
            "own-private-builder-image",
            {
                **_with_dockerfiles(_own_buildspec("210987654321", "ap-southeast-2", "amazonaws.com"), ("Dockerfile",)),
                ".github/ecr-cache.yml": builder,
            },
            pushes_to="ap-southeast-2",
        )
    )
    # A golden case whose setup leaves the region to the operator, who builds in another partition.
    open_region = GOLDEN / "no-env"
    for region in ("cn-north-1", "us-gov-west-1"):
        cases.append(
            Case(
                f"golden-no-env-operator-in-{region}",
                _with_dockerfiles(read(open_region / "before.yml"), ("Dockerfile",)),
                region,
            )
        )
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One real moto server on 127.0.0.1 (a free port) for the module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass(frozen=True)
class Account:
    """Credentials an operator holds for one account (moto switches accounts through sts:AssumeRole)."""

    id: str
    env: dict[str, str]

    def client(self, service: str, endpoint: str, region: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.env.get("AWS_SESSION_TOKEN"),
        )


def _account(endpoint: str, account_id: str | None, region: str) -> Account:
    base = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    if account_id is None or account_id == MOTO_ACCOUNT:
        return Account(MOTO_ACCOUNT, base)
    sts = Account(MOTO_ACCOUNT, base).client("sts", endpoint, region)
    role = f"arn:{_partition(region)}:iam::{account_id}:role/operator"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    return Account(
        account_id,
        {
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        },
    )


def _printed_setup(report: str) -> str:
    """The setup commands exactly as the report prints them: everything under the header (the last section)."""
    lines = report.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(SETUP_HEADER))
    return "".join(lines[start + 1 :])


def _region_of(plan: Plan, printed: str, chosen: str | None) -> tuple[str, str]:
    """The region the commands act in: the planned one, else the `AWS_REGION=` line (which the operator may edit)."""
    assert plan.setup is not None
    if plan.setup.region != policies.REGION_PLACEHOLDER:
        return printed, plan.setup.region
    assignment = re.compile(r"^(\s*)AWS_REGION=(\S+)", re.MULTILINE)
    match = assignment.search(printed)
    assert match is not None, f"the region is left open but no command sets AWS_REGION:\n{printed}"
    if chosen is None:
        return printed, match.group(2)
    return assignment.sub(lambda m: f"{m.group(1)}AWS_REGION={chosen}", printed, count=1), chosen


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[str]:
    """An IAM Action/Resource value: one string or a list of them."""
    return [value] if isinstance(value, str) else list(value)


def parliament_findings(document: dict[str, Any]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """parliament's findings (default and community auditors): (issue, severity, detail, actions)."""
    import parliament

    parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))
    policy = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    found = []
    for finding in policy.findings:
        parliament.enhance_finding(finding)
        location = finding.location if isinstance(finding.location, dict) else {}
        found.append((finding.issue, finding.severity, str(finding.detail), tuple(sorted(location.get("actions", ())))))
    return found


@dataclass
class Prepared:
    """A checkout with the pull request applied, and the setup its report printed (region filled in)."""

    case: Case
    plan: Plan
    options: Options
    checkout: Path
    printed: str
    region: str

    def key(self) -> tuple[str, ...]:
        """Everything the setup's outcome depends on: the same key, the same AWS state."""
        files = [(self.checkout / p).read_text(encoding="utf-8") for p in (policies.IAM_PATH, policies.LIFECYCLE_PATH)]
        assert self.plan.setup is not None
        return (self.printed, self.region, str(self.plan.setup.account_id), *files)


def _prepare(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Prepared:
    """Write the checkout, plan it and apply the pull request with the CLI, as an operator would."""
    checkout = tmp_path / case.name
    for path, text in case.files.items():
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).write_bytes(text.encode("utf-8"))
    options = load_options(checkout, build_parser().parse_args(["plan", str(checkout)]))
    plan = planner.plan(read_snapshot(checkout, options), options)
    assert plan.setup is not None and plan.edits, f"{case.name}: nothing planned: {plan.findings}"
    assert main(["plan", str(checkout)]) == 0
    printed = _printed_setup(capsys.readouterr().out)
    assert main(["apply", str(checkout)]) == 0  # writes the files as the merged pull request would
    capsys.readouterr()
    assert printed == "".join(f"  {c}\n" for c in plan.setup.commands)
    for path in (policies.IAM_PATH, policies.LIFECYCLE_PATH):
        assert (checkout / path).is_file(), f"{case.name}: the pull request has no {path}"
    assert printed.count(ROLE_PLACEHOLDER) == 1, printed
    printed, region = _region_of(plan, printed, case.chosen_region)
    return Prepared(case, plan, options, checkout, printed, region)


def _execute(ready: Prepared, endpoint: str, fresh: bool = True) -> Account:
    """Run the printed setup in one `bash -euo pipefail` with the real AWS CLI; the account it acted in.

    ``fresh``: start from an empty AWS (moto reset) and create the CodeBuild role; else keep what is there.
    """
    assert ready.plan.setup is not None
    if fresh:
        assert requests.post(f"{endpoint}/moto-api/reset", timeout=10).ok
    account = _account(endpoint, ready.plan.setup.account_id, ready.region)
    if fresh:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "codebuild.amazonaws.com"}}
            ],
        }
        account.client("iam", endpoint, ready.region).create_role(
            RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust)
        )
    home = ready.checkout.parent / f"home-{ready.case.name}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # The `aws` the dev extras installed beside this Python comes first (not one the machine may also have).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        account.env,
        HOME=str(home),
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION=ready.region,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
    )
    script = "set -euxo pipefail\n" + ready.printed.replace(ROLE_PLACEHOLDER, ROLE)
    ran = subprocess.run(
        ["bash", "-c", script], cwd=ready.checkout, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    traced = [line for line in ran.stderr.splitlines() if line.startswith("+")]
    assert ran.returncode == 0, (
        f"{ready.case.name}: the printed setup failed at `{traced[-1] if traced else '?'}`:\n{ran.stderr[-3000:]}"
    )
    return account


def _observe(ready: Prepared, account: Account, endpoint: str) -> dict[str, Any]:
    """What AWS holds after the setup: the cache repositories with their lifecycle policies, the role's policies."""
    assert ready.plan.setup is not None
    ecr = account.client("ecr", endpoint, ready.region)
    iam = account.client("iam", endpoint, ready.region)
    names = ready.plan.setup.cache_repositories or (ready.plan.setup.cache_repository,)
    repositories = ecr.describe_repositories(repositoryNames=list(names))["repositories"]
    lifecycle = {
        r["repositoryName"]: ecr.get_lifecycle_policy(repositoryName=r["repositoryName"])["lifecyclePolicyText"]
        for r in repositories
    }
    inline = {
        name: iam.get_role_policy(RoleName=ROLE, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    }
    return {
        "account": account.id,
        "repositories": repositories,
        "lifecycle": lifecycle,
        "inline": {k: json.loads(v) if isinstance(v, str) else v for k, v in inline.items()},
    }


# Cases whose setup and policy files are byte-identical end in the same AWS state: each runs once.
_OBSERVED: dict[tuple[str, ...], dict[str, Any]] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_printed_setup_runs_with_the_aws_cli(
    case: Case, tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ready = _prepare(case, tmp_path, capsys)
    if ready.key() not in _OBSERVED:
        _OBSERVED[ready.key()] = _observe(ready, _execute(ready, endpoint), endpoint)
    seen = _OBSERVED[ready.key()]
    plan, region, checkout = ready.plan, ready.region, ready.checkout
    assert plan.setup is not None
    assert case.pushes_to in (None, region), f"{case.name}: the cache is set up in {region}, not beside the image"
    lifecycle_text = (checkout / policies.LIFECYCLE_PATH).read_text(encoding="utf-8")
    live_tags = [ready.options.cache_tag, *(b.cache_tag for b in plan.builds)]
    assert lifecycle_problems(lifecycle_text, live_tags) == []
    names = plan.setup.cache_repositories or (plan.setup.cache_repository,)
    assert {r["repositoryName"] for r in seen["repositories"]} == set(names)
    cache_arns = set()
    for repository in seen["repositories"]:
        assert repository["imageTagMutability"] == "MUTABLE"
        assert repository["repositoryArn"] == (
            f"arn:{_partition(region)}:ecr:{region}:{seen['account']}:repository/{repository['repositoryName']}"
        )
        cache_arns.add(repository["repositoryArn"])
        assert json.loads(seen["lifecycle"][repository["repositoryName"]]) == json.loads(lifecycle_text)

    assert list(seen["inline"]) == ["ecr-cache-bot"]
    attached = seen["inline"]["ecr-cache-bot"]
    committed = (checkout / policies.IAM_PATH).read_text(encoding="utf-8")
    text = json.dumps(attached)
    placeholders = (policies.ACCOUNT_PLACEHOLDER, policies.IMAGE_PLACEHOLDER, f":{policies.REGION_PLACEHOLDER}:")
    for placeholder in placeholders:
        assert placeholder not in text, f"{case.name}: {placeholder} left in the attached policy"
    if not any(p in committed for p in placeholders):
        assert attached == json.loads(committed)
    statements = _statements(attached)
    assert any(
        s["Effect"] == "Allow"
        and _listed(s["Resource"]) == ["*"]
        and "ecr:GetAuthorizationToken" in _listed(s["Action"])
        for s in statements
    )
    for arn in cache_arns:
        assert any(
            s["Effect"] == "Allow" and set(_listed(s["Action"])) >= PUSH_PULL and arn in _listed(s["Resource"])
            for s in statements
        ), f"{case.name}: the role cannot push to {arn}: {attached}"
    for statement in statements:
        for arn in _listed(statement["Resource"]):
            if arn != "*":
                fields = arn.split(":")
                assert fields[1] == _partition(fields[3]), f"{case.name}: {arn} has the wrong partition"
    worse = [
        f for f in parliament_findings(attached) if f[1] not in ("LOW", "INFO") and (f[0], f[3]) not in ALLOWED_FINDINGS
    ]
    assert worse == [], f"{case.name}: parliament: {worse}"


def test_parliament_reports_what_this_test_forbids() -> None:
    # The linter is live: a wrong action name, a repository ARN of the wrong shape and push on "*" are findings.
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorisationToken", "Resource": "*"},
            {"Effect": "Allow", "Action": ["ecr:PutImage"], "Resource": ["arn:aws:ecr:REGION:ACCOUNT_ID:repository/x"]},
            {"Effect": "Allow", "Action": ["ecr:PutImage"], "Resource": "*"},
        ],
    }
    issues = {f[0] for f in parliament_findings(bad)}
    assert {"UNKNOWN_ACTION", "INVALID_ARN", "RESOURCE_STAR"} <= issues
    sound = json.loads(policies.render_json(policies.iam_policy("eu-west-1", "210987654321", ["orders-cache"])))
    assert [(f[0], f[3]) for f in parliament_findings(sound)] == [*ALLOWED_FINDINGS]


def test_the_aws_cli_is_the_real_one_and_reads_the_endpoint_variable(tmp_path: Path) -> None:
    # AWS_ENDPOINT_URL is how the test points the CLI at moto without touching the printed commands.
    aws = shutil.which("aws", path=str(Path(sys.executable).parent))
    assert aws is not None, "the dev extras install the AWS CLI (awscli) beside this Python"
    version = subprocess.run([aws, "--version"], capture_output=True, text=True, check=True)
    assert (version.stdout + version.stderr).startswith("aws-cli/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        HOME=str(tmp_path),
        AWS_MAX_ATTEMPTS="1",
    )
    ran = subprocess.run(
        [aws, "sts", "get-caller-identity", "--cli-connect-timeout", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode != 0 and "http://127.0.0.1:9" in ran.stderr


def test_two_repositories_sharing_a_cache_repository_keep_both_live_caches(
    tmp_path: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cache repository named in the config may be shared on purpose: the second setup must merge its rules
    # into the policy the first one put, so both repositories' live caches stay protected.
    cases = []
    for name in ("orders", "billing"):
        buildspec = _own_buildspec("210987654321", "eu-central-1", "amazonaws.com").replace("orders", name)
        config = f"cache_repository: team-build-cache\ncache_tag: {name}\n"
        files = {**_with_dockerfiles(buildspec, ("Dockerfile",)), ".github/ecr-cache.yml": config}
        cases.append(Case(f"shares-{name}", files))
    first = _prepare(cases[0], tmp_path, capsys)
    second = _prepare(cases[1], tmp_path, capsys)
    _execute(first, endpoint)
    account = _execute(second, endpoint, fresh=False)
    ecr = account.client("ecr", endpoint, second.region)
    merged = ecr.get_lifecycle_policy(repositoryName="team-build-cache")["lifecyclePolicyText"]
    live = [ready.options.cache_tag for ready in (first, second)]
    live += [b.cache_tag for ready in (first, second) for b in ready.plan.builds]
    assert lifecycle_problems(merged, live) == []
    kept = {
        p
        for r in json.loads(merged)["rules"]
        for p in r["selection"].get("tagPatternList", ())
        if r["selection"]["countType"] == "imageCountMoreThan"
    }
    assert {"orders", "billing"} <= kept


@pytest.mark.parametrize("with_manifests", [True, False])
def test_the_report_prints_a_setup_only_with_the_files_it_reads(
    with_manifests: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without npm manifests the build reuses nothing and is left alone (only .dockerignore is written): then no
    # setup may be printed, since the `file://ecr-cache/...` files it reads are not written either.
    dockerfile = DOCKERFILE.replace("COPY package.json package-lock.json ./\n", "COPY . .\n", 1)
    files = {"buildspec.yml": _own_buildspec("210987654321", "eu-west-1", "amazonaws.com"), "Dockerfile": dockerfile}
    files.update(PACKAGE if with_manifests else {})
    for path, text in files.items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert main(["apply", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    printed = _printed_setup(report) if SETUP_HEADER in report else ""
    assert bool(printed) == with_manifests
    for path in re.findall(r"file://(?!/)(\S+)", printed):
        assert (tmp_path / path).is_file(), f"the setup reads {path}, which the change does not write"


def test_every_corpus_iam_policy_passes_parliament(corpus: Path) -> None:
    # Without the CLI (fast): each corpus plan's IAM policy, placeholders filled as the printed sed fills them.
    fill = {
        policies.ACCOUNT_PLACEHOLDER: MOTO_ACCOUNT,
        policies.IMAGE_PLACEHOLDER: "my-image-repository",
        f":{policies.REGION_PLACEHOLDER}:": ":us-east-1:",
    }
    linted = 0
    for repo in sorted(p for p in (corpus / "real").iterdir() if p.is_dir() and not p.name.startswith("_")):
        plan = planner.plan(corpus_snapshot(repo, corpus / "real" / "_trees"), Options())
        if plan.setup is None:
            continue
        text = plan.setup.iam_policy_json
        for placeholder, value in fill.items():
            text = text.replace(placeholder, value)
        document = json.loads(text)
        worse = [
            f
            for f in parliament_findings(document)
            if f[1] not in ("LOW", "INFO") and (f[0], f[3]) not in ALLOWED_FINDINGS
        ]
        assert worse == [], f"{repo.name}: parliament: {worse}"
        for statement in _statements(document):
            for arn in _listed(statement["Resource"]):
                fields = arn.split(":")
                assert arn == "*" or fields[1] == _partition(fields[3]), f"{repo.name}: {arn}"
        linted += 1
    assert linted >= 30
