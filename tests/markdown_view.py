"""Render markdown as GitHub does (cmark-gfm, GitHub's own parser) and look at it in headless Chromium."""

from __future__ import annotations

import html
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options as CmarkOptions

from tests.browser import launched

# GitHub keeps raw HTML such as <details> (then sanitizes it): cmark-gfm needs UNSAFE to pass it through, and
# its `tagfilter` extension (on in `github_flavored_markdown_to_html`) drops the tags GitHub drops.
_OPTIONS = CmarkOptions.CMARK_OPT_UNSAFE | CmarkOptions.CMARK_OPT_GITHUB_PRE_LANG

# A few rules of GitHub's markdown style, so tables and folds look as they do on a pull request page.
_STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 880px; margin: 16px auto; padding: 0 16px; }
table { border-collapse: collapse; margin: 8px 0; display: block; overflow: auto; }
th, td { border: 1px solid #d1d9e0; padding: 4px 10px; vertical-align: top; }
tr:nth-child(2n) { background: #f6f8fa; }
code { background: #eff1f3; border-radius: 4px; padding: 1px 4px; font-size: 85%; }
pre { background: #f6f8fa; padding: 12px; overflow: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
summary { cursor: pointer; font-weight: 600; }
details { margin: 8px 0; }
ul.contains-task-list { list-style: none; padding-left: 1.2em; }
h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: 4px; }
"""


def to_html(markdown: str) -> str:
    """The HTML GitHub's cmark-gfm makes of ``markdown`` (tables, task lists, autolinks, raw <details>)."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, _OPTIONS)


def page(markdown: str, title: str = "PR body") -> str:
    """A whole HTML page around the rendered markdown."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body class='markdown-body'>{to_html(markdown)}</body></html>"
    )


def screenshot(markdown: str, out: Path) -> Path:
    """Render ``markdown`` to ``out.with_suffix('.html')`` and screenshot the full page to ``out`` (a .png)."""
    page_file = out.with_suffix(".html")
    page_file.write_text(page(markdown), encoding="utf-8")
    with launched() as browser:
        tab = browser.new_page(viewport={"width": 960, "height": 800})
        tab.goto(page_file.as_uri())
        tab.screenshot(path=str(out), full_page=True)
    return out
