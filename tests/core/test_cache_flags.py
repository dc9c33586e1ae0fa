"""The bot's cache flags: written by one function, read back by the regex built from the same text."""

from __future__ import annotations

import itertools

import pytest

from bot.core.shell.docker_build import (
    CacheFlags,
    apply_splices,
    build_splices,
    cache_flags,
    cache_flags_text,
    cache_ref,
    find_builds,
    parse_bot_flags,
)


def test_cache_flags_are_the_registry_cache_words_with_oci_manifests() -> None:
    assert cache_flags(cache_ref("cache-app"), "min") == (
        "--cache-from type=registry,ref=$CACHE_URI:cache-app",
        "--cache-to type=registry,ref=$CACHE_URI:cache-app,mode=min,image-manifest=true,oci-mediatypes=true",
    )


def test_a_rewritten_build_carries_exactly_the_cache_flags_words() -> None:
    s = "docker build -t app ."
    [build] = find_builds(s)
    out = apply_splices(s, build_splices(build, CacheFlags("cache-app", "max", "--load")))
    cache_from, cache_to = cache_flags(cache_ref("cache-app"), "max")
    assert out == f"docker buildx build {cache_from} {cache_to} --load -t app ."


@pytest.mark.parametrize(
    ("mode", "output", "best_effort"),
    list(itertools.product(["max", "min"], ["--load", "--push", None], [False, True])),
)
def test_every_flag_text_the_bot_writes_is_read_back(mode: str, output: str | None, best_effort: bool) -> None:
    for tag in ("cache-app", "cache-${IMAGE_TAG}", "api.v2"):
        flags = CacheFlags(tag, mode, output, best_effort)
        assert parse_bot_flags(f"docker buildx build{cache_flags_text(flags)} .") == [flags]


def test_flags_of_another_cache_or_a_different_tag_are_not_the_bots() -> None:
    text = cache_flags_text(CacheFlags("cache-app"))
    assert parse_bot_flags("docker buildx build" + text.replace(":cache-app,", ":cache-other,", 1)) == []
    assert parse_bot_flags("docker buildx build" + text.replace("$CACHE_URI", "$OTHER_URI")) == []
    assert parse_bot_flags("docker buildx build" + text.replace("mode=max", "mode=all")) == []
