"""Job queue seam (stub: the durable huey implementation replaces `InMemoryQueue` behind `create_queue`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.config import Settings
from bot.job import Job

Runner = Callable[[Job], None]


@dataclass(frozen=True)
class SubmitResult:
    """What happened to one delivery's jobs."""

    accepted: bool
    duplicate: bool = False
    job_ids: tuple[str, ...] = ()


class JobQueue(Protocol):
    """Durable queue: `submit` returns only after the jobs are committed."""

    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Queue the jobs of one delivery once (a repeated delivery id is a duplicate)."""
        ...


class InMemoryQueue:
    """Non-durable queue for tests: records jobs and runs them on `drain()`."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner
        self.pending: list[Job] = []
        self.seen: set[str] = set()

    def submit(self, delivery_id: str, jobs: Sequence[Job]) -> SubmitResult:
        """Record the jobs unless the delivery was seen before."""
        if delivery_id in self.seen:
            return SubmitResult(accepted=True, duplicate=True)
        self.seen.add(delivery_id)
        self.pending.extend(jobs)
        return SubmitResult(accepted=True, job_ids=tuple(f"{delivery_id}:{i}" for i in range(len(jobs))))

    def drain(self) -> int:
        """Run every pending job with the runner; return how many ran."""
        count = 0
        while self.pending:
            job = self.pending.pop(0)
            if self.runner is not None:
                self.runner(job)
            count += 1
        return count


def create_queue(settings: Settings, runner: Runner) -> JobQueue:
    """Return the queue for these settings (stub: in-memory until the durable queue lands)."""
    return InMemoryQueue(runner)
