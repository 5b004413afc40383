"""The session file: everything a paper session saw and did, to replay it offline.

One JSON object per line (JSON Lines), in the order things happened:

* line 1, ``{"kind": "session", ...}``: how the session was run (symbol, interval, streams,
  strategy and its parameters, cash, fees, latency, endpoint, start time);
* ``{"kind": "market", "t": <arrival ms>, "event": {...}}``: every market event, as
  :func:`mqlab.events.encode` writes it, with its wall-clock arrival time ``t`` (the event's
  own ``recv_ts`` is the session clock, which never runs backwards; see
  :mod:`mqlab.live.binance`);
* ``{"kind": "order", "t": <arrival ms at the venue>, "event": {...}}``: every order and cancel
  the strategy sent, with the time it reached the simulated venue;
* ``{"kind": "notice", "t": ..., "text": "..."}``: gaps, malformed frames, reconnects;
* last, ``{"kind": "end", "t": ..., "summary": {...}}``: fills, final equity and PnL as the
  live run counted them, so a replay can be checked against it.

Lines are flushed as they are written, so a session killed mid-way still replays up to its
last line (then without an ``end`` line). Money stays exact: Decimals travel as strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from mqlab.events import (
    Cancel,
    EventDecodeError,
    MarketEvent,
    Order,
    decode,
    encode,
)

__all__ = ["SESSION_VERSION", "Session", "SessionError", "SessionRecorder", "read_session"]

SESSION_VERSION = 1


class SessionError(ValueError):
    """A session file that cannot be replayed; the message names the file and line."""


class SessionRecorder:
    """Append a paper session to ``path`` as JSON lines (see the module docstring)."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self.lines = 0
        self._write({"kind": "session", "version": SESSION_VERSION, **meta})

    def _write(self, obj: dict[str, Any]) -> None:
        if self._file is None:
            raise ValueError(f"session file {self.path} is closed")
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def market(self, event: MarketEvent, arrival: int) -> None:
        """A market event and its wall-clock arrival time (ms)."""
        self._write({"kind": "market", "t": arrival, "event": json.loads(encode(event))})

    def order(self, request: Order | Cancel, arrival: int) -> None:
        """An order or cancel and the time (ms) it reached the venue."""
        self._write({"kind": "order", "t": arrival, "event": json.loads(encode(request))})

    def notice(self, text: str, t: int) -> None:
        self._write({"kind": "notice", "t": t, "text": text})

    def close(self, summary: dict[str, Any] | None = None, t: int = 0) -> None:
        """Write the ``end`` line (if ``summary`` is given) and close the file."""
        if self._file is None:
            return
        if summary is not None:
            self._write({"kind": "end", "t": t, "summary": summary})
        self._file.close()
        self._file = None

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class Session:
    """A session file read back: its settings, events, orders, notices and end summary."""

    path: Path
    meta: dict[str, Any]
    events: list[MarketEvent] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)  # wall-clock arrival of each event
    orders: list[tuple[int, Order | Cancel]] = field(default_factory=list)  # (venue arrival, o)
    notices: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    #: The file's market and order lines in their order: ("market", i) is ``events[i]``,
    #: ("order", i) is ``orders[i]`` (a bus session's venue handled them in this order).
    sequence: list[tuple[str, int]] = field(default_factory=list)

    def differences(self, replayed: dict[str, Any]) -> list[str]:
        """How a replay's summary differs from the one the live run wrote at its end, key by
        key (empty: identical); a session without an end line has nothing to check."""
        if self.summary is None:
            return ["the session has no end line (killed mid-run?): nothing to check"]
        return [
            f"{key}: live {want}, replay {replayed.get(key)}"
            for key, want in self.summary.items()
            if replayed.get(key) != want
        ]


def read_session(path: str | Path) -> Session:
    """Parse a session file; :class:`SessionError` with the line number if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"session file {path} not found; record one with python -m mqlab paper")
    session: Session | None = None
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if n > 1 and not line.endswith("\n"):
                    break  # the last line of a session killed mid-write: replay up to it
                raise SessionError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "kind" not in obj:
                raise SessionError(f"{where}: expected an object with a 'kind'")
            kind = obj["kind"]
            if session is None:
                if kind != "session":
                    raise SessionError(f"{where}: not a session file (no 'session' line first)")
                if obj.get("version") != SESSION_VERSION:
                    raise SessionError(
                        f"{where}: session format version {obj.get('version')!r}, this mqlab "
                        f"reads version {SESSION_VERSION}"
                    )
                session = Session(path, obj)
                continue
            try:
                if kind == "market":
                    event = decode(json.dumps(obj["event"]))
                    if not isinstance(event, MarketEvent):
                        raise SessionError(f"{where}: a market line holds a {type(event).__name__}")
                    session.arrivals.append(int(obj["t"]))
                    session.sequence.append(("market", len(session.events)))
                    session.events.append(event)
                elif kind == "order":
                    request = decode(json.dumps(obj["event"]))
                    if not isinstance(request, Order | Cancel):
                        what = type(request).__name__
                        raise SessionError(f"{where}: an order line holds a {what}")
                    t = int(obj["t"])
                    session.sequence.append(("order", len(session.orders)))
                    session.orders.append((t, request))
                elif kind == "notice":
                    session.notices.append(str(obj["text"]))
                elif kind == "end":
                    session.summary = obj["summary"]
                else:
                    raise SessionError(f"{where}: unknown kind {kind!r}")
            except EventDecodeError as exc:
                raise SessionError(f"{where}: {exc}") from None
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, SessionError):
                    raise
                raise SessionError(f"{where}: incomplete {kind} line ({exc})") from None
    if session is None:
        raise SessionError(f"{path}: empty; not a session file")
    return session
