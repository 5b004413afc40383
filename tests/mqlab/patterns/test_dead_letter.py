from __future__ import annotations

import pytest

from mqlab.patterns import dead_letter


async def test_process_without_dlx_loses_poison_messages(connection) -> None:
    run = await dead_letter.demo(connection, "process, no DLX")
    assert run.counts["LOST"] == 2 and run.counts["dead-lettered"] == 0


async def test_process_with_dlx_keeps_them_with_x_death(connection) -> None:
    run = await dead_letter.demo(connection, "process, DLX")
    assert run.counts["LOST"] == 0 and run.counts["dead-lettered"] == 2
    reasons = [d.note for d in run.log if d.consumer == "dead-letter inspector"]
    assert len(reasons) == 2 and all(r.startswith("x-death: rejected") for r in reasons)
    deaths = run.details["x-death"]
    assert deaths.keys() == {"ETHUSDT abc", "SOLUSDT -3"}
    (death,) = deaths["ETHUSDT abc"]
    queue = next(q for q in run.topology.queues if not q.endswith(".dead"))
    assert (death["reason"], death["queue"], death["count"]) == ("rejected", queue, 1)
    assert death["routing-keys"] == [queue]  # decoded to str, not bytes


async def test_guarded_consumer_records_the_exception(connection) -> None:
    run = await dead_letter.demo(connection, "guarded, DLX")
    assert run.counts == {
        "published": 4, "handled ok": 2, "dead-lettered": 2, "still queued": 0, "LOST": 0,
    }  # fmt: skip
    parked = {d.body: d.note for d in run.log if d.consumer == "dead-letter inspector"}
    assert parked.keys() == {"ETHUSDT abc", "SOLUSDT -3"}
    assert "ValueError: price 'abc'" in parked["ETHUSDT abc"]
    assert run.details["x-death"] == {"ETHUSDT abc": [], "SOLUSDT -3": []}  # not the broker's
    # The handler publishes the copies itself, so the drawing shows it as a producer to the DLX.
    (dlx,) = [x for x in run.topology.exchanges if x.endswith(".dlx")]
    assert [x for x, _ in run.topology.producers.values()].count(dlx) == 1


async def test_printed_log_puts_each_failure_before_its_dead_letter(connection) -> None:
    run = await dead_letter.demo(connection, "guarded, DLX")
    lines = str(run).splitlines()
    for body in ("ETHUSDT abc", "SOLUSDT -3"):
        handled = next(i for i, line in enumerate(lines) if line.startswith("order handler ")
                       and f"<- {body} " in line)  # fmt: skip
        parked = next(i for i, line in enumerate(lines) if line.startswith("dead-letter")
                      and f"<- {body} " in line)  # fmt: skip
        assert handled < parked, str(run)


@pytest.mark.parametrize("body", [b"BTCUSDT abc", b"BTCUSDT 0", b"BTCUSDT NaN", b"BTCUSDT"])
async def test_parse_order_rejects_bad_prices(body: bytes) -> None:
    class Fake:
        pass

    message = Fake()
    message.body = body  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="price"):
        await dead_letter.parse_order(message)  # type: ignore[arg-type]
