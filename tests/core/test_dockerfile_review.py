"""Reorder and .dockerignore cases found in review: each would have changed the image or broken the build."""

from __future__ import annotations

import pytest

from bot.core.buildspec.build_args import OPAQUE  # these cases have no buildspec: ARG names decide
from bot.core.discover import Discovery
from bot.core.dockerfile.plan import plan_dockerfiles
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache", unknown_args=(OPAQUE,))


def _plan(
    dockerfile: str, paths: tuple[str, ...], files: dict[str, str] | None = None, options: Options | None = None
) -> PartialPlan:
    snapshot = RepoSnapshot(paths=("Dockerfile", *paths), files={"Dockerfile": dockerfile, **(files or {})})
    return plan_dockerfiles(
        snapshot, options or Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",))
    )


PY_TREE = ("requirements.txt", "app.py")
PY_FILES = {"requirements.txt": "flask==3.0.0\n"}


@pytest.mark.parametrize(
    "install",
    [
        "pip install -r requirements.txt -t .",
        "pip install -r requirements.txt --target=/app/lib",
        "pip install --prefix /app -r requirements.txt",
        "/app/.venv/bin/pip install -r requirements.txt",
        ".venv/bin/python -m pip install -r requirements.txt",
    ],
)
def test_pip_installing_into_the_copied_folder_is_not_moved(install: str) -> None:
    dockerfile = f'FROM python:3.12\nWORKDIR /app\nCOPY . /app\nRUN {install}\nCMD ["python", "app.py"]\n'
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert not result.edits
    assert any("inside the folder" in f.message for f in result.findings), result.findings


@pytest.mark.parametrize(
    "install",
    [
        "pip install -r requirements.txt --target /opt/deps",
        "/opt/venv/bin/pip install -r requirements.txt",
    ],
)
def test_pip_installing_outside_the_copied_folder_still_moves(install: str) -> None:
    dockerfile = f'FROM python:3.12\nWORKDIR /app\nCOPY . /app\nRUN {install}\nCMD ["python", "app.py"]\n'
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings
    assert result.edits[0].content.index("COPY requirements.txt") < result.edits[0].content.index("COPY . /app")


@pytest.mark.parametrize(
    ("env", "install", "tree"),
    [
        ("ENV PIP_CONFIG_FILE=/app/pip.conf", "pip install -r requirements.txt", PY_TREE + ("pip.conf",)),
        ("ENV NPM_CONFIG_USERCONFIG /app/ci/npmrc", "npm ci", ("package.json", "package-lock.json", "ci/npmrc")),
        ("ENV BUNDLE_GEMFILE=gems/Gemfile", "bundle install", ("gems/Gemfile", "gems/Gemfile.lock", "Gemfile")),
    ],
)
def test_tool_config_an_env_points_into_the_copied_folder_blocks_the_move(
    env: str, install: str, tree: tuple[str, ...]
) -> None:
    dockerfile = f"FROM base\nWORKDIR /app\n{env}\nCOPY . /app\nRUN {install}\n"
    files = {
        **PY_FILES,
        "package.json": "{}",
        "Gemfile": "source 'https://rubygems.org'\n",
        ".dockerignore": "node_modules\n",
    }
    result = _plan(dockerfile, (*tree, ".dockerignore"), files)
    assert not result.edits
    name = env.split()[1].split("=")[0]
    assert any(f"`{name}`" in f.message for f in result.findings), result.findings


def test_path_entries_inside_the_copied_folder_do_not_block_the_move() -> None:
    dockerfile = "FROM node:20\nWORKDIR /app\nENV PATH=/app/node_modules/.bin:$PATH\nCOPY . /app\nRUN npm ci\n"
    result = _plan(
        dockerfile,
        ("package.json", "package-lock.json", ".dockerignore"),
        {"package.json": "{}", ".dockerignore": "node_modules\n"},
    )
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings


def test_dotnet_restore_gets_the_build_configuration_of_the_whole_copied_folder() -> None:
    # MSBuild and NuGet read Directory.Build.props / NuGet.config from every parent folder of the project,
    # so a restore run in src/Api needs the ones at the root of the copied folder too.
    dockerfile = (
        "FROM mcr.microsoft.com/dotnet/sdk:8.0\nWORKDIR /src/src/Api\nCOPY . /src\n"
        "RUN dotnet publish -c Release -o /out\n"
    )
    tree = (
        "NuGet.config",
        "Directory.Packages.props",
        "src/Api/Api.csproj",
        "src/Api/Program.cs",
        "src/Core/Core.csproj",
    )
    result = _plan(dockerfile, tree)
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings
    content = result.edits[0].content
    for needed in ("NuGet.config", "Directory.Packages.props", "src/Core/Core.csproj"):
        assert needed in content.split("RUN dotnet restore")[0], content


