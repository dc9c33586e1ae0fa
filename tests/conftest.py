"""Shared fixtures: where the read-only shared corpus lives (tests skip cleanly when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture
def corpus() -> Path:
    """The shared corpus folder, or skip when this checkout has none beside it."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present beside this checkout")
    return CORPUS


@pytest.fixture
def shared() -> Path:
    """The shared folder (DESIGN.md, examples, corpus), or skip when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside this checkout")
    return SHARED
