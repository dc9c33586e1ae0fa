"""The corpus report's invariants hold on the real corpus (the same checks `bench/corpus_report.py` prints)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "corpus_report.py"


def _report_module() -> ModuleType:
    if "corpus_report" in sys.modules:
        return sys.modules["corpus_report"]
    spec = importlib.util.spec_from_file_location("corpus_report", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus_report"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_every_repository_passes_every_invariant(corpus: Path) -> None:
    report = _report_module()
    rows = list(report.real_rows(corpus))
    assert len(rows) == 40
    failures = {r.name: (r.crashed, r.problems) for r in rows if not r.invariants_ok}
    assert failures == {}
    # Every repository with a build either gets its buildspec changed or is left alone with a stated reason.
    with_builds = [r for r in rows if r.builds]
    silent = [r.name for r in with_builds if not r.specs_changed and not r.warning_codes]
    assert silent == []
    assert {r.name: r.false_statements for r in rows if r.false_statements} == {}
    assert sum(1 for r in with_builds if r.specs_changed) >= 0.5 * len(with_builds)


def test_yaml_suite_as_buildspecs_never_crashes_or_breaks(corpus: Path) -> None:
    report = _report_module()
    outcomes = dict(report.yaml_rows(corpus))
    assert outcomes, "the YAML corpus is empty"
    assert {case: o for case, o in outcomes.items() if o != "ok"} == {}


def test_untouched_check_catches_a_changed_line() -> None:
    report = _report_module()
    from bot.core.model import FileEdit

    original = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n      - docker build .\n"
    sneaky = original.replace("echo hi", "echo bye")
    assert report.untouched_bytes_problem(FileEdit("buildspec.yml", "modify", sneaky, original))
    crlf = original.replace("\n", "\r\n")
    mixed = crlf + "      - echo added\n"
    assert report.untouched_bytes_problem(FileEdit("buildspec.yml", "modify", mixed, crlf))
    added = original + "      - echo added\n"
    assert report.untouched_bytes_problem(FileEdit("buildspec.yml", "modify", added, original)) is None
    lost = "FROM a\nRUN x\nCOPY . .\n"
    assert report.untouched_bytes_problem(FileEdit("Dockerfile", "modify", "FROM a\nCOPY . .\n", lost))


def test_missing_corpus_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report_module().main(["--corpus", str(tmp_path)]) == 2


def test_false_statement_checks_catch_a_planted_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report_module()
    files = {
        "buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n",
        "Dockerfile": "FROM python:3.12\nRUN pip install flask\nCOPY . .\n",
    }
    plan = report.planner.plan(report.RepoSnapshot(tuple(files), files), report.Options())
    assert report.false_statements(plan) == []
    monkeypatch.setattr(
        report.pull_request,
        "render_pr_body",
        lambda *a, **k: "docker buildx is missing on `standard:5.0` and `standard:7.0`. Switch to ...",
    )
    assert report.false_statements(plan) == ["names images with buildx as lacking it: ['standard:7.0']"]