@pytest.mark.parametrize("flag", ["--chown=node:node", "--chmod=775"])
def test_workdir_is_not_moved_ahead_of_a_copy_that_owns_the_folder(flag: str) -> None:
    # `COPY --chown` gives the folders it creates to the user (moby/buildkit#640, tonistiigi/fsutil#49); a WORKDIR
    # moved ahead of it would create /app as root first, and the copy would leave it so.
    dockerfile = f"FROM node:20\nCOPY {flag} . /app\nWORKDIR /app\nRUN npm ci\nRUN npm run build\n"
    result = _plan(
        dockerfile,
        ("package.json", "package-lock.json", ".dockerignore"),
        {"package.json": "{}", ".dockerignore": "node_modules\n"},
    )
    assert not result.edits
    assert any("WORKDIR /app" in f.message for f in result.findings), result.findings
    plain = _plan(
        dockerfile.replace(flag + " ", ""),
        ("package.json", "package-lock.json", ".dockerignore"),
        {"package.json": "{}", ".dockerignore": "node_modules\n"},
    )
    assert [e.path for e in plain.edits] == ["Dockerfile"]


@pytest.mark.parametrize(
    "run",
    [
        "useradd -m -d /app app",  # creates /app with /etc/skel files, owned by app, if it is not there yet
        "adduser -D -h /app/home app",
        "apt-key add /app/deploy/repo.gpg",  # reads a copied file through an absolute path
        "useradd -m app",  # home /home/app is where the copy goes
    ],
)
def test_system_commands_touching_the_copy_destination_keep_the_copy_first(run: str) -> None:
    dest = "/home/app" if run == "useradd -m app" else "/app"
    dockerfile = f"FROM python:3.12\nCOPY . {dest}\nRUN {run}\nWORKDIR {dest}\nRUN pip install -r requirements.txt\n"
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert not result.edits, result.edits[0].content
    assert any(run.split()[0] in f.message for f in result.findings), result.findings


def test_system_commands_elsewhere_still_allow_the_move() -> None:
    dockerfile = (
        "FROM python:3.12\nCOPY . /app\nRUN useradd -m -d /srv/home app && apt-get install -y curl\n"
        "WORKDIR /app\nRUN pip install -r requirements.txt\n"
    )
    result = _plan(dockerfile, PY_TREE, PY_FILES)
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings


def test_unpinned_requirements_are_pointed_out_when_the_install_moves() -> None:
    dockerfile = "FROM python:3.12\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n"
    loose = _plan(dockerfile, PY_TREE, {"requirements.txt": "# web\nflask\nrequests>=2 ; python_version > '3'\n"})
    assert [e.path for e in loose.edits] == ["Dockerfile"]
    notes = [f for f in loose.findings if f.code == "dockerfile-unpinned-requirements"]
    assert len(notes) == 1 and "`flask`" in notes[0].message and notes[0].level == "info"
    pinned = _plan(dockerfile, PY_TREE, {"requirements.txt": "flask==3.0.0 --hash=sha256:abc\nx @ https://h/x.whl\n"})
    assert [e.path for e in pinned.edits] == ["Dockerfile"]
    assert not [f for f in pinned.findings if f.code == "dockerfile-unpinned-requirements"]


def test_poetry_install_moved_early_needs_the_in_project_virtualenv_ignored() -> None:
    dockerfile = (
        "FROM python:3.12\nENV POETRY_VIRTUALENVS_IN_PROJECT=true\nWORKDIR /app\nCOPY . .\n"
        "RUN poetry install --no-root --only main\nRUN poetry build\n"
    )
    tree = ("pyproject.toml", "poetry.lock", "app/__init__.py")
    files = {"pyproject.toml": "[tool.poetry]\nname = 'a'\n"}
    result = _plan(dockerfile, tree, files)
    assert not result.edits
    assert any("`.venv` is not excluded by .dockerignore" in f.message for f in result.findings), result.findings
    ignored = _plan(dockerfile, (*tree, ".dockerignore"), {**files, ".dockerignore": ".venv\n"})
    assert [e.path for e in ignored.edits] == ["Dockerfile"]


