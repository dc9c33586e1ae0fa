"""Cases found reviewing the planner's diffs line by line against real CodeBuild behaviour."""

from __future__ import annotations

from buildspec_support import plan_snapshot, plan_text, unset_uses

from bot.core.buildspec.plan import verify_buildspec_edit
from bot.core.model import Options, RepoSnapshot

HEAD = "version: 0.2\nphases:\n"


def edited(text: str, **kw: object) -> str:
    """The one verified, idempotent edit of ``text``."""
    _, part = plan_text(text, **kw)  # type: ignore[arg-type]
    assert len(part.edits) == 1, [f.message for f in part.findings]
    out = part.edits[0].content
    assert verify_buildspec_edit(text, out) is None
    assert plan_text(out, **kw)[1].edits == ()  # type: ignore[arg-type]
    assert unset_uses(out, text) == []
    return out


def untouched(text: str, code: str, **kw: object) -> str:
    """Assert the file is left alone with a finding ``code``; return its message."""
    _, part = plan_text(text, **kw)  # type: ignore[arg-type]
    assert part.edits == ()
    found = [f for f in part.findings if f.code == code]
    assert found, [(f.code, f.message) for f in part.findings]
    return found[0].message


def test_region_variable_set_in_the_build_phase_is_set_before_the_cache_uri() -> None:
    # The setup used to go to the end of pre_build, where $REGION is still empty: `ref=.dkr.ecr..amazonaws.com`.
    text = HEAD + (
        "  pre_build:\n    commands:\n      - echo start\n"
        "  build:\n    commands:\n      - REGION=eu-west-1\n"
        "      - aws ecr get-login-password --region $REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$REGION.amazonaws.com\n"
        "      - docker build -t x .\n"
    )
    out = edited(text)
    assert out.index("- REGION=eu-west-1") < out.index("- CACHE_URI=")


def test_region_variable_set_only_after_the_builds_is_not_used() -> None:
    text = HEAD + (
        "  build:\n    commands:\n      - docker build -t x .\n"
        "  post_build:\n    commands:\n      - REGION=eu-west-1\n"
        "      - aws ecr get-login-password --region $REGION | docker login --username AWS "
        "--password-stdin 123456789012.dkr.ecr.$REGION.amazonaws.com\n      - docker push x\n"
    )
    out = edited(text)
    assert "- CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$CACHE_REPO_NAME" in out


def test_region_of_a_command_that_is_not_about_ecr_is_not_the_cache_region() -> None:
    text = HEAD + (
        "  build:\n    commands:\n      - docker build -t x .\n"
        "  post_build:\n    commands:\n"
        "      - aws cloudformation deploy --stack-name s --template-file t.yml --region $DEPLOY_REGION\n"
    )
    out = edited(text)
    assert "DEPLOY_REGION" not in out.replace("--region $DEPLOY_REGION", "")


def test_first_build_in_post_build_gets_its_setup_where_a_failed_build_phase_cannot_skip_it() -> None:
    # POST_BUILD runs even when BUILD failed, so lines appended to `build` may never have run.
    text = HEAD + (
        "  pre_build:\n    commands:\n      - echo login\n"
        "  build:\n    commands:\n      - mvn -B verify\n"
        "  post_build:\n    commands:\n      - docker build -t x .\n      - docker push x\n"
    )
    out = edited(text)
    build_phase = out[out.index("  build:") : out.index("  post_build:")]
    assert "CACHE_URI" not in build_phase and "buildx create" not in build_phase


def test_build_inside_a_shell_loop_is_left_alone() -> None:
    # Every iteration would write the same cache ref (one writer per ref).
    text = HEAD + ("  build:\n    commands:\n      - for svc in api web; do docker build -t $svc ./$svc; done\n")
    message = untouched(text, "build-in-loop")
    assert "loop" in message


def test_host_network_build_is_left_alone() -> None:
    for flag in ("--network host", "--network=host", "--network build-net"):
        text = HEAD + f"  build:\n    commands:\n      - docker build {flag} -t x .\n"
        assert "network" in untouched(text, "build-network")
    edited(HEAD + "  build:\n    commands:\n      - docker build --network=none -t x .\n")


