"""Corpus report: plan every real repository in ../shared/corpus/real and check the invariants.

Prints one row per repository (files found, changes, findings, invariant checks, planning time) and
the totals, then the YAML syntax corpus used as buildspecs. Run: `python bench/corpus_report.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from bot.core import planner
from bot.core.buildspec import codebuild_images
from bot.core.buildspec import plan as buildspec_plan
from bot.core.dockerfile import plan as dockerfile_plan
from bot.core.model import FileEdit, Options, Plan, RepoSnapshot
from bot.core.shell.words import clear_cache
from bot.render import pull_request, report

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"

# Lines of an original buildspec the planner may rewrite in place: builds and the CLI v1 ECR login.
_REWRITABLE_LINE = re.compile(r"docker\s+(?:image\s+|buildx\s+)?build\b|aws\s+ecr\s+get-login\b|--cache-from")
_DOCKERFILE_NAME = re.compile(r"(^|/)([^/]*\.)?[Dd]ockerfile([._-][^/]*)?$")


def load_real_repo(folder: Path) -> RepoSnapshot:
    """Snapshot of one corpus repository: every path from `_trees/`, the text of the files kept."""
    tree = folder.parent / "_trees" / f"{folder.name}.txt"
    paths = set(tree.read_text().splitlines()) if tree.exists() else set()
    files: dict[str, str] = {}
    for file in folder.rglob("*"):
        if file.is_file():
            rel = file.relative_to(folder).as_posix()
            paths.add(rel)
            files[rel] = file.read_bytes().decode("utf-8", "surrogateescape")
    wanted = set(planner.paths_to_read(tuple(sorted(paths)), Options()))
    return RepoSnapshot(
        paths=tuple(sorted(p for p in paths if p)), files={p: t for p, t in files.items() if p in wanted}
    )


def apply_edits(snapshot: RepoSnapshot, edits: tuple[FileEdit, ...]) -> RepoSnapshot:
    """The snapshot as it would be after merging the plan."""
    files = dict(snapshot.files)
    files.update({e.path: e.content for e in edits})
    paths = tuple(sorted(set(snapshot.paths) | {e.path for e in edits}))
    return dataclasses.replace(snapshot, paths=paths, files=files)


def untouched_bytes_problem(edit: FileEdit) -> str | None:
    """Every original line survives in order, except the lines the planner is meant to rewrite."""
    if edit.original is None:
        return None
    all_crlf = "\r\n" in edit.original and edit.original.count("\n") == edit.original.count("\r\n")
    if all_crlf and edit.content.count("\n") != edit.content.count("\r\n"):
        return "a CRLF file gained LF-only lines"
    # Keys without line endings: appending after a last line that had no newline is not a change to it.
    before = [line.rstrip("\r\n") for line in edit.original.splitlines(keepends=True)]
    after = [line.rstrip("\r\n") for line in edit.content.splitlines(keepends=True)]
    is_dockerfile = bool(_DOCKERFILE_NAME.search(edit.path))
    if is_dockerfile:
        # A reorder moves whole lines: the multiset of original lines must be kept.
        missing = _multiset_missing(before, after)
        return f"original line(s) lost: {missing[:2]!r}" if missing else None
    # A `docker push` removed because its build now pushes itself (`--push`) is named in a reason of its own.
    pushes = [r.split("`")[1] for r in edit.reasons if "` removed: the build on line" in r]
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            for line in before[i1:i2]:
                if any(p in line for p in pushes):
                    continue
                if not _REWRITABLE_LINE.search(line) and line.strip() not in ("", "env:", "variables:"):
                    return f"line changed outside the intended edit: {line!r}"
    return None


def _multiset_missing(before: list[str], after: list[str]) -> list[str]:
    remaining: dict[str, int] = {}
    for line in after:
        key = line.rstrip("\r\n")
        remaining[key] = remaining.get(key, 0) + 1
    missing = []
    for line in before:
        key = line.rstrip("\r\n")
        if remaining.get(key, 0) > 0:
            remaining[key] -= 1
        else:
            missing.append(key)
    return missing


def reparse_problem(edit: FileEdit) -> str | None:
    """Re-parse proof from the editor that owns the file type."""
    if edit.original is None:
        return None
    if _DOCKERFILE_NAME.search(edit.path):
        return dockerfile_plan.verify_dockerfile_edit(edit.original, edit.content)
    if edit.path.endswith((".yml", ".yaml")):
        return buildspec_plan.verify_buildspec_edit(edit.original, edit.content)
    return None


@dataclasses.dataclass
class Row:
    """One repository's line in the report."""

    name: str
    buildspecs: int = 0
    dockerfiles: int = 0
    builds: int = 0
    specs_changed: int = 0
    dockerfiles_changed: int = 0
    args_moved: int = 0
    dockerignore: int = 0
    steps_saved: int = 0
    findings: int = 0
    copies_late: int = 0
    pushes: int = 0
    false_statements: list[str] = dataclasses.field(default_factory=list)
    warning_codes: frozenset[str] = frozenset()
    reparse_ok: bool = True
    idempotent: bool = True
    untouched_ok: bool = True
    crashed: str = ""
    ms: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def invariants_ok(self) -> bool:
        """All three invariant checks passed and nothing raised."""
        return self.reparse_ok and self.idempotent and self.untouched_ok and not self.crashed


