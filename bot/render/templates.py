"""The one Jinja2 environment over the templates in `templates/`, and the markdown helpers they share.

The folder ships inside the package as `bot.templates` (pyproject.toml maps it), so the templates are found
through the installed package: in a wheel, a container image and an editable checkout alike."""

from __future__ import annotations

from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.core.model import Options

TEMPLATE_PACKAGE = "bot.templates"
TEMPLATES = ("pr_body.md.j2", "pr_summary.md.j2", "comment.md.j2", "setup.html.j2")  # the ones rendered by name
MAX_BODY = 65_536  # GitHub rejects longer PR bodies and comments
SAFE_BODY = MAX_BODY - 1_024


class PackageTemplates(BaseLoader):
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


env = Environment(
    loader=PackageTemplates(TEMPLATE_PACKAGE),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=False,
)


def flat(text: str) -> str:
    """``text`` on one line, runs of whitespace as one space."""
    return " ".join(text.split())


def code(text: str, limit: int = 100) -> str:
    """Text safe inside a markdown table cell code span."""
    cell = flat(text).replace("`", "'").replace("|", "\\|")
    return cell if len(cell) <= limit else cell[: limit - 1] + "…"


def settings_rows(options: Options) -> list[dict[str, str]]:
    """One row per key a config file set: the key, its effective value, and the file it came from."""
    from bot.core.repo_config import field_of

    rows = []
    for key, source in options.sources:
        value = getattr(options, field_of(key), None) if field_of(key) else None
        shown = (
            ", ".join(value)
            if isinstance(value, tuple)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        rows.append({"key": key, "value": code(shown or "(none)", 120), "source": code(source, 200)})
    return rows


env.globals["settings_rows"] = settings_rows


def render(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context``."""
    return env.get_template(name).render(**context)


def check_templates() -> str | None:
    """None when every template loads and compiles, else why not (what `/readyz` reports)."""
    try:
        for name in sorted(set(TEMPLATES) | set(env.list_templates())):
            env.get_template(name)
    except Exception as exc:  # any failure here means rendering fails: report it, never raise from a probe
        return f"{type(exc).__name__}: {exc}"
    return None
