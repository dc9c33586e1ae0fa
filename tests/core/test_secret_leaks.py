"""Never leak a secret into the cache: `mode=max` exports every layer of every stage to ECR.

A build whose layers (or history) would hold a credential keeps its buildspec lines as they are, with a warning
that names the line and the safe alternative.
"""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.buildspec.build_args import volatile_build_args
from bot.core.dockerfile.dockerignore import Matcher, read_patterns
from bot.core.model import Finding, Options, Plan, RepoSnapshot
from bot.render.pull_request import render_pr_body
from bot.render.report import text_report

REGISTRY = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
LOGIN = (
    f"      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin {REGISTRY}\n"
)
PY = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\n"
    'COPY . .\nCMD ["python3", "app.py"]\n'
)
GO_TWO_STAGES = (
    "FROM golang:1.22 AS builder\nWORKDIR /src\nCOPY go.mod go.sum ./\nARG GITHUB_TOKEN\n"
    'RUN echo "machine github.com login x password ${GITHUB_TOKEN}" > ~/.netrc\n'
    "RUN go mod download\nCOPY . .\nRUN go build -o /out/app .\n\n"
    'FROM gcr.io/distroless/static\nCOPY --from=builder /out/app /app\nENTRYPOINT ["/app"]\n'
)


def _buildspec(pre: str = "", build: str = "docker build -t $REPO:latest .") -> str:
    return (
        'version: 0.2\nenv:\n  variables:\n    REPO: "' + REGISTRY + '/web"\nphases:\n  pre_build:\n'
        "    commands:\n" + LOGIN + pre + "  build:\n    commands:\n      - " + build + "\n"
        "  post_build:\n    commands:\n      - docker push $REPO:latest\n"
    )


def _plan(files: dict[str, str], options: Options | None = None, extra: tuple[str, ...] = ()) -> Plan:
    paths = tuple(sorted(set(files) | {"app.py", "go.mod", "go.sum", *extra}))
    files = {"requirements.txt": "flask==3.0.0\n"} | files
    return planner.plan(RepoSnapshot(paths, files), options or Options(region="eu-west-1"))


def _leaks(plan: Plan) -> list[Finding]:
    return [f for f in plan.findings if f.code == "secret-in-cache"]


def _untouched(plan: Plan, path: str = "buildspec.yml") -> bool:
    return all(e.path != path for e in plan.edits)


# --- a checkout whose .git/config holds a token --------------------------------------------------------------

SET_URL = "      - git remote set-url origin https://x-access-token:${GITHUB_TOKEN}@github.com/acme/web.git\n"


