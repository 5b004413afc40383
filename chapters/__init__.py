"""Chapter helpers: the sentences the chapters print, formatted from the libraries' typed results.

The libraries (``concurrency_lab``, ``mqlab``) measure and return numbers in dataclasses; the
words that read those numbers for a learner live here, one module per chapter (``chNN``), so
that no library function builds prose and every sentence follows from the values it is given.
"""
