"""Reading a process's status (task rows or one summary row per attempt) and replaying a day."""

from __future__ import annotations

from typing import Any

from .. import schema as S
from ..enums import EventType
from ..enums import Status as StepStatus
from . import statements as Q
from .events import step_event
from .steps import Steps, is_initiation, latest_attempt
from .store import Store


class StatusQueries:
    """``get_status`` and ``status_reset`` over a validated scope (None = any)."""

    def __init__(self, store: Store, steps: Steps) -> None:
        self.store = store
        self.steps = steps

    def resolve_date(self, scope: dict[str, Any]) -> dict[str, Any]:
        """Without a date, the execution's own dates, else the process's processing date (SYSDT or today)."""
        if scope["ProcessingDate"] is None and scope["ExecutionID"] is None:
            scope = {**scope, "ProcessingDate": self.steps.parameters.processing_date(
                scope["ProjectCode"], scope["ProcessLoad"], None)}
        return scope

    def task_rows(self, scope: dict[str, Any]) -> list[dict[str, Any]]:
        """v_taskDetail rows in scope; an execution's rows are those of its latest attempt."""
        rows = self.store.rows("v_taskDetail", self.resolve_date(scope))
        if scope["ExecutionID"] is not None and scope["Attempts"] is None:
            rows = latest_attempt(rows)
        return sorted(rows, key=lambda r: (-r["Attempts"], r["WorkFlowID"], r["SequenceID"], r["TaskID"]))

    def summary_rows(self, scope: dict[str, Any]) -> list[dict[str, Any]]:
        """One row per (date, attempts) in scope, newest first."""
        keep = ("ProjectCode", "ProcessLoad", "ProcessingDate", "ExecutionID", "Attempts")
        scope = self.resolve_date(scope)
        rows = self.store.query(Q.STATUS_SUMMARY, {k: scope[k] for k in keep})
        return sorted(rows, key=lambda r: (r["ProcessingDate"], r["Attempts"]), reverse=True)

    def reset(self, scope: dict[str, Any], remark: str | None) -> int:
        """DONE and FAIL rows in scope go to RQUE and ForceSkip is cleared; with an execution, its
        initiation row goes to RQUE too. Returns the number of rows changed."""
        execution_id = scope["ExecutionID"]
        scope = self.resolve_date(scope)
        if execution_id is None:
            rows = self.store.rows("v_liveSteps", scope)
        else:
            # One read of the whole execution: the rows in scope plus its initiation row.
            narrowing = {k: scope.pop(k) for k in ("WorkFlowID", "SequenceID", "TaskID")}
            rows = [r for r in self.store.rows("v_liveSteps", scope)
                    if is_initiation(r) or all(val is None or r[k] == val for k, val in narrowing.items())]

        def replayed(row: dict[str, Any]) -> str:
            reopen = execution_id is not None and is_initiation(row)
            finished = row["Status"] in (StepStatus.DONE.value, StepStatus.FAIL.value)
            return StepStatus.RQUE.value if finished or reopen else row["Status"]

        targets = [r for r in rows if replayed(r) != r["Status"] or r["ForceSkip"]]
        events = []
        for old in targets:
            new = self.store.stamp({c: old.get(c) for c in S.STEPS.column_names}, Status=replayed(old),
                                   ForceSkip=False, LogMessage=remark or old["LogMessage"])
            if new["Status"] == old["Status"]:  # only its ForceSkip clears: no transition, never races one
                events.append(step_event(EventType.TASK_UNSKIP, new, basis=None, force_skip=False, remark=remark))
                continue
            events.append(step_event(EventType.STATUS_RESET, new, basis=old.get("LastEventID"),
                                     previous_status=old["Status"], status=new["Status"], remark=remark))
        self.store.append(events)
        return len(events)