# Sentences the PR body or the report must never say (issue 12: every sentence true).
_FALSE_NAMING = re.compile(r"(?i)does(?: not|n't) name the AWS account|not name the (?:AWS )?(?:account|region)")
_NO_BUILDX_LIST = re.compile(r"docker buildx is missing[^\n]*")


def false_statements(result: Plan) -> list[str]:
    """The checkable false statements in this plan's PR body and CLI report (empty when all hold)."""
    body = pull_request.render_pr_body(result, "corpus/repo") + "\n" + report.text_report(result)
    out = []
    if "start warm" in body and not any(b.cached for b in result.builds):
        out.append("says builds start warm with no build cached")
    without = {i.short for i in codebuild_images.IMAGES if not i.buildx}
    for line in _NO_BUILDX_LIST.findall(body):
        named = set(re.findall(r"`([a-z0-9_-]+:\d+\.\d+)`", line.split("Switch")[0]))
        if named - without:
            out.append(f"names images with buildx as lacking it: {sorted(named - without)}")
    if result.setup is not None and result.setup.account_id and _FALSE_NAMING.search(body):
        out.append("says the account is not named while the setup knows it")
    return out


def check_repository(name: str, snapshot: RepoSnapshot, repeats: int = 3) -> Row:
    """Plan one repository, time it, and run every invariant check."""
    row = Row(name)
    try:
        timings = []
        result: Plan | None = None
        for _ in range(repeats):
            clear_cache()  # each timed plan starts cold, as for a repository seen the first time
            start = time.perf_counter()
            result = planner.plan(snapshot, Options())
            timings.append((time.perf_counter() - start) * 1000)
        assert result is not None
        row.ms = min(timings)
        row.buildspecs = len(result.buildspecs)
        row.dockerfiles = len(result.dockerfiles)
        row.builds = len(result.builds)
        row.findings = len(result.findings)
        row.warning_codes = frozenset(
            f.code for f in result.findings if f.level == "warning" or f.code == "cache-reuses-nothing"
        )
        row.steps_saved = sum(t.saved_on_source_change for t in result.cache_tables)
        figures = dockerfile_plan.counts(result.edits, result.cache_tables)
        row.dockerfiles_changed = figures["dockerfiles_reordered"]
        row.args_moved = figures["args_moved"]
        row.copies_late = figures["copies_moved_late"]
        row.pushes = sum(1 for b in result.builds if b.cached and b.output == "push")
        row.false_statements = false_statements(result)
        row.dockerignore = figures["dockerignore_created"] + figures["dockerignore_extended"]
        for edit in result.edits:
            if edit.path in result.buildspecs:
                row.specs_changed += 1
            for check, problem in (("reparse", reparse_problem(edit)), ("untouched", untouched_bytes_problem(edit))):
                if problem:
                    row.problems.append(f"{edit.path}: {check}: {problem}")
                    if check == "reparse":
                        row.reparse_ok = False
                    else:
                        row.untouched_ok = False
        again = planner.plan(apply_edits(snapshot, result.edits), Options())
        if again.edits:
            row.idempotent = False
            row.problems.append(f"not idempotent: second plan edits {[e.path for e in again.edits]}")
    except Exception as exc:  # the report must show a crash as a row, not stop
        row.crashed = f"{type(exc).__name__}: {exc}"
    return row


