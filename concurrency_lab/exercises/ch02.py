"""Chapter 02 checks: a deposit that loses nothing, and transfers that cannot deadlock.

- :func:`check_deposit`: ``deposit(account, amount)`` stays correct with many threads.
- :func:`check_transfer`: ``transfer(src, dst, amount)`` never deadlocks, even in a cycle of
  accounts or from an account to itself, and keeps the money.

Both run the learner's code on :class:`~concurrency_lab.races.Account`, whose
``read_balance()`` releases the GIL like a database query, and whose lock gives up after a
timeout (:class:`~concurrency_lab.races.DeadlockError`), so a wrong answer fails, never hangs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from concurrency_lab.exercises import expect, passed
from concurrency_lab.races import Account, DeadlockError, TimedLock, run_transfers

__all__ = ["check_deposit", "check_transfer"]


def check_deposit(deposit: Callable[[Account, int], None]) -> str:
    """Four threads each deposit 1 fifty times into one account: the balance must be 200."""
    account = Account("savings", 0, TimedLock("savings", timeout=2.0))
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def worker() -> None:
        gate.wait()
        try:
            for _ in range(50):
                deposit(account, 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = any(t.is_alive() for t in threads)
    expect(
        not stuck,
        "deposit() still runs after 5 s: a thread waits for a lock nobody releases",
        "use `with account.lock:` so that the lock is released even on errors",
    )
    first = errors[0] if errors else None
    expect(
        not isinstance(first, DeadlockError),
        f"a deposit waited for the lock forever: {first}",
        "release the lock when done: use `with account.lock:` rather than acquire() alone",
    )
    expect(not errors, f"deposit() raised {first!r}")
    expect(
        account.balance != 0,
        "the balance is still 0",
        "read the balance, add amount, write it back (account.write_balance)",
    )
    expect(
        account.balance == 200,
        f"balance {account.balance}, expected 200: {200 - account.balance} deposits were lost",
        "two threads read the same old balance while the read waits; hold account.lock "
        "around the whole read-modify-write, not around the read or the write alone",
    )
    return passed("deposit", "200 of 200 deposits kept")


def check_transfer(transfer: Callable[[Account, Account, int], None]) -> str:
    """A cycle A→B, B→C, C→A, plus B→A and A→A, all at once: no deadlock, no money lost."""
    balances = {"A": 100, "B": 200, "C": 300}
    accounts = [Account(n, b, TimedLock(n, timeout=0.6, hold=0.02)) for n, b in balances.items()]
    moves = [(0, 1, 10), (1, 2, 20), (2, 0, 30), (1, 0, 5), (0, 0, 7)]
    report = run_transfers(transfer, accounts, moves, join_timeout=10)
    expect(
        not report.errors,
        f"{len(report.errors)} transfer(s) failed:\n  " + "\n  ".join(report.errors),
        "take the two locks in one global order (e.g. sorted by account name), and when "
        "src is dst there is only one lock to take",
    )
    expect(
        report.total_after == report.total_before,
        f"money appeared or vanished: total {report.total_before} before, "
        f"{report.total_after} after",
        "move the amount from src to dst while holding both locks",
    )
    want = {"A": 100 - 10 + 30 + 5, "B": 200 + 10 - 20 - 5, "C": 300 + 20 - 30}
    got = {a.name: a.balance for a in accounts}
    expect(got == want, f"balances {got}, expected {want}", "subtract from src, add to dst")
    return passed("transfer", f"5 concurrent transfers in {report.seconds:.2f} s, no deadlock")
