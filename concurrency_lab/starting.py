"""Starting an event loop, then and now: the seed's ``get_event_loop().run_until_complete``,
``asyncio.run`` and ``asyncio.Runner``, each case run in a fresh interpreter (chapter 04).
"""

from __future__ import annotations

import re
import subprocess
import sys

__all__ = ["old_style_report"]


_OLD_STYLE = {
    "seed: get_event_loop().run_until_complete, once": """
loop = asyncio.get_event_loop()
print(loop.run_until_complete(main()))
loop.close()
""",
    "seed pattern run twice (the loop was closed)": """
for _ in range(2):
    loop = asyncio.get_event_loop()
    print(loop.run_until_complete(main()))
    loop.close()
""",
    "get_event_loop() after asyncio.run()": """
print(asyncio.run(main()))
print(asyncio.get_event_loop().run_until_complete(main()))
""",
    "get_event_loop() in a worker thread": """
import threading
def worker():
    try:
        print(asyncio.get_event_loop().run_until_complete(main()))
    except RuntimeError as e:
        print(f"RuntimeError: {e}")
t = threading.Thread(target=worker); t.start(); t.join()
""",
    "asyncio.run(), twice": """
print(asyncio.run(main()))
print(asyncio.run(main()))
""",
    "asyncio.Runner (3.11+): one loop, several runs": """
with asyncio.Runner() as runner:
    print(runner.run(main()))
    print(runner.run(main()))
""",
}


def old_style_report() -> list[dict[str, str]]:
    """Run each way of starting a loop in a fresh interpreter; what it printed and warned."""
    rows = []
    for case, code in _OLD_STYLE.items():
        script = "import asyncio\nasync def main():\n    return 'ok'\n" + code
        proc = subprocess.run(
            [sys.executable, "-W", "always::DeprecationWarning", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = proc.stderr.splitlines()
        errors = [line for line in lines if re.match(r"\w+(Error|Exception): ", line)]
        warned = {line.split(": ", 1)[-1] for line in lines if "Warning: " in line}
        rows.append(
            {
                "case": case,
                "printed": " | ".join(proc.stdout.splitlines()),
                "raised": errors[-1] if errors else "",
                "warned": "; ".join(sorted(warned)),
            }
        )
    return rows
