""".dockerignore: moby/patternmatcher matching rules, and the entries the planner adds (never a needed path)."""

from __future__ import annotations

import pytest

from bot.core.discover import Discovery
from bot.core.dockerfile.dockerignore import HEADER, Matcher, extend, read_patterns
from bot.core.dockerfile.parse import parse
from bot.core.dockerfile.plan import plan_dockerfiles
from bot.core.model import BuildLink, Options, RepoSnapshot

# (pattern, path, excluded) from moby/patternmatcher's TestMatches, checked with MatchesOrParentMatches.
PATTERNMATCHER_CASES = [
    ("**", "file", True),
    ("**/", "file", True),
    ("**", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
    ("node_modules", "node_modules/x/index.js", True),
    ("/node_modules", "node_modules/x", True),
    ("*.md", "docs/README.md", False),
    ("docs", "docs/README.md", True),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), PATTERNMATCHER_CASES)
def test_patternmatcher_semantics(pattern: str, path: str, excluded: bool) -> None:
    assert Matcher(read_patterns(pattern)).excluded(path) is excluded


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["**", "!util/docker/web"], "util/docker/web/foo", False),
        (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        (["*.go"], ".", False),
    ],
)
def test_exceptions_apply_in_order(patterns: list[str], path: str, excluded: bool) -> None:
    assert Matcher(read_patterns("\n".join(patterns))).excluded(path) is excluded


def test_read_patterns_cleans_like_ignorefile() -> None:
    text = "\ufeff# comment\n  /dist/  \n\n! keep.txt\n./a/../b\n #not a comment\n"
    assert read_patterns(text) == ["dist", "!keep.txt", "b", "#not a comment"]


NODE = "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"


def test_extend_creates_with_git_and_tool_outputs() -> None:
    text, added = extend(None, [parse(NODE)], ("package.json",), read={"package.json": "{}"}.get)
    assert text == "\n".join([HEADER, ".git", "**/node_modules", "npm-debug.log"]) + "\n"
    assert [a.pattern for a in added] == [".git", "**/node_modules", "npm-debug.log"]


def test_extend_keeps_existing_bytes_and_line_endings() -> None:
    existing = "# mine\r\nnode_modules\r\n*.log"
    text, added = extend(existing, [parse(NODE)], ())
    assert text is not None and text.startswith(existing + "\r\n")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    # `node_modules` already covers the root folder, `*.log` covers npm-debug.log; nested ones still get added.
    assert [a.pattern for a in added] == [".git", "**/node_modules"]
    again, more = extend(text, [parse(NODE)], ())
    assert again is None and more == []


def test_never_excludes_a_copied_path() -> None:
    # `target/app.jar` is built by the buildspec before `docker build`: not in the tree, still needed.
    dockerfile = parse(
        "FROM maven:3\nWORKDIR /src\nCOPY . .\nCOPY target/app.jar /app.jar\nRUN mvn dependency:go-offline\n"
    )
    text, added = extend(None, [dockerfile], ("pom.xml",))
    assert "target" not in [a.pattern for a in added]
    assert text is not None and not Matcher(read_patterns(text)).excluded("target/app.jar")


def test_wildcard_sources_are_checked_against_the_tree() -> None:
    dockerfile = parse("FROM node:20\nCOPY node_modules/.bin/* /usr/bin/\nRUN npm ci\n")
    _, added = extend(None, [dockerfile], ("node_modules/.bin/tool",))
    assert "**/node_modules" not in [a.pattern for a in added]


def test_git_kept_when_the_build_runs_git() -> None:
    dockerfile = parse("FROM golang\nCOPY . .\nRUN git rev-parse HEAD > /rev\n")
    _, added = extend(None, [dockerfile], ())
    assert ".git" not in [a.pattern for a in added]
    _, added_sub = extend(None, [parse(NODE)], (), repo_root=False)
    assert ".git" not in [a.pattern for a in added_sub]


def test_exception_for_a_candidate_is_respected() -> None:
    _, added = extend("**/dist\n!node_modules/keep\n", [parse(NODE)], ())
    assert "**/node_modules" not in [a.pattern for a in added]


def _snapshot(extra: dict[str, str] | None = None, paths: tuple[str, ...] = ()) -> RepoSnapshot:
    files = {"Dockerfile": NODE, "package.json": "{}", **(extra or {})}
    return RepoSnapshot(paths=("Dockerfile", "package.json", "package-lock.json", *paths, *(extra or {})), files=files)


LINK = BuildLink("buildspec.yml", "build", 0, 1, "Dockerfile", ".", "cache")


