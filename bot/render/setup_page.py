"""The setup pages the web server shows at `/` and during the App-manifest flow (HTML, autoescaped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.render.templates import env


def render_setup_page(
    page: str = "index",
    *,
    permissions: Sequence[tuple[str, str]] = (),
    events: Sequence[str] = (),
    always_sent: Sequence[str] = (),
    **context: Any,
) -> str:
    """A setup page (`index`, `continue`, `done` or `refused`) listing the manifest's permissions and events."""
    context.setdefault("missing", [])
    for key in ("check", "store_error", "registration_open", "dry_run", "warning", "organization"):
        context.setdefault(key, None)
    return env.get_template("setup.html.j2").render(
        page=page, permissions=list(permissions), events=list(events), always_sent=always_sent, **context
    )
