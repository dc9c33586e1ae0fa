"""The ecosystem table: which commands are dependency installs, and what makes an early install unsafe."""

from __future__ import annotations

import pytest

from bot.core.ecosystems import TABLE, Install, is_manifest_name, recognise, requirement_closure
from bot.core.shell.run_commands import split_commands, system_only


def _first(script: str) -> Install | None:
    cmds = split_commands(script)
    assert cmds
    return recognise(cmds[-1])


@pytest.mark.parametrize(
    ("script", "eco", "deps_only"),
    [
        ("npm ci", "npm", True),
        ("npm install --omit=dev", "npm", True),
        ("npm run build", "npm", False),
        ("yarn", "yarn", True),
        ("yarn install --frozen-lockfile", "yarn", True),
        ("yarn build", "yarn", False),
        ("pnpm install --frozen-lockfile", "pnpm", True),
        ("pnpm fetch", "pnpm", True),
        ("pip install -r requirements.txt", "pip", True),
        ("python -m pip install --no-cache-dir -r r.txt", "pip", True),
        ("pip install -e .", "pip", False),
        ("pip install .", "pip", False),
        ("pipenv install --deploy --system", "pipenv", True),
        ("poetry install --no-root", "poetry", True),
        ("poetry install", "poetry", False),
        ("uv sync --frozen --no-install-project", "uv", True),
        ("uv sync --frozen", "uv", False),
        ("uv pip install -r requirements.txt", "pip", True),
        ("go mod download", "go", True),
        ("CGO_ENABLED=0 go build -o app .", "go", False),
        ("bundle install --jobs 4", "bundler", True),
        ("mvn -B dependency:go-offline", "maven", True),
        ("mvn package", "maven", False),
        ("gradle dependencies --no-daemon", "gradle", True),
        ("./gradlew build", "gradle", False),
        ("composer install --no-scripts --no-autoloader", "composer", True),
        ("composer install --no-dev", "composer", False),
        ("dotnet restore", "dotnet", True),
        ("dotnet publish -c Release", "dotnet", False),
        ("cargo build --release", "cargo", False),
        ("sbt assembly", "sbt", False),
    ],
)
def test_recognise(script: str, eco: str, deps_only: bool) -> None:
    found = _first(script)
    assert found is not None and found.ecosystem == eco and found.deps_only is deps_only


@pytest.mark.parametrize(
    "script",
    [
        "npm install -g pm2",
        "pip install gunicorn",
        "go install golang.org/x/tool@v1",
        "cargo install cargo-chef",
        "apk add git",
        "echo hi",
    ],
)
def test_named_or_system_installs_are_not_manifest_installs(script: str) -> None:
    assert _first(script) is None


@pytest.mark.parametrize(
    ("script", "prefetch"),
    [
        ("poetry install --only main", "poetry install --only main --no-root"),
        ("uv sync --frozen", "uv sync --frozen --no-install-project"),
        ("composer install -o --no-dev", "composer install --no-scripts --no-autoloader --no-dev"),
        ("go build ./...", "go mod download"),
        ("mvn -B -q package -DskipTests", "mvn -B -q -DskipTests dependency:go-offline"),
        (
            "dotnet publish src/A/A.csproj -c Release -r linux-musl-x64 -o /o",
            "dotnet restore src/A/A.csproj -r linux-musl-x64",
        ),
    ],
)
def test_prefetch_commands(script: str, prefetch: str) -> None:
    found = _first(script)
    assert found is not None and found.prefetch == prefetch
    pre = recognise(split_commands(prefetch)[0])  # type: ignore[index]
    assert pre is not None and pre.deps_only


@pytest.mark.parametrize(
    ("script", "system"),
    [
        ("apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*", True),
        ("mkdir -p /opt/data", True),
        ("mkdir -p /app/data", False),
        ("chmod +x ./run.sh", False),
        ("curl -fsSL https://x.sh | sh -s -- -y", True),
        ("make", False),
        ("echo x > /app/version", False),
        ("npm i -g @nestjs/cli", True),
        ("pip install ./vendor/pkg", False),
    ],
)
def test_system_only(script: str, system: bool) -> None:
    cmds = split_commands(script)
    assert cmds is not None
    assert all(system_only(c, "/app") is None for c in cmds) is system


def test_manifest_names() -> None:
    for name in ("package.json", "package*.json", "requirements-dev.txt", "go.sum", "App.csproj", "Gemfile.lock"):
        assert is_manifest_name(name), name
    for name in (".", "src", "main.go", "*.go", "app.py"):
        assert not is_manifest_name(name), name
    assert set(TABLE) >= {
        "npm",
        "yarn",
        "pnpm",
        "pip",
        "pipenv",
        "poetry",
        "uv",
        "go",
        "bundler",
        "maven",
        "gradle",
        "composer",
        "dotnet",
        "cargo",
    }


