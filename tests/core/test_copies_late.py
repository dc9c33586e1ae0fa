"""A copy of a build output, an artifact or a single source file moves below heavy installs that never read it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.discover import Discovery
from bot.core.dockerfile.cachetable import table
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.plan import counts, plan_dockerfiles, verify_dockerfile_edit
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")

BUILD_OUTPUT = """FROM ubuntu:22.04
WORKDIR /srv
COPY build_output/ app/
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless
RUN curl -fsSL https://downloads.example.com/sdk-4.2.tgz -o /tmp/sdk.tgz && tar -xzf /tmp/sdk.tgz -C /opt
EXPOSE 8080
CMD ["/srv/app/run"]
"""
BUILD_OUTPUT_AFTER = """FROM ubuntu:22.04
WORKDIR /srv
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless
RUN curl -fsSL https://downloads.example.com/sdk-4.2.tgz -o /tmp/sdk.tgz && tar -xzf /tmp/sdk.tgz -C /opt
COPY build_output/ app/
EXPOSE 8080
CMD ["/srv/app/run"]
"""
PYC = """FROM python:3.12-slim
WORKDIR /srv
COPY app.pyc .
RUN apt-get update && apt-get install -y libpq5
RUN pip install flask==3.0.3 gunicorn==22.0.0
CMD ["gunicorn", "app:app"]
"""
INDEX_JS = """FROM node:20-alpine
ADD index.js .
RUN apk add --no-cache ffmpeg
RUN npm install -g pm2@5.4.2
CMD ["pm2-runtime", "index.js"]
"""
FILES = ("build_output/run", "build_output/lib/app.jar", "app.pyc", "index.js")


def _plan(dockerfile: str) -> PartialPlan:
    snapshot = RepoSnapshot(paths=("Dockerfile", *FILES), files={"Dockerfile": dockerfile})
    return plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))


def _edit(dockerfile: str) -> str | None:
    edits = [e.content for e in _plan(dockerfile).edits if e.path == "Dockerfile"]
    return edits[0] if edits else None


def test_build_output_moves_below_the_sdk_installs() -> None:
    result = _plan(BUILD_OUTPUT)
    [edit] = [e for e in result.edits if e.path == "Dockerfile"]
    assert edit.content == BUILD_OUTPUT_AFTER
    assert verify_dockerfile_edit(BUILD_OUTPUT, edit.content) is None
    [reason] = edit.reasons
    assert "`COPY build_output/ app/`" in reason and "2 steps" in reason
    assert counts(result.edits, result.cache_tables)["copies_moved_late"] == 1
    assert table("Dockerfile", parse(BUILD_OUTPUT), parse(edit.content)).saved_on_source_change == 2
    assert _edit(edit.content) is None  # idempotent


@pytest.mark.parametrize("dockerfile", [PYC, INDEX_JS])
def test_single_source_file_moves_below_system_and_named_installs(dockerfile: str) -> None:
    after = _edit(dockerfile)
    assert after is not None
    lines = dockerfile.splitlines()
    moved = lines[2] if lines[1].startswith("WORKDIR") else lines[1]
    assert after.splitlines()[-2] == moved  # just above CMD, below both RUNs
    assert verify_dockerfile_edit(dockerfile, after) is None
    assert sorted(after.splitlines()) == sorted(lines)


@pytest.mark.parametrize(
    "change",
    [
        # A step reads the copied files, or may.
        ("RUN apt-get update", "RUN /srv/app/run --self-test && apt-get update"),
        ("RUN apt-get update", "RUN python3 -m compileall /srv && apt-get update"),
        # A step changes the mode or owner of a folder above the copy.
        ("RUN apt-get update", "RUN chmod -R g+w /srv && apt-get update"),
        # The copy sets an owner; a USER, WORKDIR or another COPY comes first.
        ("COPY build_output/ app/", "COPY --chown=1000:1000 build_output/ app/"),
        ("RUN apt-get update", "USER 1000\nRUN apt-get update"),
        ("RUN apt-get update", "WORKDIR /srv/app\nRUN apt-get update"),
        ("RUN apt-get update", "COPY config.yml /etc/app/\nRUN apt-get update"),
        # Not an artifact: a config file may be what the package install reads.
        ("COPY build_output/ app/", "COPY nginx.conf /etc/nginx/nginx.conf"),
        ("COPY build_output/ app/", "COPY requirements.txt ."),
        ("COPY build_output/ app/", "COPY $APP_DIR/ app/"),
        # A system folder a package may write to, or a folder in the base image's unknown working directory.
        ("COPY build_output/ app/", "COPY build_output/ /var/www/html/"),
        ("COPY build_output/ app/", "COPY app.jar /opt/"),
        ("WORKDIR /srv\n", ""),
    ],
)
def test_left_alone_when_not_provably_safe(change: tuple[str, str]) -> None:
    text = BUILD_OUTPUT.replace(*change, 1)
    after = _edit(text)
    moved_late = after is not None and text.splitlines()[2] != after.splitlines()[2]
    assert not moved_late, after


def test_application_folder_under_usr_src_moves() -> None:
    text = BUILD_OUTPUT.replace("WORKDIR /srv", "WORKDIR /usr/src/app")
    after = _edit(text)
    assert after is not None and after.splitlines()[4] == "COPY build_output/ app/"


def test_cheap_steps_alone_are_not_worth_a_move() -> None:
    cheap = 'FROM alpine:3.20\nWORKDIR /srv\nCOPY app.jar .\nRUN mkdir -p /var/log/app\nCMD ["java"]\n'
    assert _edit(cheap) is None


def test_unknown_working_directory_blocks_absolute_paths() -> None:
    # `ADD index.js .` lands in the base image's WORKDIR, which may be any folder: a step naming an absolute
    # path may touch it, so the copy stops above that step.
    text = INDEX_JS.replace("npm install -g pm2@5.4.2", "npm install -g pm2@5.4.2 && rm -rf /root/.npm")
    after = _edit(text)
    assert after is not None
    assert after.splitlines()[1:4] == [
        "RUN apk add --no-cache ffmpeg",
        "ADD index.js .",
        "RUN npm install -g pm2@5.4.2 && rm -rf /root/.npm",
    ]
    only = "FROM node:20-alpine\nADD index.js .\nRUN apk add --no-cache ffmpeg && rm -rf /var/cache/apk/*\n"
    assert _edit(only) is None


# Files copied before an install that the install does not read (the ecosystem table says what it reads).
CONFIGS_FIRST = """FROM node:20-alpine AS build
WORKDIR /web
COPY package.json package-lock.json ./
COPY tailwind.config.js jsconfig.json ./
RUN npm ci
COPY . .
RUN npm run build
"""
WEB = {
    "package.json": '{"scripts": {"build": "next build"}, "dependencies": {"next": "14.2.3"}}',
    "package-lock.json": "{}",
    ".dockerignore": "node_modules\n",
}


def _web_plan(dockerfile: str, files: dict[str, str] | None = None) -> PartialPlan:
    files = WEB if files is None else files
    snapshot = RepoSnapshot(
        paths=("Dockerfile", "tailwind.config.js", "jsconfig.json", "pages/index.js", *files),
        files={"Dockerfile": dockerfile, **files},
    )
    return plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))


def _web_edit(dockerfile: str, files: dict[str, str] | None = None) -> str | None:
    edits = [e.content for e in _web_plan(dockerfile, files).edits if e.path == "Dockerfile"]
    return edits[0] if edits else None


def test_build_configs_move_below_the_install_that_does_not_read_them() -> None:
    result = _web_plan(CONFIGS_FIRST)
    [edit] = [e for e in result.edits if e.path == "Dockerfile"]
    assert edit.content == CONFIGS_FIRST.replace(
        "COPY tailwind.config.js jsconfig.json ./\nRUN npm ci\n",
        "RUN npm ci\nCOPY tailwind.config.js jsconfig.json ./\n",
    )
    assert verify_dockerfile_edit(CONFIGS_FIRST, edit.content) is None
    assert "`npm ci`" in edit.reasons[0] and "the step it passes neither reads nor changes" in edit.reasons[0]
    assert _web_edit(edit.content) is None


def test_build_configs_stay_when_the_install_may_read_them() -> None:
    hooked = {**WEB, "package.json": '{"scripts": {"postinstall": "node scripts/setup.js"}}'}
    assert _web_edit(CONFIGS_FIRST, hooked) is None
    # A file the install reads (`.npmrc`) or one the bot does not know as build-only configuration stays.
    assert _web_edit(CONFIGS_FIRST.replace("jsconfig.json ./", ".npmrc ./")) is None
    assert _web_edit(CONFIGS_FIRST.replace("jsconfig.json ./", "prisma/schema.prisma ./")) is None
    # An install in another folder than the one the files go to, or one the bot cannot check.
    assert _web_edit(CONFIGS_FIRST.replace("RUN npm ci", "RUN cd /other && npm ci")) is None
    assert _web_edit(CONFIGS_FIRST.replace("RUN npm ci", "RUN npm ci && npx tailwindcss -o out.css")) is None


def test_mixed_manifest_copy_gets_a_suggestion_not_an_edit() -> None:
    mixed = CONFIGS_FIRST.replace(
        "COPY package.json package-lock.json ./\nCOPY tailwind.config.js jsconfig.json ./",
        "COPY package.json package-lock.json tailwind.config.js jsconfig.json ./",
    )
    result = _web_plan(mixed)
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    [note] = [f for f in result.findings if f.code == "dockerfile-copy-not-read-by-install"]
    assert "`tailwind.config.js` and `jsconfig.json`" in note.message and "`npm ci`" in note.message
    assert "the later copy of the whole folder already brings them" in note.message
    alone = _web_plan(mixed.replace("COPY . .", "COPY pages ./pages"))
    [note] = [f for f in alone.findings if f.code == "dockerfile-copy-not-read-by-install"]
    assert "already brings them" not in note.message


# Generated Dockerfiles: a late move always verifies, is idempotent, and never crosses a step that reads the copy,
# a folder above it, the working directory or the user.
LATE_BODY = [
    "WORKDIR /srv",
    "WORKDIR /var/www/html",
    "USER app",
    "COPY app.jar .",
    "COPY dist/ /srv/www/",
    "ADD index.js .",
    "COPY tailwind.config.js jsconfig.json ./",
    "COPY package.json package-lock.json ./",
    "RUN npm ci",
    "RUN apt-get update && apt-get install -y curl",
    "RUN pip install flask==3.0.3",
    "RUN npm install -g pm2@5",
    "RUN java -jar app.jar --warmup",
    "RUN chmod -R 755 /srv",
    "RUN mkdir -p /srv/www/cache",
    "ENV MODE=prod",
    "EXPOSE 80",
    'CMD ["node", "index.js"]',
    "COPY . .",
]
NEVER_CROSSED = {
    "WORKDIR /srv",
    "WORKDIR /var/www/html",
    "USER app",
    "RUN java -jar app.jar --warmup",
    "RUN chmod -R 755 /srv",
    "RUN mkdir -p /srv/www/cache",
    "COPY . .",
}
LATE_COPIES = {"COPY app.jar .", "COPY dist/ /srv/www/", "ADD index.js .", "COPY tailwind.config.js jsconfig.json ./"}


@given(st.lists(st.sampled_from(LATE_BODY), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_late_moves_are_safe(body: list[str]) -> None:
    text = "FROM node:20\n" + "\n".join(body) + "\n"
    files = {
        "Dockerfile": text,
        "package.json": '{"dependencies": {"next": "14.2.3"}}',
        "package-lock.json": "{}",
        ".dockerignore": "node_modules\n",
    }
    paths = (
        "Dockerfile",
        "package.json",
        "package-lock.json",
        ".dockerignore",
        "app.jar",
        "dist/index.html",
        "index.js",
        "tailwind.config.js",
        "jsconfig.json",
    )
    snapshot = RepoSnapshot(paths=paths, files=files)
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    edits = [e for e in result.edits if e.path == "Dockerfile"]
    if not edits:
        return
    after = edits[0].content
    assert verify_dockerfile_edit(text, after) is None
    again = plan_dockerfiles(
        RepoSnapshot(paths=paths, files={**files, "Dockerfile": after}),
        Options(dockerignore=False),
        (LINK,),
        Discovery(dockerfiles=("Dockerfile",)),
    )
    assert not [e for e in again.edits if e.path == "Dockerfile"]
    old, new = text.splitlines()[1:], after.splitlines()[1:]
    if sorted(old) != sorted(new):
        return  # the manifest reorder added lines: its own tests cover it
    for i, a in enumerate(old):
        for b in old[i + 1 :]:
            if a in LATE_COPIES and new.index(a) > new.index(b) and old.count(a) == 1 and old.count(b) == 1:
                assert b not in NEVER_CROSSED, (a, b)
