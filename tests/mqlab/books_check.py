"""The pass condition of a pipeline run under faults, read from its result alone.

Shared by the fault tests and the cluster test: whatever was killed, the books balance exactly.
"""

from __future__ import annotations

from mqlab.backtest import BacktestResult
from mqlab.pipeline import PipelineResult, fill_rows


def check_books(result: PipelineResult, reference: BacktestResult, label: str) -> None:
    """0 orders lost or doubled, 0 fills applied twice, the fault-free PnL; prints the counts.

    ``reference`` is the fault-free run (``RunConfig.backtest()``); ``label`` says what was
    done to the run, for the printed line.
    """
    submitted = result.stats["exchange"]["submitted"]
    fill_ids = [row[0] for row in result.fills]
    print(
        f"[{label}] orders={len(submitted)}/{len(reference.orders)} fills={len(fill_ids)} "
        f"applied_twice={len(fill_ids) - len(set(fill_ids))} "
        f"duplicates_dropped_by_bus={result.duplicates_dropped} pnl={result.pnl}"
    )
    assert result.complete
    assert submitted == [o.id for o in reference.orders], "an order was lost or doubled"
    assert result.fills == fill_rows(reference.fills)
    assert result.equity == reference.portfolio.equity()
    assert result.stats["portfolio"]["duplicates"] == 0
