"""Durability for ``--data-dir``: durable exchanges, queues, bindings and persistent messages.

One SQLite file (``broker.sqlite3``) in WAL mode with ``synchronous=FULL``, so a commit is on
disk when it returns. Definitions are committed at once (they are rare). Message writes are
batched: the broker calls :meth:`Store.commit` once per event-loop turn, *before* it sends
the publisher confirms of that turn, so a confirm always means "fsynced". A message that is
stored and removed within one turn (published, delivered and acked quickly) never touches
the disk. Field tables (arguments) are stored encoded by pamqp.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pamqp import decode, encode, header

from mqlab.broker.errors import ChannelException
from mqlab.broker.exchange import Exchange
from mqlab.broker.queue import Message, Queue, QueueHost, parse_expiration
from mqlab.routing import Binding

__all__ = ["Store", "Tables"]


class Tables(QueueHost, Protocol):
    """What :meth:`Store.load_into` fills: a virtual host's exchanges and queues (a
    Protocol, so the store and :mod:`mqlab.broker.vhost` do not import each other)."""

    @property
    def exchanges(self) -> dict[str, Exchange]: ...
    @property
    def queues(self) -> dict[str, Queue]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    name TEXT PRIMARY KEY, type TEXT, auto_delete INT, internal INT, arguments BLOB);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY, auto_delete INT, arguments BLOB);
CREATE TABLE IF NOT EXISTS bindings (
    source TEXT, destination TEXT, routing_key TEXT, to_exchange INT, arguments BLOB,
    PRIMARY KEY (source, destination, routing_key, to_exchange, arguments));
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, queue TEXT, exchange TEXT, routing_key TEXT,
    header BLOB, body BLOB, delivered INT DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (queue, id);
"""


def _table(value: Any) -> bytes:
    return encode.field_table(dict(value or {}))


def _untable(blob: bytes | None) -> dict[str, Any]:
    return dict(decode.field_table(blob)[1]) if blob else {}


