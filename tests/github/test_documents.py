"""The GraphQL documents: static files that parse, validate against GitHub's schema, and take the variables the
gateway sends."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from github_double import GitHubDouble, issue_node_id, private_key_pem
from job_fixtures import context

from bot.app import handlers as jobs
from bot.app.payloads import Job
from bot.github.client import GatewayFactory
from bot.github.documents import BLOB_SLOTS, blob_slots, document
from bot.settings import Settings

graphql = pytest.importorskip("graphql")

FOLDER = resources.files("bot.github").joinpath("graphql")
FILES = sorted(entry.name for entry in FOLDER.iterdir() if entry.name.endswith(".graphql"))
OPERATIONS = [
    name[: -len(".graphql")]
    for name in FILES
    if re.search(r"^(query|mutation)\b", FOLDER.joinpath(name).read_text(), re.M)
]
REPO = "octo/app"


def _schema(corpus: Path) -> Any:
    return graphql.build_schema((corpus / "github-api" / "github-graphql-subset.graphql").read_text())


def test_the_folder_holds_the_three_operations_and_their_fragments() -> None:
    assert OPERATIONS == ["reply", "state"]
    assert "blob_slots.graphql" in FILES


@pytest.mark.parametrize("name", FILES)
def test_every_file_parses(name: str) -> None:
    graphql.parse(FOLDER.joinpath(name).read_text())


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_validates_against_githubs_schema(corpus: Path, name: str) -> None:
    assert graphql.validate(_schema(corpus), graphql.parse(document(name))) == []


@pytest.mark.parametrize("name", ["state"])
def test_blob_slots_match_the_batch_size(name: str) -> None:
    parsed = graphql.parse(document(name))
    declared = {
        d.variable.name.value
        for op in parsed.definitions
        if isinstance(op, graphql.OperationDefinitionNode)
        for d in op.variable_definitions
    }
    slots = {f"b{i}" for i in range(BLOB_SLOTS)} | {f"has{i}" for i in range(BLOB_SLOTS)}
    assert slots <= declared
    (fragment,) = [
        d for d in parsed.definitions if isinstance(d, graphql.FragmentDefinitionNode) and d.name.value == "BlobSlots"
    ]
    aliases = [s.alias.value for s in fragment.selection_set.selections]
    assert aliases == [f"b{i}" for i in range(BLOB_SLOTS)]


def test_blob_slots_take_only_shas_and_at_most_a_batch() -> None:
    assert blob_slots(["a" * 40, "b" * 40]) == {"b0": "a" * 40, "has0": True, "b1": "b" * 40, "has1": True}
    with pytest.raises(ValueError):
        blob_slots(['") { x } #'])
    with pytest.raises(ValueError):
        blob_slots(["c" * 40] * (BLOB_SLOTS + 1))


def test_a_document_carries_the_fragments_it_spreads_once() -> None:
    text = document("state")
    assert text.count("fragment BlobSlots on Repository") == 1 and text.count("fragment BlobText on GitObject") == 1
    assert "fragment" not in document("reply")


def test_the_variables_the_gateway_sends_fit_the_documents(gh: GitHubDouble, corpus: Path) -> None:
    """Each request the gateway makes, through a sync and a command with everything optional in play."""
    schema = _schema(corpus)
    gh.add_repo(REPO, {"buildspec.yml": "version: 0.2\n", "Dockerfile": "FROM node:20\n"}, permissions={"dev": "write"})
    settings = Settings(webhook_secret="s", app_id="99", private_key=private_key_pem(), github_api_url=gh.base_url)
    factory = GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)
    jobs.run(Job("sync", 1, REPO, "d"), context(factory))  # warm: the blobs query
    comment = gh.add_comment(REPO, 50, "/ecr-cache preview", "dev")
    jobs.run(
        Job(
            "command",
            1,
            REPO,
            "c",
            {
                "command": "preview",
                "comment_id": comment.id,
                "issue_number": 50,
                "user": "dev",
                "association": "COLLABORATOR",
                "comment_node_id": comment.node_id,
                "default_branch": "main",
                "issue_node_id": issue_node_id(gh.repos[REPO], 50),
            },
        ),
        context(GatewayFactory(settings, seconds_between_requests=0, seconds_between_writes=0, retry=0)),
    )  # cold: blobs in the state
    sent = [r for r in gh.history if r.path == "/graphql"]
    assert {r.operation for r in sent} == {"EcrCacheState", "EcrCacheState[blobs]", "EcrCacheReply"}
    assert any(r.blobs for r in sent if r.operation == "EcrCacheState")
    for request in sent:
        parsed = graphql.parse(request.body["query"])
        assert graphql.validate(schema, parsed) == []
        (operation,) = [d for d in parsed.definitions if isinstance(d, graphql.OperationDefinitionNode)]
        coerced = graphql.execution.values.get_variable_values(
            schema, operation.variable_definitions, request.body["variables"]
        )
        assert not isinstance(coerced, list), (str(request), coerced)  # a list of errors when they do not fit
        declared = {d.variable.name.value for d in operation.variable_definitions}
        assert set(request.body["variables"]) <= declared, str(request)
