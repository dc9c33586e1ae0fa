"""First builds that fail: merging before the AWS setup, or a Docker Hub outage, must not break a build.

The buildspec commands the planner writes are run for real in one shell (CodeBuild runs every command of a
version 0.2 buildspec in one shell instance: https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-cmd.html),
with `docker` and `aws` replaced by small scripts that record their arguments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from buildspec_support import plan_text

from bot.core import planner
from bot.core.buildspec import yaml_text as by
from bot.core.buildspec.verify import verify_buildspec_edit
from bot.core.model import Options, RepoSnapshot
from bot.core.repo_config import parse_repo_config
from bot.render import pull_request

BUILDSPEC = """\
version: 0.2
env:
  variables:
    IMAGE_REPO_NAME: "shop-api"
phases:
  pre_build:
    commands:
      - REPO_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME
  build:
    commands:
      - docker build -t $REPO_URI:latest .
  post_build:
    commands:
      - docker push $REPO_URI:latest
"""

PUSHING = BUILDSPEC.replace(
    "docker build -t $REPO_URI:latest .", "docker buildx build --push -t $REPO_URI:latest ."
).replace("      - docker push $REPO_URI:latest\n", "      - echo pushed\n")

# What an earlier version of the bot wrote (merged pull requests carry it): strict flags, no fallback.
OLD_OUTPUT = """\
version: 0.2
env:
  variables:
    IMAGE_REPO_NAME: "shop-api"
    DOCKER_BUILDKIT: "1"
    CACHE_REPO_NAME: "shop-api-cache"
phases:
  pre_build:
    commands:
      - AWS_ACCOUNT_ID=${AWS_ACCOUNT_ID:-$(echo $CODEBUILD_BUILD_ARN | cut -d':' -f5)}
      - REPO_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME
      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com
      - CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$CACHE_REPO_NAME
      - docker buildx version || { echo "docker buildx is missing - use aws/codebuild/standard:7.0 or newer"; exit 1; }
      - docker buildx create --name ecr-cache --driver docker-container --use --bootstrap || docker buildx use ecr-cache
  build:
    commands:
      - docker buildx build --cache-from type=registry,ref=$CACHE_URI:cache --cache-to type=registry,ref=$CACHE_URI:cache,mode=max,image-manifest=true,oci-mediatypes=true --load -t $REPO_URI:latest .
  post_build:
    commands:
      - docker push $REPO_URI:latest
