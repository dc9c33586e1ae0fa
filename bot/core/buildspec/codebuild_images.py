"""CodeBuild's curated Linux images: the `runtime-versions` each offers and whether it ships `docker buildx`.

Source: the aws/aws-codebuild-docker-images repository. Runtimes come from each image's `runtimes.yml`
(`ubuntu/standard/N.0/runtimes.yml`, `al2/x86_64/standard/N.0/runtimes.yml`,
`al2/aarch64/standard/N.0/runtimes.yml`, and their later homes `al/x86_64/standard/N.0/runtimes.yml` and
`al/aarch64/standard/N.0/runtimes.yml`, merged per image); buildx comes from each image's `Dockerfile`
(`DOCKER_BUILDX_VERSION` with the `docker-buildx` CLI plugin: 0.11.0 with Docker 23 in ubuntu/standard/7.0
and 8.0, 0.32.1 in al/x86_64/standard/5.0; the static Docker 18-20 tarballs of the older images carry no
buildx plugin). Standard 6.0 and the aarch64 3.0/4.0 images (Docker 23) are marked as in the project's design:
the first 6.0 Dockerfiles installed Docker 20.10 without buildx, later builds of it have buildx 0.11.0.
Only the versions an image lists by name count as offered: the `default` entry of the newer images installs
any other version on demand, which a pin written for an older image does not rely on. The Windows and
corretto-only images are left out (they offer no pin this table decides).
"""

from __future__ import annotations

from dataclasses import dataclass

_PREFIX = "aws/codebuild/"
RECOMMENDED = _PREFIX + "standard:7.0"


@dataclass(frozen=True)
class Image:
    """One CodeBuild image: its name, whether `docker buildx` is installed, the runtime versions it lists."""

    name: str
    buildx: bool
    runtimes: dict[str, frozenset[str]]

    @property
    def short(self) -> str:
        """The name without its `aws/codebuild/` prefix (`standard:7.0`)."""
        return self.name.removeprefix(_PREFIX)


def _r(**versions: str) -> dict[str, frozenset[str]]:
    return {name: frozenset(v.split()) for name, v in versions.items()}


_STD = _PREFIX + "standard:"
_AL2 = _PREFIX + "amazonlinux2-x86_64-standard:"
_ARM = _PREFIX + "amazonlinux2-aarch64-standard:"
# The Amazon Linux 2023 images (al/ folders) dropped the "2" from their names.
_AL = _PREFIX + "amazonlinux-x86_64-standard:"
_ARM_AL = _PREFIX + "amazonlinux-aarch64-standard:"

# standard:8.0 and amazonlinux-x86_64-standard:6.0 list the same runtime versions in their runtimes.yml.
_RUNTIMES_2025 = _r(
    java="corretto8 corretto11 corretto17 corretto21 corretto25",
    golang="1.24 1.25 1.26",
    rust="1.93",
    python="3.10 3.11 3.12 3.13 3.14",
    php="8.2 8.3 8.4 8.5",
    ruby="3.3 3.4 4.0",
    nodejs="22 24",
    dotnet="8.0 10.0",
)

