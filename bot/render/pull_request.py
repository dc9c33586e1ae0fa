"""The pull request's description: its summary (the preview reply's head too) and the body, under GitHub's limit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.core import iac
from bot.core.buildspec import codebuild_images
from bot.core.dockerfile import cachetable
from bot.core.model import CacheTable, FileEdit, Finding, Options, Plan
from bot.core.policies import REGION_PLACEHOLDER, ROLE_PLACEHOLDER
from bot.core.shell.docker_build import cache_flags, cache_ref
from bot.identity import BOT_BRANCH, fingerprint_marker
from bot.render.templates import SAFE_BODY, code, env, flat

_BLANKS = re.compile(r"\n{3,}")
# Findings the setup section states itself (privileged mode and the build image as tasks, the last two as numbered
# notes of the AWS CLI setup): listing them again among the notes would say the same thing twice.
_SETUP_FINDINGS = {"privileged-mode": "", "buildx-required": "Build image", "builder-image": "Builder image"}


@dataclass(frozen=True)
class _Level:
    findings: int | None
    rows: int | None
    show_iac: bool
    reasons: int | None


_LEVELS = (
    _Level(None, None, True, None),
    _Level(100, 40, True, 10),
    _Level(30, 15, False, 5),
    _Level(10, 5, False, 2),
    _Level(0, 0, False, 1),
)
# The prefix that ties a reason to one line of one file: the same reason in several buildspecs differs only there.
_LINE_PREFIX = re.compile(r"^Line \d+ \(before this change\): ")
# Prefixes a short "why" leaves out (the file is named in the same table row).
_WHY_PREFIX = re.compile(r"^(?:Line \d+ \(before this change\)|Dockerfile(?: stage \S+)?): ")
_WHY_STOPS = (": ", "; ", " (", ". ", ", so ", " — ")
WHY_LIMIT = 100


def _flags(plan: Plan, options: Options) -> list[dict[str, str]]:
    """The flags of each cached build, as `docker_build` writes them into the buildspec."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for build in plan.builds:
        if not build.cached:
            continue  # its buildspec is left as it is: no flags, no claim that it exports a cache
        cache_from, cache_to = cache_flags(cache_ref(build.cache_tag), options.mode)
        seen.setdefault(
            (build.buildspec, build.cache_tag),
            {
                "buildspec": build.buildspec,
                "tag": build.cache_tag,
                "cache_from": cache_from,
                "cache_to": cache_to,
            },
        )
    return list(seen.values())


def _table(table: CacheTable, rows: int | None) -> dict[str, Any]:
    pairs = list(cachetable.paired(table))
    shown = pairs if rows is None else pairs[:rows]
    return {
        "dockerfile": table.dockerfile,
        "unchanged": cachetable.unchanged(table),
        "steps": len(table.before),
        "before_count": sum(1 for s in table.before if s.reruns_on_source_change),
        "after_count": sum(1 for s in table.after if s.reruns_on_source_change),
        "hidden": len(pairs) - len(shown),
        # One row per instruction (paired by instruction, not by position): an added step has no before.
        "rows": [
            {
                "step": code((a or b).instruction),  # type: ignore[union-attr]
                "before_rerun": ("yes" if b.reruns_on_source_change else "no") if b else "added",
                "after_rerun": ("yes" if a.reruns_on_source_change else "no") if a else "removed",
            }
            for b, a in shown
        ],
    }


def _finding(f: Finding) -> dict[str, str]:
    return {"level": f.level, "path": code(f.path, 200), "code": f.code, "message": flat(f.message)}


