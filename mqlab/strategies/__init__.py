"""Example strategies, by the name the CLI and the pipeline use: ``sma_cross``, ``imbalance``;
and a learner's own, from a file or a module.

``make_strategy("sma_cross", fast=5)`` builds one; an unknown name or parameter gets an error
that lists the known ones. :func:`strategy_class` also takes ``path/to/file.py:ClassName`` or
``package.module:ClassName``, and :func:`typed_params` turns ``--param NAME=VALUE`` texts into
the types the class's constructor declares (``int``, ``float``, ``Decimal``, ``bool``, ``str``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
import typing
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mqlab.strategies.imbalance import BookImbalance
from mqlab.strategies.sma_cross import SmaCross
from mqlab.strategy import Strategy

__all__ = [
    "STRATEGIES",
    "BookImbalance",
    "SmaCross",
    "StrategyLoadError",
    "make_strategy",
    "parse_params",
    "split_params",
    "strategy_class",
    "typed_params",
]

STRATEGIES: dict[str, type[Strategy]] = {"sma_cross": SmaCross, "imbalance": BookImbalance}


class StrategyLoadError(ValueError):
    """A strategy that cannot be found, loaded or built; the message says what to fix."""


def strategy_class(spec: str) -> type[Strategy]:
    """A Strategy subclass by registry name, ``file.py:ClassName`` or ``module:ClassName``."""
    if spec in STRATEGIES:
        return STRATEGIES[spec]
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise StrategyLoadError(
            f"unknown strategy {spec!r}; choose one of: {', '.join(STRATEGIES)}, or give "
            "path/to/file.py:ClassName or package.module:ClassName"
        )
    module = _load_file(target) if target.endswith(".py") or "/" in target else _import(target)
    found = getattr(module, name, None)
    if found is None:
        classes = [
            k for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy
        ]  # fmt: skip
        have = f"; it defines: {', '.join(classes)}" if classes else "; it defines no Strategy"
        raise StrategyLoadError(f"{target} has no {name!r}{have}")
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise StrategyLoadError(
            f"{name} in {target} is not a Strategy: it must subclass mqlab.strategy.Strategy"
        )
    return found


def _load_file(target: str) -> types.ModuleType:
    path = Path(target)
    if not path.is_file():
        raise StrategyLoadError(f"strategy file {path} not found")
    module_name = f"mqlab_user_strategy_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so that pickling and dataclasses find the module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise StrategyLoadError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        del sys.modules[module_name]
        raise StrategyLoadError(
            f"{path} failed while loading: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _import(target: str) -> types.ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise StrategyLoadError(
            f"no module {target!r} ({exc}); give path/to/file.py:ClassName for a file"
        ) from None


def _parameters(cls: type[Strategy]) -> dict[str, inspect.Parameter]:
    return {
        p.name: p
        for p in inspect.signature(cls).parameters.values()
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    }


def typed_params(cls: type[Strategy], texts: dict[str, str]) -> dict[str, Any]:
    """``{"fast": "5"}`` -> ``{"fast": 5}``, by the constructor's annotations (or defaults).

    Raises :class:`StrategyLoadError` for a parameter the class does not take, or a value
    that is not of the declared type."""
    params = _parameters(cls)
    unknown = sorted(set(texts) - set(params))
    if unknown:
        raise StrategyLoadError(
            f"{cls.__name__} has no parameter {', '.join(unknown)}; it takes: "
            f"{', '.join(params) or 'none'}"
        )
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: fall back on the defaults' types
        hints = {}
    out: dict[str, Any] = {}
    for name, text in texts.items():
        default = params[name].default
        hint = hints.get(name)
        if hint is None and default is not inspect.Parameter.empty and default is not None:
            hint = type(default)
        out[name] = _convert(cls.__name__, name, text, hint)
    return out


def _convert(owner: str, name: str, text: str, hint: Any) -> Any:
    options = set(typing.get_args(hint)) if typing.get_args(hint) else {hint}
    options.discard(type(None))
    if not options or str in options or Any in options:
        return text
    if text.lower() == "none" and type(None) in typing.get_args(hint):
        return None
    for kind in (bool, int, Decimal, float):
        if kind not in options:
            continue
        try:
            if kind is bool:
                lowered = text.lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(text)
                return lowered in {"true", "1", "yes"}
            if kind is Decimal:
                value = Decimal(text)
                if not value.is_finite():
                    raise ValueError(text)
                return value
            return kind(text)
        except (ValueError, InvalidOperation):
            continue
    wanted = " or ".join(getattr(k, "__name__", str(k)) for k in options)
    wanted = "a whole number (int)" if wanted == "int" else wanted
    raise StrategyLoadError(f"{owner}'s parameter {name!r} expects {wanted}, got {text!r}")


def make_strategy(name: str, **params: Any) -> Strategy:
    """A new strategy by registry name (or ``file.py:Class``), with keyword parameters."""
    cls = strategy_class(name)
    accepted = list(_parameters(cls))
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise StrategyLoadError(
            f"{name} has no parameter {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    return cls(**params)


def split_params(pairs: list[str]) -> dict[str, str]:
    """``["fast=5", "qty=0.2"]`` -> ``{"fast": "5", "qty": "0.2"}``: the texts, untyped."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {pair!r}: write NAME=VALUE, e.g. --param fast=5")
        params[name] = value
    return params


def parse_params(pairs: list[str], strategy: str | None = None) -> dict[str, Any]:
    """``--param NAME=VALUE`` pairs, typed as ``strategy``'s constructor declares them
    (:func:`typed_params`); the one reader of parameters for the backtest CLI, the pipeline,
    every service and paper trading.

    A parameter declared ``int`` must be one: ``fast=abc`` is refused here, naming the
    parameter and the type, instead of failing later inside the strategy. Without a
    strategy, whole numbers become ``int`` and everything else stays text.
    """
    texts = split_params(pairs)
    if strategy is None:
        return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in texts.items()}
    return typed_params(strategy_class(strategy), texts)
