"""Property tests: generated Dockerfiles are reordered safely or left alone with a finding; never a crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import ecosystems
from bot.core.buildspec.build_args import OPAQUE
from bot.core.discover import Discovery
from bot.core.dockerfile.args import ArgFacts
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.plan import plan_dockerfiles, verify_dockerfile_edit
from bot.core.dockerfile.reorder import BuildContext, copy_all
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot
from bot.core.shell.run_commands import run_commands

BODY = [
    "WORKDIR /app",
    "WORKDIR sub",
    "COPY . .",
    "COPY . /app",
    "ADD . /srv",
    "COPY package.json package-lock.json ./",
    "COPY src ./src",
    "RUN npm ci",
    "RUN npm install --omit=dev",
    "RUN npm run build",
    "RUN apk add --no-cache git",
    "RUN pip install -r requirements.txt",
    "RUN go build ./...",
    "RUN composer install --no-dev",
    "RUN chmod +x ./run.sh",
    "ENV NODE_ENV=production",
    "ARG GIT_COMMIT",
    "ARG BUILD_NUMBER=1",
    "ARG FOO",
    "LABEL rev=$GIT_COMMIT",
    "RUN echo $GIT_COMMIT > /version",
    "LABEL foo=$FOO",
    "USER node",
    "EXPOSE 8080",
    "# a comment",
    "",
    "RUN <<EOF\necho hi\nEOF",
    "RUN apt-get update && \\\n    apt-get install -y curl",
    'CMD ["node", "x"]',
    "RUN mkdir -p /app/data",
    "COPY --chown=node:node . .",
    "RUN --mount=type=cache,target=/root/.npm npm ci",
]
TREE = [
    "package.json",
    "package-lock.json",
    "requirements.txt",
    "go.mod",
    "go.sum",
    "composer.json",
    "composer.lock",
    "src/index.js",
    "run.sh",
    ".dockerignore",
]


@st.composite
def dockerfiles(draw: st.DrawFn) -> tuple[str, tuple[str, ...], dict[str, str]]:
    """A Dockerfile text, a repository tree and the manifest contents."""
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("ARG BASE_TAG=20")
    for n in range(draw(st.integers(1, 3))):
        lines.append(f"FROM node:20 AS s{n}")
        body = draw(st.lists(st.sampled_from(BODY), max_size=9))
        if n > 0 and draw(st.booleans()):
            body.insert(draw(st.integers(0, len(body))), f"COPY --from=s{n - 1} /app/dist ./dist")
        lines += body
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(line.replace("\n", newline) for line in lines)
    if draw(st.booleans()):
        text += newline
    tree = tuple(["Dockerfile", *draw(st.lists(st.sampled_from(TREE), unique=True))])
    scripts = {"postinstall": "node x.js"} if draw(st.booleans()) else {"build": "tsc"}
    files = {
        "Dockerfile": text,
        "package.json": json.dumps({"scripts": scripts}),
        "requirements.txt": "flask\n",
        "go.mod": "module x\n",
        "composer.json": "{}",
    }
    if ".dockerignore" in tree:  # moving an npm install needs node_modules out of the context
        files[".dockerignore"] = "**/node_modules\n"
    return text, tree, files


def _plan(
    text: str,
    tree: tuple[str, ...],
    files: dict[str, str],
    passed: tuple[str, ...] = (),
    target: str | None = None,
    opaque: bool = True,
) -> PartialPlan:
    snapshot = RepoSnapshot(paths=tree, files={**files, "Dockerfile": text})
    # `passed`: build args the buildspec sets to a per-build value; `target`: `--target`.
    link = BuildLink(
        "buildspec.yml",
        "build",
        0,
        1,
        "Dockerfile",
        ".",
        "cache",
        volatile_args=passed,
        target=target,
        unknown_args=(OPAQUE,) if opaque else (),
    )
    return plan_dockerfiles(snapshot, Options(dockerignore=False), (link,), Discovery(dockerfiles=("Dockerfile",)))


def _unexplained_copy_before_install(text: str, tree: tuple[str, ...], files: dict[str, str]) -> bool:
    """A whole-context COPY still precedes an install of an ecosystem not already installed first."""
    df = parse(text)
    ctx = BuildContext("", frozenset(tree), files)
    for stage in df.stages:
        insts = df.stage_instructions(stage)
        for n, inst in enumerate(insts):
            if copy_all(inst, ctx) is None:
                continue
            before = {
                r.ecosystem
                for i in insts[:n]
                if i.keyword == "RUN"
                for c in run_commands(i) or []
                if (r := ecosystems.recognise(c)) is not None and r.deps_only
            }
            for later in insts[n + 1 :]:
                if later.keyword != "RUN":
                    continue
                found = [r for c in run_commands(later) or [] if (r := ecosystems.recognise(c)) is not None]
                if found:
                    return found[0].deps_only and found[0].ecosystem not in before
            break
    return False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles(), st.sampled_from([(), ("FOO",)]), st.sampled_from([None, "s0", "s1"]), st.booleans())
def test_reordered_safely_or_left_with_a_finding(
    case: tuple[str, tuple[str, ...], dict[str, str]], passed: tuple[str, ...], target: str | None, opaque: bool
) -> None:
    text, tree, files = case
    result = _plan(text, tree, files, passed, target, opaque)
    edits = [e for e in result.edits if e.path == "Dockerfile"]
    final = edits[0].content if edits else text
    if edits:
        facts = ArgFacts(frozenset(passed), None if opaque else frozenset())
        assert verify_dockerfile_edit(text, final, facts) is None
        assert final.endswith("\n") == text.endswith("\n")
        assert ("\r\n" in final) == ("\r\n" in text)
        parse(final)
        again = _plan(final, tree, files, passed, target, opaque)
        assert not [e for e in again.edits if e.path == "Dockerfile"], "not idempotent"
    if not edits and _unexplained_copy_before_install(text, tree, files):
        assert any(f.code in ("dockerfile-not-reordered", "dockerfile-proof-failed") for f in result.findings)
    assert len(result.cache_tables) == 1
    table = result.cache_tables[0]
    assert table.saved_on_source_change >= 0
    if not edits:
        assert table.before == table.after


@settings(max_examples=150, deadline=None)
@given(dockerfiles(), st.data())
def test_verify_rejects_dropped_or_swapped_instructions(
    case: tuple[str, tuple[str, ...], dict[str, str]], data: st.DataObject
) -> None:
    text = case[0]
    df = parse(text)
    body = [i for i in df.instructions if i.stage >= 0 and i.keyword != "FROM"]
    if not body:
        return
    victim = data.draw(st.sampled_from(body))
    dropped = "".join(line for n, line in enumerate(df.lines) if not victim.start <= n <= victim.end)
    if dropped.endswith("\n") == text.endswith("\n"):
        assert verify_dockerfile_edit(text, dropped) is not None
    stage = df.stage_instructions(df.stages[victim.stage])
    pos = stage.index(victim)
    if pos + 1 < len(stage):
        nxt = stage[pos + 1]
        if df.block(victim).rstrip() != df.block(nxt).rstrip() and {victim.keyword, nxt.keyword} == {"RUN"}:
            lines = list(df.lines)
            a, b = lines[victim.start : victim.end + 1], lines[nxt.start : nxt.end + 1]
            if all(x.endswith("\n") for x in a + b):
                swapped = "".join(
                    lines[: victim.start] + b + lines[victim.end + 1 : nxt.start] + a + lines[nxt.end + 1 :]
                )
                assert verify_dockerfile_edit(text, swapped) is not None
