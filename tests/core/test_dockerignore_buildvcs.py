"""Go: `.git` leaves the build context when every Go build says `-buildvcs=false` (then it never reads it)."""

from __future__ import annotations

import pytest

from bot.core.dockerfile.dockerignore import extend
from bot.core.dockerfile.parse import parse

PATHS = ("go.mod", "go.sum", "main.go")


def _added(dockerfile: str) -> list[str]:
    _, added = extend(None, [parse(dockerfile)], PATHS)
    return [a.pattern for a in added]


@pytest.mark.parametrize(
    ("build", "drops_git"),
    [
        # `go build` stamps the Git revision unless -buildvcs=false (https://pkg.go.dev/cmd/go#hdr-Build_flags).
        ("RUN go build -o /bin/svc .", False),
        ("RUN go build -buildvcs=false -o /bin/svc .", True),
        ("RUN CGO_ENABLED=0 go build -buildvcs=false -trimpath -o /bin/svc ./cmd/svc", True),
        ("RUN GOFLAGS=-buildvcs=false go build -o /bin/svc .", True),
        ("RUN go mod download && go build -buildvcs=false -o /bin/svc .", True),
        ("RUN go install -buildvcs=false ./cmd/svc", True),
        # The flag on one build does not cover another one, nor a step that runs anything else.
        ("RUN go build -buildvcs=false -o /bin/a . && go build -o /bin/b ./b", False),
        ("RUN go build -buildvcs=false -o /bin/svc . && make docs", False),
        ("RUN go generate ./... && go build -buildvcs=false -o /bin/svc .", False),
        ("RUN go build -buildvcs=auto -o /bin/svc .", False),
    ],
)
def test_git_excluded_only_when_every_go_build_skips_vcs_stamping(build: str, drops_git: bool) -> None:
    dockerfile = f"FROM golang:1.22\nWORKDIR /src\nCOPY . .\n{build}\n"
    assert (".git" in _added(dockerfile)) is drops_git


def test_goflags_set_by_env_counts() -> None:
    dockerfile = "FROM golang:1.22\nENV GOFLAGS=-buildvcs=false\nWORKDIR /src\nCOPY . .\nRUN go build -o /bin/svc .\n"
    assert ".git" in _added(dockerfile)
    other_stage = (
        "FROM golang:1.22 AS tools\nENV GOFLAGS=-buildvcs=false\n"
        "FROM golang:1.22\nWORKDIR /src\nCOPY . .\nRUN go build -o /bin/svc .\n"
    )
    assert ".git" not in _added(other_stage)
    legacy = "FROM golang:1.22\nENV GOFLAGS -buildvcs=false\nWORKDIR /src\nCOPY . .\nRUN go build -o /bin/svc .\n"
    assert ".git" in _added(legacy)  # the legacy `ENV NAME value` form
    several = "FROM golang:1.22\nENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false\nCOPY . .\nRUN go build -o /bin/svc .\n"
    assert ".git" in _added(several)


def test_goflags_set_after_the_build_does_not_count() -> None:
    late = "FROM golang:1.22\nWORKDIR /src\nCOPY . .\nRUN go build -o /bin/svc .\nENV GOFLAGS=-buildvcs=false\n"
    assert ".git" not in _added(late)
