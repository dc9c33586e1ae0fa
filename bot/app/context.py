"""What a job runs with, passed in by whoever runs it (the queue's worker, the CLI, a test): no module globals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.app.payloads import Job
from bot.github.gateway import WritePacer

if TYPE_CHECKING:
    from bot.github.gateway import Gateway

Submit = Callable[[str, Sequence[Job]], object]  # the queue's `submit(delivery_id, jobs)`


class Counters(Protocol):
    """Shared monotonically increasing counters."""

    def incr(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add `amount` to the counter `name{labels}`."""
        ...

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Every counter as {(name, rendered labels): value}."""
        ...


class Pacer(WritePacer, Protocol):
    """The write pacer plus the install fan-out's progress counter."""

    def progress(self, installation_id: int, key: str, total: int) -> int:
        """Count one more repository done of `total` under `key`; return how many are done."""
        ...


@dataclass(frozen=True)
class JobContext:
    """The runtime a job is given: GitHub, the shared pacer and counters, and the queue for follow-up jobs."""

    gateways: Callable[[int], Gateway]
    pacer: Pacer | None = None
    counters: Counters | None = None
    submit: Submit | None = None
    preview_threshold: int | None = None
    dry_run: bool = False
