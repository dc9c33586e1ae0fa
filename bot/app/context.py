"""What a job runs with, passed in by whoever runs it (the queue's worker, the CLI, a test): no module globals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.app.payloads import AnyJob
from bot.github.gateway import GatewayFactory, RetryLater, WritePacer

Submit = Callable[[str, Sequence[AnyJob]], object]  # the queue's `submit(delivery_id, jobs)`
RefusalAnswer = Literal["comment", "reaction", "none"]


class Counters(Protocol):
    """Shared monotonically increasing counters."""

    def incr(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add `amount` to the counter `name{labels}`."""
        ...

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Every counter as {(name, rendered labels): value}."""
        ...


class Progress(Protocol):
    """The install fan-out's progress counter."""

    def progress(self, installation_id: int, key: str, total: int) -> int:
        """Count one more repository done of `total` under `key`; return how many are done."""
        ...


class Pacer(WritePacer, Progress, Protocol):
    """The write pacer plus the install fan-out's progress counter (both in the queue's shared store)."""


class CommandClaims(Protocol):
    """Which job (by its delivery id) answers a command comment, shared by every worker."""

    def claim(self, installation_id: int, comment_id: int, owner: str) -> bool:
        """True when `owner` is the first to claim the comment within the TTL, or already owns it."""
        ...


class RefusalLimiter(Protocol):
    """How a command from someone without write access is answered, counted in a shared store."""

    def take(self, installation_id: int, repo: str, user: str, *, budget_low: bool) -> RefusalAnswer:
        """Decide how to answer one refusal and count it."""
        ...


def no_retries(exc: BaseException) -> bool:
    """Without a queue nothing runs a job again: every failure is final, except a deferral (`RetryLater`)."""
    return not isinstance(exc, RetryLater)


@dataclass(frozen=True)
class JobContext:
    """The runtime a job is given: GitHub, the shared pacer, counters and claims, and the queue's submit and
    retry policy. Without a queue (None fields) a job writes unpaced, counts in this process, and answers every
    command it is given. A dry run (DRY_RUN=1) is a ``gateways`` that hands out `bot.github.dry_run.DryRunGateway`
    wrappers: the job itself cannot tell."""

    gateways: GatewayFactory
    pacer: Pacer | None = None
    counters: Counters | None = None
    submit: Submit | None = None
    preview_threshold: int | None = None
    claims: CommandClaims | None = None  # command comments answered once across deliveries (a durable queue's)
    refusals: RefusalLimiter | None = None  # without one, every refusal is written out
    final: Callable[[BaseException], bool] = no_retries  # the queue's retry policy: True when no retry follows
