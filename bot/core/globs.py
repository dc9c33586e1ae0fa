"""Path globs of `ignore_paths`: `**` spans folders, `*` and `?` stay inside one, `{a,b}` picks one."""

from __future__ import annotations

import functools
import re

_MAGIC = re.compile(r"[*?\[{]")
_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


def _expand(pattern: str) -> list[str]:
    """`a/{b,c}/d` -> `a/b/d`, `a/c/d` (the first group first, then the rest of each result)."""
    m = _BRACES.search(pattern)
    if m is None:
        return [pattern]
    return [e for alt in m.group(1).split(",") for e in _expand(pattern[: m.start()] + alt + pattern[m.end() :])]


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + re.escape(body[1:]) if body[0] in "!^" else re.escape(body)) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{_translate(p)})" for p in _expand(pattern)))


def matches(path: str, pattern: str) -> bool:
    """True when ``path`` matches ``pattern``; a pattern without wildcards names a file or a whole folder."""
    pattern = pattern.strip().removeprefix("./")
    if not _MAGIC.search(pattern):
        folder = pattern.rstrip("/")
        return path == folder or path.startswith(folder + "/")
    return _compiled(pattern).fullmatch(path) is not None


def matches_any(path: str, patterns: tuple[str, ...]) -> bool:
    """True when ``path`` matches one of ``patterns``."""
    return any(matches(path, p) for p in patterns)
