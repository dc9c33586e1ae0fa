"""The bot's "after" for a sample app: its Dockerfile/.dockerignore edits and the planner's CacheTable."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bot.cli.local_repo import read_snapshot  # noqa: E402
from bot.core.model import CacheTable, Options  # noqa: E402
from bot.core.planner import plan  # noqa: E402

# Only these edits change what the engine builds; buildspec and policy edits are emulated by the
# buildah --cache-from/--cache-to flags.
BUILD_INPUTS = ("Dockerfile", ".dockerignore")


@dataclass(frozen=True)
class After:
    """What the planner decided for one app."""

    edits: dict[str, str]
    table: CacheTable | None
    findings: tuple[str, ...]


def bot_after(app_dir: Path) -> After:
    """Run the real planner on the app's checkout."""
    result = plan(read_snapshot(app_dir), Options())
    edits = {e.path: e.content for e in result.edits if e.path in BUILD_INPUTS}
    table = next((t for t in result.cache_tables if t.dockerfile == "Dockerfile"), None)
    findings = tuple(f"{f.level} {f.code}: {f.message}" for f in result.findings if f.path in BUILD_INPUTS)
    return After(edits, table, findings)