@pytest.mark.parametrize(("install", "folder"), [("bundle install --deployment", "vendor/bundle")])
def test_bundler_installing_into_the_project_needs_that_folder_ignored(install: str, folder: str) -> None:
    dockerfile = f'FROM ruby:3.3\nWORKDIR /app\nCOPY . .\nRUN {install}\nCMD ["rails", "s"]\n'
    tree = ("Gemfile", "Gemfile.lock", "app/x.rb")
    files = {"Gemfile": "source 'https://rubygems.org'\ngem 'rails'\n"}
    result = _plan(dockerfile, tree, files)
    assert not result.edits
    assert any(f"`{folder}` is not excluded by .dockerignore" in f.message for f in result.findings), result.findings
    ignored = _plan(dockerfile, (*tree, ".dockerignore"), {**files, ".dockerignore": "vendor\n"})
    assert [e.path for e in ignored.edits] == ["Dockerfile"]


def test_full_plan_ignores_vendor_bundle_so_a_deployment_install_can_move() -> None:
    dockerfile = 'FROM ruby:3.3\nWORKDIR /app\nCOPY . .\nRUN bundle install --deployment\nCMD ["rails", "s"]\n'
    result = _plan(
        dockerfile,
        ("Gemfile", "Gemfile.lock", "app/x.rb"),
        {"Gemfile": "source 'https://rubygems.org'\ngem 'rails'\n"},
        Options(),
    )
    ignore = [e.content for e in result.edits if e.path == ".dockerignore"]
    assert ignore and "vendor/bundle" in ignore[0].splitlines()
    assert "Dockerfile" in [e.path for e in result.edits], result.findings


GO_TREE = ("go.mod", "go.sum", "main.go")
GO_FILES = {"go.mod": "module example.com/app\n\ngo 1.22\n"}


@pytest.mark.parametrize(
    "between",
    [
        'RUN git config --global url."https://x@github.com/".insteadOf "https://github.com/"',
        "RUN apk add --no-cache git",
        "RUN go env -w GOPRIVATE=example.com/*",
        "RUN chown -R nobody /src",  # would also give the downloaded dependencies to nobody
    ],
)
def test_prefetch_is_not_inserted_ahead_of_a_run_that_prepares_the_download(between: str) -> None:
    # The prefetch goes where the copy was, so it would run before these set up git or the module proxy.
    dockerfile = f"FROM golang:1.22\nWORKDIR /src\nCOPY . .\n{between}\nRUN go build -o /app .\n"
    result = _plan(dockerfile, GO_TREE, GO_FILES)
    assert not result.edits, result.edits[0].content
    assert any(between.split()[1] in f.message for f in result.findings), result.findings


def test_prefetch_may_go_ahead_of_a_run_that_only_touches_copied_files() -> None:
    dockerfile = "FROM golang:1.22\nWORKDIR /src\nCOPY . .\nRUN chmod +x ./scripts/gen.sh\nRUN go build -o /app .\n"
    result = _plan(dockerfile, GO_TREE, GO_FILES)
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings


def test_a_copy_between_is_named_as_the_reason() -> None:
    dockerfile = (
        "FROM python:3.12\nWORKDIR /app\nCOPY . .\nCOPY conf/app.ini /etc/app.ini\n"
        "RUN pip install -r requirements.txt\n"
    )
    result = _plan(dockerfile, (*PY_TREE, "conf/app.ini"), PY_FILES)
    assert not result.edits
    assert any("never swaps two copies" in f.message for f in result.findings), result.findings


def test_each_dockerfile_is_checked_against_the_ignore_file_its_build_reads() -> None:
    # BuildKit reads `<Dockerfile>.dockerignore` instead of the context's .dockerignore when it exists.
    node = "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"
    paths = (
        "Dockerfile",
        "api.Dockerfile",
        "api.Dockerfile.dockerignore",
        ".dockerignore",
        "package.json",
        "package-lock.json",
    )
    files = {
        "Dockerfile": node,
        "api.Dockerfile": node,
        "package.json": "{}",
        ".dockerignore": "node_modules\n",
        "api.Dockerfile.dockerignore": "*.md\n",
    }
    links = tuple(
        BuildLink("buildspec.yml", "build", n, 1, d, ".", f"c{n}", unknown_args=(OPAQUE,))
        for n, d in enumerate(("Dockerfile", "api.Dockerfile"))
    )
    result = plan_dockerfiles(
        RepoSnapshot(paths=paths, files=files),
        Options(dockerignore=False),
        links,
        Discovery(dockerfiles=("Dockerfile", "api.Dockerfile")),
    )
    assert [e.path for e in result.edits] == ["Dockerfile"], result.findings
    assert any(f.path == "api.Dockerfile" and "`node_modules` is not excluded" in f.message for f in result.findings)
