"""Several views of one process, read over one fold of its live step rows.

Most views read ``v_liveSteps``, the fold of ETLProcessingSteps and the event log: read one by one, the engine
folds the log once per view. Here the process's rows are folded once, brought here, and bound (as every value
is) in place of ``v_liveSteps`` in each view's own text. The rows are those of the views, since every window
and aggregate of theirs is per process, and every view sees the same moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from .. import schema as S
from ..engine import concurrently
from ..live_views import ALL_VIEWS
from ..sql import fill
from .store import Store

LIVE_STEPS = "v_liveSteps"


def read_process_views(store: Store, project_code: str, process_load: str,
                       reads: Mapping[str, tuple[Sequence[str], Mapping[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each view's rows of the process whose columns equal its filter's non-None values, in its order."""
    scope = {"ProjectCode": project_code, "ProcessLoad": process_load}
    log = store.bound_log()  # the log's rows, read once for every view
    # v_liveSteps has ETLProcessingSteps' columns: binding them so asks the engine for no schema
    live_rows = store.collect(store.table(LIVE_STEPS, log), scope)
    live = store.bind(S.STEPS, live_rows, S.STEPS.column_names)

    def read(view: str) -> list[dict[str, Any]]:
        order_by, where = reads[view]
        text = fill(ALL_VIEWS[view], **{LIVE_STEPS: "{live}"})  # Spark puts the bound rows there
        return store.collect(store.frame(text, log=log, live=live), {**scope, **where}, order_by)

    return concurrently({view: partial(read, view) for view in reads})
