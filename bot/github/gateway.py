"""The seam between the App's jobs and GitHub: the `Gateway` Protocol, its value types, and the write pacer it uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # provisional: the Protocol replaces this alias
    from bot.github.client import GitHubGateway as Gateway  # noqa: F401


class WritePacer(Protocol):
    """Shared write budget per installation (the queue's SQLite or Redis pacer implements it)."""

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        """Reserve `cost` content-creating requests now and return 0.0, or return the seconds to wait."""
        ...

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        """Record the installation's request budget from `x-ratelimit-remaining` / `x-ratelimit-reset`."""
        ...

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        """Seconds to wait before spending more of the installation's request budget (0.0 when fine)."""
        ...
