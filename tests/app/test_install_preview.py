"""Preview mode: a first install over `PREVIEW_THRESHOLD` repositories opens no pull request until the
organization opts in (`install: open-pull-requests` in `<org>/.github/.github/ecr-cache.yml`)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from github_double import GitHubDouble, Recorded, private_key_pem, push_payload
from github_double import appending_plan as fake_plan
from job_fixtures import context, run_install
from job_fixtures import gateway_factory as factory

from bot import wiring
from bot.app import handlers as jobs
from bot.app.context import Counters, Pacer
from bot.app.events import route
from bot.app.fanout import parse_opt_in
from bot.app.payloads import AnyJob, InstallJob, Job
from bot.core import planner
from bot.logs import configure_logging
from bot.queue.counters import SqliteCounters
from bot.queue.pacing import PaceLimits, SqlitePacer
from bot.queue.storage import SqliteDb
from bot.settings import Settings

SPEC = {"buildspec.yml": "version: 0.2\n"}
PLAIN = {"README.md": "docs\n"}
ORG_CONFIG = ".github/ecr-cache.yml"
OPT_IN = "install: open-pull-requests\n"
Stores = tuple[Pacer | None, Counters | None]
NO_STORES: Stores = (None, None)


@pytest.fixture(autouse=True)
def _planner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "plan", fake_plan)


@pytest.fixture
def logs() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    return stream


@pytest.fixture(params=["in-process", "shared"])
def shared_state(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    """Without a durable queue (tests, CLI), or with the pacer and counters of a worker process's store."""
    if request.param == "in-process":
        return NO_STORES
    db = SqliteDb(tmp_path / "queue.db", fsync=False)
    return SqlitePacer(db, PaceLimits()), SqliteCounters(db)


def install(
    gh: GitHubDouble, threshold: int | None, delivery: str = "install-1", stores: Stores = NO_STORES
) -> list[jobs.Outcome]:
    return run_install(gh, threshold, delivery, pacer=stores[0], counters=stores[1])


def organization(gh: GitHubDouble, with_buildspec: int, without: int, org_config: str | None = None) -> None:
    for i in range(with_buildspec):
        gh.add_repo(f"octo/svc{i}", SPEC)
    for i in range(without):
        gh.add_repo(f"octo/lib{i}", PLAIN)
    if org_config is not None:
        gh.add_repo("octo/.github", {ORG_CONFIG: org_config, "profile/README.md": "hi\n"})


