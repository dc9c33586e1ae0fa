"""Move whole original line ranges of a Dockerfile and insert new lines, keeping every other byte."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.dockerfile.parse import Dockerfile


@dataclass(frozen=True)
class Unit:
    """An instruction with the comment lines attached directly above it, and the gap after it."""

    first: int
    end: int
    gap_end: int


def units(df: Dockerfile) -> list[Unit]:
    """One unit per instruction: [first, end] its lines, (end, gap_end] blank/loose lines after it."""
    out: list[Unit] = []
    floor = df.directive_lines
    for inst in df.instructions:
        first = inst.start
        while first - 1 >= floor and df.lines[first - 1].strip().startswith("#"):
            first -= 1
        if out:
            first = max(first, out[-1].end + 1)
        out.append(Unit(first, inst.end, inst.end))
        floor = inst.end + 1
    fixed: list[Unit] = []
    for n, unit in enumerate(out):
        gap_end = out[n + 1].first - 1 if n + 1 < len(out) else len(df.lines) - 1
        fixed.append(Unit(unit.first, unit.end, gap_end))
    return fixed


class Splice:
    """Builds a new text from the original lines: instruction blocks moved, new lines inserted."""

    def __init__(self, df: Dockerfile) -> None:
        self.df = df
        self.units = units(df)
        head_end = self.units[0].first if self.units else len(df.lines)
        self.head = list(df.lines[:head_end])
        self.order: list[tuple[str, int | str]] = []
        for n in range(len(self.units)):
            self.order.append(("unit", n))

    def _pos(self, index: int) -> int:
        return self.order.index(("unit", index))

    def move_after(self, index: int, after: int) -> None:
        """Move instruction ``index`` (with its comments and following gap) after ``after``'s gap."""
        self.order.remove(("unit", index))
        self.order.insert(self._pos(after) + 1, ("unit", index))

    def move_before(self, index: int, before: int) -> None:
        """Move instruction ``index`` (with its comments and gap) to just before ``before``'s comments."""
        self.order.remove(("unit", index))
        self.order.insert(self._pos(before), ("unit", index))

    def insert_before(self, before: int, line: str) -> None:
        """Insert a new line (without ending) just before instruction ``before``'s comments."""
        self.order.insert(self._pos(before), ("new", line))

    def text(self) -> str:
        """The new file text, with the original's line endings and final-newline state."""
        nl = self.df.newline
        lines: list[str] = list(self.head)
        for kind, ref in self.order:
            if kind == "new":
                lines.append(str(ref) + nl)
                continue
            unit = self.units[int(ref)]
            lines.extend(self.df.lines[unit.first : unit.gap_end + 1])
        if not lines:
            return ""
        for n in range(len(lines) - 1):
            if not lines[n].endswith("\n"):
                lines[n] += nl
        original_last = self.df.lines[-1] if self.df.lines else "\n"
        if not original_last.endswith("\n"):
            lines[-1] = lines[-1].rstrip("\r\n")
        elif not lines[-1].endswith("\n"):
            lines[-1] += nl
        return "".join(lines)