def test_private_builder_image_is_pulled_after_a_login() -> None:
    # buildx pulls the builder image at `create --bootstrap` with the CLI's credentials.
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/buildkit:v0.16"
    text = HEAD + (
        "  pre_build:\n    commands:\n      - echo start\n"
        "  build:\n    commands:\n"
        "      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com\n"
        "      - docker build -t x .\n"
    )
    out = edited(text, options=Options(builder_image=image))
    create = out.index("docker buildx create")
    assert out.find("| docker login", 0, create) >= 0
    # A public builder image needs no login before it.
    out = edited(text, options=Options(builder_image="public.ecr.aws/vend/moby/buildkit:buildx-stable-1"))
    assert out.count("docker login") == 1


def test_secret_build_args_refuse_the_export_when_every_stage_is_exported() -> None:
    text = HEAD + (
        "  build:\n    commands:\n"
        "      - docker build --build-arg GITHUB_TOKEN=${GITHUB_TOKEN} --build-arg APP=1 -t x .\n"
    )
    _, part = plan_text(text)
    (secret,) = [f for f in part.findings if f.code == "secret-in-cache"]
    assert "GITHUB_TOKEN" in secret.message and "`--build-arg APP`" not in secret.message
    assert part.edits == ()
    # min mode exports only the final image's layers, which the build pushes anyway.
    _, part = plan_text(text, options=Options(mode="min"))
    assert "secret-in-cache" not in {f.code for f in part.findings} and len(part.edits) == 1


def test_flags_variable_known_to_hold_no_cache_is_named() -> None:
    text = HEAD + (
        '  pre_build:\n    commands:\n      - BUILD_OPT="--no-cache --pull"\n'
        "  build:\n    commands:\n      - docker build ${BUILD_OPT} -t x .\n"
    )
    _, part = plan_text(text)
    messages = [f.message for f in part.findings if f.code == "no-cache"]
    assert messages and "BUILD_OPT" in messages[0] and "--no-cache --pull" in messages[0]


def test_login_with_an_account_variable_from_sts_covers_the_cache_registry() -> None:
    text = HEAD + (
        "  pre_build:\n    commands:\n"
        "      - ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)\n"
        "      - aws ecr get-login-password --region $AWS_REGION | docker login --username AWS "
        "--password-stdin ${ACCOUNT_ID}.dkr.ecr.$AWS_REGION.amazonaws.com\n"
        "  build:\n    commands:\n      - docker build -t x .\n"
    )
    assert edited(text).count("docker login") == 1


def test_phases_that_run_as_another_user_are_left_alone() -> None:
    # Builder and ECR credentials live in the home directory of the user who created them.
    text = HEAD + (
        "  pre_build:\n    run-as: root\n    commands:\n      - echo start\n"
        "  build:\n    run-as: builder\n    commands:\n      - docker build -t x .\n"
    )
    assert "run-as" in untouched(text, "buildspec-unsupported")


def test_build_in_finally_is_reported() -> None:
    text = HEAD + (
        "  build:\n    commands:\n      - docker build -t x .\n"
        "    finally:\n      - docker buildx build -t debug -f Dockerfile.debug .\n"
    )
    _, part = plan_text(text)
    assert part.edits
    assert any(f.code == "builder-switch" and "finally" in f.message for f in part.findings)
    # A plain `docker build` keeps the default builder whatever `buildx use` selected (Docker 23+).
    plain = text.replace("docker buildx build -t debug", "docker build -t debug")
    assert "builder-switch" not in {f.code for f in plan_text(plain)[1].findings}


