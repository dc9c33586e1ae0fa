"""The gateway's write pacing: the pacer it is given reserves writes before they are sent, and the interactive flag
decides whether the request budget's floor may be spent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from github_double import GitHubDouble, private_key_pem

from bot.github.client import GatewayFactory
from bot.github.gateway import FileWrite, Gateway, RetryLater
from bot.settings import Settings

REPO = "octo/app"


@dataclass(frozen=True)
class Limits:
    """The part of the queue's limits the gateway reads."""

    request_floor: int = 100


@dataclass
class FakePacer:
    """Answers with fixed waits and records what the gateway asked."""

    reserve_wait: float = 0.0
    budget: float = 0.0
    limits: Limits = field(default_factory=Limits)
    reserved: list[tuple[int, int]] = field(default_factory=list)
    budget_asks: list[tuple[int, bool]] = field(default_factory=list)
    observed: list[tuple[int, int, float]] = field(default_factory=list)

    def reserve(self, installation_id: int, cost: int = 1) -> float:
        """Record the reservation; answer the configured wait."""
        if self.reserve_wait == 0.0:
            self.reserved.append((installation_id, cost))
        return self.reserve_wait

    def observe(self, installation_id: int, remaining: int, reset: float) -> None:
        """Record the budget seen."""
        self.observed.append((installation_id, remaining, reset))

    def budget_wait(self, installation_id: int, interactive: bool = False) -> float:
        """Record the question; answer the configured wait."""
        self.budget_asks.append((installation_id, interactive))
        return self.budget


def _factory(double: GitHubDouble, pacer: FakePacer | None) -> GatewayFactory:
    settings = Settings(webhook_secret="s", app_id="99", private_key=private_key_pem(), github_api_url=double.base_url)
    return GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0, pacer=pacer)


def _writes(double: GitHubDouble) -> list[str]:
    return [str(r) for r in double.requests if r.is_write]


def _publish_writes(gw: Gateway, base_oid: str, base_tree: str) -> None:
    gw.commit(REPO, base_oid, base_tree, [FileWrite("x.txt", "x\n")], "m")


@pytest.fixture
def repo(gh: GitHubDouble) -> GitHubDouble:
    gh.add_repo(REPO, {"a.txt": "a\n"})
    return gh


def test_paced_reserves_the_block_at_once_and_writes_beyond_it_one_each(repo: GitHubDouble) -> None:
    pacer = FakePacer()
    gw = _factory(repo, pacer)(1)
    state = gw.read_state(REPO)
    with gw.paced(2):
        sha = gw.commit(REPO, state.base_oid, state.base_tree, [FileWrite("x.txt", "x\n")], "m")  # tree + commit
        assert pacer.reserved == [(1, 2)]
        gw.create_branch(REPO, sha)  # a third write: its own slot
    assert pacer.reserved == [(1, 2), (1, 1)]
    gw.move_branch(REPO, sha)  # outside a block: one slot
    assert pacer.reserved == [(1, 2), (1, 1), (1, 1)]
    assert gw.read_state(REPO) and pacer.reserved[-1] == (1, 1)  # a GraphQL query is no write


def test_background_work_asks_for_the_floor_and_interactive_work_may_spend_it(repo: GitHubDouble) -> None:
    pacer = FakePacer()
    factory = _factory(repo, pacer)
    with factory(1).paced(1):
        pass
    with factory(1, interactive=True).paced(1):
        pass
    assert pacer.budget_asks == [(1, False), (1, True)]


@pytest.mark.parametrize(
    "budget, reserve, reason", [(30.0, 0.0, "installation request budget low"), (0.0, 20.0, "content-creation pacing")]
)
def test_a_full_window_raises_retry_later_before_anything_is_sent(
    repo: GitHubDouble, budget: float, reserve: float, reason: str
) -> None:
    pacer = FakePacer(reserve_wait=reserve, budget=budget)
    gw = _factory(repo, pacer)(1)
    state = gw.read_state(REPO)
    repo.reset_requests()
    with pytest.raises(RetryLater) as info, gw.paced(4):
        _publish_writes(gw, state.base_oid, state.base_tree)
    assert info.value.reason == reason and not info.value.counts
    assert budget + reserve <= info.value.delay <= budget + reserve + 30.0  # spread, so deferred jobs do not all wake
    assert repo.requests == []


def test_without_a_pacer_writes_go_out_unpaced(repo: GitHubDouble) -> None:
    gw = _factory(repo, None)(1)
    state = gw.read_state(REPO)
    repo.reset_requests()
    with gw.paced(100_000):
        _publish_writes(gw, state.base_oid, state.base_tree)
    assert _writes(repo) == [f"POST /repos/{REPO}/git/trees", f"POST /repos/{REPO}/git/commits"]


def test_a_budget_near_the_floor_is_shared_and_a_healthy_one_is_not(repo: GitHubDouble) -> None:
    pacer = FakePacer()
    gw = _factory(repo, pacer)(1)
    reset = time.time() + 600
    repo.response_headers = {"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": str(int(reset))}
    gw.read_state(REPO)
    assert pacer.observed == [] and gw.rate_limit_remaining == 4000
    repo.response_headers = {"X-RateLimit-Remaining": "150", "X-RateLimit-Reset": str(int(reset))}
    gw.read_tree_at(REPO, "main")
    assert pacer.observed == [(1, 150, float(int(reset)))] and gw.rate_limit_remaining == 150


def test_each_job_gets_its_own_gateway_over_one_client(repo: GitHubDouble) -> None:
    pacer = FakePacer()
    factory = _factory(repo, pacer)
    background, person = factory(1), factory(1, interactive=True)
    assert background is not person and background._client is person._client
    assert (background.interactive, person.interactive) == (False, True)
    assert background.pacer is pacer is person.pacer