def test_token_in_the_checkout_s_git_config_copied_by_copy_all_is_refused() -> None:
    plan = _plan({"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY.replace("RUN pip", "RUN git describe; pip")})
    assert _untouched(plan)
    (leak,) = _leaks(plan)
    assert leak.level == "warning" and leak.path == "buildspec.yml"
    assert "buildspec.yml:9" in leak.message  # the line that puts the token into .git/config
    assert "Dockerfile:5" in leak.message  # the COPY that brings `.git` into a layer
    # The Dockerfile runs git, so leaving `.git` out is no advice: the token must go.
    assert "keep `.git`" in leak.message and "git remote set-url" in leak.message
    # No cache flag for that build, and the PR never says it exports one.
    body = render_pr_body(plan, "acme/web")
    assert "## Cache flags" not in body and "ref=$CACHE_URI" not in body


@pytest.mark.parametrize(
    "line",
    [
        "git clone https://ci:$TOKEN@github.com/acme/lib.git lib",
        "git clone https://$GH_TOKEN@github.com/acme/lib.git lib",
        "git clone https://oauth2:${CI_TOKEN}@gitlab.com/acme/lib.git lib",
        "git clone --depth 1 https://x-access-token:ghs_abc123@github.com/acme/lib lib",
        "git clone -b main https://ghp_0123456789abcdefABCDEF@github.com/acme/lib.git lib",
        "git clone https://${BB_USER}:${BB_APP_PASSWORD}@bitbucket.org/acme/lib.git lib",
        'git -C lib config url."https://${GITHUB_TOKEN}@github.com/".insteadOf "https://github.com/"',
    ],
)
def test_clone_shapes_that_put_a_token_into_a_nested_git_config(line: str) -> None:
    # A root `.git` entry does not cover `lib/.git` (patterns match from the context root).
    pre = "      - git clone https://github.com/acme/lib.git lib\n" if line.startswith("git -C lib") else ""
    files = {"buildspec.yml": _buildspec(pre + f"      - {line}\n"), "Dockerfile": PY, ".dockerignore": ".git\n"}
    plan = _plan(files)
    assert _untouched(plan) and "Add `lib/.git` to `.dockerignore`" in _leaks(plan)[0].message
    files[".dockerignore"] = "**/.git\n"
    plan = _plan(files)
    assert not _leaks(plan) and not _untouched(plan)


@pytest.mark.parametrize(
    "line",
    [
        "git clone https://github.com/acme/lib.git lib",
        "git clone https://ci@github.com/acme/lib.git lib",
        "git clone https://$GIT_USER@github.com/$ORG/lib.git lib",
        "git clone git@github.com:acme/lib.git lib",
        'git config --global url."https://${GITHUB_TOKEN}@github.com/".insteadOf "https://github.com/"',
        'echo \'{"credsStore":"ecr-login"}\' > ~/.docker/config.json',
    ],
)
def test_no_token_in_the_context_is_no_leak(line: str) -> None:
    plan = _plan({"buildspec.yml": _buildspec(f"      - {line}\n"), "Dockerfile": PY})
    assert not _leaks(plan) and not _untouched(plan)


def test_the_dockerignore_the_bot_adds_in_the_same_plan_removes_the_leak() -> None:
    plan = _plan({"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY})
    ignore = next(e for e in plan.edits if e.path == ".dockerignore")
    assert Matcher(read_patterns(ignore.content)).excluded(".git/config")
    assert not _leaks(plan) and not _untouched(plan)
    # An existing .dockerignore that already leaves `.git` out: same.
    plan = _plan({"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY, ".dockerignore": ".git\n"})
    assert not _leaks(plan) and not _untouched(plan)


def test_with_dockerignore_off_the_bot_adds_nothing_so_the_leak_stays() -> None:
    plan = _plan(
        {"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY}, Options(region="eu-west-1", dockerignore=False)
    )
    assert _untouched(plan) and _leaks(plan)


# --- a RUN that writes a credential into a layer -------------------------------------------------------------

NODE = 'FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\n{run}\nCOPY . .\nCMD ["node", "index.js"]\n'


@pytest.mark.parametrize(
    ("run", "refused", "file_leak"),
    [
        ('ARG NPM_TOKEN\nRUN echo "//npm.example.com/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci', True, True),
        # Removed in the same RUN: the layer does not hold the file (the passed ARG still refuses, by itself).
        (
            'ARG NPM_TOKEN\nRUN echo "//npm.example.com/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci && rm -f .npmrc',
            True,
            False,
        ),
        # Single quotes keep `${NPM_TOKEN}` a placeholder npm expands when it reads the file (the ARG still refuses).
        ("ARG NPM_TOKEN\nRUN echo '//npm.example.com/:_authToken=${NPM_TOKEN}' > .npmrc && npm ci", True, False),
        ("RUN cp /run/secrets/npmrc /root/.npmrc && npm ci", True, True),
        ("RUN cp /run/secrets/npmrc /root/.npmrc && npm ci; rm /root/.npmrc", False, False),
        (
            'RUN --mount=type=secret,id=npm NPM_TOKEN=$(cat /run/secrets/npm) && echo "_authToken=$NPM_TOKEN" > '
            "~/.npmrc",
            True,
            True,
        ),
        ("RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci", False, False),
        ('RUN echo "registry=https://npm.example.com/" > .npmrc && npm ci', False, False),
        (
            "ARG PYPI_PASSWORD\nRUN printf '[pypi]\\npassword = %s\\n' \"$PYPI_PASSWORD\" | tee ~/.pypirc && npm ci",
            True,
            True,
        ),
        (
            'ARG GITHUB_TOKEN\nRUN git config --global url."https://${GITHUB_TOKEN}@github.com/".insteadOf '
            '"https://github.com/" && npm ci',
            True,
            True,
        ),
        ('ARG API_SECRET\nRUN echo "$API_SECRET" > /etc/app.key && npm ci', True, True),
        ('ARG NODE_ENV\nRUN echo "$NODE_ENV" > env.txt && npm ci', False, False),
        # A secret ARG the build never passes is empty: writing it leaks nothing.
        ('ARG NPM_TOKEN\nRUN echo "//npm.example.com/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci', False, False),
    ],
)
def test_run_that_writes_a_credential_file(run: str, refused: bool, file_leak: bool) -> None:
    dockerfile = NODE.format(run=run)
    passed = (
        ""
        if (not refused and "NPM_TOKEN" in run)
        else " ".join(f"--build-arg {line.split()[1]}" for line in run.splitlines() if line.startswith("ARG "))
    )
    plan = _plan(
        {
            "buildspec.yml": _buildspec(build=f"docker build {passed} -t $REPO:latest ."),
            "Dockerfile": dockerfile,
            ".dockerignore": ".git\n",
        },
        extra=("package.json", "package-lock.json", "index.js"),
    )
    assert bool(_leaks(plan)) is refused and _untouched(plan) is refused
    line = next(n for n, text in enumerate(dockerfile.splitlines(), 1) if text.startswith("RUN"))
    messages = " ".join(f.message for f in _leaks(plan))
    assert (f"Dockerfile:{line}" in messages) is file_leak
    if refused:
        assert "--mount=type=secret" in messages and "--secret" in messages
        assert "mode: min" not in messages  # the layer is part of the final image


PASS_TOKEN = "docker build --build-arg GITHUB_TOKEN -t $REPO:latest ."


def test_secret_only_in_an_earlier_stage_offers_min_and_min_mode_exports_it() -> None:
    files = {"buildspec.yml": _buildspec(build=PASS_TOKEN), "Dockerfile": GO_TWO_STAGES, ".dockerignore": ".git\n"}
    plan = _plan(files)
    assert _untouched(plan)
    messages = " ".join(f.message for f in _leaks(plan))
    assert "Dockerfile:5" in messages and "`builder`" in messages and "mode: min" in messages
    plan = _plan(files, Options(region="eu-west-1", mode="min"))
    assert not _leaks(plan)
    spec = next(e for e in plan.edits if e.path == "buildspec.yml")
    assert "mode=min" in spec.content


@pytest.mark.parametrize(
    "final",
    [
        'FROM builder\nENTRYPOINT ["/out/app"]\n',  # the final stage is built on the secret's layers
        "FROM alpine\nCOPY --from=builder /root /root\nCOPY --from=builder /out/app /app\n",  # copies the secret out
    ],
)
def test_min_is_not_offered_when_the_final_image_holds_the_secret(final: str) -> None:
    dockerfile = GO_TWO_STAGES.split("\n\n")[0] + "\n\n" + final
    files = {"buildspec.yml": _buildspec(build=PASS_TOKEN), "Dockerfile": dockerfile, ".dockerignore": ".git\n"}
    assert _leaks(_plan(files)) and "mode: min" not in " ".join(f.message for f in _leaks(_plan(files)))
    assert _untouched(_plan(files, Options(region="eu-west-1", mode="min")))


@pytest.mark.parametrize(
    ("target", "offered"),
    [
        ("app", False),  # `FROM builder AS app`: the target is built on the secret's layers
        ("2", False),  # the same stage by number
        ("slim", True),  # a target built FROM another base copies only the binary out
        ("1", True),
    ],
)
def test_min_is_offered_by_the_target_stage_and_its_bases(target: str, offered: bool) -> None:
    dockerfile = GO_TWO_STAGES.replace("FROM gcr.io/distroless/static", "FROM gcr.io/distroless/static AS slim")
    dockerfile += '\nFROM builder AS app\nENTRYPOINT ["/out/app"]\n'
    build = f"docker build --build-arg GITHUB_TOKEN --target {target} -t $REPO:latest ."
    leaks = _leaks(
        _plan({"buildspec.yml": _buildspec(build=build), "Dockerfile": dockerfile, ".dockerignore": ".git\n"})
    )
    assert leaks and ("mode: min" in " ".join(f.message for f in leaks)) is offered


def test_a_stage_the_build_does_not_build_exports_nothing() -> None:
    dockerfile = GO_TWO_STAGES + '\nFROM alpine AS tools\nRUN echo "$HOME"\n'
    build = "docker build --build-arg GITHUB_TOKEN --target tools -t $REPO:latest ."
    files = {"buildspec.yml": _buildspec(build=build), "Dockerfile": dockerfile, ".dockerignore": ".git\n"}
    assert not _leaks(_plan(files))


# --- secret build args ---------------------------------------------------------------------------------------


def test_secret_arg_the_buildspec_passes_is_refused_and_one_it_does_not_pass_is_not() -> None:
    dockerfile = NODE.format(run="ARG SENTRY_AUTH_TOKEN\nRUN npm ci && npm run build")
    build = "docker build --build-arg SENTRY_AUTH_TOKEN=$SENTRY_AUTH_TOKEN -t $REPO:latest ."
    files = {"buildspec.yml": _buildspec(build=build), "Dockerfile": dockerfile, ".dockerignore": ".git\n"}
    plan = _plan(files, extra=("package.json", "package-lock.json"))
    (leak,) = _leaks(plan)
    assert _untouched(plan) and "buildspec.yml:11" in leak.message and "Dockerfile:4" in leak.message
    assert "history" in leak.message and "--secret id=SENTRY_AUTH_TOKEN,env=SENTRY_AUTH_TOKEN" in leak.message
    files["buildspec.yml"] = _buildspec()
    assert not _leaks(_plan(files, extra=("package.json", "package-lock.json")))


def test_the_038_shape_netrc_from_a_passed_token_in_a_builder_stage() -> None:
    build = "docker build --build-arg GITHUB_USER=$GITHUB_USER --build-arg GITHUB_TOKEN=$GITHUB_TOKEN -t $REPO:latest ."
    plan = _plan({"buildspec.yml": _buildspec(build=build), "Dockerfile": GO_TWO_STAGES, ".dockerignore": ".git\n"})
    messages = " ".join(f.message for f in _leaks(plan))
    assert _untouched(plan)
    assert "Dockerfile:5" in messages and "GITHUB_TOKEN" in messages and "mode: min" in messages
    assert "GITHUB_USER" not in messages  # a user name is no secret


def test_per_build_credential_build_arg_is_refused_and_every_run_misses() -> None:
    assert volatile_build_args(["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], {}) == (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    )
    assert volatile_build_args(["AWS_SESSION_TOKEN=$AWS_SESSION_TOKEN", "AWS_REGION=$AWS_REGION"], {}) == (
        "AWS_SESSION_TOKEN",
    )
    dockerfile = (
        "FROM python:3.12-slim\nARG AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\nWORKDIR /app\n"
        "COPY requirements.txt ./\nRUN pip install -r requirements.txt\nCOPY . .\n"
        'RUN python3 -m compileall .\nCMD ["python3", "app.py"]\n'
    )
    build = "docker build --build-arg AWS_CONTAINER_CREDENTIALS_RELATIVE_URI -t $REPO:latest ."
    plan = _plan({"buildspec.yml": _buildspec(build=build), "Dockerfile": dockerfile, ".dockerignore": ".git\n"})
    assert _untouched(plan) and "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in _leaks(plan)[0].message
    (table,) = plan.cache_tables
    runs = [s for s in table.before if s.instruction.startswith("RUN")]
    assert len(runs) == 2 and all(s.reruns_on_source_change for s in runs)
    assert "`ARG AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` changes on every build" in runs[0].reason


# --- the rest of the plan ------------------------------------------------------------------------------------


def test_other_buildspecs_keep_their_change_and_the_pr_claims_no_export_for_the_refused_one() -> None:
    files = {
        "buildspec.yml": _buildspec(SET_URL),
        "Dockerfile": PY.replace("RUN pip", "RUN git describe; pip"),
        "api/buildspec.yml": _buildspec(build="docker build -t $REPO:api api"),
        "api/Dockerfile": PY,
        "api/.dockerignore": "*.md\n",
    }
    plan = _plan(files, extra=("api/requirements.txt", "api/app.py"))
    assert _untouched(plan, "buildspec.yml") and not _untouched(plan, "api/buildspec.yml")
    body = render_pr_body(plan, "acme/web")
    flags = body.split("## Cache flags", 1)[1].split("##", 1)[0]
    assert "`api/buildspec.yml`" in flags and "`buildspec.yml`" not in flags
    assert "makes the Docker build of **acme/web**" in body
    assert "1 other build keeps running as today, without the cache" in body


def test_refusal_is_idempotent() -> None:
    files = {"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY.replace("RUN pip", "RUN git describe; pip")}
    first = _plan(files)
    again = files | {e.path: e.content for e in first.edits}
    second = _plan(again, extra=tuple(e.path for e in first.edits))
    assert second.edits == () and _leaks(second) == _leaks(first)


@pytest.mark.parametrize(
    ("copy", "leaks"),
    [
        ("ADD . /app", True),
        ("COPY ./ ./", True),
        ("COPY * ./", True),
        ("COPY --chown=app . .", True),
        ("COPY src/ ./src/", False),
        ("COPY --from=python:3.12 / /", False),
    ],
)
def test_whole_context_copies_bring_the_git_config_in(copy: str, leaks: bool) -> None:
    dockerfile = PY.replace("COPY . .", copy).replace("RUN pip", "RUN git describe; pip")
    plan = _plan({"buildspec.yml": _buildspec(SET_URL), "Dockerfile": dockerfile}, extra=("src/main.py",))
    assert bool(_leaks(plan)) is leaks and _untouched(plan) is leaks


def test_a_dockerfile_the_bot_cannot_read_is_assumed_to_copy_what_it_is_given() -> None:
    build = "docker build -f $DOCKERFILE -t $REPO:latest ."
    plan = _plan({"buildspec.yml": _buildspec(SET_URL, build=build)})
    assert _untouched(plan) and "could not be read" in _leaks(plan)[0].message
    # A credential passed as a build arg to a Dockerfile the bot cannot read: it cannot tell where it ends up.
    build = "docker build -f $DOCKERFILE --build-arg NPM_TOKEN=$NPM_TOKEN -t $REPO:latest ."
    plan = _plan({"buildspec.yml": _buildspec(build=build), ".dockerignore": ".git\n"})
    assert _untouched(plan) and "NPM_TOKEN" in _leaks(plan)[0].message
    # With `mode: min` only the final image's layers go to the cache: what the image already holds.
    assert not _leaks(
        _plan(
            {"buildspec.yml": _buildspec(build=build), ".dockerignore": ".git\n"},
            Options(region="eu-west-1", mode="min"),
        )
    )


def test_the_cli_report_says_the_refused_build_gets_no_cache() -> None:
    files = {"buildspec.yml": _buildspec(SET_URL), "Dockerfile": PY.replace("RUN pip", "RUN git describe; pip")}
    report = text_report(_plan(files))
    line = next(x for x in report.splitlines() if x.strip().startswith("buildspec.yml:12"))
    assert "no cache" in line and "cache tag" not in line


def test_a_build_set_up_before_still_counts_as_cached() -> None:
    files = {"buildspec.yml": _buildspec(), "Dockerfile": PY, ".dockerignore": ".git\n"}
    first = _plan(files)
    again = _plan(files | {e.path: e.content for e in first.edits}, extra=tuple(e.path for e in first.edits))
    assert again.edits == () and [b.cached for b in again.builds] == [True]
    assert [b.cached for b in first.builds] == [True]


def test_a_clone_in_the_same_command_as_the_build_counts_and_one_after_it_does_not() -> None:
    dockerfile = PY.replace("RUN pip", "RUN git describe; pip")
    build = (
        "git clone https://$GH_TOKEN@github.com/acme/lib.git lib && docker build -t $REPO:latest . && "
        "git clone https://$GH_TOKEN@github.com/acme/other.git other"
    )
    plan = _plan({"buildspec.yml": _buildspec(build=build), "Dockerfile": dockerfile, ".dockerignore": ".git\n"})
    (leak,) = _leaks(plan)
    assert "lib/.git" in leak.message and "other" not in leak.message


def test_an_env_carries_a_passed_secret_into_a_stage_built_from_it() -> None:
    dockerfile = (
        "FROM node:20 AS base\nARG NPM_TOKEN\nENV NPM_TOKEN=$NPM_TOKEN\nWORKDIR /app\n\n"
        "FROM base AS deps\nCOPY package.json package-lock.json ./\n"
        'RUN echo "//npm.example.com/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci\n\n'
        "FROM node:20-slim\nCOPY --from=deps /app/node_modules /app/node_modules\n"
    )
    files = {
        "buildspec.yml": _buildspec(build="docker build --build-arg NPM_TOKEN -t $REPO:latest ."),
        "Dockerfile": dockerfile,
        ".dockerignore": ".git\n",
    }
    messages = " ".join(f.message for f in _leaks(_plan(files, extra=("package.json", "package-lock.json"))))
    assert "Dockerfile:8 (stage `deps`) writes `$NPM_TOKEN` into `.npmrc`" in messages
    assert "mode: min" in messages  # only node_modules comes out of `deps`


def test_a_cd_inside_a_subshell_does_not_move_a_later_clone() -> None:
    # `( ... )` runs in a subshell: its `cd` ends with it, so the clone lands in `lib`, not `tools/lib`.
    line = "      - (cd tools && ls)\n      - git clone https://${GITHUB_TOKEN}@github.com/acme/lib.git lib\n"
    files = {"buildspec.yml": _buildspec(line), "Dockerfile": PY, ".dockerignore": ".git\n"}
    (leak,) = _leaks(_plan(files))
    assert "Add `lib/.git` to `.dockerignore`" in leak.message
    files[".dockerignore"] = ".git\nlib/.git\n"
    assert not _leaks(_plan(files))
