"""The README's set-up commands are the ones CI runs, and its settings table names every variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _setup_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert block is not None
    return block.group(1).strip().splitlines()


def test_the_two_set_up_commands_use_a_venv_and_ci_runs_the_second() -> None:
    serve, tests = _setup_commands()
    for command in (serve, tests):
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e ")
    assert serve.endswith("ecr-cache-bot serve") and tests.endswith("python -m pytest")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == tests


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    source = (ROOT / "bot" / "settings.py").read_text()
    read = set(re.findall(r"""env\.get\(["']([A-Z_]+)["']""", source))
    read |= set(re.findall(r"""_url\(env, ["']([A-Z_]+)["']""", source))
    assert {"WEBHOOK_SECRET", "QUEUE_FSYNC", "QUEUE_NAMESPACE", "GITHUB_URL"} <= read
    table = README.split("### Settings (environment)", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)`|, `([A-Z_]+)`|or `([A-Z_]+)`", table, re.MULTILINE))
    names = {name for group in documented for name in group if name}
    assert read - names == set()
