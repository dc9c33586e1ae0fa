"""API economy: GitHub requests per event, measured against the stateful GitHub double.

Runs the real Flask app with the real planner on `examples/node-service`, posts signed webhooks, drains the
queue and counts the requests each step sent to GitHub (the same harness as `tests/test_e2e_app.py`). A GraphQL
mutation counts as a write.
Run: `python bench/api_economy.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import responses

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from github_double import (  # noqa: E402
    AppHarness,
    GitHubDouble,
    Recorded,
    comment_payload,
    installation_payload,
    push_payload,
)

from bot.logs import configure_logging  # noqa: E402

REPO = "octo/node-service"


@dataclass(frozen=True)
class Row:
    """One measured step."""

    step: str
    goal: str
    requests: list[Recorded]
    outcome: str

    @property
    def writes(self) -> int:
        """Requests that changed GitHub state."""
        return sum(1 for r in self.requests if r.is_write)


def _example_files() -> dict[str, str]:
    base = ROOT / "examples" / "node-service"
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


def _fresh(mock: responses.RequestsMock) -> tuple[GitHubDouble, AppHarness]:
    double = GitHubDouble()
    double.activate(mock)
    double.add_repo(REPO, _example_files(), permissions={"maintainer": "maintain"})
    return double, AppHarness(double)


def measure() -> list[Row]:
    """Run the scenario and return one row per step."""
    rows: list[Row] = []

    def step(name: str, goal: str, run: Callable[[], tuple[int, list[Recorded]]], h: AppHarness) -> None:
        _, requests = run()
        rows.append(Row(name, goal, requests, ",".join(o.action for o in h.outcomes) or "ignored"))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh, h = _fresh(mock)
        repo = gh.repos[REPO]
        before = repo.refs["main"]
        after = gh.commit_files(REPO, "main", {"buildspec.yml": gh.file_text(REPO, "main", "buildspec.yml")})
        step(
            "first PR (push to default branch, cold process)",
            "<= 8 incl. token",
            lambda: h.deliver("push", push_payload(repo, before, after, ["buildspec.yml"])),
            h,
        )
        after2 = gh.commit_files(REPO, "main", {"README.md": "docs\n"})
        step(
            "push changing nothing relevant",
            "0 after routing",
            lambda: h.deliver("push", push_payload(repo, after, after2, ["README.md"])),
            h,
        )
        after3 = gh.commit_files(REPO, "main", {"package.json": gh.file_text(REPO, "main", "package.json")})
        step(
            "relevant push, plan unchanged (PR up to date)",
            "0 writes",
            lambda: h.deliver("push", push_payload(repo, after2, after3, ["package.json"])),
            h,
        )
        gh.merge_pull(REPO, 1)
        merged = repo.refs["main"]
        parent = gh.objects[merged]["data"]["parents"][0]
        step(
            "push of the merge (main had moved since the bot's commit)",
            "0 writes",
            lambda: h.deliver("push", push_payload(repo, parent, merged, ["buildspec.yml", "Dockerfile"])),
            h,
        )
        ask = gh.add_comment(REPO, 9, "/ecr-cache", "maintainer")
        step(
            "/ecr-cache on the set-up repository (warm)",
            "<= 4",
            lambda: h.deliver("issue_comment", comment_payload(repo, ask)),
            h,
        )
        cold = AppHarness(gh)
        ask2 = gh.add_comment(REPO, 9, "/ecr-cache", "maintainer")
        step(
            "/ecr-cache, set up; new process (cold)",
            "<= 4 incl. token",
            lambda: cold.deliver("issue_comment", comment_payload(repo, ask2)),
            cold,
        )
        stranger = AppHarness(gh)
        ask3 = gh.add_comment(REPO, 9, "/ecr-cache", "passer-by")
        step(
            "/ecr-cache by a non-collaborator (refused, cold)",
            "no tree read",
            lambda: stranger.deliver("issue_comment", comment_payload(repo, ask3, association="NONE")),
            stranger,
        )

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh, h = _fresh(mock)
        repo = gh.repos[REPO]
        step(
            "first PR via installation.created (1 repository)",
            "<= 8 incl. token",
            lambda: h.deliver("installation", installation_payload(1, "octo")),
            h,
        )
        gh.merge_pull(REPO, 1)
        ask = gh.add_comment(REPO, 9, "/ecr-cache", "maintainer")
        step(
            "/ecr-cache, set up by merging the bot's PR (warm)",
            "<= 4",
            lambda: h.deliver("issue_comment", comment_payload(repo, ask)),
            h,
        )

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        gh = GitHubDouble()
        gh.activate(mock)
        gh.add_repo("octo/docs", {"README.md": "# docs\n", "docs/index.md": "hello\n", "package.json": "{}\n"})
        h = AppHarness(gh)
        step(
            "installation.created, 1 repository without a buildspec",
            "1 read after listing",
            lambda: h.deliver("installation", installation_payload(1, "octo")),
            h,
        )
    return rows


def main() -> int:
    """Print the table."""
    configure_logging("WARNING")
    rows = measure()
    width = max(len(r.step) for r in rows)
    print(f"{'step':<{width}}  {'requests':>8}  {'writes':>6}  {'goal':<18}  outcome")
    for row in rows:
        print(f"{row.step:<{width}}  {len(row.requests):>8}  {row.writes:>6}  {row.goal:<18}  {row.outcome}")
    print()
    for row in rows:
        print(f"{row.step}:")
        for request in row.requests:
            print(f"  {request}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
