"""Chapter 10 exercises: the reference solutions pass, typical wrong answers fail."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from exercise_tables import WrongAnswers, wrong_answers

from mqlab.bus import Delivery
from mqlab.events import Order, decode
from mqlab.exercises import ExerciseError, ch10, submit
from mqlab.exercises.solutions import ch10 as solutions


async def test_reference_risk_check_passes(amqp_url: str) -> None:
    verdict = await ch10.check_risk_check(solutions.risk_check, amqp_url)
    assert str(verdict).startswith("✓ risk check: correct (")


def _no_limit(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    return None


def _order_size_only(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    return "too big" if order.qty > limit else None


def _ignores_side(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    return "over" if abs(exposure + order.qty) > limit else None


def _refuses_on_the_limit(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    after = exposure + (order.qty if order.side == "BUY" else -order.qty)
    return "over" if abs(after) >= limit else None


def _returns_bool(order: Order, exposure: Decimal, limit: Decimal) -> bool:
    after = exposure + (order.qty if order.side == "BUY" else -order.qty)
    return abs(after) > limit


def _only_checks_sma(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    # Right on the table (whose orders come from sma_cross), wrong for any other strategy.
    if order.strategy != "sma_cross":
        return None
    return solutions.risk_check(order, exposure, limit)


def _unanswered(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    raise NotImplementedError


async def test_a_check_right_on_the_table_but_not_for_every_strategy_fails_on_the_bus() -> None:
    with pytest.raises(ExerciseError, match="refused nothing"):
        await ch10.check_risk_check(_only_checks_sma)


async def test_reference_order_handler_passes(amqp_url: str) -> None:
    verdict = await ch10.check_order_handler(solutions.handle_order, amqp_url)
    assert str(verdict).startswith("✓ order handler: correct (3 kept, 3 dead-lettered")


async def _swallows_errors(delivery: Delivery, accepted: list[Order]) -> None:
    try:
        await solutions.handle_order(delivery, accepted)
    except Exception:
        return  # "handled": the broker forgets it, and so do we


async def _keeps_everything(delivery: Delivery, accepted: list[Order]) -> None:
    accepted.append(decode(delivery.body))  # type: ignore[arg-type]


async def _no_type_check(delivery: Delivery, accepted: list[Order]) -> None:
    event = decode(delivery.body)
    if event.qty <= ch10.MAX_QTY:  # type: ignore[union-attr]
        accepted.append(event)  # type: ignore[arg-type]


async def _unanswered_handler(delivery: Delivery, accepted: list[Order]) -> None:
    raise NotImplementedError


# Every known wrong answer to each check, and words the check's message must say about it.
WRONG_ANSWERS: WrongAnswers = {
    ch10.check_risk_check: [
        (_no_limit, "let through"),
        (_order_size_only, "let through"),
        (_ignores_side, "refused"),
        (_refuses_on_the_limit, "refused"),
        (_returns_bool, "non-empty reason"),
        (_unanswered, "not answered"),
    ],
    ch10.check_order_handler: [
        (_swallows_errors, "vanished"),
        (_keeps_everything, "kept"),
        (_no_type_check, "kept"),
        (_unanswered_handler, "not answered"),
    ],
}


@pytest.mark.parametrize(("check", "wrong", "message"), wrong_answers(WRONG_ANSWERS))
async def test_wrong_answers_fail(check: Any, wrong: Any, message: str) -> None:
    with pytest.raises(ExerciseError, match=message):
        await check(wrong)


async def test_submit_gives_the_verdict_instead_of_raising() -> None:
    verdict = submit(ch10.check_risk_check, _unanswered)
    assert str(verdict) == (
        "✗ risk_check: not answered yet\nHint: replace `raise NotImplementedError` with your code"
    )
