"""The planner's own decisions: policy files ride along with a buildspec change, once; disabled repos."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.cli.local_repo import read_snapshot
from bot.core import planner, policies
from bot.core.model import Options, RepoSnapshot

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-service"


def _example() -> RepoSnapshot:
    return read_snapshot(EXAMPLE)


def _merged(snapshot: RepoSnapshot, plan: planner.Plan) -> RepoSnapshot:
    files = dict(snapshot.files) | {e.path: e.content for e in plan.edits}
    paths = tuple(sorted(set(snapshot.paths) | {e.path for e in plan.edits}))
    return dataclasses.replace(snapshot, paths=paths, files=files)


def test_policy_files_are_created_with_the_buildspec_change() -> None:
    result = planner.plan(_example(), Options())
    created = {e.path: e for e in result.edits if e.action == "create"}
    assert policies.LIFECYCLE_PATH in created and policies.IAM_PATH in created
    assert result.setup is not None
    assert created[policies.LIFECYCLE_PATH].content == result.setup.lifecycle_policy_json
    assert created[policies.IAM_PATH].content == result.setup.iam_policy_json
    assert "arn:aws:ecr:eu-west-1:ACCOUNT_ID:repository/orders-api-cache" in result.setup.iam_policy_json
    assert any(
        f.code == "iam-placeholders" and "replace it" in f.message and "get-caller-identity" in f.message
        for f in result.findings
    )


def test_second_plan_is_empty_and_a_known_account_removes_the_placeholder() -> None:
    snapshot = _example()
    first = planner.plan(snapshot, Options())
    assert planner.plan(_merged(snapshot, first), Options()).edits == ()
    with_account = planner.plan(snapshot, Options(account_id="123456789012"))
    iam = next(e for e in with_account.edits if e.path == policies.IAM_PATH)
    assert "ACCOUNT_ID" not in iam.content
    assert not any(f.code == "iam-placeholders" for f in with_account.findings)


def test_an_existing_policy_file_is_kept_and_reported() -> None:
    snapshot = _example()
    edited = '{"rules": []}\n'
    snapshot = dataclasses.replace(
        snapshot,
        paths=snapshot.paths + (policies.LIFECYCLE_PATH,),
        files=dict(snapshot.files) | {policies.LIFECYCLE_PATH: edited},
    )
    result = planner.plan(snapshot, Options())
    assert policies.LIFECYCLE_PATH not in {e.path for e in result.edits}
    assert any(f.code == "policy-file-kept" for f in result.findings)


def test_no_policy_files_without_a_buildspec_change() -> None:
    snapshot = _example()
    merged = _merged(snapshot, planner.plan(snapshot, Options()))
    stripped = dataclasses.replace(
        merged,
        paths=tuple(p for p in merged.paths if not p.startswith(policies.POLICY_DIR + "/")),
        files={p: t for p, t in merged.files.items() if not p.startswith(policies.POLICY_DIR + "/")},
    )
    assert planner.plan(stripped, Options()).edits == ()


def test_disabled_repository_gets_no_edit() -> None:
    result = planner.plan(_example(), Options(enabled=False))
    assert result.edits == () and [f.code for f in result.findings] == ["disabled"]


def test_paths_to_read_includes_existing_policy_files() -> None:
    paths = ("buildspec.yml", "Dockerfile", policies.IAM_PATH, "src/app.js")
    wanted = planner.paths_to_read(paths, Options())
    assert policies.IAM_PATH in wanted and "src/app.js" not in wanted
