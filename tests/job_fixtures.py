"""Shared helpers for tests that run jobs against the GitHub double: a gateway factory and an install run."""

from __future__ import annotations

from collections.abc import Sequence

from github_double import GitHubDouble, private_key_pem

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.github.client import GatewayFactory
from bot.settings import Settings


def gateway_factory(double: GitHubDouble) -> GatewayFactory:
    """A factory for App id 7 that talks to `double` with no pacing delays and no retries."""
    settings = Settings(webhook_secret="s", app_id="7", private_key=private_key_pem(), github_api_url=double.base_url)
    return GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)


def run_install(double: GitHubDouble, threshold: int | None, delivery: str = "install-1") -> list[jobs.Outcome]:
    """The install job of account `octo` and then each queued repository job, as the queue would run them."""
    f = gateway_factory(double)
    queued: list[Job] = []

    def submit(delivery_id: str, batch: Sequence[Job]) -> None:
        queued.extend(batch)

    outcomes = jobs.run(Job("install", 1, "octo", delivery), f, submit=submit, preview_threshold=threshold)
    for job in queued:
        outcomes += jobs.run(job, f, submit=submit, preview_threshold=threshold)
    return outcomes


class Clock:
    """A stand-in for a module's `now`: time moves only when a test sets `at`, never by sleeping."""

    def __init__(self) -> None:
        self.at = 1_800_000_000.0

    def __call__(self) -> float:
        return self.at
