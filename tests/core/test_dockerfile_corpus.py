"""The Dockerfile planner over the real corpus (40 repositories) and the syntax corpus: safe, proven, idempotent."""

from __future__ import annotations

import csv
import os
import posixpath
from functools import cache
from pathlib import Path

import pytest

from bot.core.buildspec.build_args import OPAQUE  # these cases have no buildspec: ARG names decide
from bot.core.discover import Discovery
from bot.core.dockerfile.dockerignore import Matcher, needed_sources, read_patterns
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.plan import counts, plan_dockerfiles, verify_dockerfile_edit
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
REAL = CORPUS / "real"


@cache
def _rows() -> tuple[dict[str, str], ...]:
    if not (REAL / "MANIFEST.tsv").exists():
        return ()
    with open(REAL / "MANIFEST.tsv", newline="") as fh:
        return tuple(csv.DictReader(fh, delimiter="\t"))


def _dockerfiles(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row["paths"].split("dockerfile: ", 1)[1].split(" | ", 1)[0].split(","))


def _snapshot(row: dict[str, str]) -> RepoSnapshot:
    base = REAL / row["dir"]
    paths = tuple(p for p in (REAL / "_trees" / f"{row['dir']}.txt").read_text().split("\n") if p)
    files: dict[str, str] = {}
    for root, _, names in os.walk(base):
        for name in names:
            full = Path(root) / name
            files[full.relative_to(base).as_posix()] = full.read_bytes().decode("utf-8", "surrogateescape")
    return RepoSnapshot(paths=paths, files=files)


def _plan(snapshot: RepoSnapshot, dockerfiles: tuple[str, ...]) -> PartialPlan:
    links = tuple(
        BuildLink("buildspec.yml", "build", n, 1, d, posixpath.dirname(d) or ".", f"cache-{n}", unknown_args=(OPAQUE,))
        for n, d in enumerate(dockerfiles)
    )
    return plan_dockerfiles(snapshot, Options(), links, Discovery(dockerfiles=dockerfiles))


def _apply(snapshot: RepoSnapshot, result: PartialPlan) -> RepoSnapshot:
    files = dict(snapshot.files)
    paths = list(snapshot.paths)
    for edit in result.edits:
        files[edit.path] = edit.content
        if edit.path not in paths:
            paths.append(edit.path)
    return RepoSnapshot(paths=tuple(paths), files=files)


def _copy_all_cases(row: dict[str, str]) -> list[str]:
    out = []
    for part in row["notes"].split(" | "):
        path, _, labels = part.rpartition(": ")
        path = path.split("; ")[-1].split(": ")[-1]
        if "COPY-all before dep install" in labels:
            out.append(path.strip())
    return out


ROWS = _rows()


@pytest.mark.skipif(not ROWS, reason="../shared/corpus/real not present")
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["dir"][:3])
def test_real_repository(row: dict[str, str]) -> None:
    snapshot = _snapshot(row)
    dockerfiles = _dockerfiles(row)
    result = _plan(snapshot, dockerfiles)
    for edit in result.edits:
        if edit.path in dockerfiles:
            assert edit.original is not None
            assert verify_dockerfile_edit(edit.original, edit.content) is None
            parse(edit.content)
            assert edit.reasons
        else:
            assert edit.path.endswith(".dockerignore")
            context = posixpath.dirname(edit.path)
            matcher = Matcher(read_patterns(edit.content))
            built_here = [
                parse(snapshot.files[d])
                for d in dockerfiles
                if (posixpath.dirname(d) or "") == context and d in snapshot.files
            ]
            sources, _ = needed_sources(built_here)
            for source in sources:
                assert source == "." or not matcher.excluded(source), (edit.path, source)
    again = _plan(_apply(snapshot, result), dockerfiles)
    assert again.edits == (), "planning on the planner's own output must change nothing"
    for case in _copy_all_cases(row):
        reordered = any(
            e.path == case and any(r.startswith("Dockerfile stage") for r in e.reasons) for e in result.edits
        )
        explained = [
            f
            for f in result.findings
            if f.path == case and f.code in ("dockerfile-not-reordered", "dockerfile-cargo-chef")
        ]
        assert reordered or explained, (case, result.findings)
        for finding in explained:
            assert "`" in finding.message.split(":", 2)[-1], finding.message


@pytest.mark.skipif(not ROWS, reason="../shared/corpus/real not present")
def test_every_copy_all_case_is_labelled_and_counted() -> None:
    cases = [c for row in ROWS for c in _copy_all_cases(row)]
    assert len(cases) >= 7
    totals: dict[str, int] = {}
    for row in ROWS:
        result = _plan(_snapshot(row), _dockerfiles(row))
        for key, value in counts(result.edits, result.cache_tables).items():
            totals[key] = totals.get(key, 0) + value
    assert totals["dockerfiles_reordered"] >= 5
    assert totals["steps_saved_on_source_change"] >= totals["dockerfiles_reordered"]


def _syntax_files() -> list[Path]:
    root = CORPUS / "dockerfile-syntax"
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*") if p.is_file() and (p.name == "Dockerfile" or p.name.endswith(".Dockerfile"))
    )


@pytest.mark.parametrize("path", _syntax_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_syntax_corpus_never_crashes_and_stays_parseable(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    tree = ("Dockerfile", "package.json", "package-lock.json", "go.mod", "go.sum", "requirements.txt")
    snapshot = RepoSnapshot(
        paths=tree,
        files={"Dockerfile": text, "package.json": "{}", "go.mod": "module x\n", "requirements.txt": "flask\n"},
    )
    result = _plan(snapshot, ("Dockerfile",))
    for edit in result.edits:
        if edit.path == "Dockerfile":
            parse(edit.content)
            assert verify_dockerfile_edit(text, edit.content) is None
    assert _plan(_apply(snapshot, result), ("Dockerfile",)).edits == ()
