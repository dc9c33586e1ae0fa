"""How a command from someone without write access is answered, so strangers cannot spend the App's writes.

Anyone who can comment on a public repository can send `/ecr-cache`, and every written answer spends the
installation's content-creation budget its own pull requests need (`bot/queue/pacing.py`). Per fixed window of an
hour: a written refusal at most once per user and repository, and a few per repository and per installation;
past those, or while the installation's request budget is under the pacer's floor, a 👎 reaction; past a cap on
reactions too, nothing. The counts live in the queue's store (SQLite or Redis: `bot/queue/refusals.py`), shared
by every worker; a job is given them as its context's `refusals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.app.context import RefusalAnswer as Answer

REACTION = "-1"


@dataclass(frozen=True)
class RefusalLimits:
    """Answers per window (written refusals, then reactions once those are spent)."""

    window: float = 3600.0
    per_user: int = 1  # written refusals per user and repository
    per_repo: int = 3
    per_installation: int = 20
    reactions_per_repo: int = 20
    reactions_per_installation: int = 60


LIMITS = RefusalLimits()


def decide(counts: Sequence[int], limits: RefusalLimits, budget_low: bool) -> Answer:
    """The answer, given this window's counts (user, repository, installation, repository reactions,
    installation reactions) and whether the installation's request budget is low."""
    user, repo, installation, reactions_repo, reactions_installation = counts
    if not budget_low and user < limits.per_user and repo < limits.per_repo and installation < limits.per_installation:
        return "comment"
    if reactions_repo < limits.reactions_per_repo and reactions_installation < limits.reactions_per_installation:
        return "reaction"
    return "none"


def keys(installation_id: int, repo: str, user: str, bucket: int) -> list[str]:
    """The five counters of `decide`, in its order, for one window."""
    base = f"refusal:{installation_id}:{bucket}"
    repo, user = repo.lower(), user.lower()  # GitHub logins and repository names are case-insensitive
    return [
        f"{base}:user:{repo}:{user}",
        f"{base}:repo:{repo}",
        f"{base}:all",
        f"{base}:reaction:{repo}",
        f"{base}:reaction",
    ]


def counted(answer: Answer) -> slice:
    """Which of `keys` an answer counts against (written refusals or reactions; nothing for no answer)."""
    return slice(0, 3) if answer == "comment" else slice(3, 5) if answer == "reaction" else slice(0, 0)
