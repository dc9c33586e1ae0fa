"""Finding codes: one enum, every member used by the code base, no loose code strings left in the core."""

from __future__ import annotations

import ast
from pathlib import Path

from buildspec_support import corpus_snapshot

from bot.core import planner
from bot.core.findings import Code
from bot.core.model import Options, RepoSnapshot

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
FINDINGS = BOT / "core" / "findings.py"


def _trees(folder: Path) -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(folder.rglob("*.py")) if p != FINDINGS]


def _code_argument(call: ast.Call) -> ast.expr | None:
    if len(call.args) > 2:
        return call.args[2]
    return next((k.value for k in call.keywords if k.arg == "code"), None)


def test_no_finding_is_made_with_a_string_code() -> None:
    loose = []
    for path, tree in _trees(BOT):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Finding":
                arg = _code_argument(node)
                if isinstance(arg, ast.Constant | ast.JoinedStr):
                    loose.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert loose == []


def test_the_core_spells_no_code_as_a_string() -> None:
    values = {c.value for c in Code}
    loose = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}"
        for path, tree in _trees(BOT / "core")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in values
    ]
    assert loose == []


def test_every_member_is_used_and_every_use_is_a_member() -> None:
    used: set[str] = set()
    for _, tree in _trees(BOT):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Code":
                used.add(node.attr)
    members = set(Code.__members__)
    assert used - members == set()
    assert members - used == set()


def test_members_are_their_strings() -> None:
    assert all(c == c.value and f"{c}" == c.value for c in Code)
    assert Code("no-cache") is Code.NO_CACHE
    assert len({c.value for c in Code}) == len(Code)


def _codes(snapshot: RepoSnapshot) -> list[object]:
    return [f.code for f in planner.plan(snapshot, Options()).findings]


def test_the_example_and_the_corpus_emit_only_members(corpus: Path) -> None:
    example = ROOT / "examples" / "node-service"
    files = {
        p.relative_to(example).as_posix(): p.read_text(encoding="utf-8") for p in example.rglob("*") if p.is_file()
    }
    emitted = _codes(RepoSnapshot(tuple(sorted(files)), files))
    real = corpus / "real"
    for repo in sorted(p for p in real.iterdir() if p.is_dir() and not p.name.startswith("_")):
        emitted += _codes(corpus_snapshot(repo, real / "_trees"))
    assert emitted and all(type(code) is Code for code in emitted)
    assert len(set(emitted)) > 10  # the corpus really exercised the planner's findings
