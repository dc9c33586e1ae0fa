"""Render the PR body, the bot's comments and the setup page from the Jinja2 templates in `templates/`.

The folder ships inside the package as `bot.templates` (pyproject.toml maps it), so the templates are found
through the installed package: in a wheel, a container image and an editable checkout alike."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from bot import manifest
from bot.core import cachetable, codebuild_images
from bot.core.model import CacheTable, FileEdit, Finding, Options, Plan
from bot.core.policies import REGION_PLACEHOLDER
from bot.events import BOT_BRANCH

TEMPLATE_PACKAGE = "bot.templates"
TEMPLATES = ("pr_body.md.j2", "comment.md.j2", "setup.html.j2")  # the ones rendered by name here
MAX_BODY = 65_536  # GitHub rejects longer PR bodies and comments
SAFE_BODY = MAX_BODY - 1_024
ROLE_PLACEHOLDER = "YOUR-CODEBUILD-SERVICE-ROLE"  # what `policies.setup_commands` leaves for the operator
PR_TITLE = "Cache Docker layers of CodeBuild builds in Amazon ECR"
_BLANKS = re.compile(r"\n{3,}")
# Findings the setup section states itself (privileged mode always; these two as numbered steps): listing
# them again under "What the reviewer must know" would say the same thing twice.
_SETUP_FINDINGS = {"privileged-mode": "", "buildx-required": "Build image", "builder-image": "Builder image"}
_MARKER = re.compile(r"<!-- ecr-cache-bot:v1 fingerprint=([0-9a-f]{64}) -->")


class _PackageTemplates(BaseLoader):
    """Templates of an installed package, looked up on first use: a broken install fails the render (and
    `/readyz` says why) instead of the import of every module that renders."""

    def __init__(self, package: str) -> None:
        self.package = package
        self._loader: PackageLoader | None = None

    def _found(self) -> PackageLoader:
        if self._loader is None:
            self._loader = PackageLoader(self.package, ".")
        return self._loader

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        """The template's text, file name and up-to-date check (jinja2's `PackageLoader`)."""
        return self._found().get_source(environment, template)

    def list_templates(self) -> list[str]:
        """Every `.j2` file of the package."""
        return [name for name in self._found().list_templates() if name.endswith(".j2")]


_env = Environment(
    loader=_PackageTemplates(TEMPLATE_PACKAGE),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=False,
)


def settings_rows(options: Options) -> list[dict[str, str]]:
    """One row per key a config file set: the key, its effective value, and the file it came from."""
    from bot.core.repo_config import field_of

    rows = []
    for key, source in options.sources:
        value = getattr(options, field_of(key), None) if field_of(key) else None
        shown = ", ".join(value) if isinstance(value, tuple) else str(value).lower() if isinstance(
            value, bool) else str(value)
        rows.append({"key": key, "value": _code(shown or "(none)", 120), "source": _code(source, 200)})
    return rows


_env.globals["settings_rows"] = settings_rows


def check_templates() -> str | None:
    """None when every template loads and compiles, else why not (what `/readyz` reports)."""
    try:
        for name in sorted(set(TEMPLATES) | set(_env.list_templates())):
            _env.get_template(name)
    except Exception as exc:  # any failure here means rendering fails: report it, never raise from a probe
        return f"{type(exc).__name__}: {exc}"
    return None


def fingerprint_marker(fingerprint: str) -> str:
    """Hidden marker that ties a PR body to the plan it was made from."""
    return f"<!-- ecr-cache-bot:v1 fingerprint={fingerprint} -->"


def parse_fingerprint(body: str | None) -> str | None:
    """The plan fingerprint recorded in a bot PR body, if any."""
    match = _MARKER.search(body or "")
    return match.group(1) if match else None


def _code(text: str, limit: int = 100) -> str:
    """Text safe inside a markdown table cell code span."""
    flat = " ".join(text.split()).replace("`", "'").replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class _Level:
    findings: int | None
    rows: int | None
    show_json: bool
    reasons: int | None


_LEVELS = (
    _Level(None, None, True, None),
    _Level(100, 40, True, 10),
    _Level(30, 15, False, 5),
    _Level(10, 5, False, 2),
    _Level(0, 0, False, 1),
)


def _flags(plan: Plan, options: Options) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for build in plan.builds:
        if not build.cached:
            continue  # its buildspec is left as it is: no flags, no claim that it exports a cache
        ref = f"type=registry,ref=$CACHE_URI:{build.cache_tag}"
        seen.setdefault((build.buildspec, build.cache_tag), {
            "buildspec": build.buildspec,
            "tag": build.cache_tag,
            "cache_from": f"--cache-from {ref}",
            "cache_to": f"--cache-to {ref},mode={options.mode},image-manifest=true,oci-mediatypes=true",
        })
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
        "rows": [{
            "step": _code((a or b).instruction),  # type: ignore[union-attr]
            "before_rerun": ("yes" if b.reruns_on_source_change else "no") if b else "added",
            "after_rerun": ("yes" if a.reruns_on_source_change else "no") if a else "removed",
        } for b, a in shown],
    }


def _finding(f: Finding) -> dict[str, str]:
    return {"level": f.level, "path": _code(f.path, 200), "code": f.code, "message": " ".join(f.message.split())}


def _edit(e: FileEdit, reasons: int | None) -> dict[str, Any]:
    kept = e.reasons if reasons is None else e.reasons[:reasons]
    extra = len(e.reasons) - len(kept)
    out = [" ".join(r.split()) for r in kept] + ([f"_{extra} more reasons not shown_"] if extra else [])
    return {"path": _code(e.path, 300), "action": e.action, "reasons": out}


def render_pr_body(plan: Plan, repo: str, options: Options | None = None) -> str:
    """The PR description: changes and reasons, flags, AWS setup, cache table, findings; under 65,536 chars."""
    options = options or Options()
    # Flags and the one-time setup belong to a buildspec change; a Dockerfile-only pull request has neither.
    buildspec_changed = any(e.path in plan.buildspecs for e in plan.edits)
    setup = plan.setup if buildspec_changed else None
    setup_codes = _SETUP_FINDINGS if setup is not None else {}
    setup_notes: dict[str, tuple[str, str]] = {}
    for f in plan.findings:
        if setup_codes.get(f.code):
            setup_notes.setdefault(f.code, (setup_codes[f.code], " ".join(f.message.split())))
    kept = [f for f in plan.findings if f.code not in setup_codes]
    ordered = sorted(kept, key=lambda f: {"error": 0, "warning": 1, "info": 2}.get(f.level, 3))
    cache_repos = list(setup.cache_repositories or (setup.cache_repository,)) if setup else []
    region = "" if setup is None else "$AWS_REGION" if setup.region == REGION_PLACEHOLDER else setup.region
    tags = list(dict.fromkeys(b.cache_tag for b in plan.builds)) or [options.cache_tag]
    body = ""
    for level in _LEVELS:
        findings = ordered if level.findings is None else ordered[: level.findings]
        view = {
            "edits": [_edit(e, level.reasons) for e in plan.edits],
            "builds": [b for b in plan.builds if b.cached],
            "uncached": sum(1 for b in plan.builds if not b.cached),
            "setup": setup,
        }
        body = _env.get_template("pr_body.md.j2").render(
            marker=fingerprint_marker(plan.fingerprint), plan=view, repo=repo, options=options,
            flags=_flags(plan, options) if buildspec_changed else [], branch=BOT_BRANCH,
            show_json=level.show_json, region=region, buildspec_changed=buildspec_changed,
            cache_repos=cache_repos, tags=tags, setup_notes=list(setup_notes.values()),
            role_placeholder=setup is not None and any(ROLE_PLACEHOLDER in c for c in setup.commands),
            images_without_buildx=", ".join(f"`{i.short}`" for i in codebuild_images.IMAGES if not i.buildx),
            recommended_image=codebuild_images.RECOMMENDED,
            tables=[_table(t, level.rows) for t in plan.cache_tables],
            findings=[_finding(f) for f in findings], hidden_findings=len(ordered) - len(findings),
        )
        body = _BLANKS.sub("\n\n", body)
        if len(body) <= SAFE_BODY:
            return body
    note = "\n\n_This description was cut to fit GitHub's 65,536-character limit._\n"
    return body[: SAFE_BODY - len(note)].rsplit("\n", 1)[0] + note


def render_comment(kind: str, **context: Any) -> str:
    """One bot comment (reply, refusal, help, opt-out note...), cut to GitHub's limit."""
    context.setdefault("branch", BOT_BRANCH)
    context.setdefault("deleted", False)
    for key in ("pr_url", "summary", "unknown", "repo", "user", "permission", "why", "default_branch", "diff",
                "status", "message"):
        context.setdefault(key, "")
    for key in ("checked", "findings", "edits"):
        context.setdefault(key, [])
    context["findings"] = [_finding(f) if isinstance(f, Finding) else f for f in context["findings"]]
    text = _env.get_template("comment.md.j2").render(kind=kind, **context).strip() + "\n"
    if len(text) > SAFE_BODY:
        note = "\n_Cut to fit GitHub's comment size limit._\n"
        text = text[: SAFE_BODY - len(note)].rsplit("\n", 1)[0] + ("\n```\n</details>\n" if kind == "preview" else "")
        text += note
    return text


