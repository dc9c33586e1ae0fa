"""Render a Plan for people (CLI summary, report and diff) and for machines (`--json`, GitHub annotations)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bot.core.dockerfile.cachetable import unchanged
from bot.core.model import CacheTable, Finding, Plan
from bot.render import diff
from bot.render.style import PLAIN, Style

# 1: the first `--json` (status, changes, findings, builds, cache_tables, fingerprint); 2 adds schema_version,
# changes[].reasons, findings[].line, builds[].phase/cached, files, setup, and exit_code/errors for check and errors.
# Keys are only ever added, never removed or renamed.
SCHEMA_VERSION = 2


def unified_diff(plan: Plan, style: Style = PLAIN) -> str:
    """One unified diff of every edit (created files diff against /dev/null): `diff.unified_diff` of the plan."""
    return diff.unified_diff(plan.edits, style)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_NO_CHANGE = {  # why a plan changes nothing: the summary line and the report say the same
    "disabled": "disabled by `enabled: false` in the repo config",
    "nothing-found": "no CodeBuild Docker build found",
    "set-up": "already set up, or nothing the bot can change safely",
    "not-planned": "not planned: the repository is past the planning budget",
}


def summary(plan: Plan, style: Style = PLAIN) -> str:
    """The first line of `plan`: how many files change and are created, and how many warnings."""
    levels = [f.level for f in plan.findings]
    warnings = (
        style.paint(_count(levels.count("warning"), "warning"), "warning")
        if "warning" in levels
        else _count(0, "warning")
    )
    notes = [warnings]
    if "error" in levels:
        notes.append(style.paint(_count(levels.count("error"), "error"), "error"))
    notes.append(f"{levels.count('info')} info")
    if plan.edits:
        changed = sum(1 for e in plan.edits if e.action == "modify")
        created = len(plan.edits) - changed
        what = f"{_count(changed, 'file')} changed, {created} created"
    else:
        what = f"no change ({_NO_CHANGE[plan_status(plan)]})"
    return f"Summary: {what}; {', '.join(notes)}\n"


def _cache_table_lines(table: CacheTable) -> list[str]:
    def reruns(steps: tuple[Any, ...]) -> str:
        count = sum(1 for s in steps if s.reruns_on_source_change)
        first = next((s for s in steps if s.reruns_on_source_change), None)
        where = f"; first miss: line {first.line} `{first.instruction}` ({first.reason})" if first else ""
        return f"{count} of {len(steps)} steps re-run{where}"

    if unchanged(table):
        return [f"  {table.dockerfile}", f"    unchanged: {reruns(table.before)}"]
    return [
        f"  {table.dockerfile}",
        f"    before: {reruns(table.before)}",
        f"    after:  {reruns(table.after)}",
    ]


def plan_status(plan: Plan) -> str:
    """What `check` reports: `disabled`, `changes`, `nothing-found` (no CodeBuild Docker build) or `set-up`; and
    `not-planned` for a repository past the planning budget, which `check` answers with exit 2."""
    if any(f.code == "disabled" for f in plan.findings):
        return "disabled"
    if any(f.code == "plan-budget-exceeded" for f in plan.findings):
        return "not-planned"
    if plan.edits:
        return "changes"
    return "set-up" if plan.builds else "nothing-found"


def text_report(plan: Plan, style: Style = PLAIN) -> str:
    """A readable report: files found, builds, changes with reasons, findings, cache table, AWS setup."""
    out: list[str] = []

    def prose(line: str, level: str | None = None) -> None:
        wrapped = style.wrap(line)
        if level is not None:
            tag = f"[{level}]"
            wrapped[0] = wrapped[0].replace(tag, style.paint(tag, level), 1)
        out.extend(wrapped)

    prose(f"Buildspecs: {', '.join(plan.buildspecs) or 'none found'}")
    prose(f"Dockerfiles: {', '.join(plan.dockerfiles) or 'none found'}")
    if plan.builds:
        out.append("Builds:")
        for b in plan.builds:
            target = b.dockerfile or "(Dockerfile not resolved)"
            cache = f"cache tag `{b.cache_tag}`" if b.cached else "left as it is, no cache (see the findings)"
            prose(
                f"  {b.buildspec}:{b.line} [{b.phase}] {target} (context {b.context or '?'}) "
                f"-> {cache}, output {b.output}"
            )
    if plan.edits:
        out.append("Changes:")
        for edit in plan.edits:
            out.append(f"  {'A' if edit.action == 'create' else 'M'} {edit.path}")
            for reason in edit.reasons:
                prose(f"      - {reason}")
    else:
        prose(f"Changes: none ({_NO_CHANGE[plan_status(plan)]})")
    if plan.findings:
        out.append("Findings:")
        for f in plan.findings:
            prose(f"  [{f.level}] {f.path}: {f.message} ({f.code})", f.level)
    if plan.cache_tables:
        prose(
            "Dockerfile steps that re-run when only application source changes "
            "(any file that is not a dependency manifest):"
        )
        for table in plan.cache_tables:
            for line in _cache_table_lines(table):
                prose(line)
    # The setup belongs to a buildspec change (as in the PR body): only then are the policy files it reads written.
    if plan.setup and any(e.path in plan.buildspecs for e in plan.edits):
        prose("One-time AWS setup (run once, with credentials for the account):")
        # Never wrapped: each command is copied and pasted as one line.
        out.extend(f"  {command}" for command in plan.setup.commands)
    return "\n".join(out) + "\n"


def _policy(text: str) -> Any:
    """A policy document as JSON (its text when it is not JSON, which the planner never produces)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _setup(plan: Plan) -> dict[str, Any] | None:
    if plan.setup is None:
        return None
    s = plan.setup
    return {
        "region": s.region,
        "account_id": s.account_id,
        "cache_repository": s.cache_repository,
        "cache_repositories": list(s.cache_repositories),
        "image_repositories": list(s.image_repositories),
        "commands": list(s.commands),
        "lifecycle_policy": _policy(s.lifecycle_policy_json),
        "iam_policy": _policy(s.iam_policy_json),
        "files": list(s.files),
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {"path": f.path, "level": f.level, "code": f.code, "message": f.message, "line": f.line}


def json_report(plan: Plan, exit_code: int | None = None) -> str:
    """The `--json` contract: changes and findings, plus what tools need (README, "Command line").

    ``exit_code`` is given by `check --json`: the document then says which exit code the state has.
    """
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": plan_status(plan),
        "changes": [
            {"path": e.path, "action": e.action, "content": e.content, "reasons": list(e.reasons)} for e in plan.edits
        ],
        "findings": [_finding(f) for f in plan.findings],
        "files": {"buildspecs": list(plan.buildspecs), "dockerfiles": list(plan.dockerfiles)},
        "builds": [
            {
                "buildspec": b.buildspec,
                "line": b.line,
                "phase": b.phase,
                "dockerfile": b.dockerfile,
                "context": b.context,
                "cache_tag": b.cache_tag,
                "output": b.output,
                "cached": b.cached,
            }
            for b in plan.builds
        ],
        "cache_tables": [
            {
                "dockerfile": t.dockerfile,
                "before": [_step(s) for s in t.before],
                "after": [_step(s) for s in t.after],
            }
            for t in plan.cache_tables
        ],
        "setup": _setup(plan),
        "fingerprint": plan.fingerprint,
    }
    if exit_code is not None:
        document["exit_code"] = exit_code
    return json.dumps(document, indent=2) + "\n"


