"""Typed job payloads: an installation job carries an account, and jobs already in a durable queue survive an
upgrade (the old JSON shapes still read)."""

from __future__ import annotations

import json

import pytest

from bot.app.payloads import InstallJob, Job, job_from_dict, typed


def test_a_repository_job_round_trips() -> None:
    job = Job("command", 7, "Octo/App", "d-1", {"issue_number": 5, "user": "dev"})
    raw = json.loads(json.dumps(job.to_dict()))
    assert job_from_dict(raw) == job and Job.from_dict(raw) == job
    assert (job.subject, job.repo_key) == ("Octo/App", "7:octo/app")


def test_an_install_job_round_trips_with_its_account() -> None:
    job = InstallJob(7, "Octo", "d-1", {"trigger": "install", "added": ["Octo/a"]})
    raw = json.loads(json.dumps(job.to_dict()))
    assert raw["account"] == "Octo" and raw["kind"] == "install"
    assert job_from_dict(raw) == job
    assert (job.subject, job.repo_key, job.kind) == ("Octo", "7:octo", "install")


def test_an_install_job_queued_before_install_jobs_carried_an_account_still_reads() -> None:
    old = {
        "kind": "install",
        "installation_id": 7,
        "repo": "octo",
        "delivery_id": "d-1",
        "data": {"trigger": "install"},
    }
    assert job_from_dict(old) == InstallJob(7, "octo", "d-1", {"trigger": "install"})


def test_an_install_job_on_one_repository_from_an_older_release_is_a_sync() -> None:
    old = {
        "kind": "install",
        "installation_id": 7,
        "repo": "octo/app",
        "delivery_id": "d-1",
        "data": {"trigger": "install", "preview": True},
    }
    assert job_from_dict(old) == Job("sync", 7, "octo/app", "d-1", {"trigger": "install", "preview": True})


def test_the_previous_release_can_read_a_new_install_job() -> None:
    """A rolling upgrade runs both releases: the old reader took every job's `repo`."""
    raw = InstallJob(7, "octo", "d-1").to_dict()
    assert raw["repo"] == "octo"


@pytest.mark.parametrize("data", [None, {}])
def test_missing_data_reads_as_empty(data: object) -> None:
    raw: dict[str, object] = {"kind": "sync", "installation_id": "7", "repo": "octo/app", "delivery_id": "d"}
    if data is not None:
        raw["data"] = data
    assert job_from_dict(raw) == Job("sync", 7, "octo/app", "d")


def test_typed_turns_an_old_style_install_job_into_its_type() -> None:
    old_style = Job("install", 1, "octo", "d")  # type: ignore[arg-type]
    assert typed(old_style) == InstallJob(1, "octo", "d")
    assert typed(Job("install", 1, "octo/app", "d")) == Job("sync", 1, "octo/app", "d")  # type: ignore[arg-type]
    job = Job("sync", 1, "octo/app", "d")
    assert typed(job) is job
