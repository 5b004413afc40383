"""Resume state: ``run.json`` in a run's state directory says which run it is, on which
broker, and whether it finished or was paused."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mqlab.config import RunConfig

__all__ = ["RunState", "mark_complete", "mark_state", "prepare_state", "resumable"]


@dataclass
class RunState:
    """``run.json`` in the state directory: which run it is, and whether it finished."""

    prefix: str
    config: dict[str, Any]
    complete: bool = False
    #: Which broker holds the run's messages in flight (None: not recorded).
    broker: str | None = None
    #: Paused by Ctrl-C: drained, so nothing is in flight and any broker can resume it.
    paused: bool = False

    @classmethod
    def load(cls, path: Path) -> RunState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), default=str))


def _config_key(config: RunConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


def resumable(state_dir: Path, config: RunConfig, broker: str | None = None) -> bool:
    """Whether ``state_dir`` holds an unfinished run with these settings that ``broker`` can
    resume: the broker that holds its messages in flight, or any broker after a clean pause."""
    previous = RunState.load(state_dir / "run.json")
    if not previous or previous.complete or previous.config != _config_key(config):
        return False
    return previous.paused or None in (broker, previous.broker) or previous.broker == broker


def prepare_state(
    state_dir: Path, config: RunConfig, fresh: bool = False, broker: str | None = None
) -> tuple[str, bool]:
    """Resume the run in ``state_dir`` if it is unfinished, has the same settings and
    ``broker`` can resume it (see :func:`resumable`); otherwise start a new one there.
    Returns (prefix, resuming)."""
    path = state_dir / "run.json"
    previous = RunState.load(path)
    if previous and not fresh and resumable(state_dir, config, broker):
        previous.paused = False  # running again: messages will be in flight
        previous.save(path)
        return previous.prefix, True
    if state_dir.exists():
        shutil.rmtree(state_dir)
    prefix = f"mqlab-{uuid.uuid4().hex[:8]}"
    RunState(prefix, _config_key(config), broker=broker).save(path)
    return prefix, False


def mark_state(state_dir: Path, **fields: Any) -> None:
    path = state_dir / "run.json"
    state = RunState.load(path)
    if state is not None:
        for name, value in fields.items():
            setattr(state, name, value)
        state.save(path)


def mark_complete(state_dir: Path) -> None:
    mark_state(state_dir, complete=True)