def test_build_inside_a_command_substitution_is_reported() -> None:
    # The parser cannot rewrite it, yet `docker buildx build` runs on the docker-container builder after
    # `buildx use`; a plain `docker build` keeps the default builder (Docker 23+, docker/cli#3676).
    text = HEAD + (
        "  build:\n    commands:\n      - docker build -t x .\n"
        "      - IMAGE_ID=$(docker buildx build -q -f Dockerfile.test .)\n      - docker run $IMAGE_ID\n"
    )
    _, part = plan_text(text)
    assert part.edits
    assert any(f.code == "builder-switch" and "$(" in f.message for f in part.findings)
    plain = text.replace("$(docker buildx build", "$(docker build")
    assert "builder-switch" not in {f.code for f in plan_text(plain)[1].findings}
    assert "builder-switch" not in {
        f.code for f in plan_text(HEAD + "  build:\n    commands:\n      - docker build -t x .\n")[1].findings
    }


def test_build_against_another_docker_host_is_left_alone() -> None:
    # The builder is created on the default context; `-H` would build on one daemon and load into another.
    text = HEAD + "  build:\n    commands:\n      - docker -H tcp://127.0.0.1:2375 build -t x .\n"
    assert "docker" in untouched(text, "build-docker-host")


def test_a_cache_uri_of_the_project_that_is_not_the_bots_is_not_reused() -> None:
    text = HEAD + (
        "  pre_build:\n    commands:\n      - CACHE_URI=s3://team-bucket/cache\n"
        "  build:\n    commands:\n      - docker build -t x .\n"
    )
    assert "CACHE_URI" in untouched(text, "buildspec-unsupported")


def test_docker_hub_pull_of_the_builder_image_is_explained_unless_an_image_is_configured() -> None:
    text = HEAD + "  build:\n    commands:\n      - docker build -t x .\n"
    assert "builder-image" in {f.code for f in plan_text(text)[1].findings}
    configured = Options(builder_image="public.ecr.aws/vend/moby/buildkit:buildx-stable-1")
    assert "builder-image" not in {f.code for f in plan_text(text, options=configured)[1].findings}


def test_cache_repository_is_named_after_the_one_ecr_repository_the_buildspec_pushes_to() -> None:
    # A shared `ecr-build-cache` would put every repository of the account on the same `cache` ref.
    literal = HEAD + (
        "  pre_build:\n    commands:\n"
        "      - REPOSITORY_URI=776875668468.dkr.ecr.ap-northeast-2.amazonaws.com/mybeautip-api\n"
        "  build:\n    commands:\n      - docker build -t $REPOSITORY_URI:dev .\n"
    )
    assert 'CACHE_REPO_NAME: "mybeautip-api-cache"' in edited(literal)
    variable = (
        'version: 0.2\nenv:\n  variables:\n    ECR_REPOSITORY: "orders"\n' + literal[len("version: 0.2\n") :]
    ).replace("mybeautip-api\n", "$ECR_REPOSITORY\n")
    assert 'CACHE_REPO_NAME: "orders-cache"' in edited(variable)
    # A base image pulled from another registry names nothing; two pushed repositories are ambiguous.
    pulled = literal.replace("REPOSITORY_URI=", "docker pull ").replace("$REPOSITORY_URI", "app")
    assert 'CACHE_REPO_NAME: "ecr-build-cache"' in edited(pulled)
    two = literal.replace(
        "      - docker build -t $REPOSITORY_URI:dev .\n",
        "      - docker build -t $REPOSITORY_URI:dev .\n"
        "      - docker push 776875668468.dkr.ecr.ap-northeast-2.amazonaws.com/other:1\n",
    )
    assert 'CACHE_REPO_NAME: "ecr-build-cache"' in edited(two)


def test_china_registry_hosts_keep_their_dns_suffix() -> None:
    # ECR in the aws-cn partition answers on amazonaws.com.cn; a `$REGION` alone cannot tell.
    host = "$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com.cn"
    text = HEAD + (
        "  pre_build:\n    commands:\n"
        "      - $(aws ecr get-login --no-include-email --region $AWS_DEFAULT_REGION)\n"
        "  build:\n    commands:\n      - docker build -t x .\n"
        f"      - docker push {host}/app:latest\n"
    )
    out = edited(text)
    assert f"- CACHE_URI={host}/$CACHE_REPO_NAME\n" in out
    assert f"--password-stdin {host}\n" in out
    assert ".amazonaws.com/" not in out and ".amazonaws.com\n" not in out


