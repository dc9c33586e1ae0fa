"""Reorder and .dockerignore cases found in review: each would have changed the image or broken the build."""

from __future__ import annotations

import pytest

from bot.core.discover import Discovery
from bot.core.dockerfile_plan import plan_dockerfiles
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")


def _plan(dockerfile: str, paths: tuple[str, ...], files: dict[str, str] | None = None,
          options: Options | None = None) -> PartialPlan:
    snapshot = RepoSnapshot(paths=("Dockerfile", *paths), files={"Dockerfile": dockerfile, **(files or {})})
    return plan_dockerfiles(snapshot, options or Options(dockerignore=False), (LINK,),
                            Discovery(dockerfiles=("Dockerfile",)))


PY_TREE = ("requirements.txt", "app.py")
PY_FILES = {"requirements.txt": "flask==3.0.0\n"}


@pytest.mark.parametrize("install", [
    "pip install -r requirements.txt -t .",
    "pip install -r requirements.txt --target=/app/lib",
    "pip install --prefix /app -r requirements.txt",
    "/app/.venv/bin/pip install -r requirements.txt",
    ".venv/bin/python -m pip install -r requirements.txt",
])
def test_pip_installing_into_the_copied_folder_is_not_moved(install: str) -> None:
    dockerfile = f"FROM python:3.12\nWORKDIR /app\nCOPY . /app\nRUN {install}\nCMD [\"python\", \"app.py\"]\n"
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert not result.edits
    assert any("inside the folder" in f.message for f in result.findings), result.findings


@pytest.mark.parametrize("install", [
    "pip install -r requirements.txt --target /opt/deps",
    "/opt/venv/bin/pip install -r requirements.txt",
])
def test_pip_installing_outside_the_copied_folder_still_moves(install: str) -> None:
    dockerfile = f"FROM python:3.12\nWORKDIR /app\nCOPY . /app\nRUN {install}\nCMD [\"python\", \"app.py\"]\n"
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings
    assert result.edits[0].content.index("COPY requirements.txt") < result.edits[0].content.index("COPY . /app")
