"""Shared helpers for tests that run jobs against the GitHub double: a gateway factory, job contexts, an install
run."""

from __future__ import annotations

from collections.abc import Sequence

from github_double import AppHarness, GitHubDouble, private_key_pem

from bot.app import handlers as jobs
from bot.app.context import Counters, JobContext, Pacer, Submit
from bot.app.payloads import AnyJob, InstallJob
from bot.github.client import GatewayFactory
from bot.github.dry_run import DryRunGateway
from bot.github.gateway import Gateway
from bot.github.gateway import GatewayFactory as GatewayFactoryProtocol
from bot.settings import Settings


def gateway_factory(double: GitHubDouble, pacer: Pacer | None = None) -> GatewayFactory:
    """A factory for App id 7 that talks to `double` with no pacing delays and no retries (``pacer``: the writes'
    shared budget, as a worker's)."""
    settings = Settings(webhook_secret="s", app_id="7", private_key=private_key_pem(), github_api_url=double.base_url)
    return GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0, pacer=pacer)


def context(
    double: GitHubDouble | GatewayFactory,
    *,
    pacer: Pacer | None = None,
    counters: Counters | None = None,
    submit: Submit | None = None,
    preview_threshold: int | None = None,
    dry_run: bool = False,
    store: bool = False,
) -> JobContext:
    """A job context over the double (or a factory made for it). ``store``: the queue's claims, refusal counters
    and retry policy on ``pacer``'s store, as a durable queue's worker has them."""
    factory: GatewayFactoryProtocol = double if isinstance(double, GatewayFactory) else gateway_factory(double, pacer)
    if dry_run:  # as the composition root builds a DRY_RUN=1 worker's gateways
        factory = dry_run_factory(factory)
    if not store:
        return JobContext(
            factory,
            pacer=pacer,
            counters=counters,
            submit=submit,
            preview_threshold=preview_threshold,
            final=queue_final,
        )
    from bot.queue import dedupe
    from bot.queue import refusals as refusal_store

    return JobContext(
        factory,
        pacer=pacer,
        counters=counters,
        submit=submit,
        preview_threshold=preview_threshold,
        claims=dedupe.claims_in(pacer),
        refusals=refusal_store.limiter_in(pacer),
        final=queue_final,
    )


def dry_run_factory(factory: GatewayFactoryProtocol) -> GatewayFactoryProtocol:
    """Gateways that send no write (each is logged instead)."""

    def gateways(installation_id: int, *, interactive: bool = False) -> Gateway:
        return DryRunGateway(factory(installation_id, interactive=interactive))

    return gateways


def queue_final(exc: BaseException) -> bool:
    """The queue's retry policy: True when the queue would not run the job again."""
    from bot.queue.retry import classify_exception

    return classify_exception(exc).action == "fail"


def with_store(harness: AppHarness, pacer: Pacer) -> Pacer:
    """Run the harness's jobs as a durable queue's worker does: with the claims, refusal counters and pacer of
    ``pacer``'s store in their context. Returns the pacer."""
    harness.queue.runner = lambda job: harness.outcomes.extend(
        jobs.run(job, context(harness.factory, pacer=pacer, submit=harness.queue.submit, store=True))
    )
    return pacer


def run_install(
    double: GitHubDouble,
    threshold: int | None,
    delivery: str = "install-1",
    pacer: Pacer | None = None,
    counters: Counters | None = None,
) -> list[jobs.Outcome]:
    """The install job of account `octo` and then each queued repository job, as the queue would run them."""
    queued: list[AnyJob] = []

    def submit(delivery_id: str, batch: Sequence[AnyJob]) -> None:
        queued.extend(batch)

    ctx = context(double, pacer=pacer, counters=counters, submit=submit, preview_threshold=threshold)
    outcomes = jobs.run(InstallJob(1, "octo", delivery), ctx)
    for job in queued:
        outcomes += jobs.run(job, ctx)
    return outcomes


class Clock:
    """A stand-in for a module's `now`: time moves only when a test sets `at`, never by sleeping."""

    def __init__(self) -> None:
        self.at = 1_800_000_000.0

    def __call__(self) -> float:
        return self.at