def _grouped_findings(findings: list[Finding]) -> list[dict[str, str]]:
    """The findings to list, one line for the same finding in several files (`path:line: ` prefixes aside)."""
    groups: dict[tuple[str, ...], list[tuple[Finding, str, str]]] = {}
    for f in findings:
        message = flat(f.message)
        prefix = re.match(re.escape(f.path) + r"(:\d+)?: ", message)
        rest = message[prefix.end() :] if prefix else message
        where = f.path + (prefix.group(1) or "") if prefix else f.path
        # A message that still names its own file is about that file only.
        key = (f.level, f.code, rest) if f.path not in rest else (f.level, f.code, message, f.path)
        groups.setdefault(key, []).append((f, where, rest))
    out = []
    for items in groups.values():
        first = items[0][0]
        if len(items) == 1:
            out.append({**_finding(first), "where": f"`{code(first.path, 200)}`"})
            continue
        places = ", ".join(f"`{code(where, 200)}`" for _, where, _ in items[:8])
        places += f" and {len(items) - 8} more" if len(items) > 8 else ""
        unit = "files" if len({f.path for f, _, _ in items}) == len(items) else "places"
        out.append(
            {
                "level": first.level,
                "code": first.code,
                "path": first.path,
                "where": f"in {len(items)} {unit} ({places})",
                "message": items[0][2],
            }
        )
    return out


def _first_clause(reason: str) -> str:
    """The start of a reason up to its first clause break outside a code span, at most `WHY_LIMIT` chars."""
    text = _WHY_PREFIX.sub("", flat(reason))
    in_code = False
    for i, ch in enumerate(text):
        if ch == "`":
            in_code = not in_code
        elif not in_code and i and any(text.startswith(stop, i) for stop in _WHY_STOPS):
            text = text[:i]
            break
    text = text.rstrip(".")
    if len(text) > WHY_LIMIT:
        text = text[: WHY_LIMIT - 1].rsplit(" ", 1)[0] + "…"
        if text.count("`") % 2:
            text = text.replace("`", "")
    return text[:1].upper() + text[1:]


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (outside code spans)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _why(e: FileEdit, plan: Plan, tables: dict[str, CacheTable]) -> str:
    """One line: why this file changes (the full reasons are folded below the table)."""
    cached = sum(1 for b in plan.builds if b.buildspec == e.path and b.cached)
    table = tables.get(e.path)
    if e.path in plan.buildspecs and cached:
        why = f"`docker build` becomes a cached `docker buildx build`{f' ({cached} builds)' if cached > 1 else ''}"
    elif table is not None and not cachetable.unchanged(table):
        after = sum(1 for s in table.after if s.reruns_on_source_change)
        before = sum(1 for s in table.before if s.reruns_on_source_change)
        why = (
            f"Steps reordered: a source-only change re-runs {after} of {len(table.after)} steps instead of "
            f"{before} of {len(table.before)}"
        )
    else:
        why = _first_clause(e.reasons[0]) if e.reasons else "Updated for the registry cache"
    more = len(e.reasons) - 1
    return _cell(why) + (f" (+{more} more below)" if more > 0 else "")


def _groups(plan: Plan) -> tuple[list[dict[str, str]], set[str]]:
    """Reasons said for several files, once each ("In all 4 buildspecs: ..."), and their texts."""
    owners: dict[str, list[str]] = {}
    for e in plan.edits:
        for r in e.reasons:
            paths = owners.setdefault(_LINE_PREFIX.sub("", flat(r)), [])
            if e.path not in paths:
                paths.append(e.path)
    changed_specs = [e.path for e in plan.edits if e.path in plan.buildspecs]
    groups = []
    for reason, paths in owners.items():
        if len(paths) < 2:
            continue
        if set(paths) == set(changed_specs):
            label = f"In all {len(paths)} buildspecs"
        else:
            named = ", ".join(f"`{code(p, 200)}`" for p in paths[:6])
            label = f"In {named}" + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
        groups.append({"label": label, "reason": reason})
    return groups, {g["reason"] for g in groups}


