"""The reason given for leaving a Dockerfile as it is is the real one, and no install stays silently."""

from __future__ import annotations

from bot.core.discover import Discovery
from bot.core.dockerfile.plan import plan_dockerfiles, verify_dockerfile_edit
from bot.core.model import BuildLink, Options, PartialPlan, RepoSnapshot

LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")
LOCKED_NODE = {"package.json": '{"dependencies": {"express": "^4.19.0"}}', "package-lock.json": "{}"}
POM = "<project><modelVersion>4.0.0</modelVersion><artifactId>shop</artifactId></project>\n"
MAVEN = {
    "pom.xml": POM,
    "mvnw": "#!/bin/sh\n",
    ".mvn/wrapper/maven-wrapper.properties": "distributionUrl=x\n",
    "src/main/java/shop/App.java": "class App {}\n",
}


def _plan(dockerfile: str, files: dict[str, str]) -> PartialPlan:
    snapshot = RepoSnapshot(paths=("Dockerfile", *files), files={"Dockerfile": dockerfile, **files})
    return plan_dockerfiles(snapshot, Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",)))


def _not_reordered(result: PartialPlan) -> list[str]:
    return [f.message for f in result.findings if f.code == "dockerfile-not-reordered"]


def test_copy_over_the_root_filesystem_is_named_as_the_blocker() -> None:
    result = _plan(
        'FROM node:20-alpine\nCOPY ./ /\nRUN npm ci\nCMD ["node", "/server.js"]\n',
        {**LOCKED_NODE, "server.js": "require('express')\n"},
    )
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    [message] = _not_reordered(result)
    assert "root filesystem" in message and "working directory" not in message


MAVEN_WRAPPER = """FROM eclipse-temurin:21-jdk AS build
WORKDIR /workspace
COPY . .
RUN ./mvnw -B package -DskipTests

FROM eclipse-temurin:21-jre
COPY --from=build /workspace/target/shop.jar /shop.jar
ENTRYPOINT ["java", "-jar", "/shop.jar"]
"""


def test_maven_wrapper_build_gets_a_dependency_prefetch() -> None:
    result = _plan(MAVEN_WRAPPER, MAVEN)
    [edit] = [e for e in result.edits if e.path == "Dockerfile"]
    assert edit.content.split("COPY . .")[0].endswith(
        "WORKDIR /workspace\nCOPY pom.xml mvnw ./\nCOPY .mvn/wrapper/maven-wrapper.properties .mvn/wrapper/\n"
        "RUN ./mvnw -B -DskipTests dependency:go-offline\n"
    )
    assert verify_dockerfile_edit(MAVEN_WRAPPER, edit.content) is None
    assert "dependency:go-offline" in edit.reasons[0]


def test_maven_wrapper_made_executable_in_the_build_is_left_with_its_reason() -> None:
    # The added step would run the wrapper before the `chmod +x` that makes it runnable.
    chmod = MAVEN_WRAPPER.replace("RUN ./mvnw", "RUN chmod +x mvnw && ./mvnw")
    result = _plan(chmod, MAVEN)
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    [message] = _not_reordered(result)
    assert "chmod +x mvnw" in message


def test_every_build_tool_install_that_stays_gets_a_finding() -> None:
    gradle = "FROM gradle:8-jdk21 AS build\nWORKDIR /src\nCOPY . .\nRUN ./gradlew build\n"
    result = _plan(
        gradle,
        {
            "build.gradle": "plugins { id 'java' }\n",
            "gradlew": "#!/bin/sh\n",
            "gradle/wrapper/gradle-wrapper.properties": "x=1\n",
        },
    )
    [message] = _not_reordered(result)
    assert "`./gradlew build`" in message
    other_pom = "FROM maven:3-eclipse-temurin-21\nWORKDIR /src\nCOPY . .\nRUN mvn -f service/pom.xml package\n"
    result = _plan(other_pom, {"service/pom.xml": POM})
    [message] = _not_reordered(result)
    assert "`-f`" in message
    no_wrapper_files = {k: v for k, v in MAVEN.items() if not k.startswith(".mvn/")}
    result = _plan(MAVEN_WRAPPER, no_wrapper_files)
    [message] = _not_reordered(result)
    assert ".mvn/wrapper" in message


def test_installs_after_the_whole_copy_that_no_rule_covers_get_a_finding() -> None:
    named = 'FROM python:3.12-slim\nWORKDIR /srv\nCOPY . .\nRUN pip install flask==3.0.3\nCMD ["flask", "run"]\n'
    result = _plan(named, {"app.py": "import flask\n"})
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    [finding] = [f for f in result.findings if f.code == "dockerfile-install-after-copy"]
    assert "`RUN pip install flask==3.0.3` (line 4)" in finding.message and "named packages" in finding.message
    project_only = (
        "FROM python:3.12-slim\nWORKDIR /srv\nCOPY pyproject.toml poetry.lock ./\n"
        "RUN poetry install --no-root\nCOPY . .\nRUN poetry install --only-root\n"
    )
    result = _plan(project_only, {"pyproject.toml": "[tool.poetry]\nname = 'x'\n", "poetry.lock": ""})
    # Its dependencies install before the copy; what is left (the project itself) belongs after it.
    assert not [f for f in result.findings if f.code == "dockerfile-install-after-copy"]
    gems = "FROM ruby:3.3\nWORKDIR /app\nCOPY . .\nRUN gem install foreman -v 0.88.1 && bundle exec rake\n"
    result = _plan(gems, {"config.ru": "run App\n"})
    [finding] = [f for f in result.findings if f.code == "dockerfile-install-after-copy"]
    assert "`gem install foreman -v 0.88.1` installs named packages" in finding.message
    # A build step is not an install: `npm run build` after the source copy is where it belongs.
    built = (
        "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n"
    )
    result = _plan(built, LOCKED_NODE)
    assert not [f for f in result.findings if f.code in ("dockerfile-install-after-copy", "dockerfile-not-reordered")]


def test_findings_name_the_lines_of_the_file_as_proposed() -> None:
    # Stage 1 is reordered (a line is added above stage 2), so stage 2's lines move down by one.
    two = (
        "FROM node:20 AS web\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"
        "FROM python:3.12-slim\nWORKDIR /srv\nCOPY . .\nRUN pip install flask==3.0.3\n"
    )
    result = _plan(two, {**LOCKED_NODE, ".dockerignore": "node_modules\n"})
    [edit] = [e for e in result.edits if e.path == "Dockerfile"]
    [finding] = [f for f in result.findings if f.code == "dockerfile-install-after-copy"]
    line = edit.content.splitlines().index("RUN pip install flask==3.0.3") + 1
    assert f"(line {line})" in finding.message


def test_prefetch_never_runs_before_a_copy_the_build_may_need() -> None:
    # `settings.xml` (a private repository, a mirror) arrives between the source copy and the build: a download
    # step added above the source copy would run without it.
    settings = MAVEN_WRAPPER.replace("COPY . .\n", "COPY . .\nCOPY settings.xml /root/.m2/settings.xml\n")
    result = _plan(settings, {**MAVEN, "settings.xml": "<settings/>\n"})
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    [message] = _not_reordered(result)
    assert "`COPY settings.xml /root/.m2/settings.xml`" in message
    # The same when the sources come in parts and the wrapper files arrive after the first part.
    parts = (
        "FROM eclipse-temurin:21-jdk\nWORKDIR /workspace\nCOPY pom.xml mvnw ./\nCOPY src src\n"
        "COPY .mvn .mvn\nRUN ./mvnw -B package\n"
    )
    result = _plan(parts, MAVEN)
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    chmod = (
        "FROM eclipse-temurin:21-jdk\nWORKDIR /workspace\nCOPY pom.xml mvnw ./\nCOPY .mvn .mvn\nCOPY src src\n"
        "RUN chmod +x mvnw && ./mvnw -B package\n"
    )
    result = _plan(chmod, MAVEN)
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    assert any("chmod +x mvnw" in m for m in _not_reordered(result))


def test_a_step_changing_a_folder_above_the_copy_keeps_the_copy_before_it() -> None:
    # `chown -R` on /home/node also changes the copied /home/node/app; with the copy moved below it, it would not.
    owned = "FROM node:20\nWORKDIR /home/node/app\nCOPY . .\nRUN chown -R node:node /home/node\nRUN npm ci\nUSER node\n"
    result = _plan(owned, {**LOCKED_NODE, ".dockerignore": "node_modules\n"})
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    assert any("a folder above the copied files" in m for m in _not_reordered(result))