def test_pushed_build_whose_image_is_used_locally_afterwards_is_left_alone() -> None:
    # The default docker driver keeps a `--push` build in the local image store; docker-container does not.
    text = HEAD + (
        "  build:\n    commands:\n      - docker buildx build --push -t $URI:1 .\n"
        "      - docker tag $URI:1 $URI:latest\n"
    )
    assert "--push" in untouched(text, "build-push-local-image")
    # Pushing the same tag again also reads the local image store.
    again = text.replace("docker tag $URI:1 $URI:latest", "docker push $URI:1")
    assert "docker push" in untouched(again, "build-push-local-image")
    pushed_only = HEAD + "  build:\n    commands:\n      - docker buildx build --push -t $URI:1 .\n"
    assert "--load" not in edited(pushed_only)


def test_later_build_from_a_local_image_passed_as_a_build_arg_is_refused() -> None:
    text = HEAD + (
        "  build:\n    commands:\n      - docker build -t base:1 -f base/Dockerfile .\n"
        "      - docker build --build-arg BASE=base:1 -f app/Dockerfile -t app .\n"
    )
    snap = RepoSnapshot(
        ("buildspec.yml", "base/Dockerfile", "app/Dockerfile"),
        {
            "buildspec.yml": text,
            "base/Dockerfile": "FROM python:3.12\n",
            "app/Dockerfile": "ARG BASE=python:3.12\nFROM ${BASE}\nCOPY . .\n",
        },
    )
    _, part = plan_snapshot(snap)
    assert part.edits == ()
    assert "local-base-image" in {f.code for f in part.findings}


def test_images_loaded_from_a_tarball_are_pointed_out() -> None:
    text = HEAD + ("  build:\n    commands:\n      - docker load -i base.tar\n      - docker build -t app .\n")
    _, part = plan_text(text)
    assert part.edits
    assert any(f.code == "local-base-image" and "docker load" in f.message for f in part.findings)


def test_docker_runtime_version_of_an_old_image_is_warned_about() -> None:
    # Only images without buildx list docker 18 under runtime-versions: the build is left as it is.
    text = HEAD + (
        "  install:\n    runtime-versions:\n      docker: 18\n  build:\n    commands:\n      - docker build -t x .\n"
    )
    _, part = plan_text(text)
    assert not part.edits
    (old,) = [f for f in part.findings if f.code == "old-build-image"]
    assert "docker: 18" in old.message and old.level == "warning"
    assert "old-build-image" not in {f.code for f in plan_text(text.replace("docker: 18", "python: 3.12"))[1].findings}


def test_region_set_in_build_does_not_reach_a_post_build_build() -> None:
    text = HEAD + (
        "  build:\n    commands:\n      - mvn -B verify\n      - REGION=eu-west-1\n"
        "      - aws ecr get-login-password --region $REGION | docker login --username AWS "
        "--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$REGION.amazonaws.com\n"
        "  post_build:\n    commands:\n      - docker build -t x .\n"
    )
    out = edited(text)
    assert "- CACHE_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$CACHE_REPO_NAME" in out


def test_cache_repository_follows_a_repository_name_set_by_a_command() -> None:
    text = HEAD + (
        "  pre_build:\n    commands:\n      - export IMAGE_REPO_NAME=fcj-backend\n"
        "      - export REPOSITORY_URI=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com/$IMAGE_REPO_NAME\n"
        "  build:\n    commands:\n      - docker build -t $REPOSITORY_URI:latest .\n"
    )
    assert 'CACHE_REPO_NAME: "fcj-backend-cache"' in edited(text)
    # Set twice to different values: the name is not known.
    twice = text.replace(
        "      - export REPOSITORY_URI", "      - IMAGE_REPO_NAME=other\n      - export REPOSITORY_URI"
    )
    assert 'CACHE_REPO_NAME: "ecr-build-cache"' in edited(twice)
