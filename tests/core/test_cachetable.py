"""Cache tables: which steps re-run on a source-only or a manifest-only change, before and after."""

from __future__ import annotations

from bot.core.dockerfile.args import ArgFacts
from bot.core.dockerfile.cachetable import steps, table
from bot.core.dockerfile.parse import parse

SEED_BEFORE = 'FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\nRUN npm run build\nCMD ["node"]\n'
SEED_AFTER = (
    "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n"
    'RUN npm run build\nCMD ["node"]\n'
)


def _reruns(text: str) -> list[tuple[int, bool, bool]]:
    return [(s.line, s.reruns_on_source_change, s.reruns_on_manifest_change) for s in steps(parse(text))]


def test_seed_app_before_and_after() -> None:
    assert _reruns(SEED_BEFORE) == [(3, True, True), (4, True, True), (5, True, True)]
    assert _reruns(SEED_AFTER) == [(3, False, True), (4, False, True), (5, True, True), (6, True, True)]
    t = table("Dockerfile", parse(SEED_BEFORE), parse(SEED_AFTER))
    assert t.saved_on_source_change == 1
    first = t.before[0]
    assert first.reason == "`COPY . .` copies application source"
    assert [s.reason for s in t.after if s.reason] == [
        "`COPY package.json package-lock.json ./` copies a dependency manifest",
        "`COPY . .` copies application source",
    ]


def test_copy_from_and_base_stage_propagate_misses() -> None:
    text = (
        "FROM node:20 AS deps\nCOPY package.json package-lock.json ./\nRUN npm ci\n"
        "FROM deps AS build\nCOPY src ./src\nRUN npm run build\n"
        "FROM nginx\nCOPY --from=build /dist /usr/share/nginx/html\nCOPY --from=deps /node_modules /nm\n"
    )
    result = {s.line: s for s in steps(parse(text))}
    assert not result[3].reruns_on_source_change and result[3].reruns_on_manifest_change
    assert result[5].reruns_on_source_change and result[5].reruns_on_manifest_change  # base stage re-ran
    assert result[6].reason == "" and result[6].reruns_on_source_change
    assert result[8].reruns_on_source_change and "stage `build`" in result[8].reason
    assert result[9].reruns_on_source_change  # after a miss in the same stage everything re-runs


def test_volatile_arg_misses_at_first_use_not_definition() -> None:
    text = "FROM alpine\nARG GIT_COMMIT\nCOPY conf.txt /etc/\nRUN apk add curl\nLABEL x=1\n"
    result = steps(parse(text))
    assert [(s.line, s.reruns_on_source_change) for s in result] == [(3, True), (4, True)]
    # conf.txt is not a manifest, so COPY misses on a source change; the ARG would make line 4 miss anyway.
    manifest_only = [(s.line, s.reruns_on_manifest_change) for s in result]
    assert manifest_only == [(3, False), (4, True)]
    only_arg = steps(parse("FROM alpine\nARG GIT_COMMIT\nRUN apk add curl\n"))
    assert only_arg[0].reruns_on_source_change and only_arg[0].reruns_on_manifest_change
    assert only_arg[0].reason == (
        "`ARG GIT_COMMIT` may change on every build (its name suggests a commit, build number or date)"
    )
    # When the buildspec passes it a per-build value, that is said; when its builds never pass it, it is constant.
    passed = steps(parse("FROM alpine\nARG GIT_COMMIT\nRUN apk add curl\n"), ArgFacts(frozenset({"GIT_COMMIT"})))
    assert passed[0].reason == "`ARG GIT_COMMIT` changes on every build (the buildspec passes it a per-build value)"
    never = steps(parse("FROM alpine\nARG GIT_COMMIT\nRUN apk add curl\n"), ArgFacts(frozenset(), frozenset()))
    assert not never[0].reruns_on_source_change
    moved = steps(parse("FROM alpine\nRUN apk add curl\nARG GIT_COMMIT\nLABEL rev=$GIT_COMMIT\n"))
    assert [s.reruns_on_source_change for s in moved] == [False]


def test_manifest_globs_and_bind_mounts() -> None:
    text = "FROM node:20\nCOPY package*.json ./\nRUN --mount=type=bind,source=src,target=/src cp -r /src /app\n"
    result = steps(parse(text))
    assert (result[0].reruns_on_source_change, result[0].reruns_on_manifest_change) == (False, True)
    assert result[1].reruns_on_source_change


def test_run_mounting_a_stage_that_reran_misses() -> None:
    text = (
        "FROM golang AS build\nCOPY . .\nRUN go build -o /out/app\n"
        "FROM alpine\nRUN apk add curl\nRUN --mount=type=bind,from=build,source=/out,target=/in cp /in/app /app\n"
    )
    result = {s.line: s for s in steps(parse(text))}
    assert not result[5].reruns_on_source_change
    assert result[6].reruns_on_source_change and "stage `build`" in result[6].reason
