"""Golden before/after buildspecs: the planner's output is byte-for-byte the reviewed `after.yml`."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildspec_support import golden_cases, plan_text, read, unset_uses

from bot.core.buildspec.plan import verify_buildspec_edit
from bot.core.model import Options

CASES = golden_cases()


def _paths(case: Path) -> tuple[str, ...]:
    extra = case / "paths.txt"
    return tuple(extra.read_text().split()) if extra.exists() else ("Dockerfile",)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_after(case: Path) -> None:
    before = read(case / "before.yml")
    _, part = plan_text(before, paths=_paths(case))
    assert len(part.edits) == 1, [f.message for f in part.findings]
    edit = part.edits[0]
    assert edit.content == read(case / "after.yml")
    assert edit.original == before
    assert edit.reasons and all(r.strip() for r in edit.reasons)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_is_idempotent_and_verified(case: Path) -> None:
    before, after = read(case / "before.yml"), read(case / "after.yml")
    assert verify_buildspec_edit(before, after) is None
    assert unset_uses(after, before) == []
    _, again = plan_text(after, paths=_paths(case))
    assert again.edits == ()
    assert [b.cache_tag for b in again.builds] == [b.cache_tag for b in plan_text(before, paths=_paths(case))[1].builds]


# The reference was written before two safety rules (DESIGN, issue 10): the builder falls back to the default
# one when it cannot start, and a failed cache export never fails the build. Those are its only deltas.
_REFERENCE_BUILDER = (
    "docker buildx create --name ecr-cache --driver docker-container --use --bootstrap || docker buildx use ecr-cache\n"
)
_SAFE_BUILDER = (
    "docker buildx create --name ecr-cache --driver docker-container --use --bootstrap || "
    'docker buildx inspect --bootstrap ecr-cache && docker buildx use ecr-cache || { echo "ecr-cache - the '
    "BuildKit builder could not start (Docker Hub outage or rate limit?), so this build runs without the layer "
    'cache"; docker buildx use default; CACHE_URI=""; }\n'
)
_REFERENCE_FLAGS = (
    "--cache-from type=registry,ref=$CACHE_URI:cache --cache-to type=registry,ref=$CACHE_URI:cache,"
    "mode=max,image-manifest=true,oci-mediatypes=true --load"
)
_SAFE_FLAGS = (
    "${CACHE_URI:+--cache-from type=registry,ref=$CACHE_URI:cache} ${CACHE_URI:+--cache-to "
    "type=registry,ref=$CACHE_URI:cache,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true} --load"
)


def test_seed_app_matches_the_reference_after_plus_the_safety_deltas(shared: Path) -> None:
    seed = shared / "examples" / "seed-app"
    before = read(seed / "buildspec.before.yml")
    reference = read(seed / "buildspec.after.yml")
    assert reference.count(_REFERENCE_BUILDER) == 1 and reference.count(_REFERENCE_FLAGS) == 1
    expected = reference.replace(_REFERENCE_BUILDER, _SAFE_BUILDER).replace(_REFERENCE_FLAGS, _SAFE_FLAGS)
    _, part = plan_text(before)
    assert part.edits[0].content == expected


def test_seed_app_with_fatal_cache_errors_is_the_reference_after(shared: Path) -> None:
    seed = shared / "examples" / "seed-app"
    _, part = plan_text(read(seed / "buildspec.before.yml"), options=Options(cache_errors="fatal"))
    assert part.edits[0].content == read(seed / "buildspec.after.yml")


def test_golden_keeps_crlf_bom_and_only_adds_lines() -> None:
    crlf = read(Path(__file__).parents[1] / "golden" / "buildspec" / "crlf" / "after.yml")
    assert "\n" not in crlf.replace("\r\n", "")
    bom = read(Path(__file__).parents[1] / "golden" / "buildspec" / "bom" / "after.yml")
    assert bom.startswith("\ufeffversion: 0.2\n")
