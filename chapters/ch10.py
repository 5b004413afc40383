"""Chapter 10 (the trading pipeline): the words that read a replayed exchange journal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mqlab.services.exchange import Published, ReplayedRecord

__all__ = ["journal_rows", "what_it_did"]


def journal_rows(replayed: Iterable[ReplayedRecord]) -> list[dict[str, Any]]:
    """A table row per journal line: ``record``, ``id``, ``step`` and ``what`` it did."""
    return [
        {
            "record": r.record,
            "id": r.id,
            "step": "" if r.step is None else r.step,
            "what": what_it_did(r),
        }
        for r in replayed
    ]


def what_it_did(r: ReplayedRecord) -> str:
    """What the engine did with one record, in words (from its fields alone)."""
    if r.record == "confirmed":
        return "the broker confirmed what that record published: now its input is acked"
    did = [f"on_order({', '.join(r.submitted)})"] if r.submitted else []
    did += [f"matched bar {n}" for n in r.matched]
    did += [_published(p) for p in r.published]
    if not did:
        did = ["filed it only: the engine waits for the strategy's done"]
        did = did if r.record == "market" else ["filed it"]
    if r.record == "done":
        entries = [f"{what} {number}: {', '.join(ids) or 'no orders'}"
                   for what, number, ids in r.entries]  # fmt: skip
        did.insert(0, "done: " + "; ".join([f"steps up to {r.through} handled", *entries]))
    return "; ".join(did)


def _published(p: Published) -> str:
    if p.type == "step" and p.call is not None:
        return f"published step {p.step} as call {p.call} (engaged)"
    if p.type == "step":
        return f"published progress marker: matched through {p.step}"
    if p.type in ("end", "pause"):
        return f"published the {p.type} marker"
    return f"published {p.type} {p.message_id} (call {p.call})"
