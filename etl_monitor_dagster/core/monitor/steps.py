"""A run's steps: generating them, what is pending, and the NQUE/RQUE/DONE/FAIL transitions.

Every transition is one blind append to ETLEventLog (``events``), following the row its writer read
(``Basis``). Races are decided by the log's order, never by a clock: of the transitions with one basis,
the first not refused is the one that happened; a start that came second is told who holds the step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .. import schema as S
from ..engine import concurrently
from ..enums import SKIP, EventType, LogCode, LogLevel, LogType, ParameterType, SourceType, Status
from ..error_class import ErrorClass, classify
from ..errors import ClaimError, NotFoundError, ValidationError
from ..live_views import TRANSITIONS
from ..receipts import receipt
from ..scrub import scrub
from . import statements as Q
from .events import from_receipt, generated, step_event
from .registration import Registry
from .store import Store, now
from .watermarks import Parameters

MAX_LOG_MESSAGE = 2000
MAX_REMEMBERED = 1000  # started rows kept for their end (a process that never ends its tasks stays bounded)
INITIATION = {"WorkFlowID": 0, "SequenceID": 0, "TaskID": 0}
_KEY_COLUMNS = S.STEPS.key
_ROW_COLUMNS = S.STEPS.column_names
_GENERATION = ("ProjectCode", "ProcessLoad", "ProcessingDate", "Attempts")  # what one generation claims
_CANDIDATE = f"EventType IN ({', '.join(repr(t) for t in TRANSITIONS)}) AND NOT coalesce(Refused, false)"


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
    held_by: str | None = None  # when another writer's start came first: who holds the step


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
    """The step rows as the log's transitions leave them (``v_liveSteps``), and those transitions."""

    def __init__(self, store: Store, registry: Registry, parameters: Parameters) -> None:
        self.store = store
        self.registry = registry
        self.parameters = parameters
        # The rows this process started, as its START left them, until their end: the end of a task started
        # here (a step and its hook, a notebook's start_task/end_task) needs no read. Its basis is that START,
        # so if another writer ended the step meanwhile, the end that came first is the one that happened.
        self._started: dict[StepKey, dict[str, Any]] = {}

    # ---------------------------------------------------------------------------- generation and reads

    def generate(self, execution_id: str, project_code: str, process_load: str,
                 day: date | None) -> list[dict[str, Any]]:
        """Queue one NQUE row per active task not DONE in its period; returns the rows added, as readers
        now see them but without their watermark (``with_watermark``); none when the execution had rows.

        Of two executions generating the same Attempts of one date at once, the first logged is the one
        generated: the other is refused with ClaimError naming it, and none of its rows counts."""
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
        seen = self.store.log_version()  # a rival generation the query below misses is logged after this
        rows = self.store.collect(self.store.frame(
            Q.NEW_STEPS, {"year_start": date(day.year, 1, 1), "year_end": date(day.year, 12, 31)}, src=args))
        if not rows:
            return []
        events = [generated(r) for r in rows]
        self.store.append(events)
        first = self._first_generation(rows[0], seen)
        if first is None:  # the folder cannot tell: the rows as readers see them can
            first = (execution_id if self._run_rows(execution_id, project_code, process_load, day)
                     else self._holder(rows[0]))
        if first != execution_id:
            raise ClaimError(f"execution {execution_id} of {project_code}/{process_load} for {day}", first,
                             f"generated attempt {rows[0]['Attempts']} of that date first; run again for the next")
        return [{**{c: r.get(c) for c in _ROW_COLUMNS}, "TaskIsActive": True, "LastEventID": e["EventID"]}
                for r, e in zip(rows, events, strict=True)]

    def ensure(self, execution_id: str, project_code: str, process_load: str, day: date | None) -> bool:
        """Generate the execution's steps unless it has some already; True if it generated."""
        if self._run_rows(execution_id, project_code, process_load, day):
            return False
        return bool(self.generate(execution_id, project_code, process_load, day))

    def _first_generation(self, row: dict[str, Any], seen: int | None) -> str | None:
        """The execution that generated ``row``'s Attempts of its date first, by the rule of ``v_liveSteps``,
        read from the log's folder; None when the folder cannot tell.

        The generation query saw every generation logged up to version ``seen``, and none of them has that
        Attempts; so the first is the first logged after it, unless a fold removed it from the log since
        (its rows are then in ETLProcessingSteps, which only the engine reads)."""
        logged = None if seen is None else self.store.logged(
            {**{c: row[c] for c in _GENERATION}, "EventType": EventType.STEP_GENERATE.value}, ["ExecutionID"],
            since=seen)
        return logged[0]["ExecutionID"] if logged else None

    def _holder(self, row: dict[str, Any]) -> str:
        """The execution whose rows of ``row``'s Attempts of its date readers see."""
        holders = self.store.rows("v_liveSteps", {c: row[c] for c in _GENERATION})
        return holders[0]["ExecutionID"] if holders else "another execution"

    def _run_rows(self, execution_id: str, project_code: str, process_load: str,
                  day: date | None) -> list[dict[str, Any]]:
        """One row of the execution (as readers see it), or none."""
        frame = self.store.table("v_liveSteps")
        frame = frame.where((frame["ExecutionID"] == execution_id) & (frame["ProjectCode"] == project_code)
                            & (frame["ProcessLoad"] == process_load))
        if day is not None:
            frame = frame.where(frame["ProcessingDate"] == day)
        return self.store.collect(frame.select("ExecutionID", "ProcessingDate", "Attempts").limit(1))

    def rows(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Step rows with TaskIsActive, WatermarkType and WatermarkValue, in stage order: the rows and their
        process's watermarks are two reads sent at once."""
        process = {"ProjectCode": where["ProjectCode"], "ProcessLoad": where["ProcessLoad"]}
        read = concurrently({"rows": lambda: self.store.query(Q.STEP_ROWS, where, ["WorkFlowID", "SequenceID",
                                                                                   "TaskID"]),
                             "watermarks": lambda: self.store.query(Q.WATERMARKS, process)})
        watermarks = {w["ParameterName"]: w for w in read["watermarks"]}
        return [{**r, **_watermark_of(r, watermarks)} for r in read["rows"]]

    def blockers(self, execution_id: str, workflow_id: int | None, sequence_id: int | None) -> list[dict[str, Any]]:
        """The execution's mandatory rows that stop its later stages, as v_mandatoryBlockers shows them."""
        return self.store.query(Q.RUN_BLOCKERS, {"ExecutionID": execution_id, "WorkFlowID": workflow_id,
                                                 "SequenceID": sequence_id})

    def with_watermark(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row as ``generate`` returned it, with its watermark as it is now: what ``rows`` reads for it, and
        no read at all for a task without a watermark."""
        name = row.get("SourceSystemCode")
        found = self.store.query(Q.WATERMARKS, {"ProjectCode": row["ProjectCode"], "ProcessLoad": row["ProcessLoad"],
                                                "ParameterName": name}) if name else []
        return {**row, **_watermark_of(row, {w["ParameterName"]: w for w in found})}

    def pending(self, execution_id: str, project_code: str, process_load: str, day: date | None,
                sequence_id: int | None, workflow_id: int | None) -> list[dict[str, Any]]:
        """The runnable rows of the execution's latest attempt (generating its steps first if needed)."""
        where = {"ExecutionID": execution_id, "ProjectCode": project_code, "ProcessLoad": process_load,
                 "ProcessingDate": day, "SequenceID": sequence_id, "WorkFlowID": workflow_id}
        rows = self.rows(where)
        if not rows and self.ensure(execution_id, project_code, process_load, day):
            rows = self.rows(where)  # read first: an execution with rows is not asked whether it has any
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
        """The row to end: as this process's START left it, else read."""
        return self._started.get(key) or self.require(key, hint)

    def outcomes(self, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Whether each logged transition happened (Accepted) and, by its EventID, the transition that happened
        with the same basis (``Holder``: who holds the step). One read of the steps' transitions."""
        frame = self.store.table("v_stepTransitions").select(
            "EventID", "Accepted", "Basis", "EventType", "LastUpdatedBy", *_KEY_COLUMNS)
        logged = []
        for scope in {(e["ProjectCode"], e["ProcessLoad"], e["ProcessingDate"], e["ExecutionID"]) for e in events}:
            logged += self.store.collect(frame, dict(zip(("ProjectCode", "ProcessLoad", "ProcessingDate",
                                                          "ExecutionID"), scope, strict=True)))
        happened = {(*(r[c] for c in _KEY_COLUMNS), r["Basis"]): r for r in logged if r["Accepted"]}
        by_id = {r["EventID"]: r for r in logged}
        result = {}
        for e in events:
            row = by_id.get(e["EventID"], {"Accepted": False, "Basis": e["Basis"]})
            holder = happened.get((*(e[c] for c in _KEY_COLUMNS), e["Basis"]))
            result[e["EventID"]] = {"Accepted": bool(row["Accepted"]), "Holder": holder}
        return result

    def _first_on_basis(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The transition that happened with ``event``'s basis, or None when a fold took the log's rows.

        The basis was read live, so it happened itself; by the rule of ``v_events`` the transition that
        happened is then the first logged with that basis that is not refused: one read of the log's rows
        for the step, without the fold."""
        where = {**{c: event[c] for c in _KEY_COLUMNS}, "Basis": event["Basis"]}
        logged = self.store.logged(where, ["EventID", "EventType", "LastUpdatedBy", "Refused"])
        if logged is not None:
            rows = [r for r in logged if r["EventType"] in TRANSITIONS and not r["Refused"]]  # as _CANDIDATE
        else:
            frame = self.store.spark.table(self.store.names["ETLEventLog"]).where(_CANDIDATE).selectExpr(
                "EventID", "EventType", "LastUpdatedBy", "_metadata.row_id AS RowID", *_KEY_COLUMNS, "Basis")
            rows = self.store.collect(frame, where, ["RowID"])
        return rows[0] if rows else None

    # --------------------------------------------------------------------------------------- transitions

    def start(self, key: StepKey, row: dict[str, Any] | None, source_type: SourceType | None,
              source_run_id: str | None, cluster_id: str | None,
              timestamp: datetime | None) -> tuple[dict[str, Any], bool]:
        """Claim the step: mark it running (NQUE on attempt 0, RQUE on a retry), adding the row if missing.

        Returns the row as it now is and whether this call started it. False: it was running already, or
        another start came first; the row then names the holder under ``HeldBy``.
        """
        events = []
        if row is None:
            row = self._new_step(key)
            events.append(generated(self._full(row, Status=Status.NQUE.value)))
            row["LastEventID"] = events[0]["EventID"]  # the start follows the row it adds
        elif is_running(row):
            return {**row, "HeldBy": f"{row.get('LastUpdatedBy')} (started {_iso(row.get('StartTime'))})"}, False
        start = timestamp or now()
        retry = row["Attempts"] > 0 or row.get("Status") in (Status.FAIL.value, Status.RQUE.value)
        status = Status.RQUE.value if retry else Status.NQUE.value
        new = self._full(row, Status=status, StartTime=start, EndTime=None, DurationSeconds=None, LogMessage=None,
                         LogType=None, LogCode=None, SourceRunID=source_run_id, ClusterID=cluster_id,
                         SourceType=source_type.value if source_type else row.get("SourceType"))
        event = step_event(EventType.TASK_START, new, basis=row.get("LastEventID"),
                           previous_status=row.get("Status"), status=status, start_time=start)
        self.store.append([*events, event])
        holder = self._first_on_basis(event)
        if holder is None or holder["EventID"] != event["EventID"]:
            now_row = self.read(key) or row
            if holder is None and now_row.get("LastEventID") == event["EventID"]:
                holder = event  # a fold took the log's rows: the row it left holds this start
            else:
                held_by = (f"{holder['LastUpdatedBy']} ({holder['EventType']} {holder['EventID']})" if holder
                           else f"{now_row.get('LastUpdatedBy')} ({now_row.get('LastEventID')})")
                return {**now_row, "HeldBy": held_by}, False
        started = {**row, **new, "LastEventID": event["EventID"]}
        self._remember(key, started)
        return started, True

    def end(self, row: dict[str, Any], status: Status, log_message: str | None, log_type: LogType | None,
            log_code: str | None, timestamp: datetime | None, error_class: ErrorClass | None = None) -> bool:
        """DONE (advancing its DELTA_DATE watermark) or FAIL (reopening the run when mandatory).

        The status the row has already is a no-op. The first end of a start wins: an end of a row already
        DONE or FAIL is logged as refused and changes nothing. Returns whether this end was logged as
        happening (a concurrent end with the same basis may still have come first)."""
        self._forget(row)
        if row.get("Status") == status.value:
            return False
        if log_code == LogCode.RUN_CANCELED and row.get("StartTime") is None:
            return False  # a cancelled run's row that never started stays queued for the next attempt
        end = timestamp or now()
        log_type = log_type or (LogType.INFO if status is Status.DONE else LogType.ERROR)
        refused = row.get("Status") in (Status.DONE.value, Status.FAIL.value)
        start = row.get("StartTime")
        new = self.closed(row, status, end, log_message, log_type, log_code)
        watermark = None
        if (status is Status.DONE and not refused and row.get("SourceSystemCode")
                and row.get("WatermarkType") == ParameterType.DELTA_DATE.value):
            watermark = {"ParameterName": row["SourceSystemCode"], "ValueDateTime": start or end}
        event = step_event(
            EventType.TASK_DONE if status is Status.DONE else EventType.TASK_FAIL, new,
            basis=row.get("LastEventID"), refused=refused, parameter=watermark,
            level=LogLevel.INFO if status is Status.DONE else LogLevel.ERROR,
            previous_status=row.get("Status"), status=status.value, start_time=start, end_time=end,
            duration_seconds=new["DurationSeconds"], log_type=log_type.value,
            error={"message": new["LogMessage"], "code": log_code} if status is Status.FAIL else None,
            error_class=error_class.value if error_class and status is Status.FAIL else None,
        )
        events = [event]
        if watermark is not None:
            events.append(self.parameters.move_receipt(
                row["ProjectCode"], row["ProcessLoad"], row["SourceSystemCode"], watermark["ValueDateTime"],
                previous=row.get("WatermarkValue"), step=new, cause=event["EventID"]))
        if status is Status.FAIL and not refused and reopens_run(row, log_code):
            events.append(reopen_receipt(new, event["EventID"]))
        self.store.append(events)
        return not refused

    def retry(self, row: dict[str, Any], log_message: str | None, log_code: str | None,
              timestamp: datetime | None, error_class: ErrorClass | None = None) -> bool:
        """A failed try the orchestrator retries in the same execution: RQUE with EndTime and the error.
        Only a running row is ended, so a repeated call (or a hook that got there first) does nothing."""
        self._forget(row)
        if not is_running(row):
            return False
        end = timestamp or now()
        new = self.closed(row, Status.RQUE, end, log_message, LogType.WARN, log_code)
        self.store.append([step_event(
            EventType.TASK_RETRY, new, basis=row.get("LastEventID"), level=LogLevel.WARN,
            previous_status=row.get("Status"), status=Status.RQUE.value, start_time=row.get("StartTime"),
            end_time=end, error={"message": new["LogMessage"], "code": new["LogCode"]},
            error_class=error_class.value if error_class else None)])
        return True

    def record_source_run(self, row: dict[str, Any], source_run_id: str | None, cluster_id: str | None,
                          details: dict[str, Any]) -> bool:
        """Where a running task's work runs (a Databricks run id, its cluster); ``details`` go to the receipt."""
        new = self._full(row, SourceRunID=source_run_id or row.get("SourceRunID"),
                         ClusterID=cluster_id or row.get("ClusterID"))
        if not is_running(row) or (new["SourceRunID"] == row.get("SourceRunID")
                                   and new["ClusterID"] == row.get("ClusterID")):
            return False
        # Its basis is the start it belongs to; it is not a transition, so it never races one.
        self.store.append([step_event(EventType.TASK_SOURCE_RUN, new, basis=row.get("LastEventID"),
                                      status=row.get("Status"), cluster_id=new["ClusterID"], **details)])
        for k in self._remembered(row):
            self._started[k] = {**self._started[k], "SourceRunID": new["SourceRunID"], "ClusterID": new["ClusterID"]}
        return True

    def force_skip(self, key: StepKey, skip: bool) -> bool:
        self.ensure(key.execution_id, key.project_code, key.process_load, key.processing_date)
        row = self.require(key, "the task is not part of this execution")
        if row.get("ForceSkip") is skip:
            return False
        new = self._full(row, ForceSkip=skip)
        self.store.append([step_event(EventType.TASK_SKIP if skip else EventType.TASK_UNSKIP, new, basis=None,
                                      force_skip=skip)])
        return True

    @contextmanager
    def task(self, key: StepKey, source_type: SourceType | None, source_run_id: str | None,
             cluster_id: str | None, log_message: str | None, log_type: LogType | None,
             log_code: str | None) -> Iterator[TaskGuard]:
        """Skip when the status is 'NULL', or when another writer holds the step (``held_by``); else start,
        then DONE on a clean exit or FAIL (re-raised)."""
        step = self.pending_one(key)
        guard = TaskGuard(active=step["Status"] != SKIP, status=step["Status"], step=step,
                          log_message=log_message, log_code=log_code)
        if guard.active:
            step, guard.active = self.start(key, step, source_type, source_run_id, cluster_id, None)
            guard.step, guard.held_by = step, step.get("HeldBy")
        if not guard.active:
            yield guard
            return
        try:
            yield guard
        except BaseException as exc:
            self.end(step, Status.FAIL, f"{type(exc).__name__}: {exc}", LogType.ERROR,
                     guard.log_code or type(exc).__name__, None, classify(exc))
            raise
        self.end(step, Status.DONE, guard.log_message, log_type, guard.log_code, None)

    # ------------------------------------------------------------------------------------------ helpers

    def _new_step(self, key: StepKey) -> dict[str, Any]:
        """The row ``start`` adds for a task the execution has no row for."""
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
        steps = self.store.table("v_liveSteps")
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
            "WatermarkType": task["WatermarkType"], "WatermarkValue": task["WatermarkValue"], "LastEventID": None,
        }

    def _remember(self, key: StepKey, row: dict[str, Any]) -> None:
        self._started.pop(key, None)
        while len(self._started) >= MAX_REMEMBERED:
            self._started.pop(next(iter(self._started)))
        self._started[key] = row

    def _remembered(self, row: dict[str, Any]) -> list[StepKey]:
        return [k for k, r in self._started.items() if all(r.get(c) == row.get(c) for c in _KEY_COLUMNS)]

    def _forget(self, row: dict[str, Any]) -> None:
        for k in self._remembered(row):
            del self._started[k]

    def _full(self, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """The full step row with ``changes``, stamped: what a transition logs."""
        return self.store.stamp({c: row.get(c) for c in _ROW_COLUMNS}, **changes)

    def closed(self, row: dict[str, Any], status: Status, end: datetime, log_message: str | None,
               log_type: LogType, log_code: str | None) -> dict[str, Any]:
        """The row as DONE, FAIL or (a try to retry) RQUE: end time, duration and log fields, the message
        scrubbed of credentials and cut to size."""
        start = row.get("StartTime")
        return self._full(row, Status=status.value, EndTime=end, LogType=log_type.value, LogCode=log_code,
                          DurationSeconds=_seconds(end) - _seconds(start or end),
                          LogMessage=None if log_message is None else scrub(log_message)[:MAX_LOG_MESSAGE])


def reopens_run(row: dict[str, Any], log_code: str | None) -> bool:
    """Whether a FAIL of ``row`` puts its run's initiation row back to NQUE: a mandatory task's, not one the
    monitor wrote for a dead or cancelled run (those end the run; v_liveSteps holds the same rule)."""
    return bool(row.get("TaskMandatory")) and not is_initiation(row) and log_code not in set(LogCode)


def reopen_receipt(step: dict[str, Any], cause: str) -> dict[str, Any]:
    """The RUN_REOPEN receipt of a mandatory task's FAIL (``cause``): its run's initiation row is NQUE again."""
    initiation = {**step, **INITIATION, "TaskName": None, "Status": Status.NQUE.value}
    return from_receipt(receipt(EventType.RUN_REOPEN, project_code=step["ProjectCode"],
                                process_load=step["ProcessLoad"], processing_date=step["ProcessingDate"],
                                execution_id=step["ExecutionID"], step=initiation, status=Status.NQUE.value,
                                reason=f"mandatory task {step['TaskName']!r} failed"), basis=cause)


def _watermark_of(row: dict[str, Any], watermarks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """WatermarkType and WatermarkValue of the parameter the row's SourceSystemCode names (None: none)."""
    found = watermarks.get(row.get("SourceSystemCode") or "", {})
    return {"WatermarkType": found.get("WatermarkType"), "WatermarkValue": found.get("WatermarkValue")}


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


def _seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, as SQL's unix_timestamp counts them."""
    return int(_aware(moment).timestamp() // 1)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _aware(moment).isoformat()


def _full_file_name(task: dict[str, Any], day: date) -> str | None:
    pattern = {"D": "%Y%m%d", "M": "%Y%m", "Y": "%Y"}.get(task.get("EffectiveFrequency") or "")
    if not task.get("FileNameMask") or pattern is None:
        return None
    return f"{task['FileNameMask']}_{day.strftime(pattern)}{task.get('FileExtension') or ''}"