def test_plan_creates_dockerignore_for_a_known_context() -> None:
    result = plan_dockerfiles(_snapshot(), Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    created = [e for e in result.edits if e.path == ".dockerignore"]
    assert len(created) == 1 and created[0].action == "create" and created[0].original is None
    assert len(created[0].reasons) == 1 and "`**/node_modules`" in created[0].reasons[0]


def test_plan_respects_option_and_unknown_context() -> None:
    off = plan_dockerfiles(_snapshot(), Options(dockerignore=False), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    assert not [e for e in off.edits if e.path.endswith(".dockerignore")]
    unknown = BuildLink("buildspec.yml", "build", 0, 1, None, None, "cache", unresolved=("$DIR",))
    nolink = plan_dockerfiles(_snapshot(), Options(), (unknown,), Discovery(dockerfiles=("Dockerfile",)))
    assert not [e for e in nolink.edits if e.path.endswith(".dockerignore")]


def test_plan_extends_dockerfile_specific_ignore_and_reports_unread() -> None:
    specific = plan_dockerfiles(
        _snapshot({"Dockerfile.dockerignore": "*.md\n"}), Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",))
    )
    assert [e.path for e in specific.edits if "dockerignore" in e.path] == ["Dockerfile.dockerignore"]
    unread = plan_dockerfiles(
        _snapshot(paths=(".dockerignore",)), Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",))
    )
    assert not [e for e in unread.edits if e.path.endswith(".dockerignore")]
    assert any(f.code == "dockerignore-not-read" for f in unread.findings)


def test_manifest_excluded_by_dockerignore_blocks_the_reorder() -> None:
    snapshot = _snapshot({".dockerignore": "package-lock.json\n"})
    result = plan_dockerfiles(snapshot, Options(), (LINK,), Discovery(dockerfiles=("Dockerfile",)))
    assert not [e for e in result.edits if e.path == "Dockerfile"]
    assert any("no lock file" in f.message for f in result.findings)


def _added(dockerfile: str, paths: tuple[str, ...] = ()) -> list[str]:
    _, added = extend(None, [parse(dockerfile)], paths)
    return [a.pattern for a in added]


def test_only_entries_a_copy_would_bring_in() -> None:
    # BuildKit sends only what the COPY sources name, and a COPY's cache key covers only the files it copies
    # (https://docs.docker.com/build/cache/invalidation/): ignoring anything else changes nothing.
    assert _added("FROM eclipse-temurin:21\nCOPY target/app.jar /app.jar\nRUN mvn -v\n", ("pom.xml",)) == []
    folder = "FROM python:3.12\nWORKDIR /app\nCOPY src ./src\nRUN pip install -r src/requirements.txt\n"
    assert _added(folder, ("src/app.py", "src/requirements.txt")) == ["**/__pycache__", "**/*.pyc"]


def test_tracked_files_a_copy_brings_in_are_never_excluded() -> None:
    ruby = "FROM ruby:3.3\nWORKDIR /app\nCOPY . .\nRUN bundle install\n"
    assert ".bundle" not in _added(ruby, ("Gemfile", "Gemfile.lock", ".bundle/config"))
    assert ".bundle" in _added(ruby, ("Gemfile", "Gemfile.lock"))
    web = "FROM node:20\nWORKDIR /app\nCOPY web ./web\nRUN cd web && npm ci\n"
    assert "**/node_modules" not in _added(web, ("web/package.json", "web/node_modules/x/index.js"))
    assert "**/node_modules" in _added(web, ("web/package.json", "web/package-lock.json"))


@pytest.mark.parametrize(
    ("build", "keeps_git"),
    [
        ("RUN go build -o /bin/app .", True),  # Go 1.18+ stamps the Git revision (https://go.dev/doc/go1.18#go-version)
        ("RUN mvn -B package", True),  # e.g. git-commit-id-maven-plugin fails without .git
        ("RUN make", True),
        ("RUN npm ci", False),
        ("RUN pip install -r requirements.txt && rm -rf /root/.cache", False),
    ],
)
def test_git_kept_when_a_step_after_the_whole_copy_may_read_it(build: str, keeps_git: bool) -> None:
    dockerfile = f"FROM golang:1.22\nWORKDIR /src\nCOPY . .\n{build}\n"
    assert (".git" not in _added(dockerfile, ("go.mod", "requirements.txt"))) is keeps_git


def test_context_shared_with_an_unread_dockerfile_is_left_alone() -> None:
    # `Dockerfile.dev` builds from the same folder and reads the same .dockerignore; it was not read, so
    # nothing it may copy can be checked.
    snapshot = _snapshot(paths=("Dockerfile.dev",))
    result = plan_dockerfiles(snapshot, Options(), (LINK,), Discovery(dockerfiles=("Dockerfile", "Dockerfile.dev")))
    assert not [e for e in result.edits if e.path.endswith(".dockerignore")]
    assert any(f.code == "dockerignore-not-extended" and "Dockerfile.dev" in f.message for f in result.findings)
    own_ignore = _snapshot({"Dockerfile.dev.dockerignore": "*.md\n"}, paths=("Dockerfile.dev",))
    result = plan_dockerfiles(own_ignore, Options(), (LINK,), Discovery(dockerfiles=("Dockerfile", "Dockerfile.dev")))
    assert [e.path for e in result.edits if e.path.endswith(".dockerignore")] == [".dockerignore"]


def test_git_kept_when_an_install_runs_the_project_lifecycle_scripts() -> None:
    # `npm ci` runs the root package's `prepare` script (husky, `git describe`...), which may read .git.
    hooked = {"package.json": '{"scripts": {"prepare": "husky install"}}'}
    text, added = extend(None, [parse(NODE)], ("package.json", "package-lock.json"), read=hooked.get)
    assert ".git" not in [a.pattern for a in added]
    plain = {"package.json": '{"scripts": {"build": "tsc"}}'}
    _, added = extend(None, [parse(NODE)], ("package.json", "package-lock.json"), read=plain.get)
    assert ".git" in [a.pattern for a in added]
    ignoring = parse(NODE.replace("npm ci", "npm ci --ignore-scripts"))
    _, added = extend(None, [ignoring], ("package.json", "package-lock.json"), read=hooked.get)
    assert ".git" in [a.pattern for a in added]
