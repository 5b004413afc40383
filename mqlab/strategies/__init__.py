"""Example strategies, by the name the CLI and the pipeline use: ``sma_cross``, ``imbalance``.

``make_strategy("sma_cross", fast=5)`` builds one; an unknown name or parameter gets an error
that lists the known ones.
"""

from __future__ import annotations

import inspect
from typing import Any

from mqlab.strategies.imbalance import BookImbalance
from mqlab.strategies.sma_cross import SmaCross
from mqlab.strategy import Strategy

__all__ = ["STRATEGIES", "BookImbalance", "SmaCross", "make_strategy"]

STRATEGIES: dict[str, type[Strategy]] = {"sma_cross": SmaCross, "imbalance": BookImbalance}


def make_strategy(name: str, **params: Any) -> Strategy:
    """A new strategy by registry name, with keyword parameters for its constructor."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}"
        ) from None
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} has no parameter {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    return cls(**params)
