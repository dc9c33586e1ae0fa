"""An installation's fan-out: preview mode and the organization's opt-in, progress, and the preview summary."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import yaml

from bot.app.context import Counters, Pacer, Progress
from bot.app.payloads import AnyJob
from bot.core.buildspec import yaml_text as buildspec_yaml
from bot.github.gateway import Gateway, GitHubError, RetryLater, upsert_issue
from bot.identity import ORG_CONFIG_PATH, ORG_CONFIG_REPO, comment_marker
from bot.logs import log_event

OPT_IN_KEY = "install"
OPT_IN_VALUE = "open-pull-requests"
# The counter's name in /metrics (bot/queue/counters.py gives its help text under the same name).
PREVIEW_COUNTER = "ecr_cache_bot_install_preview_repositories_total"
# Preview outcomes that mean "this repository would get a pull request (opened or refreshed)".
WOULD_WRITE = ("would_open", "would_update")
PROGRESS_EVERY = 50
SUMMARY_TITLE = "ecr-cache: preview of the installation (no pull requests opened yet)"
SUMMARY_MARKER = comment_marker("install-preview")

_lock = threading.Lock()
_done: Counter[str] = Counter()  # per fan-out, when no durable queue shares the count (tests, one process)
_tallies: dict[str, Counter[str]] = {}


def preview_mode(repository_count: int, threshold: int, opted_in: bool) -> bool:
    """First install on more than `threshold` repositories opens no PRs until the organization opts in."""
    return repository_count > threshold and not opted_in


class _LocalProgress:
    """Fan-out progress counted in this process, when no durable queue shares the count (tests, one process)."""

    def progress(self, installation_id: int, key: str, total: int) -> int:
        """Count one more repository done under `key`; return how many are done."""
        with _lock:
            _done[key] += 1
            return _done[key]


_LOCAL = _LocalProgress()


def log_progress(pacer: Progress, installation_id: int, key: str, total: int, repo: str, every: int = 50) -> int:
    """Record one repository of the fan-out `key` and log every `every` and at the end."""
    done = pacer.progress(installation_id, key, total)
    if done % every == 0 or done >= total:
        log_event(
            "install.progress", installation=installation_id, delivery=key, done=done, total=total, repository=repo
        )
    return done


def parse_opt_in(text: str | None) -> tuple[bool, str]:
    """Whether the organization config opts in to pull requests on a large first install, and why (not)."""
    where = f"{ORG_CONFIG_REPO}/{ORG_CONFIG_PATH}"
    if text is None:
        return False, f"no {where}"
    try:
        # Bounded like a buildspec: nesting depth, alias expansion and UTF-8 are checked before loading.
        data: Any = buildspec_yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return False, f"{where} is not valid YAML ({type(exc).__name__})"
    if not isinstance(data, dict) or OPT_IN_KEY not in data:
        return False, f"{where} has no `{OPT_IN_KEY}` key"
    value = data[OPT_IN_KEY]
    if value != OPT_IN_VALUE:
        return False, f"`{OPT_IN_KEY}` in {where} must be `{OPT_IN_VALUE}`, got {value!r}"
    return True, f"`{OPT_IN_KEY}: {OPT_IN_VALUE}` in {where}"


def finished(
    job: AnyJob, action: str, *, pacer: Pacer | None = None, counters: Counters | None = None, gw: Gateway | None = None
) -> None:
    """Count one repository of a fan-out as done: progress lines, and the preview summary after the last one
    (logged, and with ``gw`` an issue in the organization's `.github` repository). ``pacer`` and ``counters``:
    the queue's shared store (None: counted in this process)."""
    total = job.data.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        return  # not a fan-out job (a push, or a job queued before fan-outs carried their size)
    key = job.delivery_id
    preview = job.data.get("preview") is True
    if preview:
        _tally(job, action, counters)
    counted = pacer if pacer is not None else _LOCAL
    done = log_progress(counted, job.installation_id, key, total, job.subject, every=PROGRESS_EVERY)
    if preview and done == total:  # exactly one job sees the last count
        counts = _counts(job, counters)
        log_event(
            "install.preview_summary",
            level="warning",
            installation=job.installation_id,
            delivery=key,
            account=job.data.get("account"),
            repositories=total,
            would_get_pr=sum(counts.get(a, 0) for a in WOULD_WRITE),
            outcomes=dict(sorted(counts.items())),
            opt_in=f"set `{OPT_IN_KEY}: {OPT_IN_VALUE}` in {ORG_CONFIG_REPO}/{ORG_CONFIG_PATH} "
            "(pushing it runs the install again when the App is installed on that repository)",
        )
        if gw is not None:
            summary_issue(gw, job, total, counts)
    if pacer is None and done >= total:
        with _lock:
            _done.pop(key, None)
            _tallies.pop(key, None)


def _tally(job: AnyJob, action: str, counters: Counters | None) -> None:
    if counters is not None:
        counters.incr(PREVIEW_COUNTER, installation=str(job.installation_id), delivery=job.delivery_id, result=action)
        return
    with _lock:
        _tallies.setdefault(job.delivery_id, Counter())[action] += 1


def _counts(job: AnyJob, counters: Counters | None) -> dict[str, int]:
    if counters is None:
        with _lock:
            return dict(_tallies.get(job.delivery_id, Counter()))
    wanted = {f'delivery="{job.delivery_id}"', f'installation="{job.installation_id}"'}
    out: dict[str, int] = {}
    for (name, labels), value in counters.snapshot().items():
        parts = labels.split(",")
        if name == PREVIEW_COUNTER and wanted <= set(parts):
            result = next((p[len('result="') : -1] for p in parts if p.startswith('result="')), "")
            out[result] = out.get(result, 0) + value
    return out


def summary_body(account: str, total: int, counts: dict[str, int]) -> str:
    """The preview summary as an issue body: what each repository would get, and how to opt in."""
    would = sum(counts.get(a, 0) for a in WOULD_WRITE)
    rows = "\n".join(f"| `{outcome}` | {n} |" for outcome, n in sorted(counts.items()))
    return (
        f"{SUMMARY_MARKER}\nThe App was installed on **{total}** repositories of **{account}**, more than the "
        "preview threshold, so it opened no pull request. "
        f"**{would}** of them would get one.\n\n| outcome | repositories |\n|---|---|\n{rows}\n\n"
        f"To open them, add `{OPT_IN_KEY}: {OPT_IN_VALUE}` to `{ORG_CONFIG_PATH}` in this repository: the push "
        "runs the install again. Pull requests are paced to GitHub's limits on content-creating requests.\n"
    )


def summary_issue(gw: Gateway, job: AnyJob, total: int, counts: dict[str, int]) -> str:
    """Open (or update) the summary issue in `<account>/.github`; returns what was done. No `.github` repository,
    one outside the installation, issues turned off or a full pacing window: the log line stays the summary."""
    account = str(job.data.get("account") or job.subject.partition("/")[0])
    repo = f"{account}/{ORG_CONFIG_REPO}"
    body = summary_body(account, total, counts)
    try:
        done, issue = upsert_issue(gw, repo, SUMMARY_TITLE, SUMMARY_MARKER, body)
        if done == "current":
            return "current"
    except (GitHubError, RetryLater) as exc:
        status = getattr(exc, "status", None)
        log_event(
            "install.preview_issue",
            level="warning" if status != 404 else "info",
            repository=repo,
            delivery=job.delivery_id,
            written=False,
            reason=str(exc)[:300],
        )
        return "not written"
    log_event(
        "install.preview_issue",
        repository=repo,
        delivery=job.delivery_id,
        written=True,
        action=done,
        issue=issue.number,
    )
    return done