"""  # noqa: E501


def _edited(text: str = BUILDSPEC, options: Options | None = None) -> str:
    _, part = plan_text(text, options=options)
    assert len(part.edits) == 1, [f.message for f in part.findings]
    return part.edits[0].content


def _build_line(text: str) -> str:
    return next(c for c in _commands(text) if "buildx build" in c)


def _commands(text: str) -> list[str]:
    data = by.safe_load(text)
    return [
        c
        for phase in ("install", "pre_build", "build", "post_build")
        for c in ((data["phases"].get(phase) or {}).get("commands") or [])
    ]


# --- 1. cache export errors are ignored by default ------------------------------------------------------------


def test_cache_export_ignores_errors_by_default() -> None:
    line = _build_line(_edited())
    assert "mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true" in line
    # `ignore-error` is a `--cache-to` parameter only (https://docs.docker.com/build/cache/backends/registry/).
    cache_from = line.split("--cache-from ", 1)[1].split()[0]
    assert "ignore-error" not in cache_from


def test_a_repo_setting_makes_cache_errors_fatal() -> None:
    options, findings = parse_repo_config("cache_errors: fatal\n")
    assert findings == [] and options.cache_errors == "fatal"
    text = _edited(options=options)
    line = _build_line(text)
    assert "ignore-error" not in line
    assert "--cache-to type=registry,ref=$CACHE_URI:cache,mode=max,image-manifest=true,oci-mediatypes=true " in line
    # Fatal means fatal: a builder that cannot start stops the build instead of falling back.
    assert not any("docker buildx use default" in c for c in _commands(text))
    assert verify_buildspec_edit(BUILDSPEC, text) is None
    assert plan_text(text, options=options)[1].edits == ()


def test_a_bad_cache_errors_value_is_named() -> None:
    _, findings = parse_repo_config("cache_errors: sometimes\n")
    assert [f.code for f in findings] == ["config-invalid"]
    assert "`cache_errors`" in findings[0].message and "fatal" in findings[0].message


def test_new_output_is_verified_and_idempotent() -> None:
    text = _edited()
    assert verify_buildspec_edit(BUILDSPEC, text) is None
    _, again = plan_text(text)
    assert again.edits == ()
    assert [b.cache_tag for b in again.builds] == ["cache"]


def test_the_verifier_refuses_a_cache_flag_that_is_not_the_bots() -> None:
    text = _edited()
    tampered = text.replace("ignore-error=true", "ignore-error=true,compression=zstd")
    assert verify_buildspec_edit(BUILDSPEC, tampered) is not None
    unconditional = text.replace(
        "${CACHE_URI:+--cache-from type=registry,ref=$CACHE_URI:cache}",
        "--cache-from type=registry,ref=$CACHE_URI:cache",
    )
    assert unconditional != text
    assert verify_buildspec_edit(BUILDSPEC, unconditional) is not None


def test_old_bot_output_is_left_alone() -> None:
    """A build the bot already set up (merged before `ignore-error` existed) is not rewritten again.

    Its cache repository exists (the build has been running with it), so the new defaults protect nothing there;
    rewriting a working, reviewed buildspec would be churn.
    """
    found, part = plan_text(OLD_OUTPUT)
    assert part.edits == ()
    assert [b.cache_tag for b in part.builds] == ["cache"]


def test_the_pr_says_that_cache_errors_do_not_fail_the_build() -> None:
    snap = RepoSnapshot(
        ("buildspec.yml", "Dockerfile"),
        {"buildspec.yml": BUILDSPEC, "Dockerfile": "FROM python:3.12\nRUN pip install flask\nCOPY . /app\n"},
    )
    body = pull_request.render_pr_body(planner.plan(snap, Options()), "octo/shop", Options())
    flags = body.split("## Cache flags", 1)[1].split("\n## ", 1)[0]
    assert ",oci-mediatypes=true,ignore-error=true`" in flags
    assert "Merging before the one-time AWS setup does not break the build" in flags
    assert "`cache_errors: fatal`" in flags and "Docker Hub" in flags
    fatal_options = Options(cache_errors="fatal")
    fatal = pull_request.render_pr_body(planner.plan(snap, fatal_options), "octo/shop", fatal_options)
    assert "ignore-error" not in fatal and "does not break the build" not in fatal


# --- 2. the builder falls back to the default driver without the cache -----------------------------------------

_DOCKER_STUB = """#!/bin/sh
# Records its arguments; FAIL_CREATE=outage: the BuildKit image cannot be pulled; FAIL_CREATE=exists: the
# builder was created before. The current builder is kept in a file, as buildx keeps it in ~/.docker/buildx.
for a in "$@"; do printf '[%s]' "$a"; done >> "$STUB_LOG"; echo >> "$STUB_LOG"
current=$(cat "$STUB_LOG.builder" 2>/dev/null || echo default)
case "$1 $2" in
  "buildx create")
    # `create --use --bootstrap` registers and selects the builder before booting it.
    echo "$4" > "$STUB_LOG.builder"
    [ -n "$FAIL_CREATE" ] && { echo "ERROR: failed to pull moby/buildkit: toomanyrequests" >&2; exit 1; } ;;
  "buildx inspect") [ "$FAIL_CREATE" = outage ] && { echo "ERROR: toomanyrequests" >&2; exit 1; } ;;
  "buildx use") echo "$3" > "$STUB_LOG.builder" ;;
  "buildx build")
    if [ "$current" = default ]; then
      # The default `docker` driver refuses a cache export before building
      # (https://docs.docker.com/build/cache/backends/: not supported with the default docker driver).
      case "$*" in *--cache-to*) echo "ERROR: Cache export is not supported for the docker driver." >&2; exit 1;; esac
    elif [ "$FAIL_CREATE" = outage ]; then
      echo "ERROR: failed to boot builder: toomanyrequests" >&2; exit 1
    fi ;;
