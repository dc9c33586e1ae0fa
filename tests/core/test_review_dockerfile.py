"""Review of today's Dockerfile moves: a copy moved late never passes a step that may write where it lands."""

from __future__ import annotations

import pytest

from bot.core.discover import Discovery
from bot.core.dockerfile.dockerignore import extend
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.plan import plan_dockerfiles
from bot.core.model import BuildLink, Options, RepoSnapshot

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")
COPY = "COPY build_output/ app/"
BASE = f"""FROM ubuntu:22.04
WORKDIR /srv
{COPY}
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless
STEP
CMD ["/srv/app/run"]
"""


def _after(dockerfile: str) -> str | None:
    snapshot = RepoSnapshot(paths=("Dockerfile", "build_output/run"), files={"Dockerfile": dockerfile})
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    edits = [e.content for e in result.edits if e.path == "Dockerfile"]
    return edits[0] if edits else None


def test_a_step_that_leaves_the_folder_alone_is_still_passed() -> None:
    step = "RUN curl -fsSL https://example.com/sdk.tgz -o /tmp/sdk.tgz && tar -xzf /tmp/sdk.tgz -C /opt"
    text = BASE.replace("STEP", step)
    after = _after(text)
    assert after is not None and after.splitlines()[4] == COPY


@pytest.mark.parametrize(
    "step",
    [
        # A glob or a flag's attached value names the copied folder or one above it.
        "RUN chown -R 1000:1000 /srv/*",
        "RUN rm -rf /srv/*",
        "RUN curl -fsSL https://example.com/sdk.tgz | tar -xz --directory=/srv",
        "RUN curl -fsSL https://example.com/sdk.tgz | tar -xz -C/srv",
        "RUN curl -fsSL https://example.com/run -o/srv/app/run",
        "RUN wget -P /srv/app https://example.com/run",
        "RUN cp -r --target-directory=/srv /opt/sdk",
        "RUN pip install --target=/srv/app/lib requests==2.31.0",
        "RUN cargo install --root /srv/app ripgrep",
        "RUN GOBIN=/srv/app go install example.com/tool@v1.0.0",
        # A download or unpack with no destination writes into the working directory, which holds the copy.
        "RUN curl -fsSLO https://example.com/app/run",
        "RUN curl -fsSLo app/run https://example.com/run",
        "RUN wget https://example.com/app/run",
        "RUN tar -xzf /tmp/sdk.tgz",
        "RUN unzip /tmp/sdk.zip",
        # A variable that aims a later install at the folder.
        "ENV PIP_TARGET=/srv/app/lib\nRUN pip install requests==2.31.0",
        "ENV HOME=/srv/app\nRUN pip install --user requests==2.31.0",
        'ENV PIP_TARGET="/srv/app/lib"\nRUN pip install requests==2.31.0',
        "ENV HOME /srv\nRUN pip install --user requests==2.31.0",
        "ARG GOBIN=/srv/app\nRUN go install example.com/tool@v1.0.0",
    ],
)
def test_copy_stays_above_a_step_that_may_write_into_its_folder(step: str) -> None:
    text = BASE.replace("STEP", step)
    after = _after(text)
    lines = (after or text).splitlines()
    last = step.splitlines()[-1]
    assert lines.index(COPY) < lines.index(last), after


def test_more_late_copies_than_planning_rounds_stay_idempotent() -> None:
    copies = "".join(f"COPY {name}.py .\n" for name in "abcdefgh")
    text = f"FROM python:3.12-slim\nWORKDIR /srv\n{copies}RUN apt-get update && apt-get install -y libpq5\nCMD a\n"
    files = {"Dockerfile": text}
    paths = ("Dockerfile", *(f"{name}.py" for name in "abcdefgh"))
    snapshot = RepoSnapshot(paths=paths, files=files)
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    edits = [e.content for e in result.edits if e.path == "Dockerfile"]
    if not edits:  # left as it is: then it must say why
        assert any(f.code == "dockerfile-not-reordered" for f in result.findings), result.findings
        return
    again = plan_dockerfiles(
        RepoSnapshot(paths=paths, files={"Dockerfile": edits[0]}),
        Options(dockerignore=False),
        (LINK,),
        Discovery(dockerfiles=("Dockerfile",)),
    )
    assert not [e for e in again.edits if e.path == "Dockerfile"], edits[0]


