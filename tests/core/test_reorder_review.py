"""Installs that read more than the manifests stay after the source copy (found in review, each reproduced)."""

from __future__ import annotations

import pytest

from bot.core import planner
from bot.core.model import Options, PartialPlan, RepoSnapshot

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build -t app .\n"
PY = "FROM python:3.12\nWORKDIR /app\n{env}COPY . /app\nRUN {run}\nCMD python app.py\n"
RUBY = "FROM ruby:3.3\nWORKDIR /app\n{env}COPY . /app\nRUN {run}\nCMD ruby app.rb\n"
NODE = "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN {run}\nCMD node index.js\n"
GRADLE = (
    "FROM gradle:8-jdk21 AS build\nWORKDIR /home/gradle/project\nCOPY . .\nRUN gradle dependencies --no-daemon\n"
    "RUN gradle bootJar --no-daemon\n"
)
GEMS = {
    "Gemfile": "source 'https://rubygems.org'\ngem 'rack'\n",
    "Gemfile.lock": "x",
    "Gemfile.docker": "source 'https://rubygems.org'\ngem 'puma'\n",
    "Gemfile.docker.lock": "y",
}
DOTNET = (
    "FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build\nWORKDIR /src\nCOPY . .\n"
    "RUN dotnet publish Api/Api.csproj -c Release -o /out\n"
)
CSPROJ = (
    '<Project Sdk="Microsoft.NET.Sdk.Web"><ItemGroup><PackageReference Include="Acme.Internal" '
    'Version="1.0.0" /></ItemGroup></Project>'
)
PARENT_POM = (
    "<project><modelVersion>4.0.0</modelVersion><parent><groupId>g</groupId><artifactId>p</artifactId>"
    "<version>1</version><relativePath>build/parent/pom.xml</relativePath></parent>"
    "<artifactId>app</artifactId></project>"
)


def _plan(files: dict[str, str], extra: tuple[str, ...] = ()) -> PartialPlan:
    files = {"buildspec.yml": BUILDSPEC, **files}
    return planner.plan(RepoSnapshot(tuple(sorted({*files, *extra})), files), Options(region="eu-west-1"))


