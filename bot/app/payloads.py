"""The units of work the web process queues and a worker runs (JSON-serialisable): a repository's job, or an
installation's fan-out over an account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RepoJobKind = Literal["sync", "command", "pr_closed"]


@dataclass(frozen=True)
class Job:
    """One repository-level task derived from a webhook delivery."""

    kind: RepoJobKind
    installation_id: int
    repo: str
    delivery_id: str
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """What the job is about, for logs: the repository."""
        return self.repo

    @property
    def repo_key(self) -> str:
        """Key for per-repository serialisation and coalescing."""
        return f"{self.installation_id}:{self.repo.lower()}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the queue's storage."""
        return {
            "kind": self.kind,
            "installation_id": self.installation_id,
            "repo": self.repo,
            "delivery_id": self.delivery_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Job | InstallJob:
        """Inverse of `to_dict` (and of `InstallJob.to_dict`): see `job_from_dict`."""
        return job_from_dict(raw)


@dataclass(frozen=True)
class InstallJob:
    """An installation's fan-out: sync every repository of ``account`` (or only the ``added`` ones in `data`)."""

    installation_id: int
    account: str
    delivery_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    kind: Literal["install"] = "install"

    @property
    def subject(self) -> str:
        """What the job is about, for logs: the account."""
        return self.account

    @property
    def repo_key(self) -> str:
        """Key for serialisation and coalescing: one fan-out of an account at a time."""
        return f"{self.installation_id}:{self.account.lower()}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the queue's storage."""
        return {
            "kind": self.kind,
            "installation_id": self.installation_id,
            "account": self.account,
            # Workers of the previous release read every job's `repo` (a rolling upgrade runs both).
            "repo": self.account,
            "delivery_id": self.delivery_id,
            "data": dict(self.data),
        }


AnyJob = Job | InstallJob


def job_from_dict(raw: Mapping[str, Any]) -> AnyJob:
    """A job from the queue's storage, old shapes included: an `install` job that named its account in `repo`,
    and one on a single repository (a preview queued before previews were syncs), which is a sync."""
    kind = raw["kind"]
    installation_id = int(raw["installation_id"])
    delivery_id = str(raw["delivery_id"])
    data = dict(raw.get("data") or {})
    if kind == "install":
        subject = str(raw.get("account") or raw["repo"])
        if "account" in raw or "/" not in subject:
            return InstallJob(installation_id, subject, delivery_id, data)
        return Job("sync", installation_id, subject, delivery_id, data)
    return Job(kind, installation_id, str(raw["repo"]), delivery_id, data)


def typed(job: Job | InstallJob) -> AnyJob:
    """The job with its proper type: a `Job` built with kind "install" (the shape before `InstallJob`) becomes one."""
    if isinstance(job, Job) and job.kind == "install":
        return job_from_dict(job.to_dict())
    return job
