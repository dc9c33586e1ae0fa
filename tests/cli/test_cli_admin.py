"""Admin commands that need no webhook secret (`--version`, `dead-letter list|redrive`) run without one."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from runtime_fixtures import ROOT


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WEBHOOK_SECRET", "REDIS_URL", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH")
    }
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_prints_the_installed_distribution_version(tmp_path: Path) -> None:
    result = _cli(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ecr-cache-bot {importlib.metadata.version('ecr-cache-bot')}\n"


def test_dead_letter_commands_need_no_webhook_secret(tmp_path: Path) -> None:
    listing = _cli(tmp_path, "dead-letter", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout == "0 dead job(s)\n" and "WEBHOOK_SECRET" not in listing.stderr
    assert _cli(tmp_path, "dead-letter", "list", "--json").stdout == ""
    redrive = _cli(tmp_path, "dead-letter", "redrive", "--all")
    assert redrive.returncode == 0 and redrive.stdout == "re-queued 0 job(s)\n", redrive.stderr
