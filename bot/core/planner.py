"""`plan(snapshot, options) -> Plan`: the one entry point of the pure core."""

from __future__ import annotations

from bot.core import buildspec_plan, discover, dockerfile_plan, policies
from bot.core.model import Finding, Options, Plan, RepoSnapshot


def plan(snapshot: RepoSnapshot, options: Options) -> Plan:
    """Decide every file edit and finding for one repository; idempotent on its own output."""
    if not options.enabled:
        return Plan(findings=(Finding(".github/ecr-cache.yml", "info", "disabled",
                                      "ecr-cache-bot is disabled by `enabled: false` in the repo config."),))
    found = discover.discover(snapshot, options)
    spec_part = buildspec_plan.plan_buildspecs(snapshot, options, found)
    docker_part = dockerfile_plan.plan_dockerfiles(snapshot, options, spec_part.builds, found)
    edits = tuple(sorted(spec_part.edits + docker_part.edits, key=lambda e: e.path))
    findings = found.findings + spec_part.findings + docker_part.findings
    setup = policies.aws_setup(snapshot, options, spec_part.builds) if spec_part.builds else None
    return Plan(
        edits=edits,
        findings=tuple(findings),
        builds=spec_part.builds,
        cache_tables=docker_part.cache_tables,
        setup=setup,
        buildspecs=found.buildspecs,
        dockerfiles=found.dockerfiles,
    )


def paths_to_read(paths: tuple[str, ...], options: Options) -> tuple[str, ...]:
    """The files whose text the planner needs, chosen from the full tree listing."""
    return discover.paths_to_read(paths, options)
