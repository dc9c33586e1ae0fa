"""Tokenize buildspec shell commands and find every `docker build` in them, with exact offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Reserved words that may start a line without being the command itself (`if docker build ...; then`).
_PREFIX_WORDS = frozenset({"if", "then", "else", "elif", "while", "until", "do", "{", "!", "time", "sudo"})
_END_WORDS = frozenset({"fi", "done", "}", "esac"})
_OPERATORS = ("&&", "||", ";;", "|&", ";", "&", "|", "(", ")")
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", ">&", "&>", "&>>"})
_OPERATOR_CHARS = frozenset("&|;()")
# Every character the tokenizer treats specially; a run of other characters is one stretch of a plain word.
_QUOTING = re.compile(r"[\\$`'\"]")
_SPECIAL = re.compile(r"[\\ \t\r\n#'\"`$&<>|;()]")


@dataclass(frozen=True)
class Word:
    """One shell word: its raw text span in the command string and its unquoted value."""

    start: int
    end: int
    raw: str
    value: str


@dataclass(frozen=True)
class SimpleCommand:
    """Words of one simple command, the operator that preceded it, its subshell and loop depth."""

    words: tuple[Word, ...]
    assignments: tuple[Word, ...]
    before: str
    depth: int
    loops: int = 0
    writes: tuple[Word, ...] = ()


def _skip_balanced(s: str, i: int, open_ch: str, close_ch: str) -> int:
    """Return the index after the bracket closing the one at ``i`` (quotes respected)."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and open_ch == "(":
            j = s.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == '"':
            i = _skip_double(s, i)
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def substitutions(raw: str) -> list[str]:
    """The text inside each `$(...)` and backtick command substitution of one word."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        if raw.startswith("$(", i):
            j = _skip_balanced(raw, i + 1, "(", ")")
            out.append(raw[i + 2 : j - 1])
            i = j
        elif raw[i] == "`":
            j = raw.find("`", i + 1)
            j = n if j < 0 else j
            out.append(raw[i + 1 : j])
            i = j + 1
        elif raw[i] == "'":
            j = raw.find("'", i + 1)
            i = n if j < 0 else j + 1
        else:
            i += 1
    return out


def _skip_double(s: str, i: int) -> int:
    """Return the index after the double-quoted string starting at ``i``."""
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c == "$" and i + 1 < n and s[i + 1] == "(":
            i = _skip_balanced(s, i + 1, "(", ")")
            continue
        if c == "`":
            j = s.find("`", i + 1)
            i = n if j < 0 else j + 1
            continue
        i += 1
    return n


def _unquote(raw: str) -> str:
    """The value of a word after quote removal (expansions are left as written)."""
    if _QUOTING.search(raw) is None:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
        elif c == "$" and raw[i + 1 : i + 2] in ("(", "{"):
            j = _skip_balanced(raw, i + 1, raw[i + 1], ")" if raw[i + 1] == "(" else "}")
            out.append(raw[i:j])
            i = j
        elif c == "`":
            j = raw.find("`", i + 1)
            j = n if j < 0 else j + 1
            out.append(raw[i:j])
            i = j
        elif c == "'":
            j = raw.find("'", i + 1)
            j = n if j < 0 else j
            out.append(raw[i + 1 : j])
            i = j + 1
        elif c == '"':
            j = _skip_double(raw, i)
            inner = raw[i + 1 : j - 1] if raw[j - 1 : j] == '"' else raw[i + 1 : j]
            out.append(inner.replace('\\"', '"').replace("\\\\", "\\").replace("\\$", "$"))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(s: str) -> list[tuple[str, object]]:
    """Split ``s`` into ('word', Word), ('op', str) and ('redir', str) tokens; comments dropped."""
    toks: list[tuple[str, object]] = []
    n = len(s)
    i = 0
    start = -1
    heredocs: list[tuple[str, bool]] = []
    expect_heredoc = False

    def flush(end: int) -> None:
        nonlocal start, expect_heredoc
        if start >= 0:
            raw = s[start:end]
            if expect_heredoc:
                delim = _unquote(raw)
                heredocs.append((delim, False))
                expect_heredoc = False
            toks.append(("word", Word(start, end, raw, _unquote(raw.replace("\\\n", "")))))
            start = -1

    while i < n:
        c = s[i]
        if c == "\\":
            if i + 1 < n and s[i + 1] == "\n":
                i += 2
                continue
            if start < 0:
                start = i
            i += 2
            continue
        if c in " \t\r":
            flush(i)
            i += 1
            continue
        if c == "\n":
            flush(i)
            toks.append(("op", "\n"))
            i += 1
            if heredocs:
                for delim, _ in heredocs:
                    while i < n:
                        j = s.find("\n", i)
                        line = s[i:] if j < 0 else s[i:j]
                        i = n if j < 0 else j + 1
                        if line.strip() == delim:
                            break
                heredocs = []
            continue
        if c == "#" and start < 0:
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'`":
            if start < 0:
                start = i
            j = s.find(c, i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == '"':
            if start < 0:
                start = i
            i = _skip_double(s, i)
            continue
        if c == "$" and i + 1 < n and s[i + 1] in "({":
            if start < 0:
                start = i
            i = _skip_balanced(s, i + 1, s[i + 1], ")" if s[i + 1] == "(" else "}")
            continue
        if c == "&" and s.startswith("&>", i):  # bash's `&>file` / `&>>file`: stdout and stderr to a file
            flush(i)
            op = "&>>" if s.startswith("&>>", i) else "&>"
            toks.append(("redir", op))
            i += len(op)
            continue
        if c in "<>" and i + 1 < n and s[i + 1] == "(" and start < 0:  # process substitution `>(cmd)`
            start = i
            i = _skip_balanced(s, i + 1, "(", ")")
            continue
        if c in "<>":
            word_is_fd = start >= 0 and s[start:i].isdigit()
            if not word_is_fd:
                flush(i)
            start = -1
            j = i
            while j < n and s[j] in "<>&|-":
                j += 1
            op = s[i:j]
            while j < n and (s[j].isdigit() or (op.endswith("&") and s[j] == "-")):
                j += 1
            i = j
            if op.startswith("<<") and op not in ("<<<",):
                expect_heredoc = True
                toks.append(("redir", "<<"))
            elif op.endswith("&") and s[j - 1 : j].isdigit():
                continue
            else:
                toks.append(("redir", op))
            continue
        matched = next((op for op in _OPERATORS if s.startswith(op, i)), None) if c in _OPERATOR_CHARS else None
        if matched is not None:
            flush(i)
            toks.append(("op", matched))
            i += len(matched)
            continue
        if start < 0:
            start = i
        special = _SPECIAL.search(s, i + 1)
        i = special.start() if special else n
    flush(n)
    return toks


_CACHED_LENGTH = 4096  # longer command texts are tokenized every time, so the cache stays small


def simple_commands(s: str) -> tuple[SimpleCommand, ...]:
    """Group the tokens of ``s`` into simple commands; short texts are tokenized once per process."""
    return _cached_commands(s) if len(s) <= _CACHED_LENGTH else _simple_commands(s)


@lru_cache(maxsize=4096)
def _cached_commands(s: str) -> tuple[SimpleCommand, ...]:
    """The cached tokenization: at most 4096 texts of at most 4096 characters each."""
    return _simple_commands(s)


def clear_cache() -> None:
    """Forget every tokenized command, split RUN and parsed Dockerfile (benchmarks time cold runs)."""
    from bot.core.dockerfile import parse as dockerfile_parse
    from bot.core.shell import run_commands as dockerfile_shell

    _cached_commands.cache_clear()
    dockerfile_parse._parse_cached.cache_clear()
    dockerfile_shell._split_cached.cache_clear()


def _simple_commands(s: str) -> tuple[SimpleCommand, ...]:
    """Group the tokens of ``s`` into simple commands (reserved words dropped; output redirections kept apart)."""
    cmds: list[SimpleCommand] = []
    words: list[Word] = []
    assigns: list[Word] = []
    writes: list[Word] = []
    before = "\n"
    depth = 0
    loops = 0
    skip_next = False
    write_next = False

    def close(op: str) -> None:
        nonlocal words, assigns, writes, before
        if words or assigns:
            cmds.append(SimpleCommand(tuple(words), tuple(assigns), before, depth, loops, tuple(writes)))
        words, assigns, writes = [], [], []
        before = op

    for kind, tok in tokenize(s):
        if kind == "redir":
            skip_next = True
            write_next = tok in _WRITE_REDIRECTS
            continue
        if kind == "op":
            assert isinstance(tok, str)
            skip_next = write_next = False
            close(tok)
            if tok == "(":
                depth += 1
            elif tok == ")":
                depth = max(0, depth - 1)
            continue
        assert isinstance(tok, Word)
        if skip_next:
            if write_next:
                writes.append(tok)
            skip_next = write_next = False
            continue
        if not words:
            if tok.raw in _END_WORDS:
                loops = max(0, loops - 1) if tok.raw == "done" else loops
                close(";")
                continue
            if tok.raw in _PREFIX_WORDS:
                loops += tok.raw == "do"
                continue
            if _is_assignment(tok.raw):
                assigns.append(tok)
                continue
        words.append(tok)
    close("\n")
    return tuple(cmds)


def _is_assignment(raw: str) -> bool:
    name, eq, _ = raw.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[0].isdigit()
