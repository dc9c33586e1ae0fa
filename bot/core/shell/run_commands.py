"""Read the shell command of a RUN instruction: split it into simple commands and classify them."""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache

from bot.core.dockerfile.parse import Instruction

_OPERATORS = {"&&", "||", ";", "|", "&", "\n", ";;", "|&"}
_REDIRECTS = {">", ">>", "<", ">&", "<&", "&>", "&>>", ">|"}
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# Commands that only touch the system (package managers, users), never the build context's files,
# as long as their arguments are package names rather than relative paths.
_PACKAGE_TOOLS = {
    "apk",
    "apt-get",
    "apt",
    "yum",
    "dnf",
    "microdnf",
    "zypper",
    "tdnf",
    "pecl",
    "a2enmod",
    "a2dismod",
    "docker-php-ext-install",
    "docker-php-ext-configure",
    "docker-php-ext-enable",
    "update-ca-certificates",
    "ldconfig",
    "locale-gen",
    "useradd",
    "adduser",
    "groupadd",
    "addgroup",
    "usermod",
    "corepack",
    "rustup",
    "echo",
    "true",
    "set",
    "export",
    "printf",
    "apt-key",
    "update-alternatives",
    "dpkg-reconfigure",
}
# Commands whose positional arguments are file paths: allowed only on absolute paths outside the copy.
_PATH_TOOLS = {"mkdir", "rm", "ln", "chmod", "chown", "chgrp", "touch", "cp", "mv", "tar", "unzip"}
_FIRST_ARG_NOT_PATH = {"chmod", "chown", "chgrp"}


