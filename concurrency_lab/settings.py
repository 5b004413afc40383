"""The one switch shared by every benchmark cell: the quick setting the tests use."""

import os

#: True when ``LAB_QUICK=1``: benchmarks shrink their repeats so a chapter runs in seconds.
QUICK: bool = os.environ.get("LAB_QUICK", "0") == "1"
