"""pyproject.toml ships every package under bot/ and the top-level `templates/` folder as `bot.templates`."""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_under_bot_is_listed() -> None:
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bot").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == found | {"bot.templates"}


def test_templates_folder_is_the_package_bot_templates() -> None:
    assert SETUPTOOLS["package-dir"] == {"bot.templates": "templates"}
    assert "*.j2" in SETUPTOOLS["package-data"]["bot.templates"]
    # The editable install resolves it to the folder itself (re-run `pip install -e .` after changing pyproject).
    assert Path(str(importlib.resources.files("bot.templates"))) == ROOT / "templates"
