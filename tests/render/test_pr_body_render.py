"""The PR body as GitHub shows it: rendered by cmark-gfm (GitHub's own markdown parser) and looked at in headless
Chromium: the task list checkboxes, the closed folds, the changes table, and a cut body's closing note."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from bot.core import planner
from bot.core.model import CacheStep, CacheTable, Finding, Options, Plan, RepoSnapshot
from bot.render import pull_request, templates
from tests.browser import launched, needs_chromium
from tests.markdown_view import page, to_html

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]

SPEC = """version: 0.2
env:
  variables:
    AWS_DEFAULT_REGION: "eu-west-1"
    IMAGE_REPO_NAME: "shop-{name}"
phases:
  pre_build:
    commands:
      - $(aws ecr get-login --no-include-email --region $AWS_DEFAULT_REGION)
  build:
    commands:
      - docker build -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-{name}:latest {name}
      - docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-{name}:latest
"""
DOCKERFILE = """FROM python:3.12-slim
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
"""
SERVICES = ("cart", "orders", "search", "users")


def _four_buildspec_plan() -> Plan:
    """A repository shaped like the real ones: four services, each with its buildspec and Dockerfile."""
    files: dict[str, str] = {}
    for name in SERVICES:
        files[f"{name}/buildspec.yml"] = SPEC.format(name=name)
        files[f"{name}/Dockerfile"] = DOCKERFILE
        files[f"{name}/requirements.txt"] = "flask==3.0.0\n"
        files[f"{name}/app.py"] = "print(1)\n"
    plan = planner.plan(RepoSnapshot(tuple(files), files, repository="acme/shop"), Options())
    assert sum(1 for e in plan.edits if e.path in plan.buildspecs) == 4
    return plan


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as started:
        yield started


def _open(browser: Browser, markdown: str, tmp_path: Path, name: str) -> Page:
    file = tmp_path / f"{name}.html"
    file.write_text(page(markdown), encoding="utf-8")
    tab = browser.new_page(viewport={"width": 960, "height": 900})
    tab.goto(file.as_uri())
    return tab


def test_the_body_renders_as_github_shows_it(browser: Browser, tmp_path: Path) -> None:
    plan = _four_buildspec_plan()
    body = pull_request.render_pr_body(plan, "acme/shop")
    tab = _open(browser, body, tmp_path, "body")
    # The first thing shown is the impact line, in bold.
    first = tab.locator("body > *").first
    assert first.evaluate("e => e.tagName") == "P" and first.inner_text().startswith("A source-only change now")
    # GitHub's task list: one unchecked, disabled checkbox per step, all visible, naming account and region.
    boxes = tab.locator("li input[type=checkbox]")
    assert boxes.count() == body.count("\n- [ ] ") == 4
    for i in range(boxes.count()):
        assert boxes.nth(i).is_visible() and not boxes.nth(i).is_checked() and boxes.nth(i).is_disabled()
    first_task = tab.locator("li", has=tab.locator("input[type=checkbox]")).first.inner_text()
    assert "account 123456789012, region eu-west-1" in first_task
    # The changes table: one visible row per changed file, three columns.
    table = tab.locator("h2:has-text('Changes') + table")
    assert [h.strip() for h in table.locator("th").all_inner_texts()] == ["file", "change", "why"]
    assert table.locator("tbody tr").count() == len(plan.edits) and table.is_visible()
    # The folds: closed, their summaries visible, their content hidden until opened.
    summaries = tab.locator("details > summary").all_inner_texts()
    for expected in (
        "Why each file changes",
        "The flags of each build",
        "With the AWS CLI",
        "With CloudFormation",
        "With Terraform",
        "Steps that re-run",
        "Troubleshooting",
        "Commands",
    ):
        assert any(s.startswith(expected) for s in summaries), expected
    assert tab.locator("details[open]").count() == 0
    grouped = tab.locator("li", has_text="In all 4 buildspecs").first
    assert grouped.count() == 1 and not grouped.is_visible()
    cfn = tab.locator("pre", has_text="AWS::ECR::Repository")
    assert not cfn.is_visible()
    tab.locator("summary", has_text="With CloudFormation").click()
    assert cfn.is_visible()
    shot = tmp_path / "pr-body.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    tab.close()


def test_a_cut_body_still_renders_its_note_outside_every_fold(browser: Browser, tmp_path: Path) -> None:
    step = CacheStep("0", 1, "RUN x " + "y" * 80, True, True)
    findings = tuple(Finding(f"s{i}/buildspec.yml", "info", "c", f"{i} " + "z" * 400) for i in range(3000))
    tables = tuple(CacheTable(f"s{i}/Dockerfile", (step,) * 200, (step,) * 199) for i in range(60))
    plan = _four_buildspec_plan()
    huge = Plan(
        edits=plan.edits,
        findings=plan.findings + findings,
        builds=plan.builds,
        cache_tables=tables,
        setup=plan.setup,
        buildspecs=plan.buildspecs,
    )
    body = pull_request.render_pr_body(huge, "acme/shop")
    assert len(body) <= templates.MAX_BODY
    tab = _open(browser, body, tmp_path, "huge")
    assert tab.locator("li input[type=checkbox]").count() == 4
    hidden = tab.locator("li", has_text="more findings not shown")
    tab.locator("summary", has_text="Notes").click()
    assert hidden.is_visible() and "/ecr-cache preview" in hidden.inner_text()
    tab.screenshot(path=str(tmp_path / "huge.png"), full_page=True)
    assert (tmp_path / "huge.png").stat().st_size > 10_000
    tab.close()


def test_cmark_gfm_keeps_the_folds_and_makes_the_task_list() -> None:
    """The renderer is GitHub's: raw <details> passes through, `- [ ]` becomes a checkbox, tables are tables."""
    html = to_html("- [ ] a\n\n<details><summary>s</summary>\n\nx\n</details>\n\n| a |\n|---|\n| b |\n")
    assert '<input type="checkbox" disabled="" />' in html
    assert "<details><summary>s</summary>" in html and "<table>" in html