class Store:
    """The SQLite file behind a broker started with a data directory."""

    FILENAME = "broker.sqlite3"

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(messages)")}
        if "delivered" not in columns:  # a data dir written before the column existed
            self.db.execute("ALTER TABLE messages ADD COLUMN delivered INT DEFAULT 0")
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        self._next_id = int(row[0]) + 1
        self._adds: dict[int, tuple[int, str, str, str, bytes, bytes, int]] = {}
        self._removes: list[int] = []
        self._delivered: list[int] = []
        self.commits = 0
        self.on_dirty: Callable[[], None] | None = None  # the broker schedules a commit

    # -- definitions: written through ------------------------------------------------------

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        self.commit()  # keep message order: pending message writes go first
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(sql, args)

    def save_exchange(self, ex: Exchange) -> None:
        self._write(
            "INSERT OR REPLACE INTO exchanges VALUES (?, ?, ?, ?, ?)",
            (ex.name, ex.type, int(ex.auto_delete), int(ex.internal), _table(ex.arguments)),
        )

    def delete_exchange(self, name: str) -> None:
        self._write("DELETE FROM exchanges WHERE name = ?", (name,))

    def save_queue(self, q: Queue) -> None:
        self._write(
            "INSERT OR REPLACE INTO queues VALUES (?, ?, ?)",
            (q.name, int(q.auto_delete), _table(q.arguments)),
        )

    def delete_queue(self, name: str) -> None:
        self.commit()
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM queues WHERE name = ?", (name,))
            self.db.execute("DELETE FROM messages WHERE queue = ?", (name,))

    def save_binding(self, b: Binding) -> None:
        self._write(
            "INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?)",
            (b.source, b.destination, b.routing_key, int(b.to_exchange), _table(b.arguments)),
        )

    def delete_binding(self, b: Binding) -> None:
        self._write(
            "DELETE FROM bindings WHERE source = ? AND destination = ? AND routing_key = ? "
            "AND to_exchange = ? AND arguments = ?",
            (b.source, b.destination, b.routing_key, int(b.to_exchange), _table(b.arguments)),
        )

    # -- messages: batched, committed by commit() ------------------------------------------

    def add_message(self, queue: str, message: Message) -> int:
        """Queue a row for the next commit; returns its id."""
        row_id = self._next_id
        self._next_id += 1
        if self.on_dirty is not None and not self.dirty:
            self.on_dirty()
        self._adds[row_id] = (
            row_id,
            queue,
            message.exchange,
            message.routing_key,
            message.header,
            message.body,
            0,
        )
        return row_id

    def mark_delivered(self, row_id: int) -> None:
        """Remember that a message went out once: after a restart it is redelivered=True."""
        pending = self._adds.get(row_id)
        if pending is not None:
            self._adds[row_id] = (*pending[:6], 1)
            return
        if self.on_dirty is not None and not self.dirty:
            self.on_dirty()
        self._delivered.append(row_id)

    def remove_message(self, row_id: int) -> None:
        if self._adds.pop(row_id, None) is None:
            if self.on_dirty is not None and not self.dirty:
                self.on_dirty()
            self._removes.append(row_id)

    def committed(self, row_id: int) -> bool:
        """Is the row on disk (not waiting for the next commit)?"""
        return row_id not in self._adds

    def read_body(self, row_id: int) -> bytes:
        """A message body, from the pending writes or from the file."""
        pending = self._adds.get(row_id)
        if pending is not None:
            return pending[5]
        row = self.db.execute("SELECT body FROM messages WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            raise KeyError(f"message {row_id} is not in the store")
        return bytes(row[0])

    @property
    def dirty(self) -> bool:
        return bool(self._adds or self._removes or self._delivered)

    def commit(self) -> None:
        """Write pending message changes and fsync (one transaction)."""
        if not self.dirty:
            return
        adds, removes = list(self._adds.values()), [(i,) for i in self._removes]
        delivered = [(i,) for i in self._delivered]
        self._adds, self._removes, self._delivered = {}, [], []
        with self.db:
            self.db.execute("BEGIN")
            if adds:
                self.db.executemany(
                    "INSERT INTO messages (id, queue, exchange, routing_key, header, body, "
                    "delivered) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    adds,
                )
            if delivered:
                self.db.executemany("UPDATE messages SET delivered = 1 WHERE id = ?", delivered)
            if removes:
                self.db.executemany("DELETE FROM messages WHERE id = ?", removes)
        self.commits += 1

    def close(self) -> None:
        self.commit()
        self.db.close()

    # -- recovery --------------------------------------------------------------------------

    def load_into(self, vhost: Tables) -> None:
        """Recreate durable definitions and persistent messages after a restart."""
        db = self.db
        for name, kind, auto_delete, internal, args in db.execute("SELECT * FROM exchanges"):
            vhost.exchanges[name] = Exchange(
                name, kind, True, bool(auto_delete), bool(internal), _untable(args)
            )
        for name, auto_delete, args in db.execute("SELECT * FROM queues"):
            vhost.queues[name] = Queue(
                vhost, name, durable=True, auto_delete=bool(auto_delete), arguments=_untable(args)
            )
        for source, dest, key, to_exchange, args in db.execute("SELECT * FROM bindings"):
            ex = vhost.exchanges.get(source)
            if ex is not None:
                ex.bind(Binding(source, dest, key, _untable(args), bool(to_exchange)))
        # Bodies stay on disk: each message comes back paged, read when it reaches the head.
        rows = db.execute(
            "SELECT id, queue, exchange, routing_key, header, length(body), delivered "
            "FROM messages ORDER BY id"
        )
        for row_id, queue, exchange, routing_key, payload, size, delivered in rows:
            q = vhost.queues.get(queue)
            if q is None:
                continue
            content = header.ContentHeader()
            content.unmarshal(payload)
            props = content.properties
            try:
                ttl = parse_expiration(props.expiration)
            except ChannelException:
                ttl = None
            message = Message(exchange, routing_key, props, payload, b"", ttl)
            message.size = size or 0
            qm = q.entry(message)
            qm.store_id = row_id
            qm.paged = True
            q.paged_bytes += message.size
            # Delivered before the restart but never acked: RabbitMQ says redelivered.
            qm.redelivered = bool(delivered)
            q.messages.append(qm)
            q.bytes += message.size
