"""Reference solutions for chapter 02 (threads and locks)."""

from __future__ import annotations

from concurrency_lab.races import Account

__all__ = ["deposit", "transfer"]


def deposit(account: Account, amount: int) -> None:
    """Hold the account's lock around the whole read-modify-write."""
    with account.lock:
        account.write_balance(account.read_balance() + amount)


def transfer(src: Account, dst: Account, amount: int) -> None:
    """Take the locks in one global order (by name), and only once when src is dst."""
    if src is dst:
        with src.lock:
            return  # nothing moves; taking the (non-reentrant) lock twice would deadlock
    first, second = sorted((src, dst), key=lambda a: a.name)
    with first.lock, second.lock:
        src.write_balance(src.read_balance() - amount)
        dst.write_balance(dst.read_balance() + amount)
