"""render/ stands on the base modules and the core only: it never reaches for the app, GitHub, the queue or web."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("bot.core", "bot.render", "bot.settings", "bot.identity", "bot.logs")


def _bot_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [n for n in names if n == "bot" or n.startswith("bot.")]


def test_render_imports_only_base_and_core() -> None:
    files = sorted((ROOT / "bot" / "render").glob("*.py"))
    assert len(files) >= 7  # pull_request, comments, diff, templates, style, report, setup_page (and __init__)
    wrong = [f"{f.name}: {name}" for f in files for name in _bot_imports(f)
             if not any(name == a or name.startswith(a + ".") for a in ALLOWED)]
    assert wrong == []