def test_requirement_closure_follows_includes_and_flags_local_paths() -> None:
    files = {
        "req/prod.txt": "-r base.txt\n-c ../constraints.txt\nflask\n",
        "req/base.txt": "requests # pinned\n",
        "constraints.txt": "requests==2.32.0\n",
    }
    closure, why = requirement_closure(("req/prod.txt",), ".", files.get)
    assert why is None and closure == ["req/prod.txt", "req/base.txt", "constraints.txt"]
    _, local = requirement_closure(("r.txt",), ".", {"r.txt": "./libs/mylib\n"}.get)
    assert local is not None and "./libs/mylib" in local
    empty: dict[str, str] = {}
    _, unread = requirement_closure(("r.txt",), ".", empty.get)
    assert unread is not None and "not read" in unread


def test_tool_config_in_the_source_tree_is_unsafe() -> None:
    from bot.core.ecosystems import unsafe_reason

    bundle = _first("bundle install")
    assert bundle is not None
    files = {"Gemfile": "source 'https://rubygems.org'\n"}
    paths = {"Gemfile", "Gemfile.lock", ".bundle/config"}
    why = unsafe_reason(bundle, ".", paths.__contains__, files.get)
    assert why is not None and ".bundle/config" in why
    maven = _first("mvn -B dependency:go-offline")
    assert maven is not None
    why = unsafe_reason(maven, ".", {"pom.xml", ".mvn/maven.config"}.__contains__, {"pom.xml": "<project/>"}.get)
    assert why is not None and ".mvn/maven.config" in why


@pytest.mark.parametrize(
    "pom",
    [
        "<project><dependencies><dependency><scope>system</scope>"
        "<systemPath>${project.basedir}/lib/vendor.jar</systemPath></dependency></dependencies></project>",
        "<project><repositories><repository><id>local</id><url>file://${basedir}/repo</url></repository>"
        "</repositories></project>",
    ],
)
def test_maven_reading_files_from_the_project_folder_is_unsafe(pom: str) -> None:
    from bot.core.ecosystems import unsafe_reason

    maven = _first("mvn -B dependency:go-offline")
    assert maven is not None
    why = unsafe_reason(maven, ".", {"pom.xml"}.__contains__, {"pom.xml": pom}.get)
    assert why is not None and "source tree" in why
    assert unsafe_reason(maven, ".", {"pom.xml"}.__contains__, {"pom.xml": "<project/>"}.get) is None


@pytest.mark.parametrize(
    ("script", "files", "expected"),
    [
        (
            "pnpm install --frozen-lockfile",
            {"package.json": '{"pnpm": {"patchedDependencies": {"left-pad@1.3.0": "patches/left-pad.patch"}}}'},
            "patches",
        ),
        ("npm ci", {"package.json": '{"overrides": {"lodash": "file:./vendor/lodash"}}'}, "file:./vendor/lodash"),
        ("yarn install --frozen-lockfile", {"package.json": '{"resolutions": {"x": "link:../x"}}'}, "link:../x"),
        (
            "bundle install",
            {"Gemfile": "source 'https://rubygems.org'\nruby File.read('.ruby-version').strip\n"},
            "reads files",
        ),
        ("bundle install", {"Gemfile": "source 'https://rubygems.org'\nruby file: '.ruby-version'\n"}, "reads files"),
        (
            "composer install --no-scripts --no-autoloader",
            {"composer.json": '{"repositories": [{"type": "artifact", "url": "zips/"}]}'},
            "artifact",
        ),
    ],
)
def test_manifests_that_read_other_source_files_are_unsafe(script: str, files: dict[str, str], expected: str) -> None:
    from bot.core.ecosystems import unsafe_reason

    install = _first(script)
    assert install is not None
    paths = {*files, "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Gemfile.lock", "composer.lock"}
    why = unsafe_reason(install, ".", paths.__contains__, files.get)
    assert why is not None and expected in why, why


@pytest.mark.parametrize(
    ("rc", "text"),
    [
        (".npmrc", "registry=https://npm.example.com/\ncafile=./certs/corp-ca.pem\n"),
        (".yarnrc", 'yarn-offline-mirror "./npm-packages-offline-cache"\n'),
    ],
)
def test_tool_rc_files_naming_source_paths_are_unsafe(rc: str, text: str) -> None:
    from bot.core.ecosystems import unsafe_reason

    install = _first("yarn install --frozen-lockfile" if rc == ".yarnrc" else "npm ci")
    assert install is not None
    paths = {"package.json", "package-lock.json", "yarn.lock", rc}
    files = {"package.json": "{}", rc: text}
    why = unsafe_reason(install, ".", paths.__contains__, files.get)
    assert why is not None and rc in why
    plain = {"package.json": "{}", rc: "registry=https://npm.example.com/\n//npm.example.com/:_authToken=${T}\n"}
    assert unsafe_reason(install, ".", paths.__contains__, plain.get) is None
    unread = {"package.json": "{}"}
    assert "not read" in (unsafe_reason(install, ".", paths.__contains__, unread.get) or "")


def test_uv_project_config_is_copied_with_the_manifests() -> None:
    from bot.core.ecosystems import copy_files

    uv = _first("uv sync --frozen --no-install-project")
    assert uv is not None
    paths = ("pyproject.toml", "uv.lock", "uv.toml", "app.py")
    # uv.toml can set the package index: without it the early `uv sync` would resolve elsewhere.
    assert copy_files(uv, ".", set(paths).__contains__, paths) == ["pyproject.toml", "uv.lock", "uv.toml"]