@pytest.mark.parametrize(
    "build",
    [
        # A GOFLAGS on the command replaces the one ENV set (it is not added to it).
        "RUN GOFLAGS=-mod=mod go build -o /bin/svc .",
        # A flag on the command line comes after GOFLAGS, so it wins (https://pkg.go.dev/cmd/go#hdr-Environment_variables).
        "RUN go build -buildvcs=true -o /bin/svc .",
        "RUN go build -buildvcs -o /bin/svc .",
    ],
)
def test_git_stays_when_the_build_itself_turns_vcs_stamping_back_on(build: str) -> None:
    dockerfile = f"FROM golang:1.22\nENV GOFLAGS=-buildvcs=false\nWORKDIR /src\nCOPY . .\n{build}\n"
    _, added = extend(None, [parse(dockerfile)], ("go.mod", "go.sum", "main.go"))
    assert ".git" not in [a.pattern for a in added]


def test_the_last_buildvcs_flag_decides() -> None:
    dockerfile = "FROM golang:1.22\nWORKDIR /src\nCOPY . .\nRUN go build -buildvcs -buildvcs=false -o /bin/svc .\n"
    _, added = extend(None, [parse(dockerfile)], ("go.mod", "go.sum", "main.go"))
    assert ".git" in [a.pattern for a in added]


@pytest.mark.parametrize(
    "install", ["npm ci", "npm clean-install --omit=dev", "pnpm install --frozen-lockfile", "yarn install --immutable"]
)
def test_an_install_that_fails_without_a_lock_file_is_not_called_floating(install: str) -> None:
    # `npm ci` needs package-lock.json or npm-shrinkwrap.json (https://docs.npmjs.com/cli/commands/npm-ci); pnpm's
    # --frozen-lockfile and Yarn's --immutable refuse to create a missing lock file: the build fails today and
    # after, and a note saying it "installs the newest versions" would be false.
    text = f"FROM node:20\nWORKDIR /app\nCOPY . .\nRUN {install}\nRUN npm run build\n"
    files = {
        "Dockerfile": text,
        "package.json": '{"dependencies": {"next": "14.2.3"}}',
        ".dockerignore": "node_modules\n",
    }
    snapshot = RepoSnapshot(paths=tuple(files), files=files)
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    assert not [f for f in result.findings if f.code == "dockerfile-unlocked-install"]
    assert [f for f in result.findings if f.code == "dockerfile-not-reordered" and "no lock file" in f.message]


def test_npm_install_without_a_lock_file_is_still_reordered() -> None:
    text = "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm install\nRUN npm run build\n"
    files = {
        "Dockerfile": text,
        "package.json": '{"dependencies": {"next": "14.2.3"}}',
        ".dockerignore": "node_modules\n",
    }
    snapshot = RepoSnapshot(paths=tuple(files), files=files)
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    assert [e for e in result.edits if e.path == "Dockerfile"]
    assert [f for f in result.findings if f.code == "dockerfile-unlocked-install"]


@pytest.mark.parametrize(
    "step",
    [
        "RUN curl -fsSLO https://example.com/config.yml",
        "RUN wget https://example.com/config.yml",
        "RUN tar -xzf /tmp/config.tgz",
        "RUN curl -fsSL https://example.com/config.yml -o/app/config.yml",
        "RUN tar -xzf /tmp/config.tgz --directory=/app",
        "RUN cp --target-directory=/app /opt/config.yml",
    ],
)
def test_source_copy_stays_above_a_step_that_writes_into_its_folder(step: str) -> None:
    # Before: the step overwrites the context's config.yml; moved below it, the copy would overwrite the step's.
    text = f"FROM python:3.12\nWORKDIR /app\nCOPY . .\n{step}\nRUN pip install -r requirements.txt\nCMD python a.py\n"
    files = {
        "Dockerfile": text,
        "requirements.txt": "flask==3.0.3\n",
        "config.yml": "a: 1\n",
        ".dockerignore": ".git\n",
    }
    snapshot = RepoSnapshot(paths=tuple(files), files=files)
    result = plan_dockerfiles(snapshot, Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    after = ([e.content for e in result.edits if e.path == "Dockerfile"] or [text])[0].splitlines()
    assert after.index("COPY . .") < after.index(step), after


@pytest.mark.parametrize(
    "run",
    [
        'ENTRYPOINT ["/bin/sh", "-c", "exec .venv/bin/gunicorn -b 0.0.0.0 app:app"]',
        'CMD ["bash", "-lc", "cd /app && .venv/bin/gunicorn app:app"]',
    ],
)
def test_a_file_a_shell_string_in_cmd_runs_stays_in_the_context(run: str) -> None:
    # `pip install -r` installs into the system site-packages: the .venv the command runs can only come from
    # the context (a buildspec may create it before `docker build`), so `.venv` must not be ignored.
    dockerfile = f"FROM python:3.12\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n{run}\n"
    _, added = extend(None, [parse(dockerfile)], ("requirements.txt", "app.py"))
    assert ".venv" not in [a.pattern for a in added]
