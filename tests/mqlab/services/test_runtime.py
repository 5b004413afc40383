"""Journals, recovery, the wire protocol and the small services, without a broker."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mqlab.bus import BusError, Delivery
from mqlab.config import RunConfig, parse_params
from mqlab.events import Order, OrderType, Side, encode
from mqlab.services._runtime import Journal, Outgoing, Service
from mqlab.services.market import MarketService
from mqlab.services.options import ServiceOptions
from mqlab.services.protocol import (
    HEADER_SENT,
    HEADER_SEQ,
    HEADER_WINDOW,
    control,
    header_int,
    parse_control,
)
from mqlab.services.risk import HEADER_RISK_REASON, RiskService


class Published:
    """A stand-in bus that records what is published."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str, str | None]] = []

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str,
                      headers: Any = None, type: str | None = None) -> None:  # fmt: skip
        self.messages.append((exchange, routing_key, message_id, type))


class Echo(Service):
    """Publishes one message per record; counts what it applied."""

    def __init__(self, bus: Any, journal: Journal) -> None:
        super().__init__(bus, journal)
        self.total = 0

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        self.total += record["n"]
        kind = record.get("type")
        return [Outgoing("x", "k", b"{}", f"out-{record['id']}", {}, kind)]


def test_journal_round_trip_skips_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "s.jsonl")
    journal.append({"id": "a", "n": 1})
    journal.append({"id": "b", "n": 2})
    journal.close()
    with (tmp_path / "s.jsonl").open("a") as f:
        f.write('{"id": "c", "n"')  # the process died mid-write
    assert [r["id"] for r in Journal(tmp_path / "s.jsonl")] == ["a", "b"]
    again = Journal(tmp_path / "s.jsonl")
    again.append({"id": "d", "n": 4})  # the torn tail is cut before appending
    again.close()
    assert [r["id"] for r in Journal(tmp_path / "s.jsonl")] == ["a", "b", "d"]


def test_a_corrupt_journal_says_where_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2 is corrupt.*delete the state directory"):
        list(Journal(path))


async def test_recover_rebuilds_state_and_republishes_only_unconfirmed_outputs(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "s.jsonl")
    for record in (
        {"id": "a", "n": 1}, {"confirmed": "a"},
        {"id": "b", "n": 2},  # published, confirm never came: republish
        {"id": "c", "n": 3}, {"confirmed": "c"},
        {"id": "p", "n": 0, "type": "pause"},  # a stale pause is never republished
        {"id": "d", "n": 4},
    ):  # fmt: skip
        journal.append(record)
    journal.close()
    bus = Published()
    service = Echo(bus, Journal(tmp_path / "s.jsonl"))
    assert await service.recover() == 5
    assert service.total == 10 and service.live
    assert [m[2] for m in bus.messages] == ["out-b", "out-d"]
    assert service.applied == {"a", "b", "c", "p", "d"}


async def test_commit_journals_then_confirms_and_skips_what_was_applied(tmp_path: Path) -> None:
    bus = Published()
    service = Echo(bus, Journal(tmp_path / "s.jsonl"))
    assert await service.commit({"id": "a", "n": 5})
    assert not await service.commit({"id": "a", "n": 5})  # a redelivery: applied once
    await service.drain()  # confirms are awaited in the background
    service.journal.close()
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert lines == [{"id": "a", "n": 5}, {"confirmed": "a"}]
    assert service.total == 5 and len(bus.messages) == 1


