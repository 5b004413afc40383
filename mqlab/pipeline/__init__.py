"""``python -m mqlab pipeline``: market → strategy → exchange → portfolio over the message bus.

This is aioquant's architecture (seed section 4) done right: four services that share nothing
but the broker, no message lost or applied twice, and results identical to the in-process
backtest (:mod:`mqlab.backtest`) on the same data.

* By default all four services run in this process, each with its own connection, on the
  embedded broker (or ``$MQLAB_AMQP_URL``); ``--url amqp://...`` picks a RabbitMQ.
* ``--processes`` runs each service as its own OS process (``python -m mqlab market ...``),
  the same commands that spread the pipeline over several hosts (docs/architecture.md).
* Ctrl-C pauses cleanly: the market stops publishing, everything already published is
  handled, and the next run with the same ``--out`` resumes where this one stopped.

Library use (notebooks, tests): :class:`Pipeline` and :func:`run_pipeline`, which return a
:class:`PipelineResult`. One module each: ``result``, ``runner`` (in-process), ``processes``,
``state`` (resume), ``session`` (one run), ``embedded``, ``topology``, ``latency``, ``cli``;
the two runners meet :class:`~mqlab.pipeline.base.Runner`.
"""

from __future__ import annotations

from mqlab.pipeline.base import SERVICES, Runner
from mqlab.pipeline.cli import add_arguments, run
from mqlab.pipeline.embedded import embedded_broker
from mqlab.pipeline.latency import in_process_latency, plot_latency
from mqlab.pipeline.processes import ProcessPipeline, ServiceFailed
from mqlab.pipeline.result import PipelineResult, fill_rows, injected_table
from mqlab.pipeline.runner import Pipeline
from mqlab.pipeline.session import PipelineInterrupted, run_pipeline
from mqlab.pipeline.state import mark_complete, mark_state, prepare_state, resumable
from mqlab.pipeline.topology import live_topology

__all__ = [
    "SERVICES",
    "Pipeline",
    "PipelineInterrupted",
    "PipelineResult",
    "ProcessPipeline",
    "Runner",
    "ServiceFailed",
    "add_arguments",
    "embedded_broker",
    "fill_rows",
    "in_process_latency",
    "injected_table",
    "live_topology",
    "mark_complete",
    "mark_state",
    "plot_latency",
    "prepare_state",
    "resumable",
    "run",
    "run_pipeline",
]
