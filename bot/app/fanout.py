"""An installation's fan-out: the organization's install opt-in, progress, and the preview-mode summary."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import yaml

from bot.app.payloads import Job
from bot.core.buildspec import yaml_text as buildspec_yaml
from bot.github.client import GitHubError, upsert_issue
from bot.identity import ORG_CONFIG_PATH, ORG_CONFIG_REPO, comment_marker
from bot.logs import log_event
from bot.queue import counters as metrics
from bot.queue import pacing
from bot.queue.retry import RetryLater

OPT_IN_KEY = "install"
OPT_IN_VALUE = "open-pull-requests"
PREVIEW_COUNTER = metrics.INSTALL_PREVIEW
# Preview outcomes that mean "this repository would get a pull request (opened or refreshed)".
WOULD_WRITE = ("would_open", "would_update")
PROGRESS_EVERY = 50
SUMMARY_TITLE = "ecr-cache: preview of the installation (no pull requests opened yet)"
SUMMARY_MARKER = comment_marker("install-preview")

_lock = threading.Lock()
_done: Counter[str] = Counter()  # per fan-out, when no durable queue shares the count (tests, one process)
_tallies: dict[str, Counter[str]] = {}


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


def finished(job: Job, action: str, gw: Any = None) -> None:
    """Count one repository of a fan-out as done: progress lines, and the preview summary after the last one
    (logged, and with ``gw`` an issue in the organization's `.github` repository)."""
    total = job.data.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        return  # not a fan-out job (a push, or a job queued before fan-outs carried their size)
    key = job.delivery_id
    preview = job.data.get("preview") is True
    if preview:
        _tally(job, action)
    pacer = pacing.current()
    if pacer is not None:
        done = pacing.log_progress(pacer, job.installation_id, key, total, job.repo, every=PROGRESS_EVERY)
    else:
        with _lock:
            _done[key] += 1
            done = _done[key]
        if done % PROGRESS_EVERY == 0 or done >= total:
            log_event("install.progress", installation=job.installation_id, delivery=key, done=done,
                      total=total, repository=job.repo)
    if preview and done == total:  # exactly one job sees the last count
        counts = _counts(job)
        log_event("install.preview_summary", level="warning", installation=job.installation_id,
                  delivery=key, account=job.data.get("account"), repositories=total,
                  would_get_pr=sum(counts.get(a, 0) for a in WOULD_WRITE),
                  outcomes=dict(sorted(counts.items())),
                  opt_in=f"set `{OPT_IN_KEY}: {OPT_IN_VALUE}` in {ORG_CONFIG_REPO}/{ORG_CONFIG_PATH} "
                         "(pushing it runs the install again when the App is installed on that repository)")
        if gw is not None:
            summary_issue(gw, job, total, counts)
    if pacer is None and done >= total:
        with _lock:
            _done.pop(key, None)
            _tallies.pop(key, None)


def _tally(job: Job, action: str) -> None:
    counters = metrics.current()
    if counters is not None:
        counters.incr(PREVIEW_COUNTER, installation=str(job.installation_id), delivery=job.delivery_id,
                      result=action)
        return
    with _lock:
        _tallies.setdefault(job.delivery_id, Counter())[action] += 1


def _counts(job: Job) -> dict[str, int]:
    counters = metrics.current()
    if counters is None:
        with _lock:
            return dict(_tallies.get(job.delivery_id, Counter()))
    wanted = {f'delivery="{job.delivery_id}"', f'installation="{job.installation_id}"'}
    out: dict[str, int] = {}
    for (name, labels), value in counters.snapshot().items():
        parts = labels.split(",")
        if name == PREVIEW_COUNTER and wanted <= set(parts):
            result = next((p[len('result="'):-1] for p in parts if p.startswith('result="')), "")
            out[result] = out.get(result, 0) + value
    return out


def summary_body(account: str, total: int, counts: dict[str, int]) -> str:
    """The preview summary as an issue body: what each repository would get, and how to opt in."""
    would = sum(counts.get(a, 0) for a in WOULD_WRITE)
    rows = "\n".join(f"| `{outcome}` | {n} |" for outcome, n in sorted(counts.items()))
    return (f"{SUMMARY_MARKER}\nThe App was installed on **{total}** repositories of **{account}**, more than the "
            "preview threshold, so it opened no pull request. "
            f"**{would}** of them would get one.\n\n| outcome | repositories |\n|---|---|\n{rows}\n\n"
            f"To open them, add `{OPT_IN_KEY}: {OPT_IN_VALUE}` to `{ORG_CONFIG_PATH}` in this repository: the push "
            "runs the install again. Pull requests are paced to GitHub's limits on content-creating requests.\n")


def summary_issue(gw: Any, job: Job, total: int, counts: dict[str, int]) -> str:
    """Open (or update) the summary issue in `<account>/.github`; returns what was done. No `.github` repository,
    one outside the installation, issues turned off or a full pacing window: the log line stays the summary."""
    account = str(job.data.get("account") or job.repo.partition("/")[0])
    repo = f"{account}/{ORG_CONFIG_REPO}"
    body = summary_body(account, total, counts)
    try:
        done, issue = upsert_issue(gw, repo, SUMMARY_TITLE, SUMMARY_MARKER, body)
        if done == "current":
            return "current"
    except (GitHubError, RetryLater) as exc:
        status = getattr(exc, "status", None)
        log_event("install.preview_issue", level="warning" if status != 404 else "info", repository=repo,
                  delivery=job.delivery_id, written=False, reason=str(exc)[:300])
        return "not written"
    log_event("install.preview_issue", repository=repo, delivery=job.delivery_id, written=True, action=done,
              issue=issue.number)
    return done
