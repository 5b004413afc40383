"""Routing keys (路由键) of events: one function per event type, and :func:`routing_key`.

Called with ``"*"``/``"#"`` the functions give binding patterns. Keys follow aioquant's
``{platform}.{symbol}`` style, and klines add the interval aioquant left out:
``kline.binance.BTCUSDT.1m``. Orders and cancels share ``order.<strategy>.<platform>.<symbol>``
so one queue sees them in the order they were sent.
"""

from __future__ import annotations

import re

from mqlab.events.model import Cancel, Event, Fill, Kline, Order, OrderBook, OrderUpdate, Trade

__all__ = [
    "fill_key",
    "kline_key",
    "order_key",
    "order_update_key",
    "orderbook_key",
    "routing_key",
    "trade_key",
]

# --- routing keys ------------------------------------------------------------------------------

_PART = re.compile(r"[A-Za-z0-9_\-]+|\*|#")


def _key(*parts: str) -> str:
    for part in parts:
        if not isinstance(part, str) or not _PART.fullmatch(part):
            raise ValueError(
                f"bad routing-key part {part!r}: use letters, digits, '_' or '-' "
                "(or '*'/'#' in a binding pattern)"
            )
    return ".".join(parts)


def kline_key(platform: str = "*", symbol: str = "*", interval: str = "*") -> str:
    """``kline.{platform}.{symbol}.{interval}``, e.g. ``kline.binance.BTCUSDT.1m``."""
    return _key("kline", platform, symbol, interval)


def orderbook_key(platform: str = "*", symbol: str = "*") -> str:
    """``orderbook.{platform}.{symbol}``."""
    return _key("orderbook", platform, symbol)


def trade_key(platform: str = "*", symbol: str = "*") -> str:
    """``trade.{platform}.{symbol}``."""
    return _key("trade", platform, symbol)


def order_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``order.{strategy}.{platform}.{symbol}``: orders *and* cancels, so they stay in order."""
    return _key("order", strategy, platform, symbol)


def order_update_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``order_update.{strategy}.{platform}.{symbol}``."""
    return _key("order_update", strategy, platform, symbol)


def fill_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``fill.{strategy}.{platform}.{symbol}``."""
    return _key("fill", strategy, platform, symbol)


def routing_key(event: Event) -> str:
    """The topic routing key an event is published under."""
    match event:
        case Kline():
            return kline_key(event.platform, event.symbol, event.interval)
        case OrderBook():
            return orderbook_key(event.platform, event.symbol)
        case Trade():
            return trade_key(event.platform, event.symbol)
        case Order() | Cancel():
            return order_key(event.strategy, event.platform, event.symbol)
        case OrderUpdate():
            return order_update_key(event.strategy, event.platform, event.symbol)
        case Fill():
            return fill_key(event.strategy, event.platform, event.symbol)
    raise TypeError(f"not an mqlab event: {type(event).__name__}")


# --- JSON codec ---------------------------------------------------------------------------------
