"""Render a Plan for people (CLI text report, unified diff) and for machines (the `--json` contract)."""

from __future__ import annotations

import difflib
import json
from typing import Any

from bot.core.model import CacheTable, Plan


def unified_diff(plan: Plan) -> str:
    """One unified diff of every edit (created files diff against /dev/null)."""
    chunks: list[str] = []
    for edit in plan.edits:
        before = (edit.original or "").splitlines(keepends=True)
        after = edit.content.splitlines(keepends=True)
        fromfile = "/dev/null" if edit.action == "create" else f"a/{edit.path}"
        lines = difflib.unified_diff(before, after, fromfile=fromfile, tofile=f"b/{edit.path}")
        for line in lines:
            chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(chunks)


def _cache_table_lines(table: CacheTable) -> list[str]:
    def reruns(steps: tuple[Any, ...]) -> str:
        count = sum(1 for s in steps if s.reruns_on_source_change)
        first = next((s for s in steps if s.reruns_on_source_change), None)
        where = f"; first miss: line {first.line} `{first.instruction}` ({first.reason})" if first else ""
        return f"{count} of {len(steps)} steps re-run{where}"

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


_NO_CHANGE = {
    "disabled": "Changes: none (the bot is disabled by `enabled: false` in the repo config)",
    "nothing-found": "Changes: none (no CodeBuild Docker build found)",
    "set-up": "Changes: none (already set up, or nothing the bot can change safely)",
    "not-planned": "Changes: none (not planned: the repository is past the planning budget, see the findings)",
}


def text_report(plan: Plan) -> str:
    """A readable summary: files found, builds, changes with reasons, findings, cache table, AWS setup."""
    out: list[str] = []
    out.append(f"Buildspecs: {', '.join(plan.buildspecs) or 'none found'}")
    out.append(f"Dockerfiles: {', '.join(plan.dockerfiles) or 'none found'}")
    if plan.builds:
        out.append("Builds:")
        for b in plan.builds:
            target = b.dockerfile or "(Dockerfile not resolved)"
            cache = f"cache tag `{b.cache_tag}`" if b.cached else "left as it is, no cache (see the findings)"
            out.append(
                f"  {b.buildspec}:{b.line} [{b.phase}] {target} (context {b.context or '?'}) "
                f"-> {cache}, output {b.output}"
            )
    if plan.edits:
        out.append("Changes:")
        for edit in plan.edits:
            out.append(f"  {'A' if edit.action == 'create' else 'M'} {edit.path}")
            out.extend(f"      - {reason}" for reason in edit.reasons)
    else:
        out.append(_NO_CHANGE[plan_status(plan)])
    if plan.findings:
        out.append("Findings:")
        out.extend(f"  [{f.level}] {f.path}: {f.message} ({f.code})" for f in plan.findings)
    if plan.cache_tables:
        out.append("Dockerfile steps that re-run when only application source changes "
                   "(any file that is not a dependency manifest):")
        for table in plan.cache_tables:
            out.extend(_cache_table_lines(table))
    # The setup belongs to a buildspec change (as in the PR body): only then are the policy files it reads written.
    if plan.setup and any(e.path in plan.buildspecs for e in plan.edits):
        out.append("One-time AWS setup (run once, with credentials for the account):")
        out.extend(f"  {command}" for command in plan.setup.commands)
    return "\n".join(out) + "\n"


def json_report(plan: Plan) -> str:
    """The `--json` contract: changes and findings (plus builds and cache tables for tools)."""
    document: dict[str, Any] = {
        "status": plan_status(plan),
        "changes": [{"path": e.path, "action": e.action, "content": e.content} for e in plan.edits],
        "findings": [
            {"path": f.path, "level": f.level, "code": f.code, "message": f.message} for f in plan.findings
        ],
        "builds": [
            {
                "buildspec": b.buildspec,
                "line": b.line,
                "dockerfile": b.dockerfile,
                "context": b.context,
                "cache_tag": b.cache_tag,
                "output": b.output,
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
        "fingerprint": plan.fingerprint,
    }
    return json.dumps(document, indent=2) + "\n"


def _step(step: Any) -> dict[str, Any]:
    return {
        "stage": step.stage,
        "line": step.line,
        "instruction": step.instruction,
        "reruns_on_source_change": step.reruns_on_source_change,
        "reruns_on_manifest_change": step.reruns_on_manifest_change,
        "reason": step.reason,
    }
