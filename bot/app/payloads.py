"""The unit of work the web process queues and a worker runs (JSON-serialisable)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JobKind = Literal["sync", "command", "pr_closed", "install"]


@dataclass(frozen=True)
class Job:
    """One repository-level task derived from a webhook delivery."""

    kind: JobKind
    installation_id: int
    repo: str
    delivery_id: str
    data: Mapping[str, Any] = field(default_factory=dict)

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
    def from_dict(cls, raw: Mapping[str, Any]) -> Job:
        """Inverse of `to_dict`."""
        return cls(
            kind=raw["kind"],
            installation_id=int(raw["installation_id"]),
            repo=str(raw["repo"]),
            delivery_id=str(raw["delivery_id"]),
            data=dict(raw.get("data") or {}),
        )