async def test_a_record_is_on_disk_before_its_outputs_are_published(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    seen_on_disk: dict[str, list[str]] = {}

    class Reading(Published):
        async def publish(self, exchange: str, routing_key: str, body: bytes, *,
                          message_id: str, headers: Any = None,
                          type: str | None = None) -> None:  # fmt: skip
            # What another process would read at this moment (not this one's buffer).
            seen_on_disk[message_id] = [json.loads(line).get("id") for line in path.open()]
            await super().publish(exchange, routing_key, body, message_id=message_id)

    service = Echo(Reading(), Journal(path))
    for n, record_id in enumerate("abc", 1):
        assert await service.commit({"id": record_id, "n": n})
    await service.drain()  # confirmed lines may wait in the buffer until here, never records
    assert sorted(seen_on_disk) == ["out-a", "out-b", "out-c"]
    for record_id in "abc":
        assert record_id in seen_on_disk[f"out-{record_id}"]
    lines = [json.loads(line) for line in path.open()]
    assert [r for r in lines if "id" in r] == [{"id": i, "n": n} for n, i in enumerate("abc", 1)]
    assert sorted(r["confirmed"] for r in lines if "confirmed" in r) == ["a", "b", "c"]


def test_control_messages_and_headers_are_checked() -> None:
    message = control("execution", "step.exchange", "step.exchange.3", "step", seq=3, key="k")
    assert parse_control(message.body, seq=int, key=str)["seq"] == 3
    with pytest.raises(ValueError, match="'seq' must be int"):
        parse_control(b'{"seq": "3"}', seq=int)
    with pytest.raises(ValueError, match="not JSON"):
        parse_control(b"{", seq=int)
    delivery = Delivery(b"", "k", "x", "q", "m", {HEADER_SEQ: True}, False)
    with pytest.raises(ValueError, match="'x-seq' must be an integer"):
        header_int(delivery, HEADER_SEQ)


def test_market_keys_carry_the_interval_and_steps_are_numbered() -> None:
    config = RunConfig(limit=3)
    market = MarketService(Published(), ServiceOptions(config))  # type: ignore[arg-type]
    (out,) = market.apply({"id": "pub.2", "kind": "pub", "seq": 2, "sent_ns": 7})
    assert out.routing_key == "kline.binance.BTCUSDT.1m"
    assert out.message_id == config.events[1].id
    assert out.headers == {HEADER_SEQ: 2, HEADER_SENT: 7, HEADER_WINDOW: market.window}
    (end,) = market.apply({"id": "pub.4", "kind": "end", "seq": 4, "sent_ns": 8})
    assert end.routing_key == "control.end" and market.ended


def _order(side: Side, qty: str) -> Order:
    return Order("s-1", "s", "binance", "BTCUSDT", side, OrderType.MARKET, Decimal(qty), None, 1, 1)


def test_risk_service_passes_refuses_and_keeps_exposure() -> None:
    def limit_check(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
        after = exposure + (order.qty if order.side is Side.BUY else -order.qty)
        return "over" if abs(after) > limit else None

    risk = RiskService(Published(), limit_check, "0.15")  # type: ignore[arg-type]
    outputs = []
    for i, (side, qty) in enumerate([(Side.BUY, "0.1"), (Side.BUY, "0.1"), (Side.SELL, "0.1")]):
        record = {"id": f"o{i}", "kind": "request", "key": "order.s.binance.BTCUSDT",
                  "body": encode(_order(side, qty)).decode(), "headers": {}}  # fmt: skip
        outputs += risk.apply(record)
    assert [o.type for o in outputs] == ["order", "risk_reject", "order"]
    assert outputs[1].headers[HEADER_RISK_REASON] == "over"
    assert risk.exposure == {"BTCUSDT": Decimal("0.0")} and risk.passed == 2

    record = {"id": "o", "kind": "request", "key": "k", "headers": {},
              "body": encode(_order(Side.BUY, "0.1")).decode()}  # fmt: skip
    for wrong in (False, 0.5, ""):
        broken = RiskService(Published(), lambda *a, w=wrong: w, "1")  # type: ignore[arg-type,misc]
        with pytest.raises(TypeError, match="reason"):
            broken.apply(record)


def test_params_parse_like_the_backtest_cli() -> None:
    assert parse_params(["fast=5", "qty=0.2"]) == {"fast": 5, "qty": "0.2"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_params(["fast"])


async def test_a_failed_publish_stops_the_service_with_its_error(tmp_path: Path) -> None:
    class Broken(Published):
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            raise BusError("the broker stayed away")

    service = Echo(Broken(), Journal(tmp_path / "s.jsonl"))
    assert await service.commit({"id": "a", "n": 1})  # journaled: the input may be acked
    with pytest.raises(BusError, match="stayed away"):
        await service.drain()
    assert service.stopping.is_set()
    with pytest.raises(BusError):  # nothing more is applied after a lost publish
        await service.commit({"id": "b", "n": 2})
    service.journal.close()
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert lines == [{"id": "a", "n": 1}]  # never confirmed: a restart republishes it
