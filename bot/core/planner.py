"""`plan(snapshot, options) -> Plan`: the one entry point of the pure core."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from bot.core import budget, discover, policies
from bot.core.buildspec import plan as buildspec_plan
from bot.core.dockerfile import cachetable
from bot.core.dockerfile import plan as dockerfile_plan
from bot.core.findings import Code
from bot.core.lifecycle_rules import lifecycle_problems
from bot.core.model import (
    AwsSetup,
    BuildLink,
    CacheTable,
    FileEdit,
    Finding,
    Options,
    PartialPlan,
    Plan,
    RepoSnapshot,
)


def plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """Decide every file edit and finding for one repository; idempotent on its own output."""
    if not options.enabled:
        return Plan(
            findings=(
                Finding(
                    ".github/ecr-cache.yml",
                    "info",
                    Code.DISABLED,
                    "ecr-cache-bot is disabled by `enabled: false` in the repo config.",
                ),
            )
        )
    candidates = discover.candidates(snapshot.paths, options)
    over = budget.check(snapshot, options, candidates)
    if over:
        return Plan(findings=over)
    found = discover.discover(snapshot, options, candidates)
    spec_part = buildspec_plan.plan_buildspecs(snapshot, options, found)
    docker_part = dockerfile_plan.plan_dockerfiles(snapshot, options, spec_part.builds, found)
    ignores = {e.path: e.content for e in docker_part.edits if e.path.endswith(".dockerignore")}
    tables = _no_cache_tables(docker_part.cache_tables, spec_part.builds)
    costless = _costless(spec_part, tables)
    leak = bool(ignores) and any(f.code == Code.SECRET_IN_CACHE for f in spec_part.findings)
    if leak or costless:
        # A `.git` holding a token is no leak once the `.dockerignore` this same plan writes leaves it out.
        spec_part = buildspec_plan.plan_buildspecs(
            snapshot, options, found, ignores if leak else None, frozenset(costless)
        )
    edits = list(spec_part.edits + docker_part.edits)
    findings = list(found.findings + spec_part.findings + docker_part.findings)
    findings.extend(_costless_findings(spec_part, costless))
    setup = None
    if spec_part.builds:
        final_texts = {path: snapshot.files.get(path, "") for path in found.buildspecs}
        final_texts.update({e.path: e.content for e in spec_part.edits})
        setup = policies.aws_setup(final_texts, options, spec_part.builds)
        live_tags = (options.cache_tag, *(b.cache_tag for b in spec_part.builds))
        broken = lifecycle_problems(setup.lifecycle_policy_json, live_tags)
        if broken:
            # ECR accepts some invalid policies silently (and moto all of them): never propose one.
            findings.append(
                Finding(
                    policies.LIFECYCLE_PATH,
                    "error",
                    Code.LIFECYCLE_POLICY_INVALID,
                    "The lifecycle policy the bot would write breaks ECR's rules, so no policy "
                    "file is proposed: " + "; ".join(broken),
                )
            )
        elif spec_part.edits:
            # Policy files ride along with a buildspec change only: a repository already set up by
            # hand is not nagged for them.
            policy_edits, policy_findings = _policy_files(snapshot, setup)
            edits.extend(policy_edits)
            findings.extend(policy_findings)
    return Plan(
        edits=tuple(sorted(edits, key=lambda e: e.path)),
        findings=tuple(findings),
        builds=spec_part.builds,
        cache_tables=tuple(tables.values()),
        setup=setup,
        buildspecs=found.buildspecs,
        dockerfiles=found.dockerfiles,
    )


def _dockerfile(link: BuildLink) -> str | None:
    """The repository path of the Dockerfile a build reads, as the Dockerfile planner keys its tables."""
    if link.dockerfile is None or link.context is None or link.unresolved:
        return None
    norm = posixpath.normpath(link.dockerfile.lstrip("/")).removeprefix("./")
    return None if norm in (".", "") else norm


def _no_cache_tables(tables: tuple[CacheTable, ...], builds: tuple[BuildLink, ...]) -> dict[str, CacheTable]:
    """Tables by Dockerfile; one that every build reads with `--no-cache` shows every step re-running."""
    out = {t.dockerfile: t for t in tables}
    for path, table in out.items():
        links = [b for b in builds if _dockerfile(b) == path]
        if links and all(b.no_cache for b in links):
            out[path] = cachetable.all_rerun(table, f"the build runs with {links[0].no_cache}, so no step is reused")
    return out


@dataclass(frozen=True)
class _Costless:
    """A build that would gain nothing from the layer cache, and why."""

    link: BuildLink
    why: str
    advice: str


_HOST_BUILT = re.compile(
    r"^(?:ADD|COPY)\b.*(?:\.(?:jar|war|ear|zip|tar\.gz)\b|\s(?:\./)?(?:target|build|dist|out)/)", re.IGNORECASE
)


def _costless(part: PartialPlan, tables: dict[str, CacheTable]) -> dict[tuple[str, int], _Costless]:
    """Builds of edited buildspecs whose Dockerfile reuses no real step on a source-only change, before and
    after this plan (or that run with `--no-cache`): the cache would only add a builder, a login and an export."""
    edited = {e.path for e in part.edits}
    out: dict[tuple[str, int], _Costless] = {}
    seen: dict[str, int] = {}
    for link in part.builds:
        k = seen[link.buildspec] = seen.get(link.buildspec, -1) + 1
        path = _dockerfile(link)
        table = tables.get(path) if path else None
        if link.buildspec not in edited or table is None:
            continue
        if link.no_cache:
            out[(link.buildspec, k)] = _Costless(
                link,
                f"it builds with {link.no_cache}, which re-runs every step of `{table.dockerfile}` on every build",
                "remove `--no-cache` so the build can reuse its layers",
            )
        elif cachetable.reuses_nothing(table.before) and cachetable.reuses_nothing(table.after):
            out[(link.buildspec, k)] = _Costless(
                link,
                f"on a source-only change every step of "
                f"`{table.dockerfile}` that takes time re-runs, before and after "
                "this change",
                _advice(table),
            )
    return out


def _advice(table: CacheTable) -> str:
    """What would let the layer cache help this Dockerfile."""
    first = next((s for s in table.after if s.reruns_on_source_change), None)
    if first is not None and _HOST_BUILT.match(first.instruction):
        return (
            f"`{first.instruction}` copies a file built on the build host, which changes on every build; build "
            "it in an earlier stage of a multi-stage Dockerfile (dependencies first) so that the dependency "
            "download is cached"
        )
    slow = next((s for s in table.after if not s.trivial and s.instruction.startswith("RUN")), None)
    if slow is not None:
        cause = next((s for s in table.after if s.stage == slow.stage and s.reason), first)
        because = f" ({cause.reason})" if cause is not None and cause.reason else ""
        return (
            f"`{slow.instruction}` re-runs after every source change{because}; copy only the files it needs "
            "(dependency manifests, a lock file) before it and the rest of the source after it"
        )
    return (
        "the image is its base image plus files of the repository, so there is nothing slow to reuse; slow "
        "steps (package installs, downloads) placed before the first COPY of the source would be reused"
    )


def _costless_findings(part: PartialPlan, costless: dict[tuple[str, int], _Costless]) -> list[Finding]:
    skipped = part.extra.get("skipped") or frozenset()
    assert isinstance(skipped, frozenset)
    out = []
    for key, c in costless.items():
        where = f"{c.link.buildspec}:{c.link.line}"
        if key in skipped:
            text = (
                f"{where}: left as it is: {c.why}, so a BuildKit builder, an ECR login, `--load` and a cache "
                f"export would only make this build slower. What would help: {c.advice}."
            )
        else:
            text = (
                f"{where}: this build gains nothing from the layer cache ({c.why}); it still gets the cache "
                "flags because it is a `docker buildx build` next to rewritten builds and would otherwise run "
                f"on their builder without `--load`, which only makes it slower. What would help: {c.advice}."
            )
        out.append(Finding(c.link.buildspec, "info", Code.CACHE_REUSES_NOTHING, text, line=c.link.line))
    return out


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
                findings.append(
                    Finding(
                        path,
                        "info",
                        Code.POLICY_FILE_KEPT,
                        f"{path} already exists and differs from the generated policy; it is left as it is.",
                    )
                )
            continue
        edits.append(FileEdit(path=path, action="create", content=content, reasons=(reason,)))
    names = {
        policies.ACCOUNT_PLACEHOLDER: "AWS account id",
        policies.REGION_PLACEHOLDER: "region",
        policies.IMAGE_PLACEHOLDER: "image repository",
    }
    placeholders = [p for p in names if p in setup.iam_policy_json]
    how = {
        policies.ACCOUNT_PLACEHOLDER: "the account id comes from `aws sts get-caller-identity`",
        policies.REGION_PLACEHOLDER: "set `AWS_REGION` in the first command",
        policies.IMAGE_PLACEHOLDER: "set `IMAGE_REPOSITORY` to the repository your build pushes to",
    }
    if placeholders and policies.IAM_PATH not in snapshot.paths:
        findings.append(
            Finding(
                policies.IAM_PATH,
                "info",
                Code.IAM_PLACEHOLDERS,
                f"Neither the buildspec nor the repo config settles the "
                f"{' or '.join(names[p] for p in placeholders)}, "
                f"so {policies.IAM_PATH} says {' and '.join(placeholders)} there; the one-time "
                f"setup commands replace {'it' if len(placeholders) == 1 else 'them'} before "
                f"attaching the policy ({'; '.join(how[p] for p in placeholders)}).",
            )
        )
    return edits, findings


def paths_to_read(paths: tuple[str, ...], options: Options) -> tuple[str, ...]:
    """The files whose text the planner needs, chosen from the full tree listing."""
    wanted = set(discover.paths_to_read(paths, options))
    wanted.update(p for p in (policies.LIFECYCLE_PATH, policies.IAM_PATH) if p in paths)
    return tuple(sorted(wanted))
