"""The pipeline package; its modules are split out of ``runner`` in the next commit."""

from mqlab.pipeline.runner import *  # noqa: F403
from mqlab.pipeline.runner import __all__, _mark, mark_complete, prepare_state  # noqa: F401
