"""`plan(snapshot, options) -> Plan`: the one entry point of the pure core."""

from __future__ import annotations

from bot.core import buildspec_plan, discover, dockerfile_plan, policies
from bot.core.model import AwsSetup, FileEdit, Finding, Options, Plan, RepoSnapshot


def plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """Decide every file edit and finding for one repository; idempotent on its own output."""
    if not options.enabled:
        return Plan(findings=(Finding(".github/ecr-cache.yml", "info", "disabled",
                                      "ecr-cache-bot is disabled by `enabled: false` in the repo config."),))
    found = discover.discover(snapshot, options)
    spec_part = buildspec_plan.plan_buildspecs(snapshot, options, found)
    docker_part = dockerfile_plan.plan_dockerfiles(snapshot, options, spec_part.builds, found)
    edits = list(spec_part.edits + docker_part.edits)
    findings = list(found.findings + spec_part.findings + docker_part.findings)
    setup = None
    if spec_part.builds:
        final_texts = {path: snapshot.files.get(path, "") for path in found.buildspecs}
        final_texts.update({e.path: e.content for e in spec_part.edits})
        setup = policies.aws_setup(final_texts, options, spec_part.builds)
        if spec_part.edits:
            # Policy files ride along with a buildspec change only: a repository already set up by
            # hand is not nagged for them.
            policy_edits, policy_findings = _policy_files(snapshot, setup)
            edits.extend(policy_edits)
            findings.extend(policy_findings)
    return Plan(
        edits=tuple(sorted(edits, key=lambda e: e.path)),
        findings=tuple(findings),
        builds=spec_part.builds,
        cache_tables=docker_part.cache_tables,
        setup=setup,
        buildspecs=found.buildspecs,
        dockerfiles=found.dockerfiles,
    )


def _policy_files(snapshot: RepoSnapshot, setup: AwsSetup) -> tuple[list[FileEdit], list[Finding]]:
    """Create the policy files once; a file the team already has (maybe edited) is left alone."""
    wanted = {
        policies.LIFECYCLE_PATH: (
            setup.lifecycle_policy_json,
            "ECR lifecycle policy for the cache repository: keeps the newest image of every cache tag these "
            "builds write, expires other cache tags some days after their last push and superseded "
            "(untagged) cache manifests after 1 day (never an age rule on every image, which would delete "
            "the live cache).",
        ),
        policies.IAM_PATH: (
            setup.iam_policy_json,
            "Least-privilege IAM policy for the CodeBuild role: ECR login, and push/pull only on the "
            "image and cache repositories.",
        ),
    }
    edits: list[FileEdit] = []
    findings: list[Finding] = []
    for path, (content, reason) in wanted.items():
        if path in snapshot.paths:
            existing = snapshot.files.get(path)
            if existing is not None and existing != content:
                findings.append(Finding(path, "info", "policy-file-kept",
                                        f"{path} already exists and differs from the generated policy; "
                                        "it is left as it is."))
            continue
        edits.append(FileEdit(path=path, action="create", content=content, reasons=(reason,)))
    names = {policies.ACCOUNT_PLACEHOLDER: "AWS account id", policies.REGION_PLACEHOLDER: "region",
             policies.IMAGE_PLACEHOLDER: "image repository"}
    placeholders = [p for p in names if p in setup.iam_policy_json]
    how = {policies.ACCOUNT_PLACEHOLDER: "the account id comes from `aws sts get-caller-identity`",
           policies.REGION_PLACEHOLDER: "set `AWS_REGION` in the first command",
           policies.IMAGE_PLACEHOLDER: "set `IMAGE_REPOSITORY` to the repository your build pushes to"}
    if placeholders and policies.IAM_PATH not in snapshot.paths:
        findings.append(Finding(policies.IAM_PATH, "info", "iam-placeholders",
                                f"The buildspec does not name the {' or '.join(names[p] for p in placeholders)}, "
                                f"so {policies.IAM_PATH} says {' and '.join(placeholders)} there; the one-time "
                                f"setup commands replace {'it' if len(placeholders) == 1 else 'them'} before "
                                f"attaching the policy ({'; '.join(how[p] for p in placeholders)})."))
    return edits, findings


def paths_to_read(paths: tuple[str, ...], options: Options) -> tuple[str, ...]:
    """The files whose text the planner needs, chosen from the full tree listing."""
    wanted = set(discover.paths_to_read(paths, options))
    wanted.update(p for p in (policies.LIFECYCLE_PATH, policies.IAM_PATH) if p in paths)
    return tuple(sorted(wanted))
