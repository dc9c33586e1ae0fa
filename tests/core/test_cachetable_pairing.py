"""The cache table pairs rows by instruction, says what "application source" means, and prints an unchanged
Dockerfile once."""

from __future__ import annotations

from bot.core.dockerfile.cachetable import paired, table, unchanged
from bot.core.dockerfile.parse import parse
from bot.core.model import Plan
from bot.render import pull_request
from bot.render.report import text_report

BEFORE = (
    "FROM python:3.12-slim\nWORKDIR /srv\nCOPY . .\nRUN apt-get update && apt-get install -y libpq5\n"
    'RUN pip install -r requirements.txt\nCMD ["python", "main.py"]\n'
)
AFTER = (
    "FROM python:3.12-slim\nWORKDIR /srv\nRUN apt-get update && apt-get install -y libpq5\n"
    'COPY requirements.txt ./\nRUN pip install -r requirements.txt\nCOPY . .\nCMD ["python", "main.py"]\n'
)
TWO_STAGES = (
    "FROM golang:1.22 AS build\nCOPY . .\nRUN go build -o /out/app .\n"
    "FROM alpine:3.20\nCOPY . .\nCOPY --from=build /out/app /app\n"
)


def test_rows_pair_the_same_instruction() -> None:
    t = table("Dockerfile", parse(BEFORE), parse(AFTER))
    rows = paired(t)
    assert [(b.instruction if b else None, a.instruction if a else None) for b, a in rows] == [
        ("RUN apt-get update && apt-get install -y libpq5", "RUN apt-get update && apt-get install -y libpq5"),
        (None, "COPY requirements.txt ./"),
        ("RUN pip install -r requirements.txt", "RUN pip install -r requirements.txt"),
        ("COPY . .", "COPY . ."),
    ]
    install = rows[2]
    assert install[0] is not None and install[1] is not None
    assert install[0].reruns_on_source_change and not install[1].reruns_on_source_change


def test_same_text_in_two_stages_pairs_within_its_stage() -> None:
    t = table("Dockerfile", parse(TWO_STAGES), parse(TWO_STAGES))
    assert all(b is not None and a is not None and b.stage == a.stage and b.line == a.line for b, a in paired(t))
    assert unchanged(t)
    assert not unchanged(table("Dockerfile", parse(BEFORE), parse(AFTER)))


def test_a_step_only_before_keeps_its_place() -> None:
    t = table("Dockerfile", parse(AFTER), parse(BEFORE))  # read backwards: the manifest COPY exists only before
    texts = [(b.instruction if b else None, a.instruction if a else None) for b, a in paired(t)]
    apt = "RUN apt-get update && apt-get install -y libpq5"
    # Right below the row of the step that preceded it before the change.
    assert texts.index(("COPY requirements.txt ./", None)) == texts.index((apt, apt)) + 1


def _body(*tables: object) -> str:
    return pull_request.render_pr_body(Plan(edits=(), findings=(), builds=(), cache_tables=tables), "octo/app")  # type: ignore[arg-type]


def test_pr_body_rows_are_instructions_with_both_outcomes() -> None:
    body = _body(table("Dockerfile", parse(BEFORE), parse(AFTER)))
    assert "any file that is not a dependency manifest" in body
    assert "| 3 | `RUN pip install -r requirements.txt` | yes | no |" in body
    assert "| 2 | `COPY requirements.txt ./` | added | no |" in body
    assert body.count("`COPY . .`") == 1


def test_unchanged_dockerfile_is_one_line() -> None:
    body = _body(table("api/Dockerfile", parse(BEFORE), None))
    assert "**`api/Dockerfile`** (unchanged): a source-only change re-runs 3 of 3 steps." in body
    assert "`RUN pip install -r requirements.txt`" not in body


def test_floating_installs_are_explained_once() -> None:
    body = _body(table("a/Dockerfile", parse(BEFORE), parse(AFTER)), table("b/Dockerfile", parse(BEFORE), None))
    assert body.count("apt-get upgrade") == 1 and "pip install flask" in body


def test_cli_report_prints_an_unchanged_table_once() -> None:
    plan = Plan(edits=(), findings=(), builds=(), cache_tables=(table("Dockerfile", parse(BEFORE), None),))
    report = text_report(plan)
    assert "any file that is not a dependency manifest" in report
    assert "before:" not in report and "unchanged: 3 of 3 steps re-run" in report
    changed = text_report(
        Plan(edits=(), findings=(), builds=(), cache_tables=(table("Dockerfile", parse(BEFORE), parse(AFTER)),))
    )
    assert "before: 3 of 3 steps re-run" in changed and "after:  1 of 4 steps re-run" in changed
