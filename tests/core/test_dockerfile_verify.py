"""verify_dockerfile_edit: the proof every Dockerfile edit must pass before it is proposed."""

from __future__ import annotations

import pytest

from bot.core.dockerfile.verify import verify_dockerfile_edit

BEFORE = "# syntax=docker/dockerfile:1\nFROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\nRUN npm run build\n"
GOOD = (
    "# syntax=docker/dockerfile:1\nFROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\n"
    "RUN npm ci\nCOPY . .\nRUN npm run build\n"
)


def test_accepts_the_reference_reorder() -> None:
    assert verify_dockerfile_edit(BEFORE, GOOD) is None
    assert verify_dockerfile_edit(BEFORE, BEFORE) is None


@pytest.mark.parametrize(
    ("edited", "why"),
    [
        (GOOD.replace("RUN npm run build\n", ""), "removed"),
        (GOOD.replace("COPY . .\nRUN npm run build\n", "RUN npm run build\nCOPY . .\n"), "needs the sources"),
        (GOOD.replace("COPY package.json package-lock.json ./", "COPY src ./src"), "unexpected added"),
        (GOOD.replace("COPY package.json package-lock.json ./\n", ""), "before any manifest"),
        (GOOD.replace("# syntax=docker/dockerfile:1\n", "# syntax=docker/dockerfile:1.4\n"), "directive"),
        (GOOD.rstrip("\n"), "final newline"),
        (GOOD.replace("FROM node:20", "FROM node:22"), "FROM"),
        (GOOD + "FROM scratch\n", "stages"),
        ("FROM node:20\nRUN <<EOF\n", "does not parse"),
    ],
)
def test_rejects(edited: str, why: str) -> None:
    message = verify_dockerfile_edit(BEFORE, edited)
    assert message is not None and why in message


def test_copy_may_not_move_past_a_workdir_when_relative() -> None:
    before = "FROM a\nCOPY . .\nWORKDIR /srv\nRUN pip install -r requirements.txt\n"
    moved = "FROM a\nWORKDIR /srv\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\nCOPY . .\n"
    assert "WORKDIR" in (verify_dockerfile_edit(before, moved) or "")
    absolute = before.replace("COPY . .", "COPY . /srv")
    moved_abs = "FROM a\nWORKDIR /srv\nCOPY requirements.txt /srv/\nRUN pip install -r requirements.txt\nCOPY . /srv\n"
    assert verify_dockerfile_edit(absolute, moved_abs) is None


def test_copy_may_not_move_past_a_run_that_reads_sources() -> None:
    before = "FROM a\nWORKDIR /app\nCOPY . .\nRUN chmod +x run.sh\nRUN npm ci\n"
    moved = "FROM a\nWORKDIR /app\nRUN chmod +x run.sh\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n"
    assert verify_dockerfile_edit(before, moved) is not None


def test_owned_copy_may_not_move_past_a_workdir() -> None:
    before = "FROM a\nCOPY --chown=app:app . /srv\nWORKDIR /srv\nRUN pip install -r requirements.txt\n"
    moved = (
        "FROM a\nWORKDIR /srv\nCOPY --chown=app:app requirements.txt /srv/\nRUN pip install -r requirements.txt\n"
        "COPY --chown=app:app . /srv\n"
    )
    assert "--chown" in (verify_dockerfile_edit(before, moved) or "")
