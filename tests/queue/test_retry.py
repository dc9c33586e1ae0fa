"""Failure classification by GitHub's rate-limit rules, and capped exponential backoff with jitter."""

from __future__ import annotations

import http.client
import random

import pytest
import requests
from github import GithubException, RateLimitExceededException
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.queue.retry import (
    PermanentFailure,
    RetryLater,
    RetryPolicy,
    classify_exception,
    classify_response,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "headers", "body", "action", "delay"),
    [
        (500, {}, {"message": "Server Error"}, "retry", 0.0),
        (502, {}, "", "retry", 0.0),
        (503, {"x-ratelimit-remaining": "4000"}, {}, "retry", 0.0),
        (403, {"Retry-After": "30"}, {"message": "You have exceeded a secondary rate limit"}, "retry", 30.0),
        (429, {"retry-after": "7"}, {}, "retry", 7.0),
        (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 120)},
            {"message": "API rate limit exceeded"},
            "retry",
            121.0,
        ),
        (403, {}, {"message": "You have exceeded a secondary rate limit."}, "retry", 60.0),
        (429, {}, {}, "retry", 60.0),
        (403, {}, {"message": "Resource not accessible by integration"}, "fail", 0.0),
        (401, {}, {"message": "Bad credentials"}, "fail", 0.0),
        (404, {}, {"message": "Not Found"}, "fail", 0.0),
        (422, {}, {"message": "Validation Failed", "errors": [{"message": "Invalid tree"}]}, "fail", 0.0),
        (422, {}, {"message": "Reference already exists"}, "retry", 0.0),
        (
            422,
            {},
            {
                "message": "Validation Failed",
                "errors": [{"message": "A pull request already exists for o:ecr-cache/setup."}],
            },
            "retry",
            0.0,
        ),
    ],
)
def test_classify_response(status: int, headers: dict[str, str], body: object, action: str, delay: float) -> None:
    decision = classify_response(status, headers, body, at=NOW)
    assert decision.action == action, decision.reason
    assert decision.delay == pytest.approx(delay)


def test_primary_limit_does_not_use_an_attempt_but_secondary_does() -> None:
    primary = classify_response(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(NOW + 5)}, {}, at=NOW)
    secondary = classify_response(403, {"retry-after": "5"}, {}, at=NOW)
    assert (primary.counts, primary.rate_limit_remaining) == (False, 0)
    assert secondary.counts is True


def _response(status: int, headers: dict[str, str], text: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = text.encode()
    return response


def test_classify_exceptions_from_pygithub_requests_and_sockets() -> None:
    policy = RetryPolicy(secondary_min=90)
    gh_404 = GithubException(404, {"message": "Not Found"}, {})
    gh_limit = RateLimitExceededException(403, {"message": "secondary rate limit"}, {"retry-after": "12"})
    gh_secondary = GithubException(403, {"message": "You have exceeded a secondary rate limit"}, {})
    http_503 = requests.HTTPError(response=_response(503, {}, "{}"))
    assert classify_exception(gh_404, policy).action == "fail"
    assert (classify_exception(gh_limit, policy).action, classify_exception(gh_limit, policy).delay) == ("retry", 12)
    assert classify_exception(gh_secondary, policy).delay == 90  # "wait at least one minute" floor, configurable
    assert classify_exception(http_503, policy).action == "retry"
    for exc in (
        requests.ConnectionError("reset"),
        requests.Timeout("slow"),
        ConnectionResetError(),
        http.client.IncompleteRead(b""),
        TimeoutError(),
    ):
        assert classify_exception(exc, policy).action == "retry", exc
    assert classify_exception(ValueError("bug"), policy).action == "fail"
    assert classify_exception(PermanentFailure("archived"), policy).reason == "archived"
    later = classify_exception(RetryLater(42, "content-creation pacing"), policy)
    assert (later.action, later.delay, later.counts) == ("retry", 42, False)


def test_policy_never_waits_less_than_github_asked() -> None:
    policy = RetryPolicy(base=1, cap=10)
    decision = classify_response(403, {"retry-after": "45"}, {}, at=NOW)
    assert policy.delay(decision, attempt=1) == 45
    assert policy.delay(classify_response(500, {}, {}), attempt=1) <= 1


@settings(max_examples=60, deadline=None)
@given(attempt=st.integers(1, 40), base=st.floats(0.01, 10), cap=st.floats(0.1, 3600), seed=st.integers(0, 2**32))
def test_backoff_is_jittered_capped_and_grows(attempt: int, base: float, cap: float, seed: int) -> None:
    policy = RetryPolicy(base=base, cap=cap)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = policy.backoff(attempt, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling
    assert policy.backoff(attempt + 1, random.Random(seed)) >= delay - 1e-9 or ceiling == cap


def test_jitter_spreads_retries() -> None:
    rng = random.Random(1)
    delays = {round(RetryPolicy(base=1).backoff(5, rng), 6) for _ in range(20)}
    assert len(delays) == 20


def test_exhausted_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3)] == [False, False, True]


def test_absurd_retry_after_and_reset_are_capped_not_trusted() -> None:
    from bot.queue.retry import RetryPolicy, classify_response

    policy = RetryPolicy()
    for headers in (
        {"Retry-After": "1e12"},
        {"Retry-After": "inf"},
        {"Retry-After": "nan"},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e15"},
    ):
        decision = classify_response(403, headers, {"message": "API rate limit exceeded"}, at=1000.0)
        assert decision.action == "retry"
        assert 0 <= policy.delay(decision, 1) <= policy.max_delay, headers


def test_the_gateways_pacing_deferral_is_a_retry_that_uses_no_attempt() -> None:
    """The gateway raises `bot.github.gateway.RetryLater` when a write window is full: the queue must defer the
    job, not fail it as a bug (one class, so the two cannot drift apart)."""
    from bot.github import gateway

    assert RetryLater is gateway.RetryLater
    later = classify_exception(gateway.RetryLater(42, "content-creation pacing"), RetryPolicy())
    assert (later.action, later.delay, later.counts, later.reason) == ("retry", 42, False, "content-creation pacing")
