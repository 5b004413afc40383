"""Reference solutions for chapter 02 (threads and locks)."""

from __future__ import annotations

from contextlib import ExitStack

from concurrency_lab.races import Account

__all__ = ["deposit", "pay"]


def deposit(account: Account, amount: int) -> None:
    """Hold the account's lock around the whole read-modify-write."""
    with account.lock:
        account.write_balance(account.read_balance() + amount)


def pay(payer: Account, payee: Account, amount: int, fees: Account, fee: int) -> None:
    """Lock every account involved once each, in one global order (by name), then move."""
    involved = {a.name: a for a in (payer, payee, fees)}  # F may be the payer or the payee
    with ExitStack() as stack:
        for account in sorted(involved.values(), key=lambda a: a.name):
            stack.enter_context(account.lock)
        payer.write_balance(payer.read_balance() - amount - fee)
        payee.write_balance(payee.read_balance() + amount)
        fees.write_balance(fees.read_balance() + fee)
