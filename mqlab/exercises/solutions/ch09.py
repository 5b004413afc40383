"""Reference solutions for chapter 09 (checked by :mod:`mqlab.exercises.ch09`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping

from aio_pika.abc import AbstractIncomingMessage

__all__ = ["BINDING_KEYS", "handle", "on_reply"]

#: One binding key per task of ``mqlab.exercises.ch09.TASKS``.
BINDING_KEYS = {
    "BTCUSDT klines on binance, every interval": "kline.binance.BTCUSDT.*",
    "everything about BTCUSDT on binance": "*.binance.BTCUSDT.#",
}


async def handle(
    message: AbstractIncomingMessage, work: Callable[[bytes], Awaitable[None]]
) -> None:
    """Ack after the work succeeded; a failed task goes to the dead-letter exchange."""
    try:
        await work(message.body)
    except Exception:
        await message.reject(requeue=False)
    else:
        await message.ack()


def on_reply(
    message: AbstractIncomingMessage, pending: MutableMapping[str, asyncio.Future[bytes]]
) -> bool:
    """Complete the waiting call with this correlation id; ignore replies nobody waits for."""
    future = pending.pop(message.correlation_id or "", None)
    if future is None or future.done():
        return False
    future.set_result(message.body)
    return True
