"""When runs and writers die: the end of a run that ended unfinished, stale rows, half-written transitions.

A transition writes its step row first, then (DONE) the watermark or (mandatory FAIL) the run's
reopening, then its receipts. Every step receipt names the row version it describes
(``row_updated_on``), so a row whose current version has no receipt is a transition a crash cut
short, and ``repair`` finishes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import schema as S
from ..enums import EventType, LogCode, LogLevel, LogType, ParameterType, Status
from ..error_class import classify_code
from ..errors import ValidationError
from ..scrub import scrub
from . import statements as Q
from .steps import StepKey, Steps, is_initiation, is_running, latest_attempt, step_receipt
from .store import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RUN_MARKERS = (LogCode.RUN_FAILED.value, LogCode.RUN_CANCELED.value)


@dataclass(frozen=True)
class StaleLimits:
    """How long a row may run: its task's SlaSeconds times ``sla_factor``, else its process's maximum
    runtime (``process_seconds`` by (project, process)), else ``default_seconds``."""

    sla_factor: float = 3.0
    default_seconds: int = 6 * 3600
    process_seconds: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def limit(self, row: Mapping[str, Any]) -> tuple[int, str]:
        """The row's limit in seconds and where it comes from."""
        if row.get("SlaSeconds"):
            return int(row["SlaSeconds"] * self.sla_factor), f"SlaSeconds {row['SlaSeconds']} x {self.sla_factor:g}"
        own = self.process_seconds.get((row["ProjectCode"], row["ProcessLoad"]))
        if own:
            return own, "the process's max_runtime_minutes"
        return self.default_seconds, "the default limit"


