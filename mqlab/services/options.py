"""How the services of one run are built: one set of options for all of them.

The in-process :class:`~mqlab.pipeline.runner.Pipeline`, each service's command line
(``python -m mqlab exchange ...``) and the tests build the services from the same
:class:`ServiceOptions`, so what follows from a run's settings (the strategy id, the keys the
strategy host and the portfolio handle, where the exchange takes orders from when a risk
service runs, which queues the market waits for) is worked out in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mqlab.config import RunConfig
from mqlab.routing import topic_match
from mqlab.services.protocol import CHECKED, DEFAULT_WINDOW, ORDERS, default_queues

if TYPE_CHECKING:
    from mqlab.strategy import Strategy

__all__ = ["KeyFilter", "ServiceOptions"]


@dataclass(frozen=True)
class ServiceOptions:
    """A run's settings, as the services see them."""

    config: RunConfig
    #: Builds the strategy instead of ``config.make_strategy`` (in-process only).
    strategy: Callable[[], Strategy] | None = None
    #: The strategy ids the exchange service serves; () means the strategy's own.
    strategies: Sequence[str] = ()
    #: Routing-key patterns the strategy host and the portfolio handle; () means every key
    #: in the data.
    patterns: Sequence[str] = ()
    #: A risk service sits between the strategy hosts and the exchange.
    risk: bool = False
    #: Every step a call, as before lookahead (see ExchangeService); both ends must agree.
    lockstep: bool = False
    #: Market steps in flight, and market events per message (at most the window).
    window: int = DEFAULT_WINDOW
    batch: int = 1
    #: Replay speed: 0 as fast as the pipeline takes it, 1 real time.
    speed: float = 0.0
    #: Where the portfolio writes its report and plots.
    out: Path | None = None

    @classmethod
    def from_args(cls, config: RunConfig, args: argparse.Namespace) -> ServiceOptions:
        """From one service's command line, which has only the options that service uses."""
        names = {"risk": "risk", "window": "window", "batch": "batch", "speed": "speed"}
        names |= {"out": "out", "patterns": "subscribe", "strategies": "strategies"}
        given = {field: getattr(args, arg, None) for field, arg in names.items()}
        return cls(config, **{k: v for k, v in given.items() if v is not None})

    def make_strategy(self) -> Strategy:
        return (self.strategy or self.config.make_strategy)()

    @cached_property
    def strategy_id(self) -> str:
        return self.make_strategy().name

    @property
    def served(self) -> list[str]:
        """The strategy ids the exchange service serves."""
        return sorted(set(self.strategies)) or [self.strategy_id]

    @property
    def market_patterns(self) -> list[str]:
        return list(self.patterns) or self.config.market_keys

    @property
    def orders_from(self) -> str:
        """The exchange the exchange service takes orders from."""
        return CHECKED if self.risk else ORDERS

    @property
    def consumer_queues(self) -> list[str]:
        """The queues that need a consumer before the market publishes its first step."""
        return default_queues([self.strategy_id], risk=self.risk)

    @property
    def title(self) -> str:
        return f"{self.strategy_id} over the bus on {self.config.label}"


class KeyFilter:
    """Is a routing key one of ``patterns`` (``#``, ``kline.*.*.1m``)? Each key is matched
    once and remembered: a run has a handful of keys and thousands of steps."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self._known: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = any(topic_match(p, key) for p in self.patterns)
        return known