def error_json(errors: Iterable[str], findings: Iterable[Finding] = (), exit_code: int = 2) -> str:
    """The `--json` document of a run that stopped on an error (a config error, an unreadable checkout)."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "status": "error",
        "exit_code": exit_code,
        "errors": list(errors),
        "changes": [],
        "findings": [_finding(f) for f in findings],
    }
    return json.dumps(document, indent=2) + "\n"


# GitHub workflow commands (https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions),
# escaped as the Actions toolkit does (https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts):
# `%` first, so an escape already in the text is not read back as a newline.
_ANNOTATION = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """The message of a workflow command: `%`, CR and LF escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value of a workflow command: also `:` and `,`, which separate the properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    """One `::warning file=PATH,line=N,title=CODE::message` line (`::notice` for info findings)."""
    props = []
    if finding.path:
        props.append(f"file={escape_property(finding.path)}")
        if finding.line is not None:
            props.append(f"line={finding.line}")
    props.append(f"title={escape_property(finding.code)}")
    return f"::{_ANNOTATION[finding.level]} {','.join(props)}::{escape_data(finding.message)}"


def github_annotations(findings: Iterable[Finding]) -> str:
    """Every finding as a workflow command, one line each."""
    return "".join(annotation(f) + "\n" for f in findings)


def _step(step: Any) -> dict[str, Any]:
    return {
        "stage": step.stage,
        "line": step.line,
        "instruction": step.instruction,
        "reruns_on_source_change": step.reruns_on_source_change,
        "reruns_on_manifest_change": step.reruns_on_manifest_change,
        "reason": step.reason,
    }
