"""A small checkout for the CLI output tests: a flags variable on buildspec line 6, a Docker Hub push on line 7."""

from __future__ import annotations

from pathlib import Path

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo hi
      - docker build $EXTRA_FLAGS -t myorg/app:latest .
      - docker push myorg/app:latest
"""
DOCKERFILE = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"
)


def write_checkout(parent: Path) -> Path:
    """Write the checkout under ``parent`` (its folder name `shop` names the default cache repository)."""
    root = parent / "shop"
    root.mkdir()
    (root / "buildspec.yml").write_text(BUILDSPEC)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "requirements.txt").write_text("flask\n")
    return root
