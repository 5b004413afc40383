"""Auto-checked exercises for chapters 07–10; they run the learner's code against a broker.

Same contract as :mod:`concurrency_lab.exercises`: ``check_*`` raises :class:`ExerciseError`
with a hint on a wrong answer. Reference solutions: ``mqlab.exercises.solutions.chNN``.
"""

from concurrency_lab.exercises import ExerciseError, expect, passed

__all__ = ["ExerciseError", "expect", "passed"]
