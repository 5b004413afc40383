"""Chapter 09 (messaging patterns): the lines that read the publisher-confirm rounds."""

from __future__ import annotations

from mqlab.patterns.confirms import Comparison

__all__ = ["confirm_lines"]


def confirm_lines(comparisons: list[Comparison]) -> list[str]:
    """One line per strategy: its median ratio, and whether every round agreed on it."""
    lines = []
    for c in comparisons:
        if c.steady is None:
            claim = (
                f"faster in {c.faster_rounds} of {c.rounds} rounds, slower in "
                f"{c.rounds - c.faster_rounds}: not consistent across rounds"
            )
        else:
            claim = f"{c.steady} than {c.baseline} in all {c.rounds} rounds"
        lines.append(f"{c.strategy}: {c.ratio:.2f}x {c.baseline} (median); {claim}")
    return lines
