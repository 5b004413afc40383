"""Chapter 02 checks: a deposit that loses nothing, and payments that cannot deadlock.

- :func:`check_deposit`: ``deposit(account, amount)`` stays correct with many threads.
- :func:`check_pay`: ``pay(payer, payee, amount, fees, fee)`` locks three accounts, never
  deadlocks (opposite payments, or the fees account paying or being paid), writes an account
  only while holding its lock, and keeps the money.

Both run the learner's code on :class:`~concurrency_lab.races.Account`, whose
``read_balance()`` releases the GIL like a database query, and whose lock gives up after a
timeout (:class:`~concurrency_lab.races.DeadlockError`), so a wrong answer fails, never hangs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from concurrency_lab.exercises import Verdict, expect, passed
from concurrency_lab.races import Account, DeadlockError, TimedLock, run_transfers

__all__ = ["check_deposit", "check_pay"]


def check_deposit(deposit: Callable[[Account, int], None]) -> Verdict:
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
    expect(
        not errors,
        f"deposit() raised {first!r}",
        "read with account.read_balance(), write with account.write_balance(value)",
    )
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


class _Guarded(Account):
    """An account that refuses a write from a thread that does not hold its lock."""

    def write_balance(self, value: int) -> None:
        me = threading.current_thread().name
        if self.lock.owner != me:
            raise RuntimeError(
                f"{me} wrote {self.name}'s balance without holding {self.name}'s lock"
            )
        super().write_balance(value)


#: The payments :func:`check_pay` runs at once: (payer, payee, amount); the fee is amount // 10.
PAYMENTS = [("A", "B", 10), ("B", "A", 20), ("C", "D", 30), ("D", "F", 50), ("F", "C", 70)]


def check_pay(pay: Callable[[Account, Account, int, Account, int], None]) -> Verdict:
    """Five payments at once, each with a fee to account F: no deadlock, no unlocked write."""
    balances = {"A": 100, "B": 200, "C": 300, "D": 400, "F": 500}
    accounts = [_Guarded(n, b, TimedLock(n, timeout=0.6, hold=0.02)) for n, b in balances.items()]
    index = {a.name: i for i, a in enumerate(accounts)}
    fees = accounts[index["F"]]
    moves = [(index[p], index[q], amount) for p, q, amount in PAYMENTS]
    report = run_transfers(
        lambda payer, payee, amount: pay(payer, payee, amount, fees, amount // 10),
        accounts,
        moves,
        join_timeout=10,
    )
    errors = "\n  ".join(report.errors)
    expect(
        not any("without holding" in e for e in report.errors),
        f"a payment wrote an account it had not locked:\n  {errors}",
        "the fees account changes too: take its lock as well, not only payer's and payee's",
    )
    expect(
        not report.errors,
        f"{len(report.errors)} payment(s) failed:\n  {errors}",
        "take the locks in one global order (e.g. sorted by account name), and take each "
        "account's lock once, even when the fees account is also the payer or the payee",
    )
    expect(
        report.total_after == report.total_before,
        f"money appeared or vanished: total {report.total_before} before, "
        f"{report.total_after} after",
        "the payer loses amount + fee; the payee gains amount; the fees account gains fee",
    )
    want = dict(balances)
    for p, q, amount in PAYMENTS:
        want[p] -= amount + amount // 10
        want[q] += amount
        want["F"] += amount // 10
    got = {a.name: a.balance for a in accounts}
    expect(
        got == want,
        f"balances {got}, expected {want}",
        "the payer loses amount + fee; the payee gains amount; the fees account gains fee",
    )
    return passed("pay", f"5 concurrent payments in {report.seconds:.2f} s, no deadlock")
