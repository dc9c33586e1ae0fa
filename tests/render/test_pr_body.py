"""The PR body and comments: content a reviewer needs, the fingerprint marker, GitHub's size limit."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import identity
from bot.cli.local_repo import read_snapshot
from bot.core import planner
from bot.core.buildspec import codebuild_images
from bot.core.model import AwsSetup, BuildLink, CacheStep, CacheTable, FileEdit, Finding, Options, Plan
from bot.render import comments, pull_request
from bot.render import diff as diffs

LIMIT = 65_536
ROOT = Path(__file__).resolve().parents[2]


def _step(text: str, source: bool) -> CacheStep:
    return CacheStep("0", 1, text, source, True)


def sample_plan(**overrides: object) -> Plan:
    base: dict[str, object] = {
        "edits": (
            FileEdit(
                "buildspec.yml",
                "modify",
                "new",
                "old",
                ("turns `docker build` into a cached buildx build", "derives AWS_ACCOUNT_ID"),
            ),
            FileEdit("Dockerfile", "modify", "d2", "d1", ("copies package.json before the sources",)),
            FileEdit(".dockerignore", "create", ".git\n", None, ("keeps .git out of the build context",)),
        ),
        "findings": (
            Finding("buildspec.yml", "warning", "get-login-replaced", "`aws ecr get-login` replaced"),
            Finding("buildspec.yml", "info", "privileged-mode", "needs privileged mode"),
            Finding("Dockerfile", "info", "cache-mount", "a cache mount is not exported"),
        ),
        "builds": (
            BuildLink("buildspec.yml", "build", 0, 17, "Dockerfile", ".", "cache", "load"),
            BuildLink("api/buildspec.yml", "build", 0, 9, "api/Dockerfile", "api", "cache-api", "push"),
        ),
        "cache_tables": (
            CacheTable(
                "Dockerfile",
                before=(_step("FROM node:20", False), _step("COPY . .", True), _step("RUN npm ci", True)),
                after=(
                    _step("FROM node:20", False),
                    _step("COPY package.json ./", False),
                    _step("RUN npm ci", False),
                    _step("COPY . .", True),
                ),
            ),
        ),
        "setup": AwsSetup(
            "eu-west-1",
            "my-app-cache",
            ("my-app",),
            '{"rules": []}',
            '{"Version": "2012-10-17"}',
            (
                "aws ecr create-repository --repository-name my-app-cache --region eu-west-1",
                "aws ecr put-lifecycle-policy --repository-name my-app-cache",
            ),
        ),
        "buildspecs": ("buildspec.yml",),
    }
    base.update(overrides)
    return Plan(**base)  # type: ignore[arg-type]


def test_body_starts_with_the_fingerprint_marker() -> None:
    plan = sample_plan()
    body = pull_request.render_pr_body(plan, "octo/app")
    assert body.splitlines()[0] == f"<!-- ecr-cache-bot:v1 fingerprint={plan.fingerprint} -->"
    assert identity.parse_fingerprint(body) == plan.fingerprint
    assert identity.parse_fingerprint("no marker") is None


def test_body_explains_every_change_and_the_exact_flags() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app", Options(mode="min"))
    for text in (
        "| `buildspec.yml` | modified |",
        "derives AWS_ACCOUNT_ID",
        "| `.dockerignore` | new file |",
        "copies package.json before the sources",
    ):
        assert text in body
    assert (
        "`--cache-to type=registry,ref=$CACHE_URI:cache-api,mode=min,image-manifest=true,"
        "oci-mediatypes=true,ignore-error=true`"
    ) in body
    assert "`--cache-from type=registry,ref=$CACHE_URI:cache`" in body
    assert "oci-mediatypes=false" not in body


def test_body_has_the_one_time_aws_setup() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    assert "aws ecr create-repository --repository-name my-app-cache --region eu-west-1" in body
    assert "aws ecr put-lifecycle-policy" in body
    assert '{"rules": []}' in body and '{"Version": "2012-10-17"}' in body
    assert "privileged mode" in body and "mutable" in body
    assert "Region `eu-west-1`, cache repository `my-app-cache`, image repository `my-app`" in body


def test_body_has_the_before_after_table() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    assert "**`Dockerfile`**: a source-only change re-runs 1 step instead of 2." in body
    assert "| 2 | `COPY package.json ./` | added | no |" in body  # rows pair the same instruction
    assert "| 3 | `RUN npm ci` | yes | no |" in body
    assert "| 4 | `COPY . .` | yes | yes |" in body


def test_body_has_findings_troubleshooting_close_and_commands() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    assert "- **warning** `buildspec.yml` (get-login-replaced): `aws ecr get-login` replaced" in body
    assert body.index("get-login-replaced") < body.index("cache-mount")  # warnings before info
    for known in (
        "400 Bad Request",
        "Cache export is not supported for the docker driver",
        "standard:5.0",
        "moby/buildkit",
        "image-manifest=true,oci-mediatypes=true",
        "docker-container",
    ):
        assert known in body
    assert "Closing it without merging opts **octo/app** out" in body
    for command in ("`/ecr-cache`", "`/ecr-cache preview`", "`/ecr-cache recreate`", "`/ecr-cache help`"):
        assert command in body


def test_table_cells_cannot_break_the_markdown_table() -> None:
    table = CacheTable("Dockerfile", before=(_step("RUN a | b `c`\n  && d", True),), after=())
    body = pull_request.render_pr_body(sample_plan(cache_tables=(table,)), "o/r")
    assert "| 1 | `RUN a \\| b 'c' && d` | yes | removed |" in body


def test_huge_plan_is_cut_gracefully_under_githubs_limit() -> None:
    # Distinct messages: the same message in many files is one line of the body, which would fit.
    findings = tuple(
        Finding(f"svc{i}/buildspec.yml", "warning", "unresolved", f"{i} " + "x" * 300) for i in range(2000)
    )
    steps = tuple(_step(f"RUN step {i} " + "y" * 80, True) for i in range(300))
    tables = tuple(CacheTable(f"svc{i}/Dockerfile", steps, steps[1:]) for i in range(40))
    plan = sample_plan(findings=findings, cache_tables=tables)
    body = pull_request.render_pr_body(plan, "octo/app")
    assert len(body) <= LIMIT
    assert identity.parse_fingerprint(body) == plan.fingerprint
    assert "more findings not shown" in body and "more steps not shown" in body
    assert "comment `/ecr-cache preview` or run `ecr-cache-bot plan` for all findings" in body
    assert "<summary>Troubleshooting" in body and "<summary>Commands" in body  # the fixed sections survive
    assert "## Before merging" in body and "- [ ] Attach the IAM policy" in body


def test_absurd_plan_is_hard_cut_with_a_note() -> None:
    edits = tuple(FileEdit(f"d{i}/" + "p" * 200 + "/Dockerfile", "modify", "x", "y", ("z" * 500,)) for i in range(400))
    plan = sample_plan(edits=edits)
    body = pull_request.render_pr_body(plan, "octo/app")
    assert len(body) <= LIMIT
    assert body.startswith(identity.fingerprint_marker(plan.fingerprint))
    assert body.rstrip().endswith(
        "_This description was cut to fit GitHub's 65,536-character limit: comment "
        "`/ecr-cache preview` on this pull request, or run `ecr-cache-bot plan` on a "
        "checkout, for the rest._"
    )
    # The note is not swallowed by a fold or a code block left open by the cut.
    assert body.count("<details>") == body.count("</details>") and body.count("```") % 2 == 0


_text = st.text(st.characters(codec="utf-8"), max_size=400)


@settings(max_examples=40, deadline=None)
@given(
    reasons=st.lists(_text, max_size=30),
    messages=st.lists(_text, max_size=300),
    paths=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=60),
)
def test_any_plan_fits_and_keeps_its_marker(reasons: list[str], messages: list[str], paths: list[str]) -> None:
    edits = tuple(FileEdit(p, "modify", p, None, tuple(reasons)) for p in paths)
    findings = tuple(Finding("f", "error", "c", m) for m in messages)
    plan = Plan(edits=edits, findings=findings)
    body = pull_request.render_pr_body(plan, "o/r")
    assert len(body) <= LIMIT
    assert identity.parse_fingerprint(body) == plan.fingerprint


def test_preview_comment_with_a_huge_diff_fits() -> None:
    edits = [FileEdit("Dockerfile", "modify", "\n".join(f"RUN {i}" for i in range(20000)), "FROM x\n")]
    text = comments.preview("o/r", edits, diff_limit=200_000)
    assert len(text) <= LIMIT
    assert text.rstrip().endswith("_Cut to fit GitHub's comment size limit._")
    assert "</details>" in text


def test_unified_diff_marks_created_files_and_neutralises_fences() -> None:
    diff = diffs.for_markdown(
        diffs.unified_diff(
            [FileEdit(".dockerignore", "create", ".git\n```\n", None), FileEdit("a", "modify", "x", "y\n")]
        )
    )
    assert "--- /dev/null\n+++ b/.dockerignore\n" in diff
    assert "```" not in diff
    assert "\\ No newline at end of file" in diff


def test_comments_name_the_next_step() -> None:
    closed = comments.closed("o/r", deleted=True)
    assert "/ecr-cache" in closed and "deleted its branch" in closed
    kept = comments.closed("o/r", deleted=False)
    assert "left the branch" in kept
    assert "/ecr-cache recreate" in comments.human_edits()


def test_setup_findings_are_said_once_as_setup_steps_not_again_as_notes() -> None:
    notes = (
        Finding("buildspec.yml", "info", "privileged-mode", "The project must run in privileged mode."),
        Finding("buildspec.yml", "info", "buildx-required", "buildx ships on standard:7.0 only."),
        Finding("buildspec.yml", "info", "builder-image", "moby/buildkit comes from Docker Hub."),
    )
    body = pull_request.render_pr_body(sample_plan(findings=notes), "octo/app")
    # Nothing left that the setup does not already say: no warning list, no folded notes.
    assert "## Warnings" not in body and "<summary>Notes" not in body
    assert "The project must run in privileged mode." not in body and "3. Turn on **privileged mode**" in body
    assert "4. **Build image**: buildx ships on standard:7.0 only." in body
    assert "5. **Builder image**: moby/buildkit comes from Docker Hub." in body
    # Without an AWS setup section (nothing to set up), the same findings stay in the list.
    bare = pull_request.render_pr_body(sample_plan(findings=notes, setup=None), "octo/app")
    assert "(privileged-mode): The project must run in privileged mode." in bare


def test_every_cache_repository_and_tag_is_named() -> None:
    setup = AwsSetup(
        "eu-west-1",
        "web-cache",
        ("web", "api"),
        "{}",
        "{}",
        (
            "aws ecr create-repository --repository-name web-cache --region eu-west-1",
            "aws iam put-role-policy --role-name YOUR-CODEBUILD-SERVICE-ROLE --policy-name ecr-cache-bot",
        ),
        cache_repositories=("web-cache", "api-cache"),
    )
    body = pull_request.render_pr_body(sample_plan(setup=setup), "octo/app")
    assert "from the Amazon ECR repositories `web-cache`, `api-cache`," in body
    assert "cache repositories `web-cache`, `api-cache`, image repositories `web`, `api`" in body
    assert "Keep the cache tags `cache`, `cache-api` **mutable**" in body
    assert "aws codebuild batch-get-projects --names YOUR-PROJECT --query 'projects[0].serviceRole'" in body


def test_docker_hub_entry_only_while_the_builder_image_comes_from_docker_hub() -> None:
    assert "`toomanyrequests`" in pull_request.render_pr_body(sample_plan(), "octo/app")
    image = "1.dkr.ecr.eu-west-1.amazonaws.com/buildkit:v0.13"
    own = pull_request.render_pr_body(sample_plan(), "octo/app", Options(builder_image=image))
    assert "`toomanyrequests`" not in own


def test_node_service_body_as_a_platform_engineer_reads_it() -> None:
    plan = planner.plan(read_snapshot(ROOT / "examples" / "node-service"), Options())
    body = pull_request.render_pr_body(plan, "octo/node-service", Options())
    assert len(body) < LIMIT and identity.parse_fingerprint(body) == plan.fingerprint
    for heading in (
        "## Before merging",
        "## Changes",
        "## Cache flags",
        "## Set up",
        "<summary>With the AWS CLI",
        "<summary>With CloudFormation",
        "<summary>With Terraform",
        "<summary>Troubleshooting",
        "<summary>Steps that re-run when only application source changes",
        "<summary>Commands, and what closing this pull request does",
    ):
        assert body.count(heading) == 1, heading
    commands = body.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert commands[0] == (
        "aws ecr create-repository --repository-name orders-api-cache --region eu-west-1 --image-tag-mutability MUTABLE"
    )
    assert commands[1] == (
        "aws ecr put-lifecycle-policy --repository-name orders-api-cache --region eu-west-1 "
        "--lifecycle-policy-text file://ecr-cache/lifecycle-policy.json"
    )
    assert commands[-1].startswith("aws iam put-role-policy --role-name YOUR-CODEBUILD-SERVICE-ROLE ")
    assert "replace `YOUR-CODEBUILD-SERVICE-ROLE`" in body
    assert (
        "aws ecr put-image-tag-mutability --repository-name orders-api-cache --region eu-west-1 "
        "--image-tag-mutability MUTABLE"
    ) in body
    assert "deletes its branch unless someone else pushed to it" in body
    # Every policy file the commands read is a file of this PR.
    for ref in re.findall(r"file://(ecr-cache/[\w.-]+)", body):
        assert ref in {e.path for e in plan.edits}
    for error in (
        "Cannot connect to the Docker daemon",
        "unexpected status: 400 Bad Request",
        "Cache export is not supported for the docker driver",
        "toomanyrequests",
        "failed to configure registry cache importer",
    ):
        assert body.count(error) == 1, error
    assert "standard:7.0" in body and "oci-mediatypes=false" not in body
    assert "}\n\n```" not in body  # the policy documents end right at their closing fence


def test_dockerfile_only_pull_request_has_no_flags_or_setup() -> None:
    # The buildspec was left untouched (or was set up before): no cache flags, no AWS setup to run.
    plan = sample_plan(edits=sample_plan().edits[1:])
    body = pull_request.render_pr_body(plan, "octo/app")
    assert "leaves the buildspec as it is, so it needs no AWS setup" in body
    assert "## Cache flags" not in body and "One-time AWS setup" not in body
    assert "aws ecr create-repository" not in body and "Merging before the one-time AWS setup" not in body
    assert "copies package.json before the sources" in body


def test_unknown_region_is_not_shown_as_a_literal_placeholder() -> None:
    setup = AwsSetup(
        "REGION",
        "my-app-cache",
        (),
        '{"rules": []}',
        '{"Version": "2012-10-17"}',
        (
            "AWS_REGION=us-east-1  # the region",
            "aws ecr create-repository --repository-name my-app-cache --region $AWS_REGION",
        ),
    )
    body = pull_request.render_pr_body(sample_plan(setup=setup), "octo/app")
    assert "`REGION`" not in body and "--region REGION" not in body
    assert "Region: the one you set in `AWS_REGION`" in body and "--region $AWS_REGION" in body


# --- issue 13: a pull request a reviewer understands in thirty seconds ---------------------------------------


def _folded(body: str) -> str:
    """The body with every `<details>` fold taken out: what a reviewer sees without clicking."""
    return re.sub(r"(?s)<details>.*?</details>", "", body)


def test_first_line_is_the_impact_from_the_cache_table() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    assert body.splitlines()[1] == "**A source-only change now re-runs 1 of 4 steps instead of 2 of 3 (`Dockerfile`).**"
    two = sample_plan(cache_tables=sample_plan().cache_tables * 2)
    assert "re-runs 2 of 8 steps instead of 4 of 6 (2 Dockerfiles)" in pull_request.render_pr_body(two, "octo/app")
    unchanged = CacheTable(
        "Dockerfile",
        before=(_step("FROM x", False), _step("COPY . .", True)),
        after=(_step("FROM x", False), _step("COPY . .", True)),
    )
    same = pull_request.render_pr_body(sample_plan(cache_tables=(unchanged,)), "octo/app")
    assert same.splitlines()[1] == (
        "**With the layer cache in Amazon ECR, a source-only change re-runs 1 of 2 "
        "Dockerfile steps; the others reuse cached layers.**"
    )


def test_before_merging_is_a_task_list_naming_account_and_region() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    tasks = [line for line in body.splitlines() if line.startswith("- [ ] ")]
    assert tasks[0] == (
        "- [ ] Create the cache repository `my-app-cache` in region `eu-west-1`, with mutable tags "
        "and its lifecycle policy."
    )
    assert tasks[1].startswith("- [ ] Attach the IAM policy `ecr-cache/iam-policy.json`")
    assert "**privileged mode**" in tasks[2]
    assert len(tasks) == 3  # no buildx finding in this plan: no build image task
    assert body.index("## Before merging") < body.index("## Changes")
    setup = dataclasses.replace(sample_plan().setup, account_id="123456789012")  # type: ignore[type-var]
    known = pull_request.render_pr_body(sample_plan(setup=setup), "octo/app")
    assert "`my-app-cache` in account `123456789012`, region `eu-west-1`," in known
    unknown = dataclasses.replace(sample_plan().setup, region="REGION")  # type: ignore[type-var]
    assert "in the account and region of the CodeBuild project" in pull_request.render_pr_body(
        sample_plan(setup=unknown), "octo/app"
    )


def test_build_image_task_only_when_the_plan_needs_buildx() -> None:
    buildx = Finding("buildspec.yml", "info", "buildx-required", "buildx ships on some images.")
    body = pull_request.render_pr_body(sample_plan(findings=(buildx,)), "octo/app")
    (task,) = [line for line in body.splitlines() if line.startswith("- [ ] Build on an image")]
    assert f"`{codebuild_images.RECOMMENDED}`" in task
    no_setup = pull_request.render_pr_body(sample_plan(findings=(buildx,), edits=sample_plan().edits[1:]), "octo/app")
    assert "- [ ]" not in no_setup and "## Before merging" not in no_setup


def test_changes_table_has_one_line_per_file_and_details_hold_the_reasons() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    rows = body.split("| file | change | why |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert rows == [
        "| `buildspec.yml` | modified | `docker build` becomes a cached `docker buildx build` (+1 more below) |",
        "| `Dockerfile` | modified | Steps reordered: a source-only change re-runs 1 of 4 steps instead of 2 of 3 |",
        "| `.dockerignore` | new file | Keeps .git out of the build context |",
    ]
    folded = _folded(body)
    assert "derives AWS_ACCOUNT_ID" in body and "derives AWS_ACCOUNT_ID" not in folded
    for hidden in (
        "| `RUN npm ci` | yes | no |",
        "Cannot connect to the Docker daemon",
        "aws ecr create-repository",
        "`/ecr-cache recreate`",
    ):
        assert hidden in body and hidden not in folded, hidden


def test_identical_reasons_across_buildspecs_are_said_once() -> None:
    same = (
        "Line 9 (before this change): the export has `ignore-error=true`, so nothing breaks.",
        "Derive `AWS_ACCOUNT_ID` first.",
    )
    edits = tuple(
        FileEdit(
            f"{d}/buildspec.yml",
            "modify",
            "n",
            "o",
            (
                f"Line {n} (before this change): `docker build` at `$CACHE_URI:cache-{d}`",
                same[0].replace("9", str(n)),
                same[1],
            ),
        )
        for n, d in enumerate(("a", "b", "c", "d"), 10)
    )
    plan = sample_plan(edits=edits, buildspecs=tuple(e.path for e in edits))
    body = pull_request.render_pr_body(plan, "octo/app")
    assert "- In all 4 buildspecs: the export has `ignore-error=true`, so nothing breaks." in body
    assert "- In all 4 buildspecs: derive `AWS_ACCOUNT_ID` first." in body
    assert body.count("ignore-error=true`, so nothing breaks") == 1 and body.count("Derive `AWS_ACCOUNT_ID`") == 0
    assert "**`c/buildspec.yml`** (modified) also:\n- Line 12 (before this change): `docker build` at " in body
    two = sample_plan(
        edits=edits[:2] + (FileEdit("e/buildspec.yml", "modify", "n", "o", ("other",)),),
        buildspecs=("a/buildspec.yml", "b/buildspec.yml", "e/buildspec.yml"),
    )
    assert "- In `a/buildspec.yml`, `b/buildspec.yml`: derive" in pull_request.render_pr_body(two, "octo/app")


def test_warnings_stay_visible_info_is_folded_and_repeats_are_one_line() -> None:
    findings = (
        *(
            Finding(
                f"s{i}/buildspec.yml",
                "warning",
                "build-path-unresolved",
                f"s{i}/buildspec.yml:12: cannot tell which Dockerfile",
            )
            for i in range(3)
        ),
        Finding("Dockerfile", "info", "cache-mount", "a cache mount is not exported"),
    )
    body = pull_request.render_pr_body(sample_plan(findings=findings), "octo/app")
    folded = _folded(body)
    assert (
        "- **warning** in 3 files (`s0/buildspec.yml:12`, `s1/buildspec.yml:12`, `s2/buildspec.yml:12`) "
        "(build-path-unresolved): cannot tell which Dockerfile"
    ) in folded
    assert "<summary>Notes (1)</summary>" in body
    assert "a cache mount is not exported" in body and "a cache mount is not exported" not in folded


def test_setup_as_code_is_folded_and_a_shared_repository_is_said_to_be_left_out() -> None:
    body = pull_request.render_pr_body(sample_plan(), "octo/app")
    assert "```yaml\n# Deploy in region eu-west-1" in body and "Type: AWS::ECR::Repository" in body
    assert "```hcl\n" in body and 'resource "aws_ecr_repository" "cache"' in body
    assert "AWS::ECR::Repository" not in _folded(body) and "aws_iam_role_policy" not in _folded(body)
    assert "other repositories may share" not in body
    shared = pull_request.render_pr_body(sample_plan(), "octo/app", Options(cache_repository="my-app-cache"))
    assert (
        "`my-app-cache` is named in `.github/ecr-cache.yml`, so other repositories may share it: the "
        "CloudFormation and Terraform below leave it out"
    ) in _folded(shared)
    assert "Type: AWS::ECR::Repository" not in shared and 'resource "aws_ecr_repository"' not in shared
    assert (
        "- [ ] Create the cache repository `my-app-cache` in region `eu-west-1` unless it exists, with mutable "
        "tags, and merge this lifecycle policy into its current one"
    ) in shared


def test_preview_reply_has_the_summary_and_tasks_above_its_diff() -> None:
    plan = sample_plan()
    text = comments.preview("octo/app", plan.edits, head=pull_request.render_summary(plan, "octo/app"))
    assert text.index("**A source-only change now re-runs 1 of 4 steps") < text.index("- [ ] Create the cache")
    assert text.index("- [ ] Create the cache") < text.index("```diff")
    assert "ecr-cache-bot:v1" not in text  # the marker belongs to the PR body only
