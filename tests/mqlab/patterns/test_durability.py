from __future__ import annotations

from mqlab.patterns import durability


async def test_flags_round_trip_and_durability_is_fixed(connection) -> None:
    run = await durability.demo(connection)
    notes = [d.note for d in run.log]
    assert notes[:2] == ["delivery_mode=2 (PERSISTENT)", "delivery_mode=1 (NOT_PERSISTENT)"]
    assert "PRECONDITION_FAILED" in notes[2] and "durable" in notes[2]
    (queue,) = run.topology.queues.values()
    assert queue.durable


async def test_only_persistent_messages_in_durable_queues_survive_a_restart() -> None:
    rows = await durability.restart_demo()
    survived = {(r.queue, r.message): (r.before, r.after) for r in rows}
    assert survived == {
        ("durable", "persistent"): (True, True),
        ("durable", "transient"): (True, False),
        ("transient", "persistent"): (True, False),
        ("transient", "transient"): (True, False),
    }
