"""concurrency_lab: measure and draw processes, threads, coroutines and event loops.

Chapters 01–06 import from here. Each concept lives in its own module, named as the chapters
name it:

- ``workloads``, ``gil``, ``speedups``, ``main_thread`` (01): CPU- and IO-bound jobs run
  serially, with threads, processes or asyncio; one GIL per process and who ran when; who
  gains from concurrency; a main thread that submits tasks, then blocks or carries on;
- ``races`` (02): lost updates, locks, deadlock, producer and consumer;
- ``pingpong``, ``switching``, ``handover``, ``unit_costs`` (03): switch costs, what a
  hand-over is made of, memory and start-up per unit;
- ``coroutines``, ``starting`` (04): the a/b example, what one step costs, starting a loop;
- ``tasks``, ``combinators`` (05): the seed's picture with asyncio, gather/wait/TaskGroup;
- ``miniloop``, ``loops``, ``nest_cost`` (06): an event loop from scratch, loops compared,
  nest-asyncio2;
- ``timeline`` and ``stats`` throughout: who ran when, and robust summaries of timings.

The exercises are in ``concurrency_lab.exercises``; their reference solutions apart.
"""

from concurrency_lab import (
    combinators,
    coroutines,
    gil,
    handover,
    loops,
    main_thread,
    miniloop,
    nest_cost,
    pingpong,
    races,
    speedups,
    starting,
    stats,
    switching,
    tasks,
    timeline,
    unit_costs,
    workloads,
)
from concurrency_lab.settings import QUICK
from concurrency_lab.stats import Summary, summarize
from concurrency_lab.timeline import Timeline

__all__ = [
    "QUICK",
    "Summary",
    "Timeline",
    "combinators",
    "coroutines",
    "gil",
    "handover",
    "loops",
    "main_thread",
    "miniloop",
    "nest_cost",
    "pingpong",
    "races",
    "speedups",
    "starting",
    "stats",
    "summarize",
    "switching",
    "tasks",
    "timeline",
    "unit_costs",
    "workloads",
]