@dataclass(frozen=True)
class ShellCommand:
    """One simple command: environment assignments set apart (`A=1 cmd`), `sudo` dropped."""

    words: tuple[str, ...]
    redirects: tuple[str, ...]
    assignments: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The program name without its directory (`/usr/bin/npm` → `npm`)."""
        return posixpath.basename(self.words[0]) if self.words else ""

    @property
    def text(self) -> str:
        """The command as one line, for messages."""
        return " ".join(self.words)


def run_commands(inst: Instruction) -> list[ShellCommand] | None:
    """The simple commands of a RUN; None when the shell text is beyond a plain split."""
    if inst.heredocs:
        return None
    exec_form = inst.json_args()
    if exec_form is not None:
        return [ShellCommand(tuple(exec_form), ())] if exec_form else []
    return split_commands(inst.args)


def split_commands(script: str) -> list[ShellCommand] | None:
    """Split shell text on `&&`, `||`, `;`, `|`; None on quoting, subshells or substitutions."""
    # Every build of a buildspec reads its Dockerfile's RUNs again: split each text once per process.
    split = _split_cached(script) if len(script) <= _CACHED_LENGTH else _split(script)
    return None if split is None else list(split)


_CACHED_LENGTH = 4096  # the cache holds at most 4096 texts of at most this many characters


@lru_cache(maxsize=4096)
def _split_cached(script: str) -> tuple[ShellCommand, ...] | None:
    return _split(script)


def _split(script: str) -> tuple[ShellCommand, ...] | None:
    if "$(" in script or "`" in script or "<<" in script:
        return None
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    out: list[ShellCommand] = []
    words: list[str] = []
    redirects: list[str] = []
    pending_redirect = False
    for token in tokens:
        if pending_redirect:
            redirects.append(token)
            pending_redirect = False
            continue
        if token in _OPERATORS:
            if words:
                out.append(_command(words, redirects))
            words, redirects = [], []
            continue
        if token in ("(", ")", "{", "}"):
            return None
        if token in _REDIRECTS:
            if words and words[-1].isdigit():
                words.pop()
            pending_redirect = True
            continue
        if set(token) <= set("<>&|;()"):
            return None
        words.append(token)
    if pending_redirect:
        return None
    if words:
        out.append(_command(words, redirects))
    return tuple(out)


def _command(words: list[str], redirects: list[str]) -> ShellCommand:
    i = 0
    while i < len(words) and _ASSIGN.match(words[i]):
        i += 1
    rest = words[i:]
    if rest and rest[0] == "sudo":
        rest = [w for w in rest[1:]]
        while rest and rest[0].startswith("-"):
            rest = rest[1:]
    return ShellCommand(tuple(rest), tuple(redirects), tuple(words[:i]))


def looks_like_path(word: str) -> bool:
    """A relative or absolute file path rather than a package name, flag or URL."""
    if word.startswith(("-", "@")) or "://" in word or word.startswith("git+"):
        return False
    return word.startswith((".", "/", "~")) or "/" in word or word.endswith((".whl", ".tar.gz", ".zip"))


def under(path: str, root: str | None) -> bool:
    """True when absolute ``path`` may lie inside ``root`` (None: unknown, so it may)."""
    if root is None or not root.startswith("/"):
        return True
    path = posixpath.normpath(path)
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def system_only(cmd: ShellCommand, copy_root: str | None) -> str | None:
    """None when the command cannot read or write files under ``copy_root``; else why it might."""
    if not cmd.words:
        return None
    for target in cmd.redirects:
        if target.startswith("&") or target == "/dev/null":
            continue
        if not target.startswith("/") or under(target, copy_root):
            return f"`{cmd.text}` redirects to `{target}`"
    name = cmd.name
    args = cmd.words[1:]
    positional = [a for a in args if not a.startswith("-")]
    if name in _PACKAGE_TOOLS:
        bad = [a for a in positional if looks_like_path(a) and not a.startswith("/")]
        if bad:
            return f"`{cmd.text}` names a relative path"
        if name in ("echo", "printf", "true", "set", "export"):
            return None
        # An absolute path under the copy is read (`apt-key add /app/key.gpg`) or created (`useradd -d /app`,
        # which also fills a new home with /etc/skel files and gives it to the user).
        inside = [a for a in positional if a.startswith("/") and under(a, copy_root)]
        if inside:
            return f"`{cmd.text}` names `{inside[0]}`, inside the copied folder"
        if name in ("useradd", "adduser") and copy_root is not None and under(copy_root, "/home"):
            return f"`{cmd.text}` may create a home folder where the copy goes"
        return None
    if name in _PATH_TOOLS:
        paths = positional[1:] if name in _FIRST_ARG_NOT_PATH else positional
        for p in paths:
            if not p.startswith("/") or under(p, copy_root):
                return f"`{cmd.text}` touches `{p}`, which may be a copied file"
        return None
    if name in ("curl", "wget"):
        for flag, value in zip(args, args[1:], strict=False):
            if flag in ("-o", "-O", "--output", "--output-document") and (
                not value.startswith("/") or under(value, copy_root)
            ):
                return f"`{cmd.text}` writes `{value}`"
        return None
    options = args[: args.index("--")] if "--" in args else args
    if name in ("sh", "bash", "ash") and all(a.startswith("-") for a in options):
        return None if "-c" not in args else f"`{cmd.text}` runs a script"
    named = _named_install(cmd)
    if named is not None:
        return named or None
    return f"`{cmd.text}` may read the copied files"


def _named_install(cmd: ShellCommand) -> str | None:
    """'' for an install of named packages only (pip/npm -g/gem/go install x@v); None if not one."""
    words = list(cmd.words)
    name = cmd.name
    if name in ("python", "python3") and words[1:3] == ["-m", "pip"]:
        words = ["pip", *words[3:]]
        name = "pip"
    if re.fullmatch(r"pip[0-9.]*", name) and len(words) > 1 and words[1] == "install":
        args = words[2:]
        if any(
            a in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")
            or a.startswith(("-r", "--requirement=", "-e", "--editable="))
            for a in args
        ):
            return None
        pos = [a for a in args if not a.startswith("-")]
        return f"`{cmd.text}` installs a local path" if any(looks_like_path(a) for a in pos) else ""
    if (
        name in ("npm", "pnpm")
        and len(words) > 1
        and words[1] in ("install", "i", "add")
        and ("-g" in words or "--global" in words)
    ):
        pos = [a for a in words[2:] if not a.startswith("-")]
        return "" if pos and not any(a.startswith((".", "/")) for a in pos) else None
    if name == "yarn" and words[1:3] == ["global", "add"]:
        return ""
    if name == "gem" and len(words) > 1 and words[1] in ("install", "update"):
        pos = [a for a in words[2:] if not a.startswith("-")]
        local = any(a.endswith(".gem") or looks_like_path(a) for a in pos)
        return f"`{cmd.text}` installs a local gem" if local else ""
    if (
        name == "go"
        and len(words) > 2
        and words[1] == "install"
        and all("@" in a for a in words[2:] if not a.startswith("-"))
    ):
        return ""
    if name == "cargo" and len(words) > 2 and words[1] == "install" and "--path" not in words:
        return ""
    configurable = ("npm", "yarn", "pnpm", "bundle", "pip", "pip3", "composer", "poetry")
    if name in configurable and len(words) > 2 and words[1] == "config":
        return ""
    if name == "composer" and words[1:3] == ["global", "require"]:
        return ""
    return None


# An absolute path in a word: the word itself, a flag's value (`--target=/srv/app`, `-C/srv`) or a list item (`:`).
_ABS_PATH = re.compile(r"(?:^-[A-Za-z]*|^|=|:)(/[^:=]*)")
# Destination flags of tools that otherwise write into the working directory (`tar -x`, `unzip`, `wget URL`).
_CWD_DEST = {
    "tar": ("-C", "--directory"),
    "bsdtar": ("-C", "--directory"),
    "unzip": ("-d",),
    "wget": ("-O", "--output-document", "-P", "--directory-prefix"),
}


def overlaps(path: str, root: str | None) -> bool:
    """True when absolute ``path`` (a glob cut at its wildcard) may be ``root``, lie inside it or above it."""
    literal = re.split(r"[*?\[]", path, maxsplit=1)[0]
    if literal != path:
        literal = posixpath.dirname(literal) or "/"  # `/srv/*` names what is in /srv
    literal = posixpath.normpath(literal)
    return root is None or under(literal, root) or under(root, literal)


def names_overlap(words: list[str] | tuple[str, ...], root: str | None) -> str | None:
    """The first word naming a path that may be, hold or lie in ``root`` (flag values, globs, quotes included)."""
    for word in words:
        bare = word.replace('"', "").replace("'", "")  # `ENV A="/srv/app"`
        if "://" not in bare and any(overlaps(m, root) for m in _ABS_PATH.findall(bare)):
            return word
    return None


def overwrites(cmd: ShellCommand, root: str | None, here: str | None) -> str | None:
    """Why ``cmd`` may write where a copy to ``root`` lands, else None: it names a path at, in or above it (flag
    values, globs, variables), or downloads or unpacks into its working directory ``here`` (None: unknown)."""
    named = names_overlap([*cmd.assignments, *cmd.words[1:]], root)
    if named is not None:
        return f"`{cmd.text}` names `{named}`, where the copied files go"
    if writes_cwd(cmd.words) and (here is None or overlaps(here, root)):
        return f"`{cmd.text}` writes into its working directory, where the copied files go"
    return None


def writes_cwd(words: tuple[str, ...]) -> bool:
    """True when a download or unpack writes into its working directory (no destination named)."""
    name = posixpath.basename(words[0]) if words else ""
    args = words[1:]
    if name == "curl":  # -O/-J name the file after the URL, in the working directory; -o a relative name too
        for i, a in enumerate(args):
            if a in ("--remote-name", "--remote-name-all", "--remote-header-name"):
                return True
            if not a.startswith("-") or a.startswith("--"):
                continue
            if "O" in a or "J" in a:
                return True
            if "o" in a:  # `-fsSLo run URL`, `-orun`
                value = a[a.index("o") + 1 :] or (args[i + 1] if i + 1 < len(args) else "")
                if value != "-" and not value.startswith("/"):
                    return True
        return False
    dest = _CWD_DEST.get(name)
    return dest is not None and not any(
        a == d or a.startswith(d + ("=" if d.startswith("--") else "")) for a in args for d in dest
    )
