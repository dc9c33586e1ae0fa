"""Golden before/after Dockerfiles per ecosystem (tests/golden/dockerfile/*), plus CRLF and no-final-newline twins."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.buildspec.build_args import OPAQUE  # these cases have no buildspec: ARG names decide
from bot.core.discover import Discovery
from bot.core.dockerfile.plan import plan_dockerfiles, verify_dockerfile_edit
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dockerfile"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
OPTIONS = Options(dockerignore=False)


def _read(path: Path) -> str:
    return path.read_bytes().decode()


def _snapshot(case: str, dockerfile: str) -> RepoSnapshot:
    d = GOLDEN / case
    paths = tuple(p for p in _read(d / "tree.txt").splitlines() if p)
    files = {"Dockerfile": dockerfile}
    if (d / "files").is_dir():
        for f in (d / "files").rglob("*"):
            if f.is_file():
                files[f.relative_to(d / "files").as_posix()] = _read(f)
    return RepoSnapshot(paths=paths, files=files)


def _plan(snapshot: RepoSnapshot) -> PartialPlan:
    link = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache", unknown_args=(OPAQUE,))
    return plan_dockerfiles(snapshot, OPTIONS, (link,), Discovery(dockerfiles=("Dockerfile",)))


def _variants(text: str) -> dict[str, tuple[str, str]]:
    return {
        "lf": (text, ""),
        "crlf": (text.replace("\n", "\r\n"), "crlf"),
        "no-final-newline": (text.rstrip("\n"), "strip"),
    }


def _transform(text: str, how: str) -> str:
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "strip":
        return text.rstrip("\n")
    return text


@pytest.mark.parametrize("how", ["", "crlf", "strip"])
@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, how: str) -> None:
    d = GOLDEN / case
    before = _transform(_read(d / "Dockerfile.before"), how)
    result = _plan(_snapshot(case, before))
    docker_edits = [e for e in result.edits if e.path == "Dockerfile"]
    if (d / "Dockerfile.after").exists():
        after = _transform(_read(d / "Dockerfile.after"), how)
        assert len(docker_edits) == 1, [f.message for f in result.findings]
        edit = docker_edits[0]
        assert edit.content == after
        assert edit.original == before
        assert edit.reasons, "every change needs a reason for the PR body"
        assert verify_dockerfile_edit(before, after) is None
        again = _plan(_snapshot(case, after))
        assert not [e for e in again.edits if e.path == "Dockerfile"], "not idempotent"
    else:
        assert docker_edits == []
    if (d / "finding.txt").exists():
        expected = _read(d / "finding.txt").strip()
        messages = [f.message for f in result.findings]
        assert any(expected in m for m in messages), messages


def test_every_ecosystem_has_a_safe_and_an_unsafe_case() -> None:
    names = set(CASES)
    for eco in (
        "npm",
        "yarn",
        "pnpm",
        "pip",
        "pipenv",
        "poetry",
        "uv",
        "go",
        "bundler",
        "maven",
        "gradle",
        "composer",
        "dotnet",
    ):
        assert any(n.startswith(eco + "-safe") for n in names), eco
        assert any(n.startswith(eco + "-unsafe") for n in names), eco
    assert "cargo-suggest" in names


def test_seed_app_reference() -> None:
    seed = Path(__file__).resolve().parents[2].parent / "shared" / "examples" / "seed-app"
    if not seed.is_dir():
        pytest.skip("shared examples not present")
    before = _read(seed / "Dockerfile.before")
    snapshot = RepoSnapshot(
        paths=("Dockerfile", "package.json", "package-lock.json", "src/index.ts"),
        files={"Dockerfile": before, "package.json": '{"name": "seed"}'},
    )
    # The move needs node_modules out of the context; the same plan adds it to .dockerignore.
    link = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache", unknown_args=(OPAQUE,))
    result = plan_dockerfiles(snapshot, Options(), (link,), Discovery(dockerfiles=("Dockerfile",)))
    assert [e.content for e in result.edits if e.path == "Dockerfile"] == [_read(seed / "Dockerfile.after")]
    ignore = [e.content for e in result.edits if e.path == ".dockerignore"]
    assert len(ignore) == 1 and "**/node_modules" in ignore[0].splitlines()
    without = _plan(snapshot)
    assert not without.edits
    assert any("`node_modules` is not excluded by .dockerignore" in f.message for f in without.findings)


def test_reorder_off_leaves_dockerfiles_alone() -> None:
    before = _read(GOLDEN / "npm-safe" / "Dockerfile.before")
    snapshot = _snapshot("npm-safe", before)
    link = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache", unknown_args=(OPAQUE,))
    result = plan_dockerfiles(snapshot, Options(reorder=False, dockerignore=False), (link,), Discovery())
    assert result.edits == ()
    assert len(result.cache_tables) == 1


def test_committed_node_modules_blocks_the_move_unless_ignored() -> None:
    before = _read(GOLDEN / "npm-safe" / "Dockerfile.before")
    files = {"Dockerfile": before, "package.json": '{"name": "a"}'}
    paths = ("Dockerfile", "package.json", "package-lock.json", "node_modules/x/index.js")
    result = _plan(RepoSnapshot(paths=paths, files=files))
    assert not result.edits
    assert any("`node_modules` is in the build context" in f.message for f in result.findings)
    ignored = _plan(RepoSnapshot(paths=(*paths, ".dockerignore"), files={**files, ".dockerignore": "node_modules\n"}))
    assert [e.path for e in ignored.edits] == ["Dockerfile"]


def test_dotnet_restore_and_publish_runtime_mismatch_is_reported() -> None:
    before = (
        "FROM mcr.microsoft.com/dotnet/sdk:8.0\nWORKDIR /src\nCOPY . .\nRUN dotnet restore\n"
        "RUN dotnet publish -c Release -r linux-x64 -o /out\n"
    )
    snapshot = RepoSnapshot(paths=("Dockerfile", "App.csproj"), files={"Dockerfile": before})
    result = _plan(snapshot)
    assert [e.path for e in result.edits] == ["Dockerfile"]
    assert "COPY App.csproj ./\nRUN dotnet restore\nCOPY . .\n" in result.edits[0].content
    assert any(f.code == "dockerfile-dotnet-runtime" and "`linux-x64`" in f.message for f in result.findings)
