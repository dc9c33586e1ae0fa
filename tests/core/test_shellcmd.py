"""Shell parsing of buildspec commands: words, comments, heredocs, and `docker build` recognition."""

from __future__ import annotations

import pytest

from bot.core.shell.docker_build import (
    CacheFlags,
    apply_splices,
    build_splices,
    find_builds,
    find_legacy_logins,
    parse_bot_flags,
)
from bot.core.shell.words import simple_commands, tokenize


def _words(s: str) -> list[list[str]]:
    return [[w.value for w in c.words] for c in simple_commands(s)]


def test_quotes_substitutions_and_comments_are_one_word_or_dropped() -> None:
    s = 'echo "a b" \'c d\' $(echo "x y" | cut -c1) ${A:-b c} `date +%s` # trailing comment'
    assert _words(s) == [["echo", "a b", "c d", '$(echo "x y" | cut -c1)', "${A:-b c}", "`date +%s`"]]


def test_operators_split_commands_and_keywords_are_skipped() -> None:
    s = "if [ -f x ]; then cd app && docker build .; else echo no; fi\nwhile true; do sleep 1; done"
    assert _words(s) == [
        ["[", "-f", "x", "]"],
        ["cd", "app"],
        ["docker", "build", "."],
        ["echo", "no"],
        ["true"],
        ["sleep", "1"],
    ]


def test_continuations_join_and_heredoc_bodies_are_not_commands() -> None:
    s = "docker build \\\n  -t x \\\n  .\ncat <<EOF > f\ndocker build -t nope .\nEOF\necho done"
    assert _words(s) == [["docker", "build", "-t", "x", "."], ["cat"], ["echo", "done"]]


def test_redirection_targets_are_not_arguments() -> None:
    assert _words("docker build -t x . 2>&1 > build.log") == [["docker", "build", "-t", "x", "."]]


def test_tokenize_reports_operators() -> None:
    kinds = [t for k, t in tokenize("a && b || c; d | e") if k == "op"]
    assert kinds == ["&&", "||", ";", "|"]


@pytest.mark.parametrize(
    ("command", "dockerfile", "context"),
    [
        ("docker build -t x .", None, "."),
        ("docker build . -t x -f Dockerfile", "Dockerfile", "."),
        ("docker build --file=docker/app.Dockerfile ./src", "docker/app.Dockerfile", "./src"),
        ("docker image build -fDockerfile.prod ctx", "Dockerfile.prod", "ctx"),
        ("docker buildx build --platform linux/arm64 --push -t x:1 .", None, "."),
        ("sudo docker build -t x . # comment", None, "."),
        ('docker build -t "$REPO:latest" --build-arg "A=b c" "$CTX"', None, "$CTX"),
    ],
)
def test_build_flags_and_context(command: str, dockerfile: str | None, context: str) -> None:
    (b,) = find_builds(command)
    assert (b.dockerfile, b.context) == (dockerfile, context)


def test_not_builds() -> None:
    assert find_builds("# docker build -t x .") == []
    assert find_builds('echo "docker build -t x ."') == []
    assert find_builds("docker run build") == []
    assert find_builds("docker buildx create --use") == []


def test_malformed_build_arg_swallowing_f_leaves_two_positionals() -> None:
    (b,) = find_builds('docker build --build-arg -f "Dockerfile" -t r:t . --add-host a:1.2.3.4')
    assert [p.value for p in b.real_positionals] == ["Dockerfile", "."]
    assert b.context is None


def test_variable_that_may_hold_flags() -> None:
    (b,) = find_builds("docker build $CACHE_FROM -t x -f d/Dockerfile .")
    assert b.flag_vars == ("$CACHE_FROM",)
    assert b.context == "."
    (b,) = find_builds("docker build -t x $CONTEXT")
    assert b.flag_vars == () and b.context == "$CONTEXT"


def test_build_splices_keep_every_other_byte() -> None:
    cmd = "cd app && docker build --cache-from $R:latest -t $R:1 --build-arg A='b c' . # note && cd .."
    (b,) = find_builds(cmd)
    out = apply_splices(cmd, build_splices(b, CacheFlags("cache-app", "max", "--load")))
    assert out == (
        "cd app && docker buildx build --cache-from type=registry,ref=$CACHE_URI:cache-app "
        "--cache-to type=registry,ref=$CACHE_URI:cache-app,mode=max,image-manifest=true,"
        "oci-mediatypes=true --load -t $R:1 --build-arg A='b c' . # note && cd .."
    )
    assert parse_bot_flags(out) == [CacheFlags("cache-app", "max", "--load")]
    (again,) = find_builds(out)
    assert again.rewritten


def test_image_build_becomes_buildx_build_and_mode_min_without_output() -> None:
    cmd = "docker image build -o type=tar,dest=out.tar ."
    (b,) = find_builds(cmd)
    out = apply_splices(cmd, build_splices(b, CacheFlags("cache", "min", None)))
    assert out.startswith("docker buildx build --cache-from type=registry,ref=$CACHE_URI:cache --cache-to ")
    assert ",mode=min,image-manifest=true,oci-mediatypes=true -o type=tar" in out


def test_legacy_logins_keep_region_and_accounts() -> None:
    s = "$(aws ecr get-login --no-include-email --region=eu-west-1 --registry-ids 111122223333 444455556666)"
    (lg,) = find_legacy_logins(s)
    assert lg.region == "eu-west-1"
    assert lg.replacement() == (
        "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
        "111122223333.dkr.ecr.eu-west-1.amazonaws.com && aws ecr get-login-password --region eu-west-1 | "
        "docker login --username AWS --password-stdin 444455556666.dkr.ecr.eu-west-1.amazonaws.com"
    )
    (lg,) = find_legacy_logins("eval $(aws ecr get-login --no-include-email)")
    assert (lg.start, lg.region, lg.registry_ids) == (0, "$AWS_DEFAULT_REGION", ())
    (lg,) = find_legacy_logins("$(aws ecr get-login --region cn-north-1)")
    assert lg.replacement().endswith("$AWS_ACCOUNT_ID.dkr.ecr.cn-north-1.amazonaws.com.cn")


def test_commands_inside_loops_know_their_loop_depth() -> None:
    text = "for s in a b; do docker build -t $s ./$s; done; docker push x\nwhile read l; do\n  echo $l\ndone < f"
    depths = [(c.words[0].value, c.loops) for c in simple_commands(text)]
    assert depths == [("for", 0), ("docker", 1), ("docker", 0), ("read", 0), ("echo", 1)]