def events(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    return [x for x in map(json.loads, stream.getvalue().splitlines()) if x["event"] == name]


def writes(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests if r.is_write]


def test_above_the_threshold_nothing_is_written_and_one_summary_is_logged(
    gh: GitHubDouble, logs: io.StringIO, shared_state: Stores
) -> None:
    organization(gh, with_buildspec=4, without=3)
    outcomes = install(gh, threshold=5, stores=shared_state)
    assert writes(gh.requests) == []
    assert all(gh.pulls_for(r) == [] for r in gh.repos)
    by_repo = {o.repo: o.action for o in outcomes if o.action != "queued"}
    assert by_repo == {
        **{f"octo/svc{i}": "would_open" for i in range(4)},
        **{f"octo/lib{i}": "already" for i in range(3)},
    }
    (mode,) = events(logs, "install.preview_mode")
    assert (mode["preview"], mode["repositories"], mode["threshold"]) == (True, 7, 5)
    assert "no .github/.github/ecr-cache.yml" in mode["reason"]
    (summary,) = events(logs, "install.preview_summary")
    assert (summary["repositories"], summary["would_get_pr"]) == (7, 4)
    assert summary["outcomes"] == {"would_open": 4, "already": 3}
    assert "install: open-pull-requests" in summary["opt_in"]


def test_an_opted_in_organization_gets_its_pull_requests(gh: GitHubDouble, logs: io.StringIO) -> None:
    organization(gh, with_buildspec=4, without=3, org_config=f"# org-wide settings\n{OPT_IN}")
    outcomes = install(gh, threshold=5)
    actions = {o.repo: o.action for o in outcomes if o.action != "queued"}
    # The `.github` repository's own sync reads the same file as its repo config: `install` is a known key
    # there, and the repository has nothing to plan.
    assert actions.pop("octo/.github") == "already"
    assert sorted(actions.values()) == ["already"] * 3 + ["opened"] * 4
    assert all(len(gh.pulls_for(f"octo/svc{i}")) == 1 for i in range(4))
    (mode,) = events(logs, "install.preview_mode")
    assert mode["preview"] is False and events(logs, "install.preview_summary") == []


def test_below_the_threshold_pull_requests_open_without_reading_the_org_config(
    gh: GitHubDouble, logs: io.StringIO
) -> None:
    organization(gh, with_buildspec=3, without=2)
    install(gh, threshold=5)
    assert all(len(gh.pulls_for(f"octo/svc{i}")) == 1 for i in range(3))
    assert not any("/contents/" in r.path for r in gh.requests)
    assert events(logs, "install.preview_mode") == []


@pytest.mark.parametrize(
    "text",
    [
        "install: yes\n",
        "install: open-pull-request\n",
        "open-pull-requests\n",
        "install:\n  - open-pull-requests\n",
        "install: [\n",
        "other: open-pull-requests\n",
    ],
)
def test_anything_but_the_exact_opt_in_keeps_preview_mode(gh: GitHubDouble, text: str) -> None:
    organization(gh, with_buildspec=2, without=4, org_config=text)
    install(gh, threshold=5)
    assert writes(gh.requests) == ["POST /repos/octo/.github/issues"]  # the preview summary alone (bot/app/fanout.py)


def test_parse_opt_in_explains_why() -> None:
    assert parse_opt_in(OPT_IN) == (True, "`install: open-pull-requests` in .github/.github/ecr-cache.yml")
    assert parse_opt_in(None)[0] is False
    opted, why = parse_opt_in("install: true\n")
    assert opted is False and "must be `open-pull-requests`, got True" in why


def test_push_and_commands_in_a_preview_organization_behave_as_before(gh: GitHubDouble) -> None:
    organization(gh, with_buildspec=3, without=5)
    install(gh, threshold=5)
    assert writes(gh.requests) == []
    repo = gh.repos["octo/svc0"]
    before = repo.refs["main"]
    after = gh.commit_files("octo/svc0", "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (job,) = route("push", push_payload(repo, before, after, ["buildspec.yml"]), "push-1").jobs
    (outcome,) = jobs.run(job, context(gh, preview_threshold=5))
    assert outcome.action == "opened" and len(gh.pulls_for("octo/svc0")) == 1


def test_opting_in_by_a_push_to_the_org_config_runs_the_install_again(gh: GitHubDouble) -> None:
    organization(gh, with_buildspec=3, without=3, org_config="install: preview\n")
    install(gh, threshold=5)
    assert writes(gh.requests) == ["POST /repos/octo/.github/issues"]  # the preview summary alone (bot/app/fanout.py)
    org = gh.repos["octo/.github"]
    before = org.refs["main"]
    after = gh.commit_files("octo/.github", "main", {ORG_CONFIG: OPT_IN})
    routed = route("push", push_payload(org, before, after, [ORG_CONFIG]), "push-org")
    assert routed.jobs[1:] == (InstallJob(1, "octo", "push-org", {"trigger": "install"}),)  # the account
    assert [(j.kind, j.subject) for j in routed.jobs] == [("sync", "octo/.github"), ("install", "octo")]
    install(gh, threshold=5, delivery="push-org")
    assert all(len(gh.pulls_for(f"octo/svc{i}")) == 1 for i in range(3))


def test_a_push_to_another_repositorys_config_does_not_start_an_install(gh: GitHubDouble) -> None:
    organization(gh, with_buildspec=1, without=0)
    repo = gh.repos["octo/svc0"]
    after = gh.commit_files("octo/svc0", "main", {ORG_CONFIG: OPT_IN})
    routed = route("push", push_payload(repo, "0" * 40, after, [ORG_CONFIG]), "p")
    assert [j.kind for j in routed.jobs] == ["sync"]


def test_the_web_runner_applies_the_configured_threshold(gh: GitHubDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    organization(gh, with_buildspec=3, without=0)
    settings = Settings(
        webhook_secret="s", app_id="7", private_key=private_key_pem(), github_api_url=gh.base_url, preview_threshold=2
    )
    queued: list[AnyJob] = []
    runner = wiring.JobRunner(settings, submit=lambda delivery, batch: queued.extend(batch))
    f = factory(gh)
    run: Callable[..., list[jobs.Outcome]] = jobs.run
    monkeypatch.setattr(jobs, "run", lambda job, ctx: run(job, dataclasses.replace(ctx, gateways=f)))
    runner(InstallJob(1, "octo", "i"))
    for job in queued:
        runner(job)
    assert [j.data.get("preview") for j in queued] == [True] * 3 and writes(gh.requests) == []


def test_preview_threshold_is_read_from_the_environment() -> None:
    assert Settings.from_env({"WEBHOOK_SECRET": "s" * 16, "PREVIEW_THRESHOLD": "1000"}).preview_threshold == 1000


@pytest.mark.parametrize("push_first", [True, False])
def test_a_preview_job_and_a_push_on_the_same_repository_both_run(
    gh: GitHubDouble, tmp_path: Path, push_first: bool
) -> None:
    from runtime_fixtures import backend_settings, options_for

    from bot.queue.durable import build_queue

    organization(gh, with_buildspec=3, without=3)
    f = factory(gh)
    queued: list[AnyJob] = []
    jobs.run(
        InstallJob(1, "octo", "install-1"),
        context(f, submit=lambda d, batch: queued.extend(batch), preview_threshold=5),
    )
    preview_job = next(j for j in queued if j.subject == "octo/svc0")
    assert (preview_job.kind, preview_job.data["preview"]) == ("sync", True)  # an ordinary sync, flagged
    repo = gh.repos["octo/svc0"]
    after = gh.commit_files("octo/svc0", "main", {"buildspec.yml": "version: 0.2\n# v2\n"})
    (push_job,) = route("push", push_payload(repo, "0" * 40, after, ["buildspec.yml"]), "push-1").jobs
    assert push_job.kind == "sync"
    outcomes: list[jobs.Outcome] = []
    queue = build_queue(
        backend_settings("sqlite", tmp_path),
        lambda job: outcomes.extend(jobs.run(job, context(f))),
        options_for(tmp_path),
    )
    submits = [("push-1", push_job), ("install-1/x", preview_job)]
    if not push_first:
        submits.reverse()
    # Both are queued before either runs: neither supersedes the other, whichever came first.
    ids = [queue.submit(delivery, [job]).job_ids[0] for delivery, job in submits]
    for job_id in ids:
        queue.execute(job_id)
    actions = [o.action for o in outcomes]
    # The push's pull request is opened either way; the preview decides around it and writes nothing.
    assert actions == (["opened", "current"] if push_first else ["would_open", "opened"])
    assert len(gh.pulls_for("octo/svc0")) == 1


def test_a_coalesced_fan_out_sync_still_counts_towards_the_summary(gh: GitHubDouble, tmp_path: Path) -> None:
    from runtime_fixtures import backend_settings, options_for

    from bot.queue.durable import build_queue

    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    organization(gh, with_buildspec=3, without=3)
    f = factory(gh)
    queued: list[AnyJob] = []
    jobs.run(
        InstallJob(1, "octo", "install-1"),
        context(f, submit=lambda d, batch: queued.extend(batch), preview_threshold=5),
    )
    assert len(queued) == 6 and all(j.data["preview"] is True for j in queued)
    queue = build_queue(
        backend_settings("sqlite", tmp_path),
        lambda job: jobs.run(job, context(f, pacer=queue.pacer, counters=queue.counters)),
        options_for(tmp_path),
    )
    ids = list(queue.submit("install-1/repositories", queued).job_ids)
    # A second preview fan-out (say a redelivery under a new id) queues svc0 again before the first one ran.
    later = Job("sync", 1, "octo/svc0", "install-2", {**queued[0].data, "total": 1})
    ids += queue.submit("install-2/repositories", [later]).job_ids
    for job_id in ids:
        queue.execute(job_id)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [x["outcome"] for x in lines if x["event"] == "job"].count("coalesced") == 1
    summaries = {x["delivery"]: x for x in lines if x["event"] == "install.preview_summary"}
    assert summaries["install-1"]["repositories"] == 6
    assert summaries["install-1"]["outcomes"]["coalesced"] == 1
    assert summaries["install-2"]["outcomes"] == {"would_open": 1}
    progress = [(x["delivery"], x["done"], x["total"]) for x in lines if x["event"] == "install.progress"]
    assert sorted(progress) == [("install-1", 6, 6), ("install-2", 1, 1)]  # in either order