def real_rows(corpus: Path = CORPUS) -> Iterator[Row]:
    """One row per repository of the real corpus."""
    for folder in sorted((corpus / "real").iterdir()):
        if folder.is_dir() and not folder.name.startswith("_"):
            yield check_repository(folder.name, load_real_repo(folder))


def yaml_rows(corpus: Path = CORPUS) -> Iterator[tuple[str, str]]:
    """Each YAML test-suite input used as a buildspec: (case, outcome) where outcome is ok or the failure."""
    for folder in sorted((corpus / "yaml").iterdir()):
        source = folder / "in.yaml"
        if not source.is_file():
            continue
        text = source.read_bytes().decode("utf-8", "surrogateescape")
        snapshot = RepoSnapshot(
            paths=("buildspec.yml", "Dockerfile"), files={"buildspec.yml": text, "Dockerfile": "FROM scratch\n"}
        )
        try:
            result = planner.plan(snapshot, Options())
        except Exception as exc:
            yield folder.name, f"crash: {type(exc).__name__}: {exc}"
            continue
        outcome = "ok"
        for edit in result.edits:
            if edit.path == "buildspec.yml":
                try:
                    yaml.safe_load(edit.content.lstrip("\ufeff"))
                except yaml.YAMLError as exc:
                    outcome = f"broken file: {exc}"
        yield folder.name, outcome


def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit 1 when an invariant fails or a case crashes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    if not (args.corpus / "real").is_dir():
        print(f"corpus not found at {args.corpus}", file=sys.stderr)
        return 2
    rows = list(real_rows(args.corpus))
    print(
        "| repository | buildspecs | Dockerfiles | builds | specs changed | Dockerfiles reordered | ARGs moved "
        "| .dockerignore | steps saved | findings | re-parse | idempotent | untouched | ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = {True: "ok", False: "FAIL"}
        print(
            f"| {r.name[:48]} | {r.buildspecs} | {r.dockerfiles} | {r.builds} | {r.specs_changed} "
            f"| {r.dockerfiles_changed} | {r.args_moved} | {r.dockerignore} | {r.steps_saved} | {r.findings} "
            f"| {mark[r.reparse_ok]} | {mark[r.idempotent]} | {mark[r.untouched_ok]} | {r.ms:.1f} |"
        )
    with_builds = [r for r in rows if r.builds]
    changed = [r for r in with_builds if r.specs_changed]
    invariant_ok = sum(r.invariants_ok for r in rows)
    times = [r.ms for r in rows]
    print()
    print("| total | value |")
    print("|---|---|")
    print(f"| repositories | {len(rows)} |")
    print(f"| crashes | {sum(bool(r.crashed) for r in rows)} |")
    print(f"| invariant checks passed | {invariant_ok}/{len(rows)} |")
    print(f"| repositories with a docker build found | {len(with_builds)} |")
    share = 100 * len(changed) / len(with_builds) if with_builds else 0.0
    print(f"| ... of them with a verified buildspec change | {len(changed)} ({share:.0f}%) |")
    print(f"| Dockerfiles reordered | {sum(r.dockerfiles_changed for r in rows)} |")
    print(f"| copies moved late | {sum(r.copies_late for r in rows)} |")
    print(f"| builds switched to --push | {sum(r.pushes for r in rows)} |")
    print(f"| false-statement checks passing | {sum(not r.false_statements for r in rows)}/{len(rows)} |")
    print(f"| ARGs moved | {sum(r.args_moved for r in rows)} |")
    print(f"| .dockerignore created or extended | {sum(r.dockerignore for r in rows)} |")
    print(f"| cache-table steps saved on a source-only change | {sum(r.steps_saved for r in rows)} |")
    print(f"| findings | {sum(r.findings for r in rows)} |")
    print(f"| planning time per repository, median / max | {statistics.median(times):.1f} ms / {max(times):.1f} ms |")
    for r in rows:
        for problem in ([r.crashed] if r.crashed else []) + r.problems + r.false_statements:
            print(f"PROBLEM {r.name}: {problem}")
    yaml_results = list(yaml_rows(args.corpus))
    bad = [(case, outcome) for case, outcome in yaml_results if outcome != "ok"]
    print()
    print(f"YAML syntax corpus as buildspecs: {len(yaml_results) - len(bad)}/{len(yaml_results)} ok")
    for case, outcome in bad:
        print(f"PROBLEM yaml/{case}: {outcome}")
    failed = any(not r.invariants_ok for r in rows) or bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