def _edit(e: FileEdit, reasons: int | None, grouped: set[str], why: str) -> dict[str, Any]:
    own = [flat(r) for r in e.reasons if _LINE_PREFIX.sub("", flat(r)) not in grouped]
    kept = own if reasons is None else own[:reasons]
    extra = len(own) - len(kept)
    out = kept + ([f"_{extra} more reasons not shown_"] if extra else [])
    return {
        "path": code(e.path, 300),
        "action": e.action,
        "reasons": out,
        "why": why,
        "grouped": len(own) < len(e.reasons),
    }


def _impact(plan: Plan) -> str:
    """One line taken from the cache tables: what a source-only change re-runs now, and before."""
    tables = plan.cache_tables
    changed = [t for t in tables if not cachetable.unchanged(t)]
    if changed:
        after = sum(sum(1 for s in t.after if s.reruns_on_source_change) for t in changed)
        before = sum(sum(1 for s in t.before if s.reruns_on_source_change) for t in changed)
        where = f"`{code(changed[0].dockerfile, 200)}`" if len(changed) == 1 else f"{len(changed)} Dockerfiles"
        return (
            f"A source-only change now re-runs {after} of {sum(len(t.after) for t in changed)} steps instead of "
            f"{before} of {sum(len(t.before) for t in changed)} ({where})."
        )
    if not any(b.cached for b in plan.builds):
        line = summary(plan)
        return line[:1].upper() + line[1:] + "."
    if tables:
        runs = sum(sum(1 for s in t.before if s.reruns_on_source_change) for t in tables)
        steps = sum(len(t.before) for t in tables)
        return (
            f"With the layer cache in Amazon ECR, a source-only change re-runs {runs} of {steps} Dockerfile "
            "steps; the others reuse cached layers."
        )
    return "Docker builds on CodeBuild reuse their unchanged layers from a layer cache in Amazon ECR."


def _where(region: str, account: str | None) -> str:
    """Where the cache repository goes: the account and region when the plan knows them."""
    place = [f"account `{account}`"] if account else []
    place += [f"region `{region}`"] if region and region != "$AWS_REGION" else []
    return "in " + ", ".join(place) if place else "in the account and region of the CodeBuild project"


def _context(plan: Plan, repo: str, options: Options) -> dict[str, Any]:
    """What the summary, the PR body and the preview comment share."""
    # Flags and the one-time setup belong to a buildspec change; a Dockerfile-only pull request has neither.
    buildspec_changed = any(e.path in plan.buildspecs for e in plan.edits)
    setup = plan.setup if buildspec_changed else None
    cache_repos = list(setup.cache_repositories or (setup.cache_repository,)) if setup else []
    region = "" if setup is None else "$AWS_REGION" if setup.region == REGION_PLACEHOLDER else setup.region
    return {
        "repo": repo,
        "buildspec_changed": buildspec_changed,
        "setup": setup,
        "cache_repos": cache_repos,
        "region": region,
        "options": options,
        # As `policies.aws_setup` decides: the repository named in the config may be shared with others.
        "shared": tuple(n for n in cache_repos if n == options.cache_repository),
        "builds": [b for b in plan.builds if b.cached],
        "uncached": sum(1 for b in plan.builds if not b.cached),
        "impact": _impact(plan),
        "where": _where(region, setup.account_id if setup else None),
        "build_image": setup is not None and any(f.code == "buildx-required" for f in plan.findings),
        "recommended_image": codebuild_images.RECOMMENDED,
    }


def _summary_of(context: dict[str, Any]) -> str:
    return _BLANKS.sub("\n\n", env.get_template("pr_summary.md.j2").render(**context)).strip() + "\n"


def render_summary(plan: Plan, repo: str, options: Options | None = None) -> str:
    """The top of the PR body: one line of impact, what the pull request does, the **Before merging** tasks."""
    return _summary_of(_context(plan, repo, options or Options()))


