"""concurrency_lab: measure and draw processes, threads, coroutines and event loops.

Chapters 01–06 import from here; each concept lives in its own module (``switching``, ``races``,
``gil``, ``timeline``, ``miniloop``, ``exercises``, ...).
"""

from concurrency_lab.settings import QUICK

__all__ = ["QUICK"]