def unified_diff(edits: Iterable[FileEdit], limit: int = 50_000) -> str:
    """The diff of the edits as `git diff` shows it (cut to ``limit`` characters)."""
    parts: list[str] = []
    for edit in edits:
        before = (edit.original or "").splitlines(keepends=True)
        after = edit.content.splitlines(keepends=True)
        old = "/dev/null" if edit.original is None else f"a/{edit.path}"
        parts.extend(difflib.unified_diff(before, after, old, f"b/{edit.path}"))
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n\\ No newline at end of file\n"
    text = "".join(parts).replace("```", "`\u200b``")
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n... (diff cut)\n"


def summary(plan: Plan) -> str:
    """One line: which files the plan changes."""
    paths = ", ".join(f"`{e.path}`" for e in plan.edits[:6])
    more = f" and {len(plan.edits) - 6} more" if len(plan.edits) > 6 else ""
    return f"{len(plan.edits)} file{'s' if len(plan.edits) != 1 else ''} changed ({paths}{more})"


def render_setup_page(page: str = "index", **context: Any) -> str:
    """A setup page: `index` (status, missing settings, registration), `continue`, `done` or `refused`."""
    # The page lists exactly what the manifest asks for.
    context.setdefault("permissions", [(manifest.PERMISSION_LABELS[k], manifest.ACCESS_LABELS[v])
                                       for k, v in manifest.PERMISSIONS.items()])
    context.setdefault("events", [manifest.EVENT_LABELS[e] for e in manifest.EVENTS])
    context.setdefault("always_sent", manifest.ALWAYS_SENT_EVENTS)
    for key in ("missing",):
        context.setdefault(key, [])
    for key in ("check", "store_error", "registration_open", "dry_run", "warning", "organization"):
        context.setdefault(key, None)
    return _env.get_template("setup.html.j2").render(page=page, **context)