def render_pr_body(plan: Plan, repo: str, options: Options | None = None) -> str:
    """The PR description: impact, tasks before merging, changes, then folded details; under 65,536 chars."""
    options = options or Options()
    shared = _context(plan, repo, options)
    setup = shared["setup"]
    setup_codes = _SETUP_FINDINGS if setup is not None else {}
    setup_notes: dict[str, tuple[str, str]] = {}
    for f in plan.findings:
        if setup_codes.get(f.code):
            setup_notes.setdefault(f.code, (setup_codes[f.code], flat(f.message)))
    kept = [f for f in plan.findings if f.code not in setup_codes]
    ordered = sorted(kept, key=lambda f: {"error": 0, "warning": 1, "info": 2}.get(f.level, 3))
    visible = [f for f in ordered if f.level != "info"]
    folded = [f for f in ordered if f.level == "info"]
    tags = list(dict.fromkeys(b.cache_tag for b in plan.builds)) or [options.cache_tag]
    head = _summary_of(shared)
    tables = {t.dockerfile: t for t in plan.cache_tables}
    groups, grouped = _groups(plan)
    whys = [_why(e, plan, tables) for e in plan.edits]
    iac_shared = shared["shared"]
    body = ""
    for level in _LEVELS:
        warnings = visible if level.findings is None else visible[: level.findings]
        room = None if level.findings is None else max(0, level.findings - len(warnings))
        notes = folded if room is None else folded[:room]
        view = {
            "edits": [_edit(e, level.reasons, grouped, why) for e, why in zip(plan.edits, whys, strict=True)],
            "setup": setup,
        }
        body = env.get_template("pr_body.md.j2").render(
            marker=fingerprint_marker(plan.fingerprint),
            head=head,
            plan=view,
            repo=repo,
            options=options,
            flags=_flags(plan, options) if shared["buildspec_changed"] else [],
            branch=BOT_BRANCH,
            region=shared["region"],
            cache_repos=shared["cache_repos"],
            tags=tags,
            setup_notes=list(setup_notes.values()),
            groups=groups if level.reasons is None or level.reasons > 1 else [],
            role_placeholder=setup is not None and any(ROLE_PLACEHOLDER in c for c in setup.commands),
            images_without_buildx=", ".join(f"`{i.short}`" for i in codebuild_images.IMAGES if not i.buildx),
            recommended_image=codebuild_images.RECOMMENDED,
            show_iac=level.show_iac and setup is not None,
            cloudformation=iac.cloudformation(setup, iac_shared) if setup is not None and level.show_iac else "",
            terraform=iac.terraform(setup, iac_shared) if setup is not None and level.show_iac else "",
            iac_left_out=[r for r in shared["cache_repos"] if r in iac_shared],
            tables=[_table(t, level.rows) for t in plan.cache_tables],
            warnings=_grouped_findings(warnings),
            hidden_warnings=len(visible) - len(warnings),
            notes=_grouped_findings(notes),
            hidden_notes=len(folded) - len(notes),
            note_count=len(folded),
        )
        body = _BLANKS.sub("\n\n", body)
        if len(body) <= SAFE_BODY:
            return body
    note = (
        "\n\n_This description was cut to fit GitHub's 65,536-character limit: comment `/ecr-cache preview` "
        "on this pull request, or run `ecr-cache-bot plan` on a checkout, for the rest._\n"
    )
    cut = body[: SAFE_BODY - len(note)].rsplit("\n", 1)[0]
    # Close what the cut left open, so the note is not swallowed by a code block or a fold.
    if cut.count("```") % 2:
        cut += "\n```"
    cut += "\n</details>" * max(0, cut.count("<details>") - cut.count("</details>"))
    return cut + note


def summary(plan: Plan) -> str:
    """One line: which files the plan changes."""
    paths = ", ".join(f"`{e.path}`" for e in plan.edits[:6])
    more = f" and {len(plan.edits) - 6} more" if len(plan.edits) > 6 else ""
    return f"{len(plan.edits)} file{'s' if len(plan.edits) != 1 else ''} changed ({paths}{more})"
