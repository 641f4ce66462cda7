"""Folding ETLEventLog into the tables that readers outside the monitor use.

Readers of the API and the views see every transition at once (``live_views``). The tables
ETLProcessingSteps, ETLconfigParameters and ETLsysLogs trail the log until a fold: at the end of every
Dagster run (the run status sensors) and in every maintenance run. A fold takes the log's highest row
id first, writes what the views show into the three tables (one statement each: the receipts, the
parameters, the steps), then deletes the events up to that row id. Each statement is idempotent, so a
fold cut short anywhere is finished by the next one, and events logged during a fold stay in the log. The
fold at a run's end yields to writers: its deletion, which any append to the log meanwhile makes
conflict, is tried once (``fold``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import statements as Q
from .store import Store


@dataclass(frozen=True)
class FoldReport:
    """What one fold changed: rows of ETLProcessingSteps and ETLconfigParameters, events removed from the log;
    ``removal_left`` when the folded events were left in the log for the next fold (a writer was appending)."""

    steps: int = 0
    parameters: int = 0
    events_removed: int = 0
    removal_left: bool = False


def fold(store: Store, yield_to_writers: bool = False) -> FoldReport:
    """Fold every event logged before the call into the tables; returns what it wrote.

    With ``yield_to_writers`` the folded events are removed from the log only if no writer appends to it
    meanwhile: the removal is tried once, and a conflict leaves them for the next fold. Folded events
    left in the log change nothing a reader sees (every statement of a fold is idempotent), and no writer
    of a running step is made to wait: the fold at a run's end runs beside the next runs."""
    (mark,) = store.engine.query(store.render(Q.LOG_HIGH_MARK))
    if mark["Through"] is None:
        return FoldReport()
    src = store.engine.bind([{"Through": mark["Through"]}], [("Through", "BIGINT")])
    # Receipts first: a transition folded into its row is no longer told apart from the ones it followed.
    store.engine.execute(store.render(Q.FOLD_RECEIPTS), src=src)
    parameters = store.engine.execute(store.render(Q.FOLD_PARAMETERS))
    steps = store.engine.execute(store.render(Q.FOLD_STEPS), src=src)
    delete = store.engine.execute_once if yield_to_writers else store.engine.execute
    removed = delete(store.render(Q.DELETE_FOLDED), src=src)
    return FoldReport(steps, parameters, removed or 0, removed is None)
