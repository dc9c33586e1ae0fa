"""Guard rails: the imports of bot/ follow the layering (core is pure; the flow goes one way) and `plan` is light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"

# Third-party packages the pure core may use besides the standard library.
CORE_THIRD_PARTY = frozenset({"yaml", "jsonschema"})
BASE = ("bot.settings", "bot.identity", "bot.logs")
# Which parts of bot/ each layer may import (a prefix names a module and everything under it).
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("bot.core",),
    "base": (*BASE, "bot.core"),  # identity names the config path the pure core defines
    "github": (*BASE, "bot.core", "bot.github"),
    "render": (*BASE, "bot.core", "bot.render"),
    # The gateway's Protocol and value types only: never the client behind it.
    "app": (*BASE, "bot.core", "bot.render", "bot.app", "bot.github.gateway"),
    "queue": (*BASE, "bot.core", "bot.github", "bot.app", "bot.queue"),
    "web": (*BASE, "bot.core", "bot.github", "bot.render", "bot.app", "bot.queue", "bot.web"),
    "wiring": (*BASE, "bot.core", "bot.github", "bot.render", "bot.app", "bot.queue", "bot.web", "bot.wiring"),
    "cli": ("bot",),
}
# The web layer builds its default app and queue through the composition root, imported when first needed.
LAZY: dict[str, tuple[str, ...]] = {"web": ("bot.wiring",)}


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it stands, and whether it runs only when a function is called."""

    source: str
    target: str
    line: int
    in_function: bool

    def __str__(self) -> str:
        lazy = " (in a function)" if self.in_function else ""
        return f"{self.source}:{self.line} imports {self.target}{lazy}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()


def _absolute(module: str | None, level: int, source: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _targets(node: ast.AST, source: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        module = _absolute(node.module, node.level, source, is_package)
        # `from bot.github import gateway` imports the module bot.github.gateway, not only the package.
        return [f"{module}.{a.name}" if _is_module(f"{module}.{a.name}") else module for a in node.names]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]  # importlib.import_module("bot.cli.processes")
    return []


def _imports(path: Path) -> list[Import]:
    source = _module_name(path)
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for target in _targets(node, source, path.name == "__init__.py"):
            found.append(Import(source, target, getattr(node, "lineno", 0), in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if module in BASE or module == "bot":
        return "base"
    return parts[1] if len(parts) > 1 else "base"


ALL_IMPORTS = [imp for path in sorted(BOT.rglob("*.py")) for imp in _imports(path)]


def _within(target: str, prefixes: tuple[str, ...]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def test_the_walk_sees_every_layer_and_function_level_imports() -> None:
    layers = {_layer(i.source) for i in ALL_IMPORTS}
    assert layers >= set(ALLOWED)
    assert any(i.in_function for i in ALL_IMPORTS)
    assert _absolute("x", 2, "bot.core.shell.words", False) == "bot.core.x"
    assert _absolute(None, 1, "bot.core", True) == "bot.core"


def test_the_core_imports_only_the_standard_library_yaml_jsonschema_and_itself() -> None:
    outside = [
        str(i)
        for i in ALL_IMPORTS
        if _layer(i.source) == "core"
        and not _within(i.target, ("bot.core",))
        and i.target.split(".")[0] not in sys.stdlib_module_names | CORE_THIRD_PARTY
    ]
    assert outside == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    allowed = ALLOWED[layer]
    lazy = LAZY.get(layer, ())
    wrong = [
        str(i)
        for i in ALL_IMPORTS
        if _layer(i.source) == layer
        and i.target.split(".")[0] == "bot"
        and not _within(i.target, allowed)
        and not (i.in_function and _within(i.target, lazy))
    ]
    assert wrong == []


def test_the_rules_reject_what_the_brief_forbids() -> None:
    def breaks(source: str, target: str, in_function: bool = False) -> bool:
        layer = _layer(source)
        return not _within(target, ALLOWED[layer]) and not (in_function and _within(target, LAZY.get(layer, ())))

    assert breaks("bot.github.client", "bot.queue.durable")
    assert breaks("bot.github.client", "bot.render.report")
    assert breaks("bot.queue.durable", "bot.web.flask_app")
    assert breaks("bot.app.handlers", "bot.github.client")
    assert breaks("bot.app.handlers", "bot.queue.counters")
    assert breaks("bot.render.report", "bot.app.handlers")
    assert breaks("bot.web.flask_app", "bot.wiring")
    assert not breaks("bot.web.flask_app", "bot.wiring", in_function=True)
    assert not breaks("bot.app.handlers", "bot.github.gateway")
    assert breaks("bot.core.planner", "bot.settings")


PLAN_IMPORTS = """
import contextlib, io, json, sys
import bot.cli.main
with contextlib.redirect_stdout(io.StringIO()):
    code = bot.cli.main.main(["plan", sys.argv[1]])
print(json.dumps([code, sorted({m.split(".")[0] for m in sys.modules})]))
"""


def test_plan_imports_neither_flask_nor_huey_nor_redis() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PLAN_IMPORTS, str(ROOT / "examples" / "node-service")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    code, modules = json.loads(result.stdout.splitlines()[-1])
    assert code == 0
    assert "yaml" in modules  # the plan really ran through the core
    assert {"flask", "huey", "redis"} & set(modules) == set()
