"""Move volatile build ARGs (commit SHA, build number, date) down to just before their first use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core import ecosystems
from bot.core.dockerfile.parse import Dockerfile, Instruction, parse, split_words
from bot.core.dockerfile.reorder import _declared
from bot.core.dockerfile.splice import Splice
from bot.core.markdown import code_span
from bot.core.shell.run_commands import _PACKAGE_TOOLS, _PATH_TOOLS, _named_install, run_commands

_MAX_ROUNDS = 6
VOLATILE = re.compile(
    r"^(CODEBUILD_\w+|GIT_(COMMIT\w*|SHA\w*|SHORT_\w+|HASH|REV|REVISION|BRANCH|TAG|DESCRIBE|VERSION|REF)"
    r"|\w*COMMIT\w*|\w*_SHA|SHA|\w*SHA1|\w*REVISION|VCS_REF|SOURCE_VERSION"
    r"|BUILD_(NUMBER|ID|DATE|TIME|TIMESTAMP|VERSION|NUM)|BUILD_?DATE|\w*TIMESTAMP|VERSION"
    r"|(APP|BUILD|RELEASE|IMAGE|SERVICE|PROJECT)_VERSION|RELEASE|IMAGE_TAG"
    r"|CI_(COMMIT_\w+|PIPELINE_\w+|JOB_ID|BUILD_\w+)|GITHUB_SHA|BUILDTIME)$",
    re.I,
)
# Every RUN after an ARG gets it in its environment, and git and the package tools read credentials and
# settings from there (`${CI_JOB_TOKEN}` in .npmrc, GIT_* for git fetches): such an ARG never moves.
_CREDENTIAL = re.compile(r"TOKEN|PASS|SECRET|KEY|AUTH|CRED|USER|SSH|CONFIG|PROXY|PROMPT", re.I)


@dataclass(frozen=True)
class ArgFacts:
    """What the buildspecs that build a Dockerfile pass as build args.

    ``per_build``: ARGs set to a per-build value (`--build-arg REV=$CODEBUILD_...`). ``unknown``: ARGs passed a
    value the bot cannot pin down; None when no buildspec is known to build the Dockerfile, so an ARG's name
    alone (`GIT_COMMIT`, `BUILD_NUMBER`) decides. An ARG the known builds never pass keeps its default.
    """

    per_build: frozenset[str] = frozenset()
    unknown: frozenset[str] | None = None

    def by_name(self, name: str) -> bool:
        """True when only the ARG's name, not the buildspec, says its value changes."""
        return name not in self.per_build


NAMES_ONLY = ArgFacts()


def volatile_name(inst: Instruction, facts: ArgFacts = NAMES_ONLY) -> str | None:
    """The name of a single-name ARG whose value changes every build (or may, by its name), else None."""
    if inst.keyword != "ARG":
        return None
    words = split_words(inst.args)
    if len(words) != 1:
        return None
    name = words[0].split("=", 1)[0]
    if _CREDENTIAL.search(name):
        return None
    if name in facts.per_build:
        return name
    named = VOLATILE.match(name) is not None
    return name if named and (facts.unknown is None or name in facts.unknown) else None


def references(df: Dockerfile, inst: Instruction, name: str) -> bool:
    """True when the instruction's text (heredocs included) names ``$name`` or ``${name...}``."""
    return re.search(r"\$\{?" + re.escape(name) + r"(?![A-Za-z0-9_])", df.block(inst)) is not None


def default_refs(arg: Instruction, name: str) -> set[str]:
    """Variables an `ARG NAME=default` reads: an ENV or ARG that sets one must stay after the ARG."""
    words = split_words(arg.args)
    default = words[0].split("=", 1)[1] if len(words) == 1 and "=" in words[0] else ""
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", default)) - {name}


def env_blind(inst: Instruction) -> bool:
    """A RUN that only installs packages or touches system paths: it never reads a build ARG implicitly."""
    cmds = run_commands(inst)
    if cmds is None:
        return False
    for cmd in cmds:
        if cmd.name in _PACKAGE_TOOLS or cmd.name in _PATH_TOOLS or cmd.name in ("curl", "wget"):
            continue
        if _named_install(cmd) == "":
            continue
        found = ecosystems.recognise(cmd)
        if found is not None and found.deps_only:
            continue
        return False
    return True


def first_use(df: Dockerfile, arg: Instruction, name: str) -> Instruction | None:
    """The instruction a volatile ARG must stay before; None when it is not used in its stage."""
    stage = df.stages[arg.stage]
    default_reads = default_refs(arg, name)
    for inst in df.instructions[arg.index + 1 : stage.last + 1]:
        if references(df, inst, name) or name in _declared(inst) or _declared(inst) & default_reads:
            return inst
        if inst.keyword == "RUN" and not env_blind(inst):
            return inst
        if inst.keyword == "ONBUILD":
            return inst
    return None


def plan_moves(df: Dockerfile, facts: ArgFacts = NAMES_ONLY) -> list[tuple[Instruction, Instruction, str]]:
    """(ARG, instruction it moves before, name) for every volatile ARG that can move down."""
    moves = []
    for inst in df.instructions:
        if inst.stage < 0:
            continue
        name = volatile_name(inst, facts)
        if name is None:
            continue
        target = first_use(df, inst, name)
        between = df.instructions[inst.index + 1 : target.index] if target is not None else ()
        if target is None or all(i.keyword == "ARG" for i in between):
            continue  # already in the block of ARGs right before its first use
        moves.append((inst, target, name))
    return moves


def move_args(df: Dockerfile, facts: ArgFacts = NAMES_ONLY) -> tuple[str | None, list[str]]:
    """New text with the volatile ARGs moved (round after round until none moves), one reason per ARG."""
    text: str | None = None
    reasons: dict[str, str] = {}
    for _ in range(_MAX_ROUNDS):
        moves = plan_moves(df, facts)
        if not moves:
            break
        splice = Splice(df)
        for arg, target, name in moves:
            splice.move_before(arg.index, target.index)
            why = (
                "its name says it holds a per-build value (a commit, build number or date)"
                if facts.by_name(name)
                else "the buildspec passes it a value that changes on every build"
            )
            reasons.setdefault(
                f"{arg.stage}:{name}",
                (
                    f"Dockerfile: moved `ARG {name}` (line {arg.lineno}) down to just before its first use "
                    f"({code_span(' '.join(target.line_text.split())[:60])}), because {why}, and every RUN after an "
                    f"ARG re-runs when its value changes."
                ),
            )
        text = splice.text()
        df = parse(text)
    return text, list(reasons.values())
