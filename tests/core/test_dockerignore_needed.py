""".dockerignore: a pattern the bot adds never drops a file the image needs.

Needed: files the buildspec writes into the context before the build (`mv`, `cp`, `>`) that a COPY brings in,
and files that `CMD`/`ENTRYPOINT` name. The check uses the project's matcher, which follows Docker's rules
(the last matching pattern wins, `!` re-includes).
"""

from __future__ import annotations

from bot.core import planner
from bot.core.dockerfile.dockerignore import Matcher, read_patterns
from bot.core.model import Options, Plan, RepoSnapshot

LOGIN = (
    "      - aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin "
    "111122223333.dkr.ecr.eu-west-1.amazonaws.com\n"
)
BUILD = "      - docker build -t 111122223333.dkr.ecr.eu-west-1.amazonaws.com/web:latest .\n"
PY = (
    "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\n"
    "COPY . .\n{cmd}\n"
)


def _buildspec(pre: str) -> str:
    return "version: 0.2\nphases:\n  pre_build:\n    commands:\n" + LOGIN + pre + "  build:\n    commands:\n" + BUILD


def _files(pre: str, cmd: str) -> dict[str, str]:
    return {"buildspec.yml": _buildspec(pre), "Dockerfile": PY.format(cmd=cmd), "requirements.txt": "flask\n"}


def _plan(files: dict[str, str]) -> Plan:
    return planner.plan(RepoSnapshot((*sorted(files), "src/app.py"), files), Options(region="eu-west-1"))


def _ignore(plan: Plan) -> Matcher:
    edit = next(e for e in plan.edits if e.path == ".dockerignore")
    return Matcher(read_patterns(edit.content))


def test_compiled_file_the_buildspec_moves_in_and_cmd_runs_is_kept() -> None:
    """The issue's built variant: `mv src/__pycache__/*.pyc ./app.pyc`, `COPY . .`, `CMD ["python3", "app.pyc"]`."""
    files = _files(
        "      - python3 -m py_compile src/app.py\n      - mv src/__pycache__/*.pyc ./app.pyc\n",
        'CMD ["python3", "app.pyc"]',
    )
    plan = _plan(files)
    ignore = _ignore(plan)
    assert not ignore.excluded("app.pyc")
    # What is still worth leaving out stays out: the compiler's cache folder and the Git history.
    assert ignore.excluded("src/__pycache__/app.cpython-312.pyc")
    assert ignore.excluded(".git")
    assert "**/*.pyc" not in read_patterns(next(e for e in plan.edits if e.path == ".dockerignore").content)


def test_a_file_the_buildspec_copies_in_is_kept_even_when_no_command_names_it() -> None:
    # A sourceless `app.pyc` is what `python3 -m app` imports: only the buildspec's `cp` says it is needed.
    files = _files(
        "      - python3 -m compileall -b src\n      - cp src/app.pyc app.pyc\n", 'CMD ["python3", "-m", "app"]'
    )
    assert not _ignore(_plan(files)).excluded("app.pyc")
    files = _files("      - cp -f src/app.pyc ./dist/\n", 'CMD ["python3", "-m", "app"]')
    assert not _ignore(_plan(files)).excluded("dist/app.pyc")


def test_a_file_entrypoint_or_cmd_names_is_kept_in_exec_and_shell_form() -> None:
    # Written by a script the bot cannot read: the command line that runs it is the only evidence.
    for cmd, path in (
        ('ENTRYPOINT ["python3", "/app/server.pyc"]', "server.pyc"),
        ("CMD python3 ./bin/server.pyc --port 8080", "bin/server.pyc"),
        ('ENTRYPOINT ["python3"]\nCMD ["main.pyc"]', "main.pyc"),
    ):
        plan = _plan(_files("      - ./compile.sh\n", cmd))
        assert not _ignore(plan).excluded(path), cmd


def test_other_stages_commands_and_unrelated_patterns_are_not_affected() -> None:
    plan = _plan(_files("      - ./compile.sh\n", 'CMD ["python3", "app.py"]'))
    ignore = _ignore(plan)
    assert ignore.excluded("app.pyc") and ignore.excluded("src/x.pyc")
    assert not ignore.excluded("app.py")


def test_second_plan_is_idempotent() -> None:
    files = _files("      - mv src/__pycache__/*.pyc ./app.pyc\n", 'CMD ["python3", "app.pyc"]')
    first = _plan(files)
    again = files | {e.path: e.content for e in first.edits}
    assert planner.plan(RepoSnapshot((*sorted(again), "src/app.py"), again), Options(region="eu-west-1")).edits == ()