class Health:
    """Ends what died: lost and cancelled runs, stale rows, transitions cut short."""

    def __init__(self, store: Store, steps: Steps) -> None:
        self.store = store
        self.steps = steps

    def baselines(self, project_code: str, process_load: str,
                  baseline_runs: int = S.BASELINE_RUNS) -> list[dict[str, Any]]:
        """``v_taskHealth``'s rows of one process, over a baseline of ``baseline_runs`` DONE runs."""
        if isinstance(baseline_runs, bool) or not isinstance(baseline_runs, int) or not 1 <= baseline_runs <= 1000:
            raise ValidationError("baseline_runs", baseline_runs, "is a whole number of runs from 1 to 1000")
        return self.store.query(S.task_health(baseline_runs), {"ProjectCode": project_code,
                                                               "ProcessLoad": process_load},
                                order_by=["WorkFlowID", "TaskID"])

    def watermark_moves(self, execution_id: str) -> list[dict[str, Any]]:
        """The WATERMARK_MOVE receipts of one execution, oldest first, as their JSON events."""
        rows = self.store.rows(S.SYSLOGS.name, {"ExecutionID": execution_id,
                                                "OperationName": EventType.WATERMARK_MOVE.value}, order_by=["_ID"])
        return [json.loads(r["Message"]) for r in rows]

    def running(self) -> list[dict[str, Any]]:
        """Every running row (v_taskDetail columns, with SlaSeconds and the seconds it has run)."""
        frame = self.store.spark.table(self.store.names["v_taskDetail"])
        frame = frame.where(frame["StartTime"].isNotNull() & frame["EndTime"].isNull()
                            & frame["Status"].isin(Status.NQUE.value, Status.RQUE.value))
        return self.store.collect(frame.selectExpr(
            "*", "unix_timestamp(current_timestamp()) - unix_timestamp(StartTime) AS RunningSeconds"))

    def end_run(self, execution_id: str, code: LogCode, message: str, at: datetime) -> list[dict[str, Any]]:
        """A run that ended unfinished (``code`` RUN_FAILED or RUN_CANCELED): its running rows become FAIL
        (RUN_LOST, or RUN_CANCELED), its initiation row FAIL with ``code``; rows never started stay
        queued for the next attempt. Returns the rows it ended. ``message`` (the orchestrator's) is scrubbed."""
        lost = LogCode.RUN_CANCELED if code is LogCode.RUN_CANCELED else LogCode.RUN_LOST
        message = scrub(message)
        targets = []
        for row in latest_attempt(self.store.rows(S.STEPS.name, {"ExecutionID": execution_id})):
            if is_initiation(row) and row["Status"] != Status.FAIL.value:
                targets.append((row, code, f"the run ended: {message}", EventType.RUN_END))
            elif is_running(row):
                targets.append((row, lost, f"the run ended while the task ran: {message}", EventType.TASK_FAIL))
        return self._fail(targets, at, Q.END_RUN)

    def fail_stale(self, rows: list[dict[str, Any]], limits: StaleLimits, at: datetime) -> list[dict[str, Any]]:
        """FAIL (STALE) those of ``rows`` (from ``running``) that ran past their limit; the caller has
        excluded the rows of live runs. Returns the rows it ended."""
        targets = []
        for row in rows:
            limit, source = limits.limit(row)
            if row["RunningSeconds"] > limit:
                message = (f"running for {row['RunningSeconds']} s, past its limit of {limit} s ({source}), "
                           "and its execution is not a live run: its writer died")
                targets.append((row, LogCode.STALE, message, EventType.TASK_FAIL))
        return self._fail(targets, at, Q.END_RUNNING_STEP)

    def repair(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Finish the transitions written in [``since``, ``until``) whose receipts never landed: the
        receipt, and for DONE its DELTA_DATE watermark move, for a mandatory FAIL its run's reopening.
        ``until`` lies far enough back that a live writer has appended its receipts. Returns the
        receipts it appended."""
        frame = self.store.spark.sql(self.store.render(Q.STEP_ROWS))
        frame = frame.where((frame["LastUpdatedOn"] >= since) & (frame["LastUpdatedOn"] < until)).selectExpr(
            "*", "unix_micros(LastUpdatedOn) AS _version", "unix_micros(StartTime) AS _start",
            "unix_micros(EndTime) AS _end")
        rows = [r for r in self.store.collect(frame) if _transition(r) is not None]
        if not rows:
            return []
        logs = self.store.spark.table(self.store.names[S.SYSLOGS.name])
        logs = logs.where(logs["ExecutionID"].isin(sorted({r["ExecutionID"] for r in rows}))).select("Message")
        written = {_receipt_key(json.loads(r["Message"])) for r in self.store.collect(logs)}
        receipts: list[dict[str, Any]] = []
        for row in rows:
            if _row_key(row) in written:
                continue
            event = _transition(row)
            assert event is not None
            failed = row["Status"] == Status.FAIL.value
            receipts.append(step_receipt(
                event, {**row, "LastUpdatedOn": _moment(row["_version"])},
                level=LogLevel.ERROR if failed else LogLevel.INFO, status=row["Status"],
                start_time=_moment(row["_start"]), end_time=_moment(row["_end"]), log_type=row["LogType"],
                error={"message": row["LogMessage"], "code": row["LogCode"]} if failed else None, repaired=True))
            receipts += self._finish(row, event)
        self.store.append_receipts(receipts)
        return receipts

    # ------------------------------------------------------------------------------------------ helpers

    def _finish(self, row: dict[str, Any], event: EventType) -> list[dict[str, Any]]:
        """The second commit of a DONE (the watermark) or of a mandatory FAIL (the reopening), if missing."""
        if event is EventType.TASK_DONE and row.get("WatermarkType") == ParameterType.DELTA_DATE.value:
            param = self.steps.parameters.one(row["ProjectCode"], row["ProcessLoad"], row["SourceSystemCode"])
            if param["LastUpdatedOn"] is None or param["LastUpdatedOn"] < row["LastUpdatedOn"]:
                return self.steps.parameters.move(
                    row["ProjectCode"], row["ProcessLoad"], row["SourceSystemCode"],
                    {"ValueDateTime": _moment(row["_start"]) or _moment(row["_end"])},
                    previous=row.get("WatermarkValue"), step=row)
        if (event is EventType.TASK_FAIL and row["TaskMandatory"] and row["LogCode"] not in set(LogCode)
                and not is_initiation(row)):
            initiation = self.steps.read(StepKey(row["ExecutionID"], row["ProjectCode"], row["ProcessLoad"], 0, 0,
                                                 processing_date=row["ProcessingDate"], attempts=row["Attempts"]))
            if (initiation is not None and initiation["LastUpdatedOn"] < row["LastUpdatedOn"]
                    and initiation["LogCode"] not in _RUN_MARKERS):
                return self.steps.reopen_run(row)
        return []

    def _fail(self, targets: list[tuple[dict[str, Any], LogCode, str, EventType]], at: datetime,
              statement: str) -> list[dict[str, Any]]:
        """FAIL each target row with its code and message in one MERGE per date, guarded by ``statement``,
        and append the receipts of the rows it changed (not of those another writer ended first)."""
        if not targets:
            return []
        new = [self.steps.closed(row, Status.FAIL, at, message, LogType.ERROR, code.value)
               for row, code, message, _ in targets]
        changed = 0
        for day in sorted({n["ProcessingDate"] for n in new}):
            changed += self.store.write(statement, S.STEPS, [n for n in new if n["ProcessingDate"] == day], day=day)
        if changed < len(new):
            now = {_key(r): r for r in self.store.rows_in(S.STEPS.name, "ExecutionID", {n["ExecutionID"] for n in new})}
            ours = [now.get(_key(n)) for n in new]
            keep = [r is not None and r["LogCode"] == n["LogCode"] and r["LogMessage"] == n["LogMessage"]
                    for r, n in zip(ours, new, strict=True)]
        else:
            keep = [True] * len(new)
        receipts = [
            step_receipt(event, n, level=LogLevel.ERROR, previous_status=row["Status"], status=Status.FAIL.value,
                         start_time=row.get("StartTime"), end_time=at, log_type=LogType.ERROR.value,
                         error={"message": n["LogMessage"], "code": code.value},
                         error_class=classify_code(code.value).value if event is EventType.TASK_FAIL else None)
            for (row, code, _, event), n, k in zip(targets, new, keep, strict=True) if k
        ]
        self.store.append_receipts(receipts)
        return [n for n, k in zip(new, keep, strict=True) if k]


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["ExecutionID"], row["ProjectCode"], row["ProcessLoad"], row["WorkFlowID"], row["TaskID"],
            row["Attempts"])


def _row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (*_key(row), row["_version"])


def _receipt_key(event: Mapping[str, Any]) -> tuple[Any, ...] | None:
    version = event.get("row_updated_on")
    if version is None:
        return None
    micros = (datetime.fromisoformat(version) - _EPOCH) // timedelta(microseconds=1)
    return (event.get("execution_id"), event.get("project_code"), event.get("process_load"),
            event.get("workflow_id"), event.get("task_id"), event.get("attempt"), micros)


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


def _transition(row: Mapping[str, Any]) -> EventType | None:
    """The transition that wrote the row's current version; None for a row only ever generated."""
    status, started, ended = row["Status"], row["StartTime"] is not None, row["EndTime"] is not None
    if status == Status.DONE.value:
        return EventType.TASK_DONE
    if status == Status.FAIL.value:
        return EventType.RUN_END if is_initiation(row) and row["LogCode"] in _RUN_MARKERS else EventType.TASK_FAIL
    if is_initiation(row) and status == Status.NQUE.value and started:
        return EventType.RUN_REOPEN
    if started and not ended:
        return EventType.TASK_START
    if ended:
        return EventType.TASK_RETRY if row["LogType"] == LogType.WARN.value else EventType.STATUS_RESET
    return EventType.TASK_SKIP if row["ForceSkip"] else None
