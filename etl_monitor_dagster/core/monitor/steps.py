"""A run's steps: generating them, what is pending, and the NQUE/RQUE/DONE/FAIL transitions.

Every transition is one guarded MERGE on the step's key (idempotent: repeating it changes
nothing) followed by its receipts in one blind append.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .. import schema as S
from ..enums import SKIP, EventType, LogLevel, LogType, ParameterType, SourceType, Status
from ..error_class import ErrorClass, classify
from ..errors import NotFoundError, ValidationError
from ..receipts import receipt
from . import statements as Q
from .registration import Registry
from .store import Store, now
from .watermarks import Parameters

MAX_LOG_MESSAGE = 2000
MAX_REMEMBERED = 1000  # started rows kept for their end (a process that never ends its tasks stays bounded)
INITIATION = {"WorkFlowID": 0, "SequenceID": 0, "TaskID": 0}


class StepFacts:
    """What a task reads from its step row (``self.step``): watermark, file name, attempt."""

    step: dict[str, Any]

    @property
    def watermark_value(self) -> str | None:
        return self.step.get("WatermarkValue")

    @property
    def watermark_type(self) -> str | None:
        return self.step.get("WatermarkType")

    @property
    def full_file_name(self) -> str | None:
        return self.step.get("FullFileName")

    @property
    def attempts(self) -> int | None:
        return self.step.get("Attempts")


@dataclass
class TaskGuard(StepFacts):
    """What ``task()`` yields. ``active`` is False when the task must be skipped.

    The body may set ``log_message`` / ``log_code`` to have them recorded with DONE.
    """

    active: bool
    status: str
    step: dict[str, Any] = field(default_factory=dict)
    log_message: str | None = None
    log_code: str | None = None


@dataclass(frozen=True)
class StepKey:
    """One task of one execution; None narrows nothing (any stage, date or attempt)."""

    execution_id: str
    project_code: str
    process_load: str
    task_id: int
    workflow_id: int | None
    sequence_id: int | None = None
    processing_date: date | None = None
    attempts: int | None = None

    def where(self) -> dict[str, Any]:
        return {"ExecutionID": self.execution_id, "ProjectCode": self.project_code,
                "ProcessLoad": self.process_load, "TaskID": self.task_id, "WorkFlowID": self.workflow_id,
                "SequenceID": self.sequence_id, "ProcessingDate": self.processing_date, "Attempts": self.attempts}


class Steps:
    """The rows of ETLProcessingSteps and their transitions."""

    def __init__(self, store: Store, registry: Registry, parameters: Parameters) -> None:
        self.store = store
        self.registry = registry
        self.parameters = parameters
        # The rows this process started, as its START wrote them, until their end: the end of a task
        # started here (a step and its hook, a notebook's start_task/end_task) needs no read. Every
        # transition's MERGE still applies its guard to the row as it is in the table.
        self._started: dict[StepKey, dict[str, Any]] = {}

    # ---------------------------------------------------------------------------- generation and reads

    def generate(self, execution_id: str, project_code: str, process_load: str, day: date | None) -> int:
        """Queue one NQUE row per active task not DONE in its period; returns the rows added."""
        process = self.registry.require_process(project_code, process_load)
        if process["IsActive"] is False:
            raise ValidationError("process_load", process_load, "the process is inactive")
        day = self.parameters.processing_date(project_code, process_load, day)
        args = self.store.engine.bind(
            [{"ExecutionID": execution_id, "ProjectCode": project_code, "ProcessLoad": process_load,
              "ProcessingDate": day, "Now": now(), "By": self.store.updated_by}],
            [("ExecutionID", "STRING"), ("ProjectCode", "STRING"), ("ProcessLoad", "STRING"),
             ("ProcessingDate", "DATE"), ("Now", "TIMESTAMP"), ("By", "STRING")],
        )
        text = self.store.render(Q.NEW_STEPS, year_start=date(day.year, 1, 1), year_end=date(day.year, 12, 31))
        rows = self.store.engine.query(text, src=args)
        return self.store.write(Q.INSERT_NEW_STEPS, S.STEPS, rows) if rows else 0

    def ensure(self, execution_id: str, project_code: str, process_load: str, day: date | None) -> bool:
        """Generate the execution's steps unless it has some already; True if it generated."""
        steps = self.store.spark.table(self.store.names[S.STEPS.name])
        frame = steps.where((steps["ExecutionID"] == execution_id) & (steps["ProjectCode"] == project_code)
                            & (steps["ProcessLoad"] == process_load))
        if day is not None:
            frame = frame.where(frame["ProcessingDate"] == day)
        if self.store.collect(frame.select("ExecutionID").limit(1)):
            return False
        self.generate(execution_id, project_code, process_load, day)
        return True

    def rows(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Step rows with TaskIsActive, WatermarkType and WatermarkValue, in stage order."""
        return self.store.query(Q.STEP_ROWS, where, ["WorkFlowID", "SequenceID", "TaskID"])

    def pending(self, execution_id: str, project_code: str, process_load: str, day: date | None,
                sequence_id: int | None, workflow_id: int | None) -> list[dict[str, Any]]:
        """The runnable rows of the execution's latest attempt (generating its steps first if needed)."""
        self.ensure(execution_id, project_code, process_load, day)
        rows = self.rows({"ExecutionID": execution_id, "ProjectCode": project_code, "ProcessLoad": process_load,
                          "ProcessingDate": day, "SequenceID": sequence_id, "WorkFlowID": workflow_id})
        return [r for r in latest_attempt(rows) if _runnable(r)]

    def pending_one(self, key: StepKey) -> dict[str, Any]:
        """The task's row, with Status 'NULL' when it must be skipped (done, inactive, force-skipped, absent)."""
        rows = self.rows(key.where())
        if not rows and self.ensure(key.execution_id, key.project_code, key.process_load, key.processing_date):
            rows = self.rows(key.where())
        rows = latest_attempt(rows)
        workflows = sorted({r["WorkFlowID"] for r in rows})
        if len(workflows) > 1:
            raise ValidationError("workflow_id", None,
                                  f"task_id {key.task_id} exists in workflows {workflows}: give workflow_id")
        if not rows:
            return {**key.where(), "Status": SKIP, "WatermarkType": None, "WatermarkValue": None}
        return rows[0] if _runnable(rows[0]) else {**rows[0], "Status": SKIP}

    def read(self, key: StepKey) -> dict[str, Any] | None:
        """The task's row of the latest attempt, or None."""
        rows = self.rows(key.where())
        return max(rows, key=lambda r: r["Attempts"]) if rows else None

    def require(self, key: StepKey, hint: str) -> dict[str, Any]:
        row = self.read(key)
        if row is None:
            raise NotFoundError("run step", {"execution_id": key.execution_id, "workflow_id": key.workflow_id,
                                             "sequence_id": key.sequence_id, "task_id": key.task_id}, hint)
        return row

    def to_end(self, key: StepKey, hint: str) -> dict[str, Any]:
        """The row to end: as this process's START wrote it, else read (``end`` checks the former)."""
        return self._started.get(key) or self.require(key, hint)

    # --------------------------------------------------------------------------------------- transitions

    def start(self, key: StepKey, row: dict[str, Any] | None, source_type: SourceType | None,
              source_run_id: str | None, cluster_id: str | None,
              timestamp: datetime | None) -> tuple[dict[str, Any], bool]:
        """Mark the row running (NQUE on attempt 0, RQUE on a retry), inserting it if missing.

        Returns the row as it now is, and whether this call started it (False: it was running already).
        """
        if row is None:
            row = self._new_step(key)
        start = timestamp or now()
        # The same rule as START_STEP's, which applies it to the row's current state.
        retry = row["Attempts"] > 0 or row.get("Status") in (Status.FAIL.value, Status.RQUE.value)
        status = Status.RQUE.value if retry else Status.NQUE.value
        new = self._full(row, Status=status, StartTime=start, EndTime=None, DurationSeconds=None, LogMessage=None,
                         LogType=None, LogCode=None, SourceRunID=source_run_id, ClusterID=cluster_id,
                         SourceType=source_type.value if source_type else row.get("SourceType"))
        if not self._write(Q.START_STEP, new):
            return row, False
        self.store.append_receipts([step_receipt(EventType.TASK_START, new, previous_status=row.get("Status"),
                                                  status=status, start_time=start)])
        started = {**row, **new}
        self._remember(key, started)
        return started, True

    def end(self, row: dict[str, Any], status: Status, log_message: str | None, log_type: LogType | None,
            log_code: str | None, timestamp: datetime | None, error_class: ErrorClass | None = None) -> bool:
        """DONE (advancing its DELTA_DATE watermark) or FAIL (reopening the run when mandatory)."""
        remembered = self._forget(row)
        end = timestamp or now()
        log_type = log_type or (LogType.INFO if status is Status.DONE else LogType.ERROR)
        new = self.closed(row, status, end, log_message, log_type, log_code)
        # A remembered row ends only if the table's row is still the version this process wrote; else
        # another writer moved it since, and it is read and ended as it now is (receipts stay true).
        if not self._write(Q.END_STEP, new, read_updated_on=row["LastUpdatedOn"] if remembered else None):
            fresh = self.read(_key_of(row)) if remembered else None
            return fresh is not None and self.end(fresh, status, log_message, log_type, log_code, timestamp,
                                                  error_class)
        start = row.get("StartTime")
        duration = None if start is None else int((_aware(end) - _aware(start)).total_seconds())
        receipts = [step_receipt(
            EventType.TASK_DONE if status is Status.DONE else EventType.TASK_FAIL, new,
            level=LogLevel.INFO if status is Status.DONE else LogLevel.ERROR,
            previous_status=row.get("Status"), status=status.value, start_time=start, end_time=end,
            duration_seconds=duration, log_type=log_type.value,
            error={"message": new["LogMessage"], "code": log_code} if status is Status.FAIL else None,
            error_class=error_class.value if error_class and status is Status.FAIL else None,
        )]
        if status is Status.DONE and row.get("WatermarkType") == ParameterType.DELTA_DATE.value:
            receipts += self.parameters.move(row["ProjectCode"], row["ProcessLoad"], row["SourceSystemCode"],
                                             {"ValueDateTime": start or end}, previous=row.get("WatermarkValue"),
                                             step=new)
        if status is Status.FAIL and row.get("TaskMandatory") and not is_initiation(row):
            receipts += self.reopen_run(row)
        self.store.append_receipts(receipts)
        return True

    def retry(self, row: dict[str, Any], log_message: str | None, log_code: str | None,
              timestamp: datetime | None, error_class: ErrorClass | None = None) -> bool:
        """A failed try the orchestrator retries in the same execution: RQUE with EndTime and the error."""
        self._forget(row)
        end = timestamp or now()
        new = self.closed(row, Status.RQUE, end, log_message, LogType.WARN, log_code)
        if not self._write(Q.END_RUNNING_STEP, new):
            return False
        self.store.append_receipts([step_receipt(
            EventType.TASK_RETRY, new, level=LogLevel.WARN, previous_status=row.get("Status"),
            status=Status.RQUE.value, start_time=row.get("StartTime"), end_time=end,
            error={"message": new["LogMessage"], "code": new["LogCode"]},
            error_class=error_class.value if error_class else None)])
        return True

    def record_source_run(self, row: dict[str, Any], source_run_id: str | None, cluster_id: str | None,
                          details: dict[str, Any]) -> bool:
        """Where a running task's work runs (a Databricks run id, its cluster); ``details`` go to the receipt."""
        new = self._full(row, SourceRunID=source_run_id or row.get("SourceRunID"),
                         ClusterID=cluster_id or row.get("ClusterID"))
        if not self._write(Q.SOURCE_RUN_STEP, new):
            return False
        for k in self._remembered(row):  # its version is now this one
            self._started[k] = {**self._started[k], **new}
        self.store.append_receipts([step_receipt(EventType.TASK_SOURCE_RUN, new, status=row.get("Status"),
                                                  cluster_id=new["ClusterID"], **details)])
        return True

    def force_skip(self, key: StepKey, skip: bool) -> bool:
        self.ensure(key.execution_id, key.project_code, key.process_load, key.processing_date)
        row = self.require(key, "the task is not part of this execution")
        new = self._full(row, ForceSkip=skip)
        changed = bool(self._write(Q.SET_FORCE_SKIP, new))
        if changed:
            event = EventType.TASK_SKIP if skip else EventType.TASK_UNSKIP
            self.store.append_receipts([step_receipt(event, new, force_skip=skip)])
        return changed

    @contextmanager
    def task(self, key: StepKey, source_type: SourceType | None, source_run_id: str | None,
             cluster_id: str | None, log_message: str | None, log_type: LogType | None,
             log_code: str | None) -> Iterator[TaskGuard]:
        """Skip when the status is 'NULL'; else start, then DONE on a clean exit or FAIL (re-raised)."""
        step = self.pending_one(key)
        guard = TaskGuard(active=step["Status"] != SKIP, status=step["Status"], step=step,
                          log_message=log_message, log_code=log_code)
        if not guard.active:
            yield guard
            return
        step, _ = self.start(key, step, source_type, source_run_id, cluster_id, None)
        guard.step = step
        try:
            yield guard
        except BaseException as exc:
            self.end(step, Status.FAIL, f"{type(exc).__name__}: {exc}", LogType.ERROR,
                     guard.log_code or type(exc).__name__, None, classify(exc))
            raise
        self.end(step, Status.DONE, guard.log_message, log_type, guard.log_code, None)

    # ------------------------------------------------------------------------------------------ helpers

    def _new_step(self, key: StepKey) -> dict[str, Any]:
        """The row ``start`` inserts for a task the execution has no row for."""
        tasks = self.store.query(Q.CATALOGUE_TASK, {"ProjectCode": key.project_code,
                                                    "ProcessLoad": key.process_load,
                                                    "WorkFlowID": key.workflow_id, "TaskID": key.task_id})
        if not tasks:
            raise NotFoundError("task", {"project_code": key.project_code, "process_load": key.process_load,
                                         "workflow_id": key.workflow_id, "task_id": key.task_id},
                                "register it with register_task first")
        if len(tasks) > 1:
            raise ValidationError("workflow_id", key.workflow_id, f"task_id {key.task_id} exists in workflows "
                                  f"{sorted(t['WorkFlowID'] for t in tasks)}: give workflow_id")
        task = tasks[0]
        if key.sequence_id is not None and key.sequence_id != task["SequenceID"]:
            raise ValidationError("sequence_id", key.sequence_id,
                                  f"task {key.task_id} of workflow {task['WorkFlowID']} is registered in stage "
                                  f"{task['SequenceID']}")
        steps = self.store.spark.table(self.store.names[S.STEPS.name])
        run = self.store.collect(steps, {"ExecutionID": key.execution_id, "ProjectCode": key.project_code,
                                         "ProcessLoad": key.process_load, "ProcessingDate": key.processing_date})
        if run:
            day, attempts = run[0]["ProcessingDate"], run[0]["Attempts"]
        else:
            day = self.parameters.processing_date(key.project_code, key.process_load, key.processing_date)
            previous = self.store.collect(steps, {"ProjectCode": key.project_code, "ProcessLoad": key.process_load,
                                                  "ProcessingDate": day})
            attempts = max((r["Attempts"] for r in previous), default=-1) + 1
        return {
            "ProcessingDate": day, "ProjectCode": key.project_code, "ProcessLoad": key.process_load,
            "ExecutionID": key.execution_id, "WorkFlowID": task["WorkFlowID"], "TaskID": key.task_id,
            "SequenceID": task["SequenceID"], "Attempts": attempts if key.attempts is None else key.attempts,
            "Status": None, "TaskName": task["TaskName"], "SequenceCode": task["SequenceCode"],
            "TaskMandatory": task["TaskMandatory"], "SourceSystemCode": task["SourceSystemCode"],
            "FullFileName": _full_file_name(task, day), "InFilePath": task["InFilePath"],
            "OutFilePath": task["OutFilePath"], "ForceSkip": False, "SourceType": task["SourceType"],
            "WatermarkType": task["WatermarkType"], "WatermarkValue": task["WatermarkValue"],
        }

    def _remember(self, key: StepKey, row: dict[str, Any]) -> None:
        self._started.pop(key, None)
        while len(self._started) >= MAX_REMEMBERED:
            self._started.pop(next(iter(self._started)))
        self._started[key] = row

    def _remembered(self, row: dict[str, Any]) -> list[StepKey]:
        return [k for k, r in self._started.items() if all(r.get(c) == row.get(c) for c in S.STEPS.key)]

    def _forget(self, row: dict[str, Any]) -> bool:
        """Drop the remembered start of ``row``'s step; True if ``row`` is that remembered row."""
        keys = self._remembered(row)
        remembered = any(self._started[k] is row for k in keys)
        for k in keys:
            del self._started[k]
        return remembered

    def _full(self, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """The full step row with ``changes``, stamped: what a step MERGE binds."""
        return self.store.stamp({c: row.get(c) for c in S.STEPS.column_names}, **changes)

    def closed(self, row: dict[str, Any], status: Status, end: datetime, log_message: str | None,
                log_type: LogType, log_code: str | None) -> dict[str, Any]:
        """The row as DONE, FAIL or (a try to retry) RQUE: end time and log fields, the message cut to size."""
        return self._full(row, Status=status.value, EndTime=end, LogType=log_type.value, LogCode=log_code,
                          LogMessage=None if log_message is None else log_message[:MAX_LOG_MESSAGE])

    def _write(self, statement: str, new: dict[str, Any], read_updated_on: datetime | None = None) -> int:
        """One step statement on ``new``; ``s.ReadUpdatedOn`` is the version the row was known at, if any."""
        return self.store.write(statement, S.STEPS, [{**new, "ReadUpdatedOn": read_updated_on}],
                                extra=[("ReadUpdatedOn", "TIMESTAMP")], day=new["ProcessingDate"])

    def reopen_run(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        init = self._full(row, **INITIATION, Status=Status.NQUE.value)
        if not self._write(Q.REOPEN_RUN, init):
            return []
        return [step_receipt(EventType.RUN_REOPEN, {**init, "TaskName": None}, status=Status.NQUE.value,
                              reason=f"mandatory task {row['TaskName']!r} failed")]



def _key_of(row: dict[str, Any]) -> StepKey:
    return StepKey(row["ExecutionID"], row["ProjectCode"], row["ProcessLoad"], row["TaskID"], row["WorkFlowID"],
                   row["SequenceID"], row["ProcessingDate"], row["Attempts"])


def step_receipt(event: EventType, step: dict[str, Any], *, level: LogLevel = LogLevel.INFO,
                 **details: Any) -> dict[str, Any]:
    """The receipt of a transition of ``step``; ``row_updated_on`` names the row version it wrote."""
    return receipt(event, project_code=step["ProjectCode"], process_load=step["ProcessLoad"],
                   processing_date=step["ProcessingDate"], execution_id=step["ExecutionID"],
                   step=step, level=level, row_updated_on=step.get("LastUpdatedOn"), **details)


def latest_attempt(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the highest Attempts per (date, project, process)."""
    latest: dict[tuple, int] = {}
    for r in rows:
        k = (r["ProcessingDate"], r["ProjectCode"], r["ProcessLoad"])
        latest[k] = max(latest.get(k, -1), r["Attempts"])
    return [r for r in rows if r["Attempts"] == latest[(r["ProcessingDate"], r["ProjectCode"], r["ProcessLoad"])]]


def is_initiation(row: Mapping[str, Any]) -> bool:
    return row["WorkFlowID"] == 0 and row["TaskID"] == 0


def is_running(row: dict[str, Any]) -> bool:
    """Started, not ended, still queued: what a live task's row looks like."""
    return (row.get("StartTime") is not None and row.get("EndTime") is None
            and row["Status"] in (Status.NQUE.value, Status.RQUE.value))


def _runnable(row: dict[str, Any]) -> bool:
    return row["Status"] != Status.DONE.value and row.get("TaskIsActive") is True and not row["ForceSkip"]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _full_file_name(task: dict[str, Any], day: date) -> str | None:
    pattern = {"D": "%Y%m%d", "M": "%Y%m", "Y": "%Y"}.get(task.get("EffectiveFrequency") or "")
    if not task.get("FileNameMask") or pattern is None:
        return None
    return f"{task['FileNameMask']}_{day.strftime(pattern)}{task.get('FileExtension') or ''}"