esac
exit 0
"""
_AWS_STUB = "#!/bin/sh\necho token\n"


def _shells() -> list[str]:
    """bash, and a POSIX sh (dash) when there is one: `${VAR:+word}` must work in both."""
    found: dict[str, str] = {}
    for name in ("bash", "dash", "sh"):
        where = shutil.which(name)
        if where:
            found.setdefault(os.path.realpath(where), name)
    return list(found.values())


def _run(text: str, tmp_path: Path, shell: str, fail: str = "") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run every command of ``text`` in one shell, stopping at the first failing command, as CodeBuild does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("docker", _DOCKER_STUB), ("aws", _AWS_STUB)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "docker.log"
    for f in tmp_path.glob("docker.log*"):
        f.unlink()
    script = "".join(f"{{\n{c}\n}} || exit 97\n" for c in _commands(text))
    variables = {k: str(v) for k, v in by.safe_load(text)["env"]["variables"].items()}
    env = {
        **variables,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "FAIL_CREATE": fail,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CODEBUILD_BUILD_ARN": "arn:aws:codebuild:eu-west-1:123456789012:build/shop:1",
    }
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True, env=env, timeout=30)
    argv = log.read_text().splitlines() if log.exists() else []
    return result, argv


@pytest.mark.parametrize("shell", _shells())
def test_builder_up_builds_with_the_cache(tmp_path: Path, shell: str) -> None:
    result, argv = _run(_edited(), tmp_path, shell)
    assert result.returncode == 0, result.stderr
    build = next(a for a in argv if a.startswith("[buildx][build]"))
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api-cache"
    assert f"[--cache-from][type=registry,ref={uri}:cache]" in build
    assert (
        f"[--cache-to][type=registry,ref={uri}:cache,mode=max,image-manifest=true,oci-mediatypes=true,"
        "ignore-error=true]"
    ) in build
    assert "[--load]" in build
    assert "layer cache" not in result.stdout


@pytest.mark.parametrize("shell", _shells())
@pytest.mark.parametrize("text", [BUILDSPEC, PUSHING], ids=["load", "push"])
def test_builder_down_builds_without_the_cache_and_says_why_once(tmp_path: Path, shell: str, text: str) -> None:
    result, argv = _run(_edited(text), tmp_path, shell, fail="outage")
    assert result.returncode == 0, result.stderr
    build = next(a for a in argv if a.startswith("[buildx][build]"))
    assert "--cache-from" not in build and "--cache-to" not in build
    assert ("[--push]" if text is PUSHING else "[--load]") in build
    assert "[buildx][use][default]" in argv
    said = [line for line in result.stdout.splitlines() if "layer cache" in line]
    assert len(said) == 1 and "could not start" in said[0] and "Docker Hub" in said[0]
    # The later push of the loaded image still runs (a build with --push has no push step of its own).
    assert any(a.startswith("[push]") for a in argv) == (text is not PUSHING)
    assert verify_buildspec_edit(text, _edited(text)) is None


@pytest.mark.parametrize("shell", _shells())
def test_an_existing_builder_is_reused(tmp_path: Path, shell: str) -> None:
    """`buildx create` fails because the builder exists (the setup ran before): the cache stays on."""
    result, argv = _run(_edited(), tmp_path, shell, fail="exists")
    assert result.returncode == 0, result.stderr
    build = next(a for a in argv if a.startswith("[buildx][build]"))
    assert "[--cache-from]" in build and "[--cache-to]" in build
    assert "[buildx][use][ecr-cache]" in argv and "[buildx][use][default]" not in argv
    assert "layer cache" not in result.stdout


@pytest.mark.parametrize("shell", _shells())
def test_fatal_setting_stops_the_build_when_the_builder_cannot_start(tmp_path: Path, shell: str) -> None:
    result, _ = _run(_edited(options=Options(cache_errors="fatal")), tmp_path, shell, fail="outage")
    assert result.returncode == 97
    assert "layer cache" not in result.stdout


def test_setup_lines_stay_plain_yaml_scalars() -> None:
    text = _edited()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- ") and not stripped[2:].startswith(("'", '"')):
            assert ": " not in stripped[2:] and " #" not in stripped[2:], line


def test_the_cli_flag_makes_cache_errors_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bot.cli.main import main

    (tmp_path / "buildspec.yml").write_text(BUILDSPEC)
    (tmp_path / "Dockerfile").write_text("FROM python:3.12\nRUN pip install flask\nCOPY . /app\n")
    assert main(["plan", str(tmp_path), "--json", "--cache-errors", "fatal"]) == 0
    out = json.loads(capsys.readouterr().out)
    spec = next(c for c in out["changes"] if c["path"] == "buildspec.yml")["content"]
    assert "ignore-error" not in spec and "--cache-to type=registry" in spec
    assert main(["plan", str(tmp_path), "--json"]) == 0
    spec = next(c for c in json.loads(capsys.readouterr().out)["changes"] if c["path"] == "buildspec.yml")["content"]
    assert "ignore-error=true" in spec
