"""The 40 real repositories and the YAML test suite: no crash, verified edits, idempotence, speed."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from buildspec_support import corpus_snapshot, plan_snapshot, plan_text, unset_uses

from bot.core.buildspec.plan import verify_buildspec_edit
from bot.core.model import RepoSnapshot

_BUILD_LINE = re.compile(r"(?m)^[^#\n]*\bdocker\s+(?:image\s+|buildx\s+)?build\b")
_LEFT_ON_PURPOSE = {"old-build-image", "legacy-login-output", "buildspec-command-mapping"}


def _repos(corpus: Path) -> list[Path]:
    real = corpus / "real"
    return sorted(p for p in real.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_real_corpus_edits_verify_and_are_idempotent(corpus: Path) -> None:
    trees = corpus / "real" / "_trees"
    with_build_line = 0
    with_builds = 0
    edited = 0
    refused = 0
    explained: list[str] = []
    for repo in _repos(corpus):
        snap = corpus_snapshot(repo, trees)
        found, part = plan_snapshot(snap)
        for edit in part.edits:
            assert edit.original is not None
            assert verify_buildspec_edit(edit.original, edit.content) is None, (repo.name, edit.path)
            assert unset_uses(edit.content, edit.original) == [], (repo.name, edit.path)
        files = dict(snap.files)
        files.update({e.path: e.content for e in part.edits})
        _, again = plan_snapshot(RepoSnapshot(snap.paths, files))
        assert again.edits == (), (repo.name, [e.path for e in again.edits])
        named = [p for p in snap.files if "buildspec" in p.lower() and _BUILD_LINE.search(snap.files[p])]
        if not named:
            continue
        with_build_line += 1
        if not any(p in found.buildspecs for p in named):
            # Not a CodeBuild buildspec (a GitHub workflow, invalid YAML, an unknown version): said so.
            assert {f.path for f in found.findings if f.code == "not-a-buildspec"} & set(named), repo.name
            continue
        with_builds += 1
        if part.edits:
            edited += 1
        else:
            codes = {f.code for f in part.findings if f.level == "warning"}
            assert codes & {
                "buildspec-unsupported",
                "docker-build-malformed",
                "local-base-image",
                "buildspec-edit-unproven",
                *_LEFT_ON_PURPOSE,
            }, repo.name
            explained.append(repo.name)
            # A build that an edit would break (an image without buildx, ...) is left alone by design.
            refused += bool(codes & _LEFT_ON_PURPOSE)
    assert with_build_line == 40
    assert with_builds >= 36
    assert edited / (with_builds - refused) >= 0.9, (edited, with_builds, refused, explained)


def test_real_corpus_build_links(corpus: Path) -> None:
    trees = corpus / "real" / "_trees"
    snap = corpus_snapshot(corpus / "real" / "004-aws-samples-aws-codepipeline-devsecops-amazoneks", trees)
    _, part = plan_snapshot(snap)
    (link,) = part.builds
    # `cd code/app && docker build . ... -f Dockerfile` resolves against the directory `cd` entered.
    assert (link.dockerfile, link.context, link.phase) == ("code/app/Dockerfile", "code/app", "build")
    snap = corpus_snapshot(corpus / "real" / "018-featureguards-platform", trees)
    _, part = plan_snapshot(snap)
    links = {b.buildspec: b for b in part.builds}
    assert links["app/buildspec.yml"].dockerfile == "app/aws.Dockerfile"  # pushd app
    assert links["envoy/prod/buildspec.yml"].dockerfile == "envoy/prod/Dockerfile"  # cd envoy; -f prod/Dockerfile
    assert len({b.cache_tag for b in part.builds}) == len(part.builds)


def test_real_corpus_is_fast(corpus: Path) -> None:
    trees = corpus / "real" / "_trees"
    snaps = [corpus_snapshot(r, trees) for r in _repos(corpus)]
    times = []
    for snap in snaps:
        start = time.perf_counter()
        plan_snapshot(snap)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.020, statistics.median(times)


def test_yaml_suite_inputs_never_crash_or_break(corpus: Path) -> None:
    for case in sorted((corpus / "yaml").iterdir()):
        src = case / "in.yaml"
        if not src.is_file():
            continue
        text = src.read_bytes().decode("utf-8", "surrogateescape")
        for body in (text, "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build .\n" + text):
            found, part = plan_text(body)
            for edit in part.edits:
                assert verify_buildspec_edit(body, edit.content) is None, case.name
