"""Fault injection at the GitHub double (real HTTP): the PR is opened exactly once; a 404 fails once, no storm."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import pytest
from runtime_fixtures import (
    FakeGitHub,
    Fault,
    backend_settings,
    github_runner,
    options_for,
    running_consumer,
    wait_until,
)

from bot.app.payloads import Job
from bot.logs import configure_logging
from bot.queue.durable import build_queue

PULLS = r"/repos/o/app/pulls"
REPO = r"/repos/o/app"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run_one(
    backend: str, tmp_path: Path, github: FakeGitHub, timeout: float = 20.0, client_timeout: float = 2.0
) -> list[dict[str, object]]:
    """Queue one push for o/app, run a real consumer until the ledger is empty; return the JSON job logs."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    queue = build_queue(
        backend_settings(backend, tmp_path), github_runner(github.url, client_timeout), options_for(tmp_path)
    )
    queue.submit("delivery-1", [Job("sync", 42, "o/app", "delivery-1", {"trigger": "push"})])
    with running_consumer(queue):
        assert wait_until(lambda: queue.ledger.active_count() == 0, timeout), stream.getvalue()[-2000:]
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "job"]


FAULTS = {
    "5xx-burst": Fault("POST", PULLS, times=3, status=502, body={"message": "Server Error"}),
    "503-on-read": Fault("GET", REPO, times=2, status=503),
    "403-secondary-retry-after": Fault(
        "POST",
        PULLS,
        times=1,
        status=403,
        headers={"Retry-After": "1"},
        body={"message": "You have exceeded a secondary rate limit."},
    ),
    "429": Fault("POST", PULLS, times=2, status=429, body={"message": "Too Many Requests"}),
    "reset-on-read": Fault("GET", REPO, times=2, reset=True),
    "reset-on-write": Fault("POST", PULLS, times=2, reset=True),
}
# Every fault on SQLite; on Redis the ones that exercise its scheduling path differently (keeps the suite short).
CASES = [("sqlite", name) for name in FAULTS] + [
    ("redis", "5xx-burst"),
    ("redis", "403-secondary-retry-after"),
    ("redis", "reset-on-write"),
]


@pytest.mark.parametrize(("backend_name", "fault_name"), CASES, ids=[f"{b}-{f}" for b, f in CASES])
def test_transient_faults_end_with_exactly_one_pr(backend_name: str, fault_name: str, tmp_path: Path) -> None:
    fault = FAULTS[fault_name]
    with FakeGitHub() as github:
        github.add_fault(dataclasses.replace(fault))  # the double counts down its own copy
        jobs = _run_one(backend_name, tmp_path, github)
    assert github.pr_creates == {"o/app": 1}
    outcomes = [j["outcome"] for j in jobs]
    assert outcomes[-1] == "succeeded"
    assert outcomes.count("retry") == fault.times
    assert all(j["delivery_id"] == "delivery-1" for j in jobs)


def test_secondary_limit_retry_after_is_honoured(backend: str, tmp_path: Path) -> None:
    with FakeGitHub() as github:
        github.add_fault(
            Fault(
                "POST",
                PULLS,
                times=1,
                status=403,
                headers={"Retry-After": "2"},
                body={"message": "You have exceeded a secondary rate limit."},
            )
        )
        jobs = _run_one(backend, tmp_path, github)
        times = [t for m, p, t in github.log if m == "POST"]
    retry = next(j for j in jobs if j["outcome"] == "retry")
    assert retry["retry_in_s"] >= 2.0  # not the test policy's 0.05 s backoff
    assert times == [403, 201]
    assert github.pr_creates == {"o/app": 1}


def test_slow_response_times_out_and_the_retry_does_not_open_a_second_pr(backend: str, tmp_path: Path) -> None:
    with FakeGitHub() as github:
        # GitHub creates the PR but answers after the client gave up (a timeout is not a "no").
        github.add_fault(Fault("POST", PULLS, times=1, delay=1.0))
        jobs = _run_one(backend, tmp_path, github, client_timeout=0.4)
    assert github.pr_creates == {"o/app": 1}
    outcomes = [j["outcome"] for j in jobs]
    # Whichever of the slow original and the retry reaches GitHub second finds the PR (or gets 422).
    assert outcomes[0] == "retry" and "timed out" in str(jobs[0]["reason"]).lower()
    assert outcomes[-1] == "succeeded" and set(outcomes[:-1]) == {"retry"}


def test_missing_repository_fails_once_with_a_clear_log_line(backend: str, tmp_path: Path) -> None:
    with FakeGitHub() as github:
        github.missing.add("o/app")
        jobs = _run_one(backend, tmp_path, github)
        time.sleep(1.5)  # a retry would be scheduled within the scheduler's next tick
        assert github.count("GET", REPO) == 1
        assert github.count("POST", PULLS) == 0
    assert len(jobs) == 1
    line = jobs[0]
    assert line["outcome"] == "failed" and line["level"] == "error"
    assert line["delivery_id"] == "delivery-1" and line["repository"] == "o/app" and line["installation"] == 42
    assert "404" in str(line["reason"])


def test_primary_rate_limit_waits_until_reset_without_using_an_attempt(backend: str, tmp_path: Path) -> None:
    with FakeGitHub() as github:
        reset = str(int(time.time()) + 1)
        github.add_fault(
            Fault(
                "GET",
                REPO,
                times=1,
                status=403,
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
                body={"message": "API rate limit exceeded"},
            )
        )
        jobs = _run_one(backend, tmp_path, github)
    retry = next(j for j in jobs if j["outcome"] == "retry")
    assert retry["attempts"] == 0 and retry["rate_limit_remaining"] == 0
    assert github.pr_creates == {"o/app": 1}