CASES = {
    "constraint file on the RUN line": (
        {
            "Dockerfile": PY.format(env="", run="PIP_CONSTRAINT=constraints.txt pip install -r requirements.txt"),
            "requirements.txt": "flask==3.0.0\n",
            "constraints.txt": "werkzeug==3.0.1\n",
        },
        ("app.py",),
        "constraints.txt",
    ),
    "constraint file from ENV": (
        {
            "Dockerfile": PY.format(env="ENV PIP_CONSTRAINT=constraints.txt\n", run="pip install -r requirements.txt"),
            "requirements.txt": "flask==3.0.0\n",
            "constraints.txt": "werkzeug==3.0.1\n",
        },
        ("app.py",),
        "constraints.txt",
    ),
    "Gemfile from the RUN line": (
        {"Dockerfile": RUBY.format(env="", run="BUNDLE_GEMFILE=Gemfile.docker bundle install"), **GEMS},
        ("app.rb",),
        "Gemfile.docker",
    ),
    "Gemfile from ENV": (
        {"Dockerfile": RUBY.format(env="ENV BUNDLE_GEMFILE=Gemfile.docker\n", run="bundle install"), **GEMS},
        ("app.rb",),
        "Gemfile.docker",
    ),
    "find-links=folder": (
        {
            "Dockerfile": PY.format(env="", run="pip install --no-index --find-links=/app/wheels -r requirements.txt"),
            "requirements.txt": "flask==3.0.0\n",
        },
        ("app.py", "wheels/flask-3.0.0-py3-none-any.whl"),
        "local path",
    ),
    "file URL requirement": (
        {
            "Dockerfile": PY.format(env="", run="pip install -r requirements.txt"),
            "requirements.txt": "flask==3.0.0\nmylib @ file:///app/libs/mylib\n",
        },
        ("app.py", "libs/mylib/pyproject.toml"),
        "file:///app/libs/mylib",
    ),
    "yarn-path without ./": (
        {
            "Dockerfile": NODE.format(run="yarn install --frozen-lockfile"),
            "package.json": '{"name":"a","dependencies":{"left-pad":"1.3.0"}}',
            "yarn.lock": "x",
            ".yarnrc": 'yarn-path ".yarn/releases/yarn-1.22.19.cjs"\n',
        },
        ("index.js", ".yarn/releases/yarn-1.22.19.cjs"),
        ".yarnrc",
    ),
    "npm tarball dependency": (
        {
            "Dockerfile": NODE.format(run="npm ci"),
            "package-lock.json": "{}",
            "package.json": '{"name":"a","dependencies":{"mylib":"mylib-1.0.0.tgz"}}',
        },
        ("index.js", "mylib-1.0.0.tgz"),
        "mylib-1.0.0.tgz",
    ),
    "go.work in a parent folder": (
        {
            "Dockerfile": "FROM golang:1.22\nWORKDIR /src/svc\nCOPY . /src\nRUN go build -o /out/svc .\n",
            "go.work": "go 1.22\nuse (\n\t./svc\n\t./lib\n)\n",
            "svc/go.mod": "module example.com/svc\ngo 1.22\nrequire example.com/lib v0.0.0\n",
            "svc/go.sum": "",
            "lib/go.mod": "module example.com/lib\ngo 1.22\n",
        },
        ("svc/main.go", "lib/lib.go"),
        "go.work",
    ),
    "gradle version catalog": (
        {
            "Dockerfile": GRADLE,
            "build.gradle.kts": "plugins { java }\ndependencies { implementation(libs.guava) }\n",
            "settings.gradle.kts": 'rootProject.name = "app"\n',
            "gradle/libs.versions.toml": '[libraries]\nguava = "com.google.guava:guava:33.0.0-jre"\n',
        },
        ("src/main/java/App.java",),
        "libs.versions.toml",
    ),
    "gradle apply from": (
        {
            "Dockerfile": GRADLE,
            "build.gradle": "apply plugin: 'java'\napply from: 'gradle/deps.gradle'\n",
            "settings.gradle": "rootProject.name = 'app'\n",
            "gradle/deps.gradle": "dependencies { }\n",
        },
        ("src/main/java/App.java",),
        "applies scripts",
    ),
    "maven parent at relativePath": (
        {
            "Dockerfile": "FROM maven:3.9-eclipse-temurin-21 AS build\nWORKDIR /app\nCOPY . .\n"
            "RUN mvn -B package -DskipTests\n",
            "pom.xml": PARENT_POM,
            "build/parent/pom.xml": "<project><packaging>pom</packaging></project>",
        },
        ("src/main/java/App.java",),
        "build/parent/pom.xml",
    ),
    "nuget local feed": (
        {
            "Dockerfile": DOTNET,
            "Api/Api.csproj": CSPROJ,
            "nuget.config": '<configuration><packageSources><add key="local" value="./packages" /></packageSources>'
            "</configuration>\n",
        },
        ("Api/Program.cs", "packages/acme.internal.1.0.0.nupkg"),
        "./packages",
    ),
    "USER from the parent stage": (
        {
            "Dockerfile": "FROM python:3.12 AS base\nRUN useradd -m app\nUSER app\n\nFROM base\nCOPY . /srv\n"
            'WORKDIR /srv/api\nRUN pip install --user -r requirements.txt\nCMD ["python", "main.py"]\n',
            "api/requirements.txt": "flask==3.0.0\n",
        },
        ("api/main.py",),
        "non-root user",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_install_that_reads_more_stays_after_the_copy(case: str) -> None:
    files, extra, named = CASES[case]
    result = _plan(files, extra)
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    found = [f.message for f in result.findings if f.code == "dockerfile-not-reordered"]
    assert found and named in found[0], found


def test_remote_sources_still_allow_the_move() -> None:
    nuget = (
        '<configuration><packageSources><add key="nuget.org" value="https://api.nuget.org/v3/index.json" />'
        '</packageSources><packageSourceCredentials><nuget.org><add key="Username" value="ci" /></nuget.org>'
        "</packageSourceCredentials></configuration>\n"
    )
    result = _plan({"Dockerfile": DOTNET, "Api/Api.csproj": CSPROJ, "nuget.config": nuget}, ("Api/Program.cs",))
    assert [e for e in result.edits if e.path == "Dockerfile"]
    plain = PY.format(env="ENV PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=100\n", run="pip install -r requirements.txt")
    result = _plan({"Dockerfile": plain, "requirements.txt": "flask==3.0.0\n"}, ("app.py",))
    assert [e for e in result.edits if e.path == "Dockerfile"]
