"""`check --github-annotations`: GitHub workflow commands, escaped as the Actions toolkit does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_fixtures import write_checkout

from bot.cli.main import main
from bot.core.model import Finding
from bot.render.report import annotation, escape_data, escape_property


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """One buildspec (a flags variable on line 6, a Docker Hub push on line 7) and one Dockerfile."""
    return write_checkout(tmp_path)


def test_escaping_follows_the_toolkit() -> None:
    assert escape_data("100% a\r\nb: c, d") == "100%25 a%0D%0Ab: c, d"
    assert escape_property("dir,x/a:b%\n") == "dir%2Cx/a%3Ab%25%0A"
    assert escape_data("%0A") == "%250A"  # `%` first, so an existing escape is not read back as a newline


@pytest.mark.parametrize(("level", "command"), [("warning", "warning"), ("error", "error"), ("info", "notice")])
def test_levels_map_to_commands(level: str, command: str) -> None:
    finding = Finding("ci/build spec.yml", level, "some-code", "two\nlines", line=12)  # type: ignore[arg-type]
    assert annotation(finding) == f"::{command} file=ci/build spec.yml,line=12,title=some-code::two%0Alines"


def test_finding_without_line_or_path() -> None:
    assert annotation(Finding("a,b:c.yml", "warning", "x", "m")) == "::warning file=a%2Cb%3Ac.yml,title=x::m"
    assert annotation(Finding("", "info", "x", "m")) == "::notice title=x::m"


def test_check_prints_annotations_and_keeps_its_exit_codes(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(checkout), "--github-annotations"]) == 1
    lines = capsys.readouterr().out.splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert any(line.startswith("::warning file=buildspec.yml,line=6,title=build-flags-variable::") for line in commands)
    assert any(line.startswith("::notice file=buildspec.yml,line=7,title=dockerhub-push::") for line in commands)
    assert lines[-1].startswith("Not set up:")
    assert main(["apply", str(checkout)]) == 0
    capsys.readouterr()
    assert main(["check", str(checkout), "--github-annotations"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("Already set up")


def test_config_error_becomes_an_error_annotation(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / ".github").mkdir()
    (checkout / ".github" / "ecr-cache.yml").write_text("mode: turbo\n")
    assert main(["check", str(checkout), "--github-annotations"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("::error file=.github/ecr-cache.yml,title=invalid-config::")


def test_annotations_and_json_exclude_each_other(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", str(checkout), "--json", "--github-annotations"])
    assert exc.value.code == 2


def test_readme_workflow_example_runs_check_with_annotations() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    workflow = yaml.safe_load(block)
    steps = next(iter(workflow["jobs"].values()))["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "ecr-cache-bot check . --github-annotations" in runs
    assert any(s.get("uses", "").startswith("actions/checkout@") for s in steps)
