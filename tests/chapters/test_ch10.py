"""Chapter 10's journal table: each line's words follow from the replayed record's fields."""

from __future__ import annotations

from chapters import ch10
from mqlab.services.exchange import Published, ReplayedRecord


def test_a_market_record_says_what_it_matched_and_published() -> None:
    call, marker = Published("step", "call.s.3", 7, 3), Published("step", "step.x.7", 7, None)
    r = ReplayedRecord("market", "m7", 7, matched=(6, 7), published=(call, marker))
    assert ch10.what_it_did(r) == (
        "matched bar 6; matched bar 7; published step 7 as call 3 (engaged); "
        "published progress marker: matched through 7"
    )
    waiting = ReplayedRecord("market", "m8", 8)
    assert ch10.what_it_did(waiting) == "filed it only: the engine waits for the strategy's done"
    assert ch10.what_it_did(ReplayedRecord("request", "o1")) == "filed it"


def test_a_done_lists_its_entries_and_what_reached_the_engine() -> None:
    r = ReplayedRecord(
        "done", "d1", submitted=("o1", "o2"), through=12,
        entries=(("step", 12, ("o1", "o2")), ("call", 4, ())),
        published=(Published("fill", "f1", 12, 5),),
    )  # fmt: skip
    assert ch10.what_it_did(r) == (
        "done: steps up to 12 handled; step 12: o1, o2; call 4: no orders; on_order(o1, o2); "
        "published fill f1 (call 5)"
    )


def test_journal_rows_one_per_record() -> None:
    rows = ch10.journal_rows([ReplayedRecord("confirmed", "m7"), ReplayedRecord("end", "e", 9)])
    assert rows[0] == {
        "record": "confirmed", "id": "m7", "step": "",
        "what": "the broker confirmed what that record published: now its input is acked",
    }  # fmt: skip
    assert rows[1]["step"] == 9 and rows[1]["what"] == "filed it"
