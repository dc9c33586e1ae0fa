"""Shared fixtures: where the read-only shared corpus lives (tests skip cleanly when it is absent)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from github_double import GitHubDouble, wsgi_app
from werkzeug.serving import make_server

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


@pytest.fixture
def gh() -> Iterator[GitHubDouble]:
    """The stateful GitHub double, answering every request PyGithub sends through `responses`."""
    double = GitHubDouble()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        double.activate(mock)
        yield double


@pytest.fixture
def github() -> Iterator[GitHubDouble]:
    """The stateful GitHub double served over real HTTP on 127.0.0.1 (PyGithub talks to it by URL)."""
    double = GitHubDouble()
    server = make_server("127.0.0.1", 0, wsgi_app(double), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.base_url = f"http://127.0.0.1:{server.server_port}"
    double.graphql_url = f"{double.base_url}/graphql"
    try:
        yield double
    finally:
        server.shutdown()
        thread.join(timeout=5)


EXAMPLE_REPO = Path(__file__).resolve().parents[1] / "examples" / "node-service"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example checkout (`examples/node-service`) the CLI tests may change."""
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLE_REPO, target)
    return target