IMAGES: tuple[Image, ...] = (
    Image(
        _STD + "2.0",
        False,
        _r(
            android="28 29",
            java="openjdk8 openjdk11",
            golang="1.12 1.13",
            python="3.7",
            php="7.3",
            ruby="2.6",
            nodejs="8 10",
            docker="18",
            dotnet="2.2",
        ),
    ),
    Image(
        _STD + "3.0",
        False,
        _r(
            android="28 29",
            java="openjdk8 openjdk11",
            golang="1.12 1.13",
            python="3.8 3.9",
            php="7.3",
            ruby="2.6",
            nodejs="10 12",
            docker="18",
            dotnet="3.0",
        ),
    ),
    Image(
        _STD + "4.0",
        False,
        _r(
            android="28 29",
            java="corretto8 corretto11",
            golang="1.12 1.13 1.14",
            python="3.7 3.8 3.9",
            php="7.3 7.4",
            ruby="2.6 2.7",
            nodejs="10 12",
            docker="18 19",
            dotnet="3.1",
        ),
    ),
    Image(
        _STD + "5.0",
        False,
        _r(
            java="corretto8 corretto11",
            golang="1.15 1.16 1.17 1.18",
            python="3.7 3.8 3.9",
            php="7.3 7.4 8.0",
            ruby="2.6 2.7",
            nodejs="12 14",
            dotnet="3.1 5.0",
        ),
    ),
    Image(
        _STD + "6.0",
        True,
        _r(java="corretto17", golang="1.18", python="3.10", php="8.1 8.2", ruby="3.1", nodejs="16", dotnet="6.0"),
    ),
    Image(
        _STD + "7.0",
        True,
        _r(
            java="corretto17 corretto21",
            golang="1.20 1.21",
            python="3.11 3.12",
            php="8.2",
            ruby="3.2",
            nodejs="18 20",
            dotnet="6.0 8.0",
        ),
    ),
    Image(
        _STD + "8.0",
        True,
        _RUNTIMES_2025,
    ),
    Image(
        _AL2 + "1.0",
        False,
        _r(
            android="28 29",
            java="corretto8 corretto11",
            golang="1.12 1.13",
            python="3.7",
            php="7.3",
            ruby="2.6",
            nodejs="8 10",
            docker="18",
            dotnet="2.2",
        ),
    ),
    Image(
        _AL2 + "2.0",
        False,
        _r(
            android="28 29",
            java="corretto8 corretto11",
            golang="1.12 1.13",
            python="3.8",
            php="7.3",
            ruby="2.6",
            nodejs="10 12",
            docker="18",
            dotnet="3.0",
        ),
    ),
    Image(
        _AL2 + "3.0",
        False,
        _r(
            android="28 29",
            java="corretto8 corretto11 corretto17",
            golang="1.12 1.13 1.14",
            python="3.7 3.8 3.9",
            php="7.3 7.4",
            ruby="2.6 2.7",
            nodejs="10 12",
            docker="18 19",
            dotnet="3.1",
        ),
    ),
    Image(
        _AL2 + "4.0",
        False,
        _r(
            java="corretto17",
            golang="1.18",
            python="3.9",
            php="8.1",
            ruby="3.1",
            nodejs="16",
            docker="20",
            dotnet="6.0",
        ),
    ),
    Image(
        _AL + "5.0",
        True,
        _r(
            java="corretto8 corretto11 corretto17 corretto21 corretto25",
            golang="1.20 1.21 1.22 1.23 1.24 1.25 1.26",
            python="3.9 3.10 3.11 3.12 3.13 3.14",
            php="8.2 8.3 8.4 8.5",
            ruby="3.1 3.2 3.3 3.4 4.0",
            nodejs="18 20 22 24",
            dotnet="6.0 8.0 10.0",
        ),
    ),
    Image(
        _AL + "6.0",
        True,
        _RUNTIMES_2025,
    ),
    Image(
        _ARM + "1.0",
        False,
        _r(
            java="corretto8 corretto11",
            golang="1.12 1.13",
            python="3.7 3.8",
            php="7.3",
            ruby="2.6",
            nodejs="8 10 12",
            docker="18",
        ),
    ),
    Image(
        _ARM + "2.0",
        False,
        _r(
            java="corretto8 corretto11",
            golang="1.12 1.13 1.14",
            python="3.7 3.8 3.9",
            php="7.3 7.4",
            ruby="2.6 2.7",
            nodejs="10 12",
            docker="19",
            dotnet="3.1",
        ),
    ),
    Image(
        _ARM_AL + "3.0",
        True,
        _r(
            java="corretto8 corretto11 corretto17 corretto21",
            golang="1.20 1.21 1.22 1.23",
            python="3.9 3.10 3.11 3.12 3.13",
            php="8.1 8.2 8.3",
            ruby="3.1 3.2 3.3 3.4",
            nodejs="18 20 22",
            docker="23",
            dotnet="6.0 8.0",
        ),
    ),
    Image(
        _ARM_AL + "4.0",
        True,
        _r(
            java="corretto8 corretto11 corretto17 corretto21 corretto25",
            golang="1.24 1.25 1.26",
            rust="1.94",
            python="3.10 3.11 3.12 3.13 3.14",
            php="8.2 8.3 8.4 8.5",
            ruby="3.3 3.4 4.0",
            nodejs="22 24",
            docker="23",
            dotnet="8.0 10.0",
        ),
    ),
)


def offering(runtime: str, version: str) -> tuple[Image, ...]:
    """Every image that lists exactly ``runtime: version``."""
    return tuple(i for i in IMAGES if version in i.runtimes.get(runtime, frozenset()))


def old_only(runtime: str, version: str) -> tuple[Image, ...]:
    """The images offering ``runtime: version`` when none of them has buildx (else empty)."""
    images = offering(runtime, version)
    return () if any(i.buildx for i in images) else images


def recommended_versions(runtime: str) -> tuple[str, ...]:
    """The versions of ``runtime`` that the recommended image lists (empty: it has none)."""
    image = next(i for i in IMAGES if i.name == RECOMMENDED)
    return tuple(sorted(image.runtimes.get(runtime, frozenset())))


def summary(buildx: bool) -> str:
    """The images with (or without) buildx, grouped by family: `standard:6.0, 7.0; amazonlinux-...:5.0`."""
    families: dict[str, list[str]] = {}
    for image in IMAGES:
        if image.buildx == buildx:
            family, _, version = image.short.partition(":")
            families.setdefault(family, []).append(version)
    return "; ".join(f"{family}:{', '.join(versions)}" for family, versions in families.items())
