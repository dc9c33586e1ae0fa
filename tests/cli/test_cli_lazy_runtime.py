"""The process commands stay on the command line, though `plan`/`apply`/`check` never load them."""

from __future__ import annotations

import pytest

from bot.cli.main import main


def test_a_process_command_still_parses_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    assert "usage: ecr-cache-bot serve" in capsys.readouterr().out


def test_the_top_level_help_lists_the_process_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "plan" in out and "serve" in out and "worker" in out
