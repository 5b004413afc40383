"""Chapter 10 checks, run on the broker (embedded, or ``MQLAB_AMQP_URL``).

- :func:`check_risk_check`: ``risk_check(order, exposure, limit)`` refuses (returns a reason)
  exactly the orders that would take the net position beyond ``±limit``. It is tried on a
  table of cases, then plugged into a risk service between strategy host and exchange while
  :class:`Ladder` (a strategy that keeps buying) runs over the bus: the position must never
  exceed the limit, and the refusals must reach the strategy as REJECTED updates.
- :func:`check_order_handler`: ``await handle_order(delivery, accepted)`` for
  :meth:`mqlab.bus.Bus.subscribe` keeps valid orders up to :data:`MAX_QTY` and makes every
  other message end in the dead-letter queue with a reason: nothing silently dropped.

A notebook submits an answer with :func:`mqlab.exercises.submit`, which shows the verdict.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from mqlab.bus import HEADER_REASON, Bus, Delivery
from mqlab.events import ZERO, Fill, Kline, Liquidity, Order, OrderStatus, OrderType, Side, encode
from mqlab.exercises import ExerciseError, Verdict, expect, passed, unanswered
from mqlab.strategy import Strategy

__all__ = [
    "LIMIT",
    "MAX_QTY",
    "Ladder",
    "check_order_handler",
    "check_risk_check",
]

#: Position limit (BTC) the risk check enforces in the bus run.
LIMIT = Decimal("0.1")
#: Largest order quantity :func:`check_order_handler` accepts.
MAX_QTY = Decimal("1")

RiskCheck = Callable[[Order, Decimal, Decimal], "str | None"]
HandleOrder = Callable[[Delivery, list[Order]], Awaitable[None]]


class Ladder(Strategy):
    """Buys ``step`` on every rising close and sells ``step`` after two falling closes while it
    holds something: in a rally it piles up a position, which is what a risk limit is for."""

    name = "ladder"

    def __init__(self, step: Decimal | str = "0.02") -> None:
        super().__init__()
        self.step = Decimal(step)
        self.previous: Decimal | None = None
        self.falls = 0
        self.refusals: list[str] = []

    def on_kline(self, kline: Kline) -> None:
        previous, self.previous = self.previous, kline.close
        if previous is None:
            return
        if kline.close > previous:
            self.falls = 0
            self.buy(self.step)
        elif kline.close < previous:
            self.falls += 1
            if self.falls >= 2 and self.position() >= self.step:
                self.falls = 0
                self.sell(self.step)

    def on_order_update(self, update) -> None:  # type: ignore[no-untyped-def]
        if update.status is OrderStatus.REJECTED and update.reason.startswith("risk:"):
            self.refusals.append(update.reason)


def _order(side: Side, qty: str, strategy: str = "sma_cross", oid: str = "x-1") -> Order:
    return Order(oid, strategy, "binance", "BTCUSDT", side, OrderType.MARKET, Decimal(qty), None,
                 1_704_067_260_000, 1_704_067_260_000)  # fmt: skip


#: (side, qty, exposure before, should it be refused?) with the limit 0.3.
_RISK_CASES = [
    (Side.BUY, "0.1", "0", False),
    (Side.BUY, "0.1", "0.25", True),
    (Side.BUY, "0.05", "0.25", False),  # lands exactly on the limit: allowed
    (Side.SELL, "0.1", "0.3", False),  # selling reduces a long
    (Side.SELL, "0.5", "0.1", True),  # ... but not into a short beyond the limit
    (Side.BUY, "0.4", "-0.3", False),  # buying back a short
    (Side.SELL, "0.1", "-0.25", True),
]


async def check_risk_check(risk_check: RiskCheck, url: str | None = None) -> Verdict:
    """Refuse exactly the orders that take ``|exposure ± qty|`` above ``limit``."""
    limit = Decimal("0.3")
    for side, qty, exposure, refuse in _RISK_CASES:
        try:
            answer = risk_check(_order(side, qty), Decimal(exposure), limit)
        except NotImplementedError:
            raise unanswered() from None
        case = f"{side.value} {qty} with exposure {exposure} and limit {limit}"
        expect(
            answer is None or (isinstance(answer, str) and answer != ""),
            f"{case}: you returned {answer!r}",
            "return None to let the order through, or a non-empty reason (str) to refuse it",
        )
        expect(
            (answer is not None) == refuse,
            f"{case}: you {'refused' if answer else 'let through'} it",
            "the position after the order is exposure + qty for a buy, exposure - qty for a "
            "sell; refuse when its absolute value is above the limit (equal is fine)",
        )
    position, refusals = await _ladder_over_the_bus(risk_check, url)
    expect(
        refusals > 0,
        "the rally never hit the limit: the bus run refused nothing",
        "return a reason starting with 'risk:' whenever the order would pass the limit",
    )
    expect(
        position <= LIMIT,
        f"over the bus the position reached {position} BTC, above the {LIMIT} limit",
        "judge the position after the order (exposure ± qty), not the exposure before it",
    )
    return passed(
        "risk check",
        f"{refusals} orders refused over the bus; the position peaked at {position} BTC",
    )


async def _ladder_over_the_bus(risk_check: RiskCheck, url: str | None) -> tuple[Decimal, int]:
    """Run :class:`Ladder` for 300 bars with the risk service; (peak position, refusals)."""
    from mqlab.config import RunConfig
    from mqlab.connection import broker_url
    from mqlab.pipeline import Pipeline
    from mqlab.services.strategy_host import StrategyHost

    config = RunConfig(limit=300)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(
            config, broker_url(url), prefix=f"ex10-{uuid.uuid4().hex[:8]}",
            out=Path(tmp), risk=risk_check, limit=LIMIT, strategy=Ladder,
        )  # fmt: skip
        await pipeline.start_all()
        try:
            await asyncio.wait_for(pipeline.wait(), 120)
        finally:
            await pipeline.close()
            await pipeline.delete_topology()
    host = pipeline.services["strategy"]
    assert isinstance(host, StrategyHost) and isinstance(host.strategy, Ladder)
    position = peak = ZERO
    for fill in pipeline.result().fills:
        position += Decimal(fill[4]) if fill[3] == "BUY" else -Decimal(fill[4])
        peak = max(peak, abs(position))
    return peak, len(host.strategy.refusals)


async def check_order_handler(handle_order: HandleOrder, url: str | None = None) -> Verdict:
    """Keep orders up to MAX_QTY; everything else must land in the DLQ with a reason."""
    good = [_order(Side.BUY, q, oid=f"ok-{i}") for i, q in enumerate(("0.1", "1", "0.5"))]
    big = _order(Side.BUY, "5", oid="big-1")
    fill = Fill("ok-0", "sma_cross", "binance", "BTCUSDT", Side.BUY, Decimal("0.1"),
                Decimal("42000"), ZERO, "USDT", Liquidity.TAKER, 1, 1, 1)  # fmt: skip
    messages = [
        (encode(good[0]), "m1"),
        (b'{"event": "order", "qty": 0.1', "m2"),  # malformed: cut off
        (encode(good[1]), "m3"),
        (encode(big), "m4"),
        (encode(fill), "m5"),  # a valid event, but not an order
        (encode(good[2]), "m6"),
    ]
    bad = {"m2", "m4", "m5"}
    accepted: list[Order] = []
    failures: list[BaseException] = []

    async def handler(delivery: Delivery) -> None:
        try:
            await handle_order(delivery, accepted)
        except NotImplementedError:
            failures.append(NotImplementedError())
            raise

    async with Bus(url, prefix=f"ex10-{uuid.uuid4().hex[:8]}") as bus:
        try:
            subscription = await bus.subscribe("orders", [("orders", "#")], handler)
            for body, message_id in messages:
                await bus.publish("orders", "order.sma_cross.binance.BTCUSDT", body,
                                  message_id=message_id)  # fmt: skip
            stats = subscription.stats
            async with asyncio.timeout(10):
                while stats.handled + stats.dead_lettered < len(messages):
                    await asyncio.sleep(0.02)
            parked = {d.message_id: d.headers.get(HEADER_REASON) for d in await bus.dead_letters()}
        except TimeoutError:
            raise ExerciseError(
                "your handler did not finish within 10 s", "never wait inside a handler"
            ) from None
        finally:
            await bus.delete()
    if failures:
        raise unanswered()
    kept = [o.id for o in accepted]
    expect(
        kept == [o.id for o in good],
        f"kept {kept}, expected the three valid orders {[o.id for o in good]}",
        "decode the body with mqlab.events.decode; keep it only if it is an Order with "
        f"qty <= {MAX_QTY}",
    )
    dropped = sorted(bad - set(parked))
    expect(
        not dropped,
        f"message(s) {dropped} vanished: acked, yet neither kept nor dead-lettered",
        "don't catch the decode error and return; for a valid but unwanted message raise "
        "mqlab.bus.Reject('why'): the bus then parks it in the DLQ with that reason",
    )
    expect(
        all(parked[m] for m in bad),
        "a dead-lettered message has no reason",
        "raise mqlab.bus.Reject('why') with a reason that says why",
    )
    return passed("order handler", f"3 kept, 3 dead-lettered: {parked['m4']!r}, ...")
