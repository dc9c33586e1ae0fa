"""Files the buildspec writes before `docker build`: left out of the context when they are CodeBuild outputs."""

from __future__ import annotations

from bot.core import planner
from bot.core.dockerfile.dockerignore import Matcher, read_patterns
from bot.core.model import Options, PartialPlan, RepoSnapshot

LOGIN = (
    "      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
    "111122223333.dkr.ecr.eu-west-1.amazonaws.com\n"
)
BUILD = "      - docker build -t 111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:latest {ctx}\n"
DOCKERFILE = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\n"
    'COPY . .\nCMD ["python", "app.py"]\n'
)


def _buildspec(pre: str, post: str = "", ctx: str = ".") -> str:
    return (
        "version: 0.2\nphases:\n  pre_build:\n    commands:\n"
        + LOGIN
        + pre
        + "  build:\n    commands:\n"
        + BUILD.format(ctx=ctx)
        + ("  post_build:\n    commands:\n" + post if post else "")
    )


def _plan(buildspec: str, dockerfile: str = DOCKERFILE, prefix: str = "") -> PartialPlan:
    files = {
        "buildspec.yml": buildspec,
        f"{prefix}Dockerfile": dockerfile,
        f"{prefix}requirements.txt": "flask==3.0.0\n",
        f"{prefix}.dockerignore": ".git\n",
    }
    return planner.plan(RepoSnapshot((*sorted(files), f"{prefix}app.py"), files), Options(region="eu-west-1"))


def _ignored(plan: PartialPlan, path: str = ".dockerignore") -> list[str]:
    edit = next((e for e in plan.edits if e.path == path), None)
    return read_patterns(edit.content) if edit else [".git"]


def test_deploy_file_written_before_the_build_is_left_out() -> None:
    plan = _plan(_buildspec('      - printf \'[{"name":"web"}]\' > imagedefinitions.json\n'))
    assert "imagedefinitions.json" in _ignored(plan)
    edit = next(e for e in plan.edits if e.path == ".dockerignore")
    assert any("`pre_build` command 2" in r and "imagedefinitions.json" in r for r in edit.reasons)
    assert Matcher(_ignored(plan)).excluded("imagedefinitions.json")
    assert not Matcher(_ignored(plan)).excluded("app.py")


def test_a_file_written_after_the_build_is_not_the_build_s_concern() -> None:
    plan = _plan(_buildspec("", post="      - printf '[]' > imagedefinitions.json\n"))
    assert "imagedefinitions.json" not in _ignored(plan)


def test_logs_count_as_outputs_and_tee_and_bash_redirects_write_too() -> None:
    plan = _plan(
        _buildspec("      - ./scan.sh | tee scan.log out/report.json > /dev/null\n      - ./lint.sh &> lint.log\n")
    )
    assert {"scan.log", "lint.log"} <= set(_ignored(plan))
    # An artifact the buildspec uploads may also be read by the image: reported, not left out.
    assert "out/report.json" not in _ignored(plan)
    assert any(f.code == "written-file-in-context" and "out/report.json" in f.message for f in plan.findings)


def test_comparisons_and_process_substitution_write_no_file() -> None:
    plan = _plan(
        _buildspec(
            '      - if [[ "$CODEBUILD_BUILD_NUMBER" > 5 ]]; then echo big; fi\n'
            "      - ./scan.sh > >(tee -a scan.log)\n"
        )
    )
    assert not any(f.code == "written-file-in-context" for f in plan.findings)


def test_a_file_the_image_may_read_stays_and_is_reported() -> None:
    plan = _plan(_buildspec("      - echo $CODEBUILD_RESOLVED_SOURCE_VERSION > version.txt\n"))
    assert "version.txt" not in _ignored(plan)
    found = [f for f in plan.findings if f.code == "written-file-in-context"]
    assert len(found) == 1 and "`version.txt`" in found[0].message and "every build" in found[0].message


def test_an_output_the_dockerfile_names_is_kept() -> None:
    dockerfile = DOCKERFILE.replace("COPY . .\n", "COPY . .\nRUN cat imagedefinitions.json\n")
    plan = _plan(_buildspec("      - printf '[]' > imagedefinitions.json\n"), dockerfile)
    assert "imagedefinitions.json" not in _ignored(plan)
    plan = _plan(
        _buildspec("      - printf '[]' > imagedefinitions.json\n"),
        DOCKERFILE.replace("COPY . .", "COPY imagedefinitions.json app.py ./"),
    )
    assert "imagedefinitions.json" not in _ignored(plan)
    plan = _plan(
        _buildspec("      - printf '[]' > imagedefinitions.json\n"),
        DOCKERFILE.replace("COPY . .", "COPY . .\nCOPY *.json /etc/app/"),
    )
    assert "imagedefinitions.json" not in _ignored(plan)


def test_paths_follow_cd_and_are_relative_to_the_context() -> None:
    plan = _plan(_buildspec("      - cd svc\n      - echo done > build.log\n      - cd ..\n", ctx="svc"), prefix="svc/")
    assert "build.log" in _ignored(plan, "svc/.dockerignore")
    # Outside the context: nothing to leave out.
    plan = _plan(_buildspec("      - echo done > build.log\n", ctx="svc"), prefix="svc/")
    assert "build.log" not in _ignored(plan, "svc/.dockerignore")


def test_second_plan_is_idempotent() -> None:
    buildspec = _buildspec("      - printf '[]' > imagedefinitions.json\n")
    first = _plan(buildspec)
    files = {
        "buildspec.yml": buildspec,
        "Dockerfile": DOCKERFILE,
        "requirements.txt": "flask==3.0.0\n",
        ".dockerignore": ".git\n",
    } | {e.path: e.content for e in first.edits}
    paths = tuple(sorted(set(files) | {"app.py"}))
    assert planner.plan(RepoSnapshot(paths, files), Options(region="eu-west-1")).edits == ()
