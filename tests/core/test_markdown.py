"""User text in reasons stays one code span, backticks and all."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.core import planner
from bot.core.markdown import code_span
from bot.core.model import Options, RepoSnapshot


def test_plain_and_backticked_text() -> None:
    assert code_span("RUN npm ci") == "`RUN npm ci`"
    assert code_span('RUN echo "built `date -u`"') == '``RUN echo "built `date -u`"``'
    assert code_span("`x`") == "`` `x` ``"


@given(st.text(alphabet="ab `", max_size=30))
def test_the_fence_is_longer_than_any_backtick_run_inside(text: str) -> None:
    span = code_span(text)
    fence = re.match(r"`+", span)
    assert fence is not None and span.endswith(fence.group(0))
    inner = span[len(fence.group(0)) : -len(fence.group(0))]
    assert fence.group(0) not in inner
    assert inner in (text, f" {text} ")


def test_a_moved_arg_reason_keeps_the_dockerfile_text() -> None:
    dockerfile = 'FROM alpine\nARG GIT_COMMIT\nRUN apk add curl\nRUN echo "$GIT_COMMIT built `date -u`" > /v\n'
    files = {
        "buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build "
        "--build-arg GIT_COMMIT=$CODEBUILD_RESOLVED_SOURCE_VERSION -t app .\n",
        "Dockerfile": dockerfile,
    }
    plan = planner.plan(RepoSnapshot(tuple(files), files), Options(region="eu-west-1"))
    reason = next(r for e in plan.edits if e.path == "Dockerfile" for r in e.reasons if "GIT_COMMIT" in r)
    assert '``RUN echo "$GIT_COMMIT built `date -u`" > /v``' in reason
