"""Volatile ARGs move down to their first use, only when that is provably the same build."""

from __future__ import annotations

import pytest

from bot.core.dockerfile.args import move_args, volatile_name
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.verify import verify_dockerfile_edit


@pytest.mark.parametrize(
    ("name", "volatile"),
    [
        ("GIT_COMMIT", True),
        ("COMMIT_SHA", True),
        ("BUILD_NUMBER", True),
        ("VERSION", True),
        ("BUILD_DATE", True),
        ("CODEBUILD_RESOLVED_SOURCE_VERSION", True),
        ("VCS_REF", True),
        ("NODE_VERSION", False),
        ("PORT", False),
        ("PYTHON_VERSION", False),
        ("APP_VERSION", True),
        # git and the package tools read these from the environment of every RUN (a token in .npmrc, git's own
        # GIT_* settings for `go mod download`); they are not per-build values and must stay where they are.
        ("GIT_TOKEN", False),
        ("GIT_SSH_COMMAND", False),
        ("GIT_TERMINAL_PROMPT", False),
        ("GIT_CONFIG_COUNT", False),
        ("CI_JOB_TOKEN", False),
        ("CI_REGISTRY_PASSWORD", False),
        ("CODEBUILD_GIT_CREDENTIALS", False),
        ("GIT_BRANCH", True),
        ("GIT_SHORT_SHA", True),
        ("CI_COMMIT_SHA", True),
        ("CI_PIPELINE_ID", True),
    ],
)
def test_volatile_names(name: str, volatile: bool) -> None:
    inst = parse(f"FROM a\nARG {name}\n").instructions[1]
    assert (volatile_name(inst) is not None) is volatile


def test_moves_past_installs_and_copies_to_first_use() -> None:
    before = (
        "FROM node:20\n# the commit\nARG GIT_COMMIT\nWORKDIR /app\nCOPY package.json package-lock.json ./\n"
        "RUN npm ci\nCOPY . .\nRUN echo $GIT_COMMIT > /rev\n"
    )
    after, reasons = move_args(parse(before))
    assert after == (
        "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n"
        "# the commit\nARG GIT_COMMIT\nRUN echo $GIT_COMMIT > /rev\n"
    )
    assert len(reasons) == 1 and "GIT_COMMIT" in reasons[0]
    assert verify_dockerfile_edit(before, after) is None
    assert move_args(parse(after)) == (None, [])


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\nARG VERSION\nENV V=${VERSION}\nRUN apk add x\n",  # used right away by ENV
        "FROM a\nARG VERSION\nRUN ./build.sh\nRUN apk add x\n",  # a script may read it from the env
        "FROM a\nARG VERSION\nRUN apk add x\n",  # never used in the stage
        "ARG VERSION=1\nFROM a:$VERSION\nRUN apk add x\nLABEL v=$VERSION\n",  # global ARG before FROM stays
        "FROM a\nARG VERSION\nONBUILD RUN echo hi\nLABEL v=$VERSION\n",  # ONBUILD is not analysed
        # The default reads BASE, which a later ENV changes: moving the ARG would change its default.
        "FROM a\nENV BASE=1\nARG GIT_SHA=${BASE}\nENV BASE=2\nCOPY . .\nLABEL x=$GIT_SHA\n",
    ],
)
def test_no_move(text: str) -> None:
    assert move_args(parse(text)) == (None, [])


def test_each_stage_on_its_own() -> None:
    before = (
        "FROM a AS one\nARG BUILD_NUMBER\nRUN apk add git\nLABEL n=$BUILD_NUMBER\n"
        "FROM b\nARG BUILD_NUMBER\nCOPY --from=one /x /x\nRUN make\n"
    )
    after, reasons = move_args(parse(before))
    assert after == (
        "FROM a AS one\nRUN apk add git\nARG BUILD_NUMBER\nLABEL n=$BUILD_NUMBER\n"
        "FROM b\nCOPY --from=one /x /x\nARG BUILD_NUMBER\nRUN make\n"
    )
    assert len(reasons) == 2
    assert verify_dockerfile_edit(before, after) is None


def test_verify_rejects_moving_an_arg_past_its_use() -> None:
    before = "FROM a\nARG GIT_COMMIT\nRUN echo $GIT_COMMIT\nRUN apk add x\n"
    wrong = "FROM a\nRUN echo $GIT_COMMIT\nARG GIT_COMMIT\nRUN apk add x\n"
    assert verify_dockerfile_edit(before, wrong) is not None
