"""The tracking semantics of SPEC.md on Delta tables through Spark SQL. Knows nothing of Dagster.

>>> monitor = ETLMonitorFramework(spark, catalog=None, schema="etl")  # doctest: +SKIP
>>> monitor.setup()  # doctest: +SKIP
>>> run = ETLMonitorFramework.generate_execution_id()  # doctest: +SKIP
>>> with monitor.task(run, "CORP", "HR_DAILY", task_id=1, workflow_id=1,
...                   processing_date="2026-04-09") as guard:  # doctest: +SKIP
...     if guard.active:
...         load(since=guard.watermark_value)
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from . import schema as S
from . import validate as v
from .engine import Engine, RetryPolicy, collect
from .enums import (
    SKIP,
    EventType,
    LoadFrequency,
    LogLevel,
    LogType,
    ParameterType,
    SourceType,
    Status,
)
from .errors import NotFoundError, ValidationError
from .receipts import receipt
from .sql import quote_identifier, quote_string, validate_identifier

MAX_LOG_MESSAGE = 2000
SYSDT = "SYSDT"
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
class _StepKey:
    execution_id: str
    project_code: str
    process_load: str
    task_id: int
    workflow_id: int
    sequence_id: int | None = None
    processing_date: date | None = None
    attempts: int | None = None

    def where(self) -> dict[str, Any]:
        return {
            "ExecutionID": self.execution_id,
            "ProjectCode": self.project_code,
            "ProcessLoad": self.process_load,
            "TaskID": self.task_id,
            "WorkFlowID": self.workflow_id,
            "SequenceID": self.sequence_id,
            "ProcessingDate": self.processing_date,
            "Attempts": self.attempts,
        }


def _now() -> datetime:
    return datetime.now(UTC)


class ETLMonitorFramework:
    """The monitor: six Delta tables, six views and the NQUE/RQUE/DONE/FAIL state machine.

    ``spark`` is any SparkSession (classic or Spark Connect). ``catalog`` is a Unity Catalog name
    or None for the session catalog; ``schema`` holds the tables and views.
    """

    def __init__(
        self,
        spark: Any,
        catalog: str | None = None,
        schema: str = "etl",
        *,
        updated_by: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.catalog = None if catalog is None else validate_identifier("catalog", catalog)
        self.schema = validate_identifier("schema", schema)
        self.engine = Engine(spark, retry or RetryPolicy())
        self.updated_by = updated_by or getpass.getuser()
        prefix = (
            f"{quote_identifier(self.catalog)}.{quote_identifier(self.schema)}"
            if self.catalog
            else quote_identifier(self.schema)
        )
        self._prefix = prefix
        self._names = {t.name: f"{prefix}.{quote_identifier(t.name)}" for t in S.TABLES}
        self._names.update({view: f"{prefix}.{quote_identifier(view)}" for view in S.VIEWS})

    # ------------------------------------------------------------------ names and helpers

    def table_name(self, name: str) -> str:
        """The qualified, quoted name of one of the six tables or six views."""
        return self._names[name]

    @property
    def spark(self) -> Any:
        return self.engine.spark

    @staticmethod
    def generate_execution_id() -> str:
        """A new ExecutionID (UUID string)."""
        return str(uuid.uuid4())

    def _sql(self, text: str) -> str:
        return text.format(**self._names)

    def _bind(self, table: S.Table, rows: list[dict[str, Any]], columns: list[str] | None = None):
        types = dict(table.columns)
        names = columns or [c for c in table.column_names if c != "_ID"]
        return self.engine.bind(rows, [(c, types[c].split(" ")[0]) for c in names])

    def _audit(self) -> dict[str, Any]:
        now = _now()
        return {"CreatedOn": now, "CreatedBy": self.updated_by,
                "LastUpdatedOn": now, "LastUpdatedBy": self.updated_by}

    def _append_receipts(self, receipts: list[dict[str, Any]]) -> None:
        if receipts:
            columns = [c for c in S.SYSLOGS.column_names if c != "_ID"]
            self.engine.execute(
                self._sql(
                    f"INSERT INTO {{ETLsysLogs}} ({', '.join(columns)}) "
                    f"SELECT {', '.join(columns)} FROM {{{{src}}}}"
                ),
                src=self._bind(S.SYSLOGS, receipts),
            )

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        """Create (or migrate) the six tables and six views and seed the stages. Idempotent."""
        self.engine.execute(f"CREATE SCHEMA IF NOT EXISTS {self._prefix}")
        for table in S.TABLES:
            self._create_or_migrate(table)
        self.create_views()
        seed = [
            {"SequenceID": sid, "SequenceCode": code, "SequenceName": name,
             "SequenceDescription": desc, "SortOrder": sid, "IsActive": True}
            for sid, code, name, desc in S.SEEDED_STAGES
        ]
        self.engine.execute(
            self._sql(
                "MERGE INTO {ETLconfigSequence} t USING {{src}} s ON t.SequenceID = s.SequenceID "
                "WHEN NOT MATCHED THEN INSERT *"
            ),
            src=self._bind(S.SEQUENCE, seed),
        )

    def create_views(self) -> None:
        """(Re)create the six monitoring views from their current definitions."""
        for view, body in S.VIEWS.items():
            self.engine.execute(f"CREATE OR REPLACE VIEW {self._names[view]} AS {self._sql(body)}")

    def read_view(self, view: str, order_by: list[str] | None = None, **equals: Any) -> list[dict[str, Any]]:
        """Rows of one monitoring view whose columns equal the given values (None = any).

        >>> monitor.read_view("v_mandatoryBlockers", ExecutionID=run_id, SequenceID=2)  # doctest: +SKIP
        """
        if view not in S.VIEWS:
            raise ValidationError("view", view, f"is not one of the monitoring views {sorted(S.VIEWS)}")
        frame = self.spark.table(self._names[view])
        unknown = sorted((set(equals) | set(order_by or ())) - set(frame.columns))
        if unknown:
            raise ValidationError("columns", unknown, f"{view} has the columns {frame.columns}")
        return collect(self.engine, frame, equals, order_by or [])

    def _create_or_migrate(self, table: S.Table) -> None:
        name = self._names[table.name]
        if not self.engine.table_exists(name):
            columns = ",\n  ".join(f"{quote_identifier(c)} {t}" for c, t in table.columns)
            ddl = f"CREATE TABLE IF NOT EXISTS {name} (\n  {columns}\n) USING DELTA"
            if table.partitioned_by:
                ddl += f" PARTITIONED BY ({', '.join(table.partitioned_by)})"
            ddl += f" COMMENT {quote_string(table.comment)}"
            if table.properties:
                props = ", ".join(f"{quote_string(k)} = {quote_string(v)}" for k, v in table.properties)
                ddl += f" TBLPROPERTIES ({props})"
            self.engine.execute(ddl)
            return
        existing = {c.lower() for c in self.engine.columns(name)}
        missing = [(c, t) for c, t in table.columns if c.lower() not in existing]
        if missing:
            added = ", ".join(f"{quote_identifier(c)} {t.split(' ')[0]}" for c, t in missing)
            self.engine.execute(f"ALTER TABLE {name} ADD COLUMNS ({added})")

    # ------------------------------------------------------------------ registration

    def register_process(
        self,
        project_code: str,
        process_load: str,
        name: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        load_frequency: str | LoadFrequency = LoadFrequency.DAILY,
        is_active: bool = True,
    ) -> None:
        """Insert or update a process in ETLconfigProcess (keyed on ProjectCode, ProcessLoad)."""
        self.register_many(processes=[_arguments(locals())])

    def register_task(
        self,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int,
        task_name: str,
        source_type: str | SourceType,
        source_identifier: str | None = None,
        source_system_code: str | None = None,
        task_description: str | None = None,
        load_frequency: str | LoadFrequency | None = None,
        task_mandatory: bool = False,
        file_name_mask: str | None = None,
        file_extension: str | None = None,
        in_file_path: str | None = None,
        out_file_path: str | None = None,
        sla_seconds: int | None = None,
        is_active: bool = True,
    ) -> None:
        """Insert or update a task in ETLconfigTasks (keyed on project, process, WorkFlowID, TaskID)."""
        self.register_many(tasks=[_arguments(locals())])

    def register_parameter(
        self,
        project_code: str,
        process_load: str,
        parameter_name: str,
        parameter_type: str | ParameterType,
        description: str | None = None,
        value_datetime: datetime | date | str | None = None,
        value_int: int | None = None,
        value_bit: bool | None = None,
    ) -> None:
        """Insert a parameter, or update only its description: values never move through here."""
        self.register_many(parameters=[_arguments(locals())])

    def register_many(
        self,
        processes: Iterable[dict[str, Any]] = (),
        tasks: Iterable[dict[str, Any]] = (),
        parameters: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Register many entries with one MERGE per table and the checks of ``register_*``.

        Each entry is a dict of that method's keyword arguments. Every entry is checked before
        anything is written; one bad entry refuses the whole batch.

        >>> monitor.register_many(  # doctest: +SKIP
        ...     processes=[{"project_code": "CORP", "process_load": "HR", "load_frequency": "D"}],
        ...     tasks=[{"project_code": "CORP", "process_load": "HR", "task_id": 1, "workflow_id": 1,
        ...             "sequence_id": 2, "task_name": "Load", "source_type": "PYTHON"}])
        """
        process_rows = [_build("processes", i, _process_row, e) for i, e in enumerate(processes)]
        task_rows = [_build("tasks", i, _task_row, e) for i, e in enumerate(tasks)]
        parameter_rows = [_build("parameters", i, _parameter_row, e) for i, e in enumerate(parameters)]
        for table, rows in ((S.PROCESS, process_rows), (S.TASKS, task_rows), (S.PARAMETERS, parameter_rows)):
            _refuse_duplicate_keys(table, rows)
        owners = {(r["ProjectCode"], r["ProcessLoad"]) for r in task_rows + parameter_rows}
        missing = owners - {(r["ProjectCode"], r["ProcessLoad"]) for r in process_rows} - self._known_processes(owners)
        if missing:
            project_code, process_load = sorted(missing)[0]
            raise NotFoundError("process", {"project_code": project_code, "process_load": process_load},
                                "register it with register_process first")
        if task_rows:
            stages = {r["SequenceID"] for r in collect(self.engine, self.spark.table(self._names["ETLconfigSequence"]))}
            for row in task_rows:
                if row["SequenceID"] not in stages:
                    raise NotFoundError("stage", {"sequence_id": row["SequenceID"]},
                                        "seeded stages are 0-6; add custom stages (>= 10) to "
                                        "ETLconfigSequence first")
        if parameter_rows:
            known = {(r["ProjectCode"], r["ProcessLoad"], r["ParameterName"]): r["ParameterType"]
                     for r in self._parameters_of({(r["ProjectCode"], r["ProcessLoad"]) for r in parameter_rows})}
            for row in parameter_rows:
                registered = known.get((row["ProjectCode"], row["ProcessLoad"], row["ParameterName"]))
                if registered not in (None, row["ParameterType"]):
                    raise ValidationError("parameter_type", row["ParameterType"],
                                          f"parameter {row['ParameterName']!r} is already registered as {registered}")
        audit = self._audit()
        for table, rows, descriptive in (
            (S.PROCESS, process_rows, ["ProcessName", "ProcessDescription", "ProcessOwner", "LoadFrequency",
                                       "IsActive"]),
            (S.TASKS, task_rows, [c for c in S.TASKS.column_names if c not in S.TASKS.key and c not in dict(S.AUDIT)]),
            (S.PARAMETERS, parameter_rows, ["ParameterDescription"]),
        ):
            if rows:
                self._upsert(table, [{**row, **audit} for row in rows], descriptive)

    def _known_processes(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        if not keys:
            return set()
        frame = self.spark.table(self._names["ETLconfigProcess"])
        frame = frame.where(frame["ProjectCode"].isin(sorted({p for p, _ in keys})))
        return {(r["ProjectCode"], r["ProcessLoad"]) for r in collect(self.engine, frame)}

    def _parameters_of(self, processes: set[tuple[str, str]]) -> list[dict[str, Any]]:
        frame = self.spark.table(self._names["ETLconfigParameters"])
        frame = frame.where(frame["ProjectCode"].isin(sorted({p for p, _ in processes})))
        return [r for r in collect(self.engine, frame) if (r["ProjectCode"], r["ProcessLoad"]) in processes]

    def _upsert(self, table: S.Table, rows: list[dict[str, Any]], descriptive: list[str]) -> None:
        """MERGE on the table's key: insert, or update the descriptive columns that changed."""
        on = " AND ".join(f"t.{c} = s.{c}" for c in table.key)
        changed = " OR ".join(f"NOT (t.{c} <=> coalesce(s.{c}, t.{c}))" for c in descriptive)
        sets = ", ".join(f"t.{c} = coalesce(s.{c}, t.{c})" for c in descriptive)
        self.engine.execute(
            f"MERGE INTO {self._names[table.name]} t USING {{src}} s ON {on} "
            f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {sets}, "
            "t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy "
            "WHEN NOT MATCHED THEN INSERT *",
            src=self._bind(table, rows),
        )

    def _require_process(self, project_code: str, process_load: str) -> dict[str, Any]:
        rows = collect(self.engine, self.spark.table(self._names["ETLconfigProcess"]),
                       {"ProjectCode": project_code, "ProcessLoad": process_load})
        if not rows:
            raise NotFoundError("process", {"project_code": project_code,
                                            "process_load": process_load},
                                "register it with register_process first")
        return rows[0]

    def _parameters(self, project_code: str, process_load: str,
                    name: str | None = None) -> list[dict[str, Any]]:
        return collect(self.engine, self.spark.table(self._names["ETLconfigParameters"]),
                       {"ProjectCode": project_code, "ProcessLoad": process_load,
                        "ParameterName": name})

    # ------------------------------------------------------------------ a run

    def generate_execution_steps(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        processing_date: date | str | None = None,
    ) -> int:
        """Queue one NQUE row per active task not already DONE in its period; returns rows added.

        Does nothing when the execution already has rows. Attempts is one more than the highest
        Attempts of this date and process, or 0.
        """
        execution_id = v.text("execution_id", execution_id)
        project_code = v.text("project_code", project_code)
        process_load = v.text("process_load", process_load)
        process = self._require_process(project_code, process_load)
        if not process["IsActive"]:
            raise ValidationError("process_load", process_load, "the process is inactive")
        day = self._processing_date(project_code, process_load, processing_date)
        args = self.engine.bind(
            [{"ExecutionID": execution_id, "ProjectCode": project_code,
              "ProcessLoad": process_load, "ProcessingDate": day,
              "Now": _now(), "By": self.updated_by}],
            [("ExecutionID", "STRING"), ("ProjectCode", "STRING"), ("ProcessLoad", "STRING"),
             ("ProcessingDate", "DATE"), ("Now", "TIMESTAMP"), ("By", "STRING")],
        )
        text = (_NEW_STEPS.replace("<YEAR_START>", _date_literal(date(day.year, 1, 1)))
                .replace("<YEAR_END>", _date_literal(date(day.year, 12, 31))))
        rows = self.engine.query(self._sql(text), src=args)
        if not rows:
            return 0
        return self.engine.execute(self._sql(_INSERT_NEW_STEPS), src=self._bind(S.STEPS, rows))

    def get_pending_tasks(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        processing_date: date | str | None = None,
        sequence_id: int | None = None,
        workflow_id: int | None = None,
        task_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runnable steps of the execution (generating them first if it has none).

        Without ``task_id``: rows not DONE, active and not force-skipped, ordered by WorkFlowID,
        SequenceID, TaskID, each with WatermarkType and WatermarkValue. With ``task_id``: exactly
        one row, whose Status is 'NULL' when the task must be skipped.
        """
        execution_id = v.text("execution_id", execution_id)
        project_code = v.text("project_code", project_code)
        process_load = v.text("process_load", process_load)
        processing_date = v.optional_date("processing_date", processing_date)
        sequence_id = v.optional_integer("sequence_id", sequence_id)
        workflow_id = v.optional_integer("workflow_id", workflow_id)
        if task_id is not None:
            key = _StepKey(execution_id, project_code, process_load,
                           v.integer("task_id", task_id), workflow_id, sequence_id,
                           processing_date)
            return [self._pending_step(key)]
        self._ensure_steps(execution_id, project_code, process_load, processing_date)
        rows = self._steps({"ExecutionID": execution_id, "ProjectCode": project_code,
                            "ProcessLoad": process_load, "ProcessingDate": processing_date,
                            "SequenceID": sequence_id, "WorkFlowID": workflow_id})
        rows = _latest_attempt(rows)
        return [r for r in rows if _runnable(r)]

    def task_status(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int | None = None,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
    ) -> str:
        """The task's Status in this execution, or 'NULL' when it must be skipped."""
        return self.get_pending_tasks(execution_id, project_code, process_load, processing_date,
                                      sequence_id, workflow_id, task_id)[0]["Status"]

    def _pending_step(self, key: _StepKey) -> dict[str, Any]:
        rows = self._steps(key.where())
        if not rows and self._ensure_steps(key.execution_id, key.project_code, key.process_load,
                                           key.processing_date):
            rows = self._steps(key.where())
        rows = _latest_attempt(rows)
        workflows = sorted({r["WorkFlowID"] for r in rows})
        if len(workflows) > 1:
            raise ValidationError("workflow_id", None,
                                  f"task_id {key.task_id} exists in workflows {workflows}: "
                                  "give workflow_id")
        if not rows:
            return {**key.where(), "Status": SKIP, "WatermarkType": None, "WatermarkValue": None}
        row = rows[0]
        return row if _runnable(row) else {**row, "Status": SKIP}

    def _ensure_steps(self, execution_id: str, project_code: str, process_load: str,
                      processing_date: date | None) -> bool:
        """Generate the execution's steps unless it has some already; True if it generated."""
        steps = self.spark.table(self._names["ETLProcessingSteps"])
        frame = steps.where((steps["ExecutionID"] == execution_id)
                            & (steps["ProjectCode"] == project_code)
                            & (steps["ProcessLoad"] == process_load))
        if processing_date is not None:
            frame = frame.where(frame["ProcessingDate"] == processing_date)
        if collect(self.engine, frame.select("ExecutionID").limit(1)):
            return False
        self.generate_execution_steps(execution_id, project_code, process_load, processing_date)
        return True

    def _steps(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        return collect(self.engine, self.spark.sql(self._sql(_STEP_ROWS)), where,
                       ["WorkFlowID", "SequenceID", "TaskID"])

    # ------------------------------------------------------------------ task transitions

    def _key(self, execution_id, project_code, process_load, task_id, workflow_id,
             sequence_id=None, processing_date=None, attempts=None) -> _StepKey:
        return _StepKey(
            v.text("execution_id", execution_id),
            v.text("project_code", project_code),
            v.text("process_load", process_load),
            v.integer("task_id", task_id),
            v.integer("workflow_id", workflow_id),
            v.optional_integer("sequence_id", sequence_id),
            v.optional_date("processing_date", processing_date),
            v.optional_integer("attempts", attempts),
        )

    def _read_step(self, key: _StepKey) -> dict[str, Any] | None:
        rows = self._steps(key.where())
        return max(rows, key=lambda r: r["Attempts"]) if rows else None

    def start_task(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        attempts: int | None = None,
        source_type: str | SourceType | None = None,
        source_run_id: str | None = None,
        cluster_id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> bool:
        """Mark the task running (NQUE on attempt 0, RQUE on a retry); insert its row if missing.

        Returns False when the row was already running (the call is then a no-op).
        """
        key = self._key(execution_id, project_code, process_load, task_id, workflow_id,
                        sequence_id, processing_date, attempts)
        started = self._start(key, self._read_step(key),
                              v.optional_member("source_type", source_type, SourceType),
                              v.optional_text("source_run_id", source_run_id),
                              v.optional_text("cluster_id", cluster_id),
                              v.optional_timestamp("timestamp", timestamp))
        return started is not None

    def _start(self, key: _StepKey, row: dict[str, Any] | None, source_type: SourceType | None,
               source_run_id: str | None, cluster_id: str | None,
               timestamp: datetime | None) -> dict[str, Any] | None:
        if row is None:
            row = self._new_step(key)
        start = timestamp or _now()
        # The same rule as _START_STEP's, which applies it to the row's current state.
        retry = row["Attempts"] > 0 or row.get("Status") in (Status.FAIL.value, Status.RQUE.value)
        status = Status.RQUE.value if retry else Status.NQUE.value
        new = self._updated(
            row, Status=status, StartTime=start, EndTime=None, DurationSeconds=None,
            LogMessage=None, LogType=None, LogCode=None,
            SourceType=source_type.value if source_type else row.get("SourceType"),
            SourceRunID=source_run_id, ClusterID=cluster_id,
        )
        if not self._write_step(_START_STEP, new):
            return None
        self._append_receipts([self._step_receipt(EventType.TASK_START, new,
                                                  previous_status=row.get("Status"),
                                                  status=status, start_time=start)])
        return {**row, **new}

    def _new_step(self, key: _StepKey) -> dict[str, Any]:
        """The row ``start_task`` inserts for a task the execution has no row for."""
        tasks = collect(self.engine, self.spark.sql(self._sql(_CATALOGUE_TASK)),
                        {"ProjectCode": key.project_code, "ProcessLoad": key.process_load,
                         "WorkFlowID": key.workflow_id, "TaskID": key.task_id})
        if not tasks:
            raise NotFoundError("task", {"project_code": key.project_code,
                                         "process_load": key.process_load,
                                         "workflow_id": key.workflow_id, "task_id": key.task_id},
                                "register it with register_task first")
        task = tasks[0]
        run = collect(self.engine, self.spark.table(self._names["ETLProcessingSteps"]),
                      {"ExecutionID": key.execution_id, "ProjectCode": key.project_code,
                       "ProcessLoad": key.process_load,
                       "ProcessingDate": key.processing_date})
        if run:
            day, attempts = run[0]["ProcessingDate"], run[0]["Attempts"]
        else:
            day = self._processing_date(key.project_code, key.process_load, key.processing_date)
            previous = collect(self.engine, self.spark.table(self._names["ETLProcessingSteps"]),
                               {"ProjectCode": key.project_code, "ProcessLoad": key.process_load,
                                "ProcessingDate": day})
            attempts = max((r["Attempts"] for r in previous), default=-1) + 1
        if key.attempts is not None:
            attempts = key.attempts
        return {
            "ProcessingDate": day, "ProjectCode": key.project_code,
            "ProcessLoad": key.process_load, "ExecutionID": key.execution_id,
            "WorkFlowID": key.workflow_id, "TaskID": key.task_id,
            "SequenceID": task["SequenceID"], "Attempts": attempts, "Status": None,
            "TaskName": task["TaskName"], "SequenceCode": task["SequenceCode"],
            "TaskMandatory": task["TaskMandatory"], "SourceSystemCode": task["SourceSystemCode"],
            "FullFileName": _full_file_name(task, day), "InFilePath": task["InFilePath"],
            "OutFilePath": task["OutFilePath"], "ForceSkip": False,
            "SourceType": task["SourceType"], "WatermarkType": task["WatermarkType"],
            "WatermarkValue": task["WatermarkValue"],
        }

    def end_task(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        attempts: int | None = None,
        status: str | Status = Status.DONE,
        log_message: str | None = None,
        log_type: str | LogType | None = None,
        log_code: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> bool:
        """Record DONE or FAIL with EndTime, DurationSeconds and the log fields.

        DONE advances the DELTA_DATE watermark named by SourceSystemCode to the task's StartTime;
        FAIL of a mandatory task puts the run's initiation row back to NQUE. Returns False when
        the row already had this status (the call is then a no-op).
        """
        key = self._key(execution_id, project_code, process_load, task_id, workflow_id,
                        sequence_id, processing_date, attempts)
        final = v.member("status", status, Status)
        if final not in (Status.DONE, Status.FAIL):
            raise ValidationError("status", final.value, "end_task records DONE or FAIL")
        row = self._require_step(key, "call start_task or get_pending_tasks first")
        return self._end(row, final,
                         v.optional_text("log_message", log_message, max_length=10**9),
                         v.optional_member("log_type", log_type, LogType),
                         v.optional_text("log_code", log_code),
                         v.optional_timestamp("timestamp", timestamp))

    def fail_task(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        attempts: int | None = None,
        log_message: str | None = None,
        log_code: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> bool:
        """``end_task`` with FAIL and LogType ERROR (the message is cut to 2000 characters)."""
        return self.end_task(execution_id, project_code, process_load, task_id, workflow_id,
                             sequence_id, processing_date, attempts, Status.FAIL, log_message,
                             LogType.ERROR, log_code, timestamp)

    def retry_task(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        attempts: int | None = None,
        log_message: str | None = None,
        log_code: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> bool:
        """Record a failed try that will be retried in the same execution: Status RQUE with EndTime,
        LogType WARN and the error. Unlike FAIL it does not reopen the run; the next ``start_task``
        starts the retry. Returns False when the row was not running (the call is then a no-op).
        """
        key = self._key(execution_id, project_code, process_load, task_id, workflow_id,
                        sequence_id, processing_date, attempts)
        row = self._require_step(key, "call start_task first")
        end = v.optional_timestamp("timestamp", timestamp) or _now()
        new = self._closed(row, Status.RQUE, end, v.optional_text("log_message", log_message, max_length=10**9),
                           LogType.WARN, v.optional_text("log_code", log_code))
        if not self._write_step(_RETRY_STEP, new):
            return False
        self._append_receipts([self._step_receipt(
            EventType.TASK_RETRY, new, level=LogLevel.WARN, previous_status=row.get("Status"),
            status=Status.RQUE.value, start_time=row.get("StartTime"), end_time=end,
            error={"message": new["LogMessage"], "code": new["LogCode"]})])
        return True

    def record_source_run(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        attempts: int | None = None,
        source_run_id: str | None = None,
        cluster_id: str | None = None,
        **details: Any,
    ) -> bool:
        """Record where a running task's work runs once it is known (a Databricks run id, its cluster).

        ``details`` (e.g. the run page URL) go into the receipt only. Returns False when nothing
        changed or the row is not running.
        """
        key = self._key(execution_id, project_code, process_load, task_id, workflow_id,
                        sequence_id, processing_date, attempts)
        row = self._require_step(key, "call start_task first")
        new = self._updated(row, SourceRunID=v.optional_text("source_run_id", source_run_id) or row.get("SourceRunID"),
                            ClusterID=v.optional_text("cluster_id", cluster_id) or row.get("ClusterID"))
        if not self._write_step(_SOURCE_RUN_STEP, new):
            return False
        self._append_receipts([self._step_receipt(EventType.TASK_SOURCE_RUN, new, status=row.get("Status"),
                                                  cluster_id=new["ClusterID"], **details)])
        return True

    def _require_step(self, key: _StepKey, hint: str) -> dict[str, Any]:
        row = self._read_step(key)
        if row is None:
            raise NotFoundError("run step", {"execution_id": key.execution_id, "workflow_id": key.workflow_id,
                                             "task_id": key.task_id}, hint)
        return row

    def _updated(self, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """The full step row with ``changes``, stamped LastUpdatedOn/By: what a step MERGE binds."""
        return {**{c: row.get(c) for c in S.STEPS.column_names}, **changes,
                "LastUpdatedOn": _now(), "LastUpdatedBy": self.updated_by}

    def _closed(self, row: dict[str, Any], status: Status, end: datetime, log_message: str | None,
                log_type: LogType, log_code: str | None) -> dict[str, Any]:
        """The row as DONE, FAIL or (a try to retry) RQUE: end time and log fields, the message cut to size."""
        return self._updated(row, Status=status.value, EndTime=end, LogType=log_type.value, LogCode=log_code,
                             LogMessage=None if log_message is None else log_message[:MAX_LOG_MESSAGE])

    def _write_step(self, statement: str, new: dict[str, Any]) -> bool:
        """Run one of the step MERGEs below with ``new`` bound as its source; whether a row changed."""
        return bool(self.engine.execute(
            self._sql(statement.replace("<DAY>", _date_literal(new["ProcessingDate"]))),
            src=self._bind(S.STEPS, [new])))

    def _end(self, row: dict[str, Any], status: Status, log_message: str | None,
             log_type: LogType | None, log_code: str | None,
             timestamp: datetime | None) -> bool:
        end = timestamp or _now()
        log_type = log_type or (LogType.INFO if status is Status.DONE else LogType.ERROR)
        new = self._closed(row, status, end, log_message, log_type, log_code)
        if not self._write_step(_END_STEP, new):
            return False
        start = row.get("StartTime")
        duration = None if start is None else int((_aware(end) - _aware(start)).total_seconds())
        event = EventType.TASK_DONE if status is Status.DONE else EventType.TASK_FAIL
        receipts = [self._step_receipt(
            event, new, level=LogLevel.INFO if status is Status.DONE else LogLevel.ERROR,
            previous_status=row.get("Status"), status=status.value, start_time=start,
            end_time=end, duration_seconds=duration, log_type=log_type.value,
            error={"message": new["LogMessage"], "code": log_code} if status is Status.FAIL else None,
        )]
        if status is Status.DONE and row.get("WatermarkType") == ParameterType.DELTA_DATE.value:
            receipts += self._set_parameter(
                row["ProjectCode"], row["ProcessLoad"], row["SourceSystemCode"],
                {"ValueDateTime": start or end}, previous=row.get("WatermarkValue"), step=new)
        if status is Status.FAIL and row.get("TaskMandatory") and not _is_initiation(row):
            receipts += self._reopen_run(row)
        self._append_receipts(receipts)
        return True

    def _reopen_run(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        init = self._updated(row, **INITIATION, Status=Status.NQUE.value)
        if not self._write_step(_REOPEN_RUN, init):
            return []
        return [self._step_receipt(EventType.RUN_REOPEN, {**init, "TaskName": None},
                                   status=Status.NQUE.value,
                                   reason=f"mandatory task {row['TaskName']!r} failed")]

    def _step_receipt(self, event: EventType, step: dict[str, Any], *,
                      level: LogLevel = LogLevel.INFO, **details: Any) -> dict[str, Any]:
        return receipt(event, project_code=step["ProjectCode"], process_load=step["ProcessLoad"],
                       processing_date=step["ProcessingDate"], execution_id=step["ExecutionID"],
                       step=step, level=level, **details)

    @contextmanager
    def task(
        self,
        execution_id: str,
        project_code: str,
        process_load: str,
        task_id: int,
        workflow_id: int,
        sequence_id: int | None = None,
        processing_date: date | str | None = None,
        source_type: str | SourceType | None = None,
        source_run_id: str | None = None,
        cluster_id: str | None = None,
    ) -> Iterator[TaskGuard]:
        """Run a block as the task: skipped when its status is 'NULL', else started, then ended
        DONE on a clean exit or FAIL (with the exception text) on an exception, which is re-raised.
        """
        key = self._key(execution_id, project_code, process_load, task_id, workflow_id,
                        sequence_id, processing_date)
        source_type = v.optional_member("source_type", source_type, SourceType)
        source_run_id = v.optional_text("source_run_id", source_run_id)
        cluster_id = v.optional_text("cluster_id", cluster_id)
        step = self._pending_step(key)
        guard = TaskGuard(active=step["Status"] != SKIP, status=step["Status"], step=step)
        if not guard.active:
            yield guard
            return
        started = self._start(key, step, source_type, source_run_id, cluster_id, None)
        step = started or self._read_step(key) or step
        guard.step = step
        try:
            yield guard
        except BaseException as exc:
            self._end(step, Status.FAIL, f"{type(exc).__name__}: {exc}", LogType.ERROR,
                      guard.log_code or type(exc).__name__, None)
            raise
        self._end(step, Status.DONE, guard.log_message, None, guard.log_code, None)

    def skip_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                  workflow_id: int, sequence_id: int | None = None,
                  processing_date: date | str | None = None) -> bool:
        """Set ForceSkip for this task in this execution only."""
        return self._force_skip(self._key(execution_id, project_code, process_load, task_id,
                                          workflow_id, sequence_id, processing_date), True)

    def unskip_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                    workflow_id: int, sequence_id: int | None = None,
                    processing_date: date | str | None = None) -> bool:
        """Clear ForceSkip for this task in this execution only."""
        return self._force_skip(self._key(execution_id, project_code, process_load, task_id,
                                          workflow_id, sequence_id, processing_date), False)

    def _force_skip(self, key: _StepKey, skip: bool) -> bool:
        self._ensure_steps(key.execution_id, key.project_code, key.process_load,
                           key.processing_date)
        row = self._require_step(key, "the task is not part of this execution")
        new = self._updated(row, ForceSkip=skip)
        changed = self._write_step(_SET_FORCE_SKIP, new)
        if changed:
            event = EventType.TASK_SKIP if skip else EventType.TASK_UNSKIP
            self._append_receipts([self._step_receipt(event, new, force_skip=skip)])
        return changed

    # ------------------------------------------------------------------ watermarks and modes

    def advance_watermark(
        self,
        project_code: str,
        process_load: str,
        parameter_name: str,
        new_int_value: int | None = None,
        new_datetime_value: datetime | str | None = None,
    ) -> None:
        """Move a DELTA_ID (``new_int_value``) or override a DELTA_DATE (``new_datetime_value``)."""
        project_code = v.text("project_code", project_code)
        process_load = v.text("process_load", process_load)
        param = self._parameter(project_code, process_load, parameter_name)
        ptype = ParameterType(param["ParameterType"])
        if (new_int_value is None) == (new_datetime_value is None):
            raise ValidationError("new_int_value/new_datetime_value", None,
                                  "give exactly one of them")
        if ptype is ParameterType.DELTA_ID and new_int_value is not None:
            values = {"ValueINT": v.integer("new_int_value", new_int_value, minimum=-1)}
        elif ptype is ParameterType.DELTA_DATE and new_datetime_value is not None:
            values = {"ValueDateTime": v.timestamp("new_datetime_value", new_datetime_value)}
        else:
            given = "new_int_value" if new_int_value is not None else "new_datetime_value"
            raise ValidationError(given, new_int_value if new_int_value is not None
                                  else new_datetime_value,
                                  f"parameter {parameter_name!r} is {ptype.value}: DELTA_ID takes "
                                  "new_int_value, DELTA_DATE takes new_datetime_value")
        previous = param["ValueINT"] if ptype is ParameterType.DELTA_ID else param["ValueDateTime"]
        self._append_receipts(self._set_parameter(project_code, process_load, parameter_name,
                                                  values, previous=previous))

    def _parameter(self, project_code: str, process_load: str,
                   parameter_name: str) -> dict[str, Any]:
        name = v.text("parameter_name", parameter_name)
        rows = self._parameters(project_code, process_load, name)
        if not rows:
            raise NotFoundError("parameter", {"project_code": project_code,
                                              "process_load": process_load,
                                              "parameter_name": name},
                                "register it with register_parameter first")
        return rows[0]

    def _set_parameter(self, project_code: str, process_load: str, name: str,
                       values: dict[str, Any], *, previous: Any = None,
                       step: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Set some value columns of one parameter; returns the WATERMARK_MOVE receipt to append."""
        row = {"ProjectCode": project_code, "ProcessLoad": process_load, "ParameterName": name,
               "ValueINT": None, "ValueDateTime": None, "ValueBIT": None,
               "LastUpdatedOn": _now(), "LastUpdatedBy": self.updated_by, **values}
        columns = ["ProjectCode", "ProcessLoad", "ParameterName", "ValueINT", "ValueDateTime",
                   "ValueBIT", "LastUpdatedOn", "LastUpdatedBy"]
        sets = ", ".join(f"t.{c} = s.{c}" for c in values)
        self.engine.execute(
            self._sql(
                "MERGE INTO {ETLconfigParameters} t USING {{src}} s "
                "ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad "
                "AND t.ParameterName = s.ParameterName "
                f"WHEN MATCHED THEN UPDATE SET {sets}, "
                "t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy"
            ),
            src=self._bind(S.PARAMETERS, [row], columns),
        )
        step = step or {}
        return [receipt(EventType.WATERMARK_MOVE, project_code=project_code,
                        process_load=process_load, processing_date=step.get("ProcessingDate"),
                        execution_id=step.get("ExecutionID"), step=step,
                        parameter_name=name, previous_value=previous,
                        new_value=next(iter(values.values())))]

    def get_active_watermark(self, project_code: str, process_load: str,
                             parameter_name: str) -> datetime | int | bool | None:
        """The typed value of the parameter's active column."""
        param = self._parameter(v.text("project_code", project_code),
                                v.text("process_load", process_load), parameter_name)
        return param[_ACTIVE_COLUMN[ParameterType(param["ParameterType"])]]

    def set_processing_mode(
        self,
        project_code: str,
        process_load: str,
        is_bulk_mode: bool = False,
        is_historic_mode: bool = False,
        processing_date: date | str | None = None,
        parameter_name: str | None = None,
        value_datetime: datetime | str | None = None,
        value_int: int | None = None,
        value_bit: bool | None = None,
    ) -> None:
        """Historic (SYSDT = date) or live (SYSDT = NULL); bulk resets every watermark; with
        ``parameter_name``, set just that parameter's three values as given."""
        project_code = v.text("project_code", project_code)
        process_load = v.text("process_load", process_load)
        is_bulk_mode = v.boolean("is_bulk_mode", is_bulk_mode)
        is_historic_mode = v.boolean("is_historic_mode", is_historic_mode)
        self._require_process(project_code, process_load)
        if parameter_name is not None:
            param = self._parameter(project_code, process_load, parameter_name)
            ptype = ParameterType(param["ParameterType"])
            values = {"ValueDateTime": v.optional_timestamp("value_datetime", value_datetime),
                      "ValueINT": v.optional_integer("value_int", value_int, minimum=None),
                      "ValueBIT": None if value_bit is None else v.boolean("value_bit", value_bit)}
            _check_value_matches_type(ptype, *values.values())
            changes = {param["ParameterName"]: values}
            mode = {"parameter_name": parameter_name}
        else:
            day = v.optional_date("processing_date", processing_date)
            if is_historic_mode and day is None:
                raise ValidationError("processing_date", None,
                                      "historic mode needs the date to process")
            params = self._parameters(project_code, process_load)
            changes = {}
            for p in params:
                ptype = ParameterType(p["ParameterType"])
                if ptype is ParameterType.SYSTEM:
                    changes[p["ParameterName"]] = {"ValueDateTime": (
                        datetime(day.year, day.month, day.day, tzinfo=UTC)
                        if is_historic_mode else None)}
                elif is_bulk_mode and ptype is ParameterType.DELTA_DATE:
                    changes[p["ParameterName"]] = {"ValueDateTime": None}
                elif is_bulk_mode and ptype is ParameterType.DELTA_ID:
                    changes[p["ParameterName"]] = {"ValueINT": 0}
            if is_historic_mode and SYSDT not in changes:
                raise NotFoundError("parameter", {"project_code": project_code,
                                                  "process_load": process_load,
                                                  "parameter_name": SYSDT},
                                    "historic mode sets SYSDT: register it (type SYSTEM) first")
            mode = {"historic": is_historic_mode, "bulk": is_bulk_mode,
                    "processing_date": day}
        if changes:
            rows = [{"ProjectCode": project_code, "ProcessLoad": process_load,
                     "ParameterName": name, "LastUpdatedOn": _now(),
                     "LastUpdatedBy": self.updated_by, "Touch": ",".join(vals),
                     **{c: vals.get(c) for c in ("ValueINT", "ValueDateTime", "ValueBIT")}}
                    for name, vals in changes.items()]
            self.engine.execute(
                self._sql(_SET_MODE),
                src=self.engine.bind(rows, [*[(c, t) for c, t in S.PARAMETERS.columns
                                              if c in rows[0]], ("Touch", "STRING")]),
            )
        self._append_receipts([receipt(
            EventType.MODE_CHANGE, project_code=project_code, process_load=process_load,
            **mode, parameters={name: {c: _iso(x) for c, x in vals.items()}
                                for name, vals in changes.items()},
        )])

    def _processing_date(self, project_code: str, process_load: str,
                         processing_date: date | str | None) -> date:
        """The given date, else SYSDT (historic mode), else today (live)."""
        if processing_date is not None:
            return v.a_date("processing_date", processing_date)
        sysdt = self._parameters(project_code, process_load, SYSDT)
        if sysdt and sysdt[0]["ValueDateTime"] is not None:
            return sysdt[0]["ValueDateTime"].date()
        return date.today()

    # ------------------------------------------------------------------ status and replay

    def get_status(
        self,
        project_code: str,
        process_load: str,
        processing_date: date | str | None = None,
        execution_id: str | None = None,
        workflow_id: int | None = None,
        sequence_id: int | None = None,
        task_id: int | None = None,
        attempts: int | None = None,
        summary_mode: bool = False,
    ) -> list[dict[str, Any]]:
        """Task rows filtered by what is given (latest attempt per date unless ``attempts`` or
        ``execution_id`` pins one), or with ``summary_mode`` one row per (date, attempts)."""
        where = _scope(project_code, process_load, processing_date, execution_id, workflow_id, sequence_id,
                       task_id, attempts)
        if summary_mode:
            keep = ("ProjectCode", "ProcessLoad", "ProcessingDate", "ExecutionID", "Attempts")
            return collect(self.engine, self.spark.sql(self._sql(_STATUS_SUMMARY)),
                           {k: where[k] for k in keep}, ["ProcessingDate", "Attempts"])
        rows = collect(self.engine, self.spark.table(self._names["v_taskDetail"]), where,
                       ["ProcessingDate", "Attempts", "WorkFlowID", "SequenceID", "TaskID"])
        if attempts is None and execution_id is None:
            rows = _latest_attempt(rows)
        return rows

    def status_reset(
        self,
        project_code: str,
        process_load: str,
        processing_date: date | str | None = None,
        execution_id: str | None = None,
        workflow_id: int | None = None,
        sequence_id: int | None = None,
        task_id: int | None = None,
        attempts: int | None = None,
        remark: str | None = None,
    ) -> int:
        """Replay a day: DONE and FAIL rows in scope go to RQUE and ForceSkip is cleared; with an
        execution, its initiation row goes to RQUE too. Returns the number of rows changed."""
        scope = _scope(project_code, process_load, processing_date, execution_id, workflow_id, sequence_id,
                       task_id, attempts)
        remark = v.optional_text("remark", remark, max_length=MAX_LOG_MESSAGE)
        if execution_id is None:
            scope["ProcessingDate"] = self._processing_date(scope["ProjectCode"], scope["ProcessLoad"],
                                                            scope["ProcessingDate"])
            rows = collect(self.engine, self.spark.table(self._names["ETLProcessingSteps"]), scope)
        else:
            # One read of the whole execution: the rows in scope plus its initiation row.
            narrowing = {k: scope.pop(k) for k in ("WorkFlowID", "SequenceID", "TaskID")}
            rows = [r for r in collect(self.engine, self.spark.table(self._names["ETLProcessingSteps"]), scope)
                    if _is_initiation(r) or all(val is None or r[k] == val for k, val in narrowing.items())]

        def replayed(row: dict[str, Any]) -> str:
            reopen = execution_id is not None and _is_initiation(row)
            finished = row["Status"] in (Status.DONE.value, Status.FAIL.value)
            return Status.RQUE.value if finished or reopen else row["Status"]

        targets = [r for r in rows if replayed(r) != r["Status"] or r["ForceSkip"]]
        if not targets:
            return 0
        now = _now()
        new_rows = [{**r, "Status": replayed(r), "ForceSkip": False,
                     "LogMessage": remark or r["LogMessage"], "LastUpdatedOn": now,
                     "LastUpdatedBy": self.updated_by} for r in targets]
        for day_rows in _by_date(new_rows).values():
            self.engine.execute(
                self._sql(_RESET_STEPS.replace("<DAY>", _date_literal(day_rows[0]["ProcessingDate"]))),
                src=self._bind(S.STEPS, day_rows),
            )
        self._append_receipts([
            self._step_receipt(EventType.STATUS_RESET, new, previous_status=old["Status"],
                               status=new["Status"], remark=remark)
            for old, new in zip(targets, new_rows, strict=True)
        ])
        return len(new_rows)


# ---------------------------------------------------------------------- registration rows


def _arguments(frame_locals: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in frame_locals.items() if k != "self"}


def _build(batch: str, index: int, builder, entry: dict[str, Any]) -> dict[str, Any]:
    try:
        return builder(**entry)
    except TypeError as exc:  # an unknown or missing keyword in a batch entry
        raise ValidationError(f"{batch}[{index}]", entry, str(exc)) from None


def _refuse_duplicate_keys(table: S.Table, rows: list[dict[str, Any]]) -> None:
    seen: set[tuple] = set()
    for row in rows:
        key = tuple(row[c] for c in table.key)
        if key in seen:
            raise ValidationError(", ".join(table.key), key, f"appears twice in one {table.name} batch")
        seen.add(key)


def _process_row(project_code, process_load, name=None, description=None, owner=None,
                 load_frequency=LoadFrequency.DAILY, is_active=True) -> dict[str, Any]:
    return {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ProcessName": v.optional_text("name", name) or process_load,
        "ProcessDescription": v.optional_text("description", description),
        "ProcessOwner": v.optional_text("owner", owner),
        "LoadFrequency": v.member("load_frequency", load_frequency, LoadFrequency).value,
        "IsActive": v.boolean("is_active", is_active),
    }


def _task_row(project_code, process_load, task_id, workflow_id, sequence_id, task_name, source_type,
              source_identifier=None, source_system_code=None, task_description=None, load_frequency=None,
              task_mandatory=False, file_name_mask=None, file_extension=None, in_file_path=None,
              out_file_path=None, sla_seconds=None, is_active=True) -> dict[str, Any]:
    row = {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "TaskID": v.integer("task_id", task_id),
        "WorkFlowID": v.integer("workflow_id", workflow_id),
        "SequenceID": v.integer("sequence_id", sequence_id),
        "TaskName": v.text("task_name", task_name),
        "TaskDescription": v.optional_text("task_description", task_description),
        "SourceType": v.member("source_type", source_type, SourceType).value,
        "SourceIdentifier": v.optional_text("source_identifier", source_identifier),
        "SourceSystemCode": v.optional_text("source_system_code", source_system_code),
        "FileNameMask": v.optional_text("file_name_mask", file_name_mask),
        "FileExtension": v.optional_text("file_extension", file_extension),
        "InFilePath": v.optional_text("in_file_path", in_file_path),
        "OutFilePath": v.optional_text("out_file_path", out_file_path),
        "LoadFrequency": v.optional_member("load_frequency", load_frequency, LoadFrequency),
        "TaskMandatory": v.boolean("task_mandatory", task_mandatory),
        "IsActive": v.boolean("is_active", is_active),
        "SlaSeconds": v.optional_integer("sla_seconds", sla_seconds, minimum=1),
    }
    if row["LoadFrequency"] is not None:
        row["LoadFrequency"] = row["LoadFrequency"].value
    if row["WorkFlowID"] == 0 and (row["TaskID"], row["SequenceID"]) != (0, 0):
        raise ValidationError(
            "workflow_id", 0, "WorkFlowID 0 is the initiation task: it must have task_id=0 "
            f"and sequence_id=0 (got task_id={row['TaskID']}, sequence_id={row['SequenceID']})"
        )
    if row["WorkFlowID"] != 0 and row["SequenceID"] == 0:
        raise ValidationError("sequence_id", 0, "stage 0 (LOAD_GO) holds only the initiation task (WorkFlowID 0)")
    return row


def _parameter_row(project_code, process_load, parameter_name, parameter_type, description=None,
                   value_datetime=None, value_int=None, value_bit=None) -> dict[str, Any]:
    ptype = v.member("parameter_type", parameter_type, ParameterType)
    name = v.text("parameter_name", parameter_name)
    if (name == SYSDT) != (ptype is ParameterType.SYSTEM):
        raise ValidationError("parameter_type", ptype.value,
                              "the SYSTEM type is reserved for, and required by, the parameter SYSDT")
    row = {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ParameterName": name,
        "ParameterDescription": v.optional_text("description", description),
        "ParameterType": ptype.value,
        "ValueINT": v.optional_integer("value_int", value_int, minimum=None),
        "ValueDateTime": v.optional_timestamp("value_datetime", value_datetime),
        "ValueBIT": None if value_bit is None else v.boolean("value_bit", value_bit),
    }
    _check_value_matches_type(ptype, row["ValueDateTime"], row["ValueINT"], row["ValueBIT"])
    return row


# ---------------------------------------------------------------------- module helpers

_ACTIVE_COLUMN = {
    ParameterType.DELTA_DATE: "ValueDateTime",
    ParameterType.DELTA_ID: "ValueINT",
    ParameterType.FLAG: "ValueBIT",
    ParameterType.SYSTEM: "ValueDateTime",
}


def _check_value_matches_type(ptype: ParameterType, value_datetime: Any, value_int: Any,
                              value_bit: Any) -> None:
    given = {"ValueDateTime": value_datetime, "ValueINT": value_int, "ValueBIT": value_bit}
    for column, value in given.items():
        if value is not None and column != _ACTIVE_COLUMN[ptype]:
            raise ValidationError(column, value, f"a {ptype.value} parameter keeps its value in "
                                                 f"{_ACTIVE_COLUMN[ptype]}")


def _scope(project_code: Any, process_load: Any, processing_date: Any, execution_id: Any, workflow_id: Any,
           sequence_id: Any, task_id: Any, attempts: Any) -> dict[str, Any]:
    """The validated step filter shared by get_status and status_reset (None = any)."""
    return {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ProcessingDate": v.optional_date("processing_date", processing_date),
        "ExecutionID": v.optional_text("execution_id", execution_id),
        "WorkFlowID": v.optional_integer("workflow_id", workflow_id),
        "SequenceID": v.optional_integer("sequence_id", sequence_id),
        "TaskID": v.optional_integer("task_id", task_id),
        "Attempts": v.optional_integer("attempts", attempts),
    }


def _runnable(row: dict[str, Any]) -> bool:
    return (row["Status"] != Status.DONE.value and row.get("TaskIsActive") is True
            and not row["ForceSkip"])


def _latest_attempt(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[tuple, int] = {}
    for r in rows:
        k = (r["ProcessingDate"], r["ProjectCode"], r["ProcessLoad"])
        latest[k] = max(latest.get(k, -1), r["Attempts"])
    return [r for r in rows
            if r["Attempts"] == latest[(r["ProcessingDate"], r["ProjectCode"], r["ProcessLoad"])]]


def _is_initiation(row: dict[str, Any]) -> bool:
    return row["WorkFlowID"] == 0 and row["TaskID"] == 0


def _by_date(rows: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["ProcessingDate"], []).append(r)
    return out


def _date_literal(day: date) -> str:
    """A DATE literal for partition pruning; ``day`` is a validated ``date``, never user text."""
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {day!r}")
    return f"DATE {quote_string(day.isoformat())}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _full_file_name(task: dict[str, Any], day: date) -> str | None:
    pattern = {"D": "%Y%m%d", "M": "%Y%m", "Y": "%Y"}.get(task.get("EffectiveFrequency") or "")
    if not task.get("FileNameMask") or pattern is None:
        return None
    return f"{task['FileNameMask']}_{day.strftime(pattern)}{task.get('FileExtension') or ''}"


# ---------------------------------------------------------------------- SQL of the run

# Step rows with their task's active flag and their watermark's type and active value.
_STEP_ROWS = f"""
SELECT s.*, t.IsActive AS TaskIsActive, p.ParameterType AS WatermarkType,
       CASE WHEN p.ParameterName IS NOT NULL THEN {S.ACTIVE_VALUE} END AS WatermarkValue
  FROM {{ETLProcessingSteps}} s
  LEFT JOIN {{ETLconfigTasks}} t
    ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
  LEFT JOIN {{ETLconfigParameters}} p
    ON p.ProjectCode = s.ProjectCode AND p.ProcessLoad = s.ProcessLoad
   AND p.ParameterName = s.SourceSystemCode
"""

# A catalogue task with its stage code, effective frequency and watermark.
_CATALOGUE_TASK = f"""
SELECT t.*, q.SequenceCode, coalesce(t.LoadFrequency, pr.LoadFrequency) AS EffectiveFrequency,
       p.ParameterType AS WatermarkType,
       CASE WHEN p.ParameterName IS NOT NULL THEN {S.ACTIVE_VALUE} END AS WatermarkValue
  FROM {{ETLconfigTasks}} t
  JOIN {{ETLconfigProcess}} pr ON pr.ProjectCode = t.ProjectCode AND pr.ProcessLoad = t.ProcessLoad
  LEFT JOIN {{ETLconfigSequence}} q ON q.SequenceID = t.SequenceID
  LEFT JOIN {{ETLconfigParameters}} p
    ON p.ProjectCode = t.ProjectCode AND p.ProcessLoad = t.ProcessLoad
   AND p.ParameterName = t.SourceSystemCode
"""

# One NQUE row per active task not DONE in its period, none when the execution already has rows.
_NEW_STEPS = """
WITH a AS (SELECT * FROM {{src}}),
day_rows AS (
  SELECT s.* FROM {ETLProcessingSteps} s JOIN a
      ON s.ProjectCode = a.ProjectCode AND s.ProcessLoad = a.ProcessLoad
     AND s.ProcessingDate BETWEEN <YEAR_START> AND <YEAR_END>),
run AS (
  SELECT coalesce(max(CASE WHEN d.ProcessingDate = a.ProcessingDate THEN d.Attempts END) + 1, 0) AS Attempts,
         count_if(d.ExecutionID = a.ExecutionID) AS ExistingRows
    FROM a LEFT JOIN day_rows d ON true),
tasks AS (
  SELECT t.*, coalesce(t.LoadFrequency, p.LoadFrequency) AS Frequency,
         CASE coalesce(t.LoadFrequency, p.LoadFrequency)
           WHEN 'D' THEN 'yyyyMMdd' WHEN 'M' THEN 'yyyyMM' WHEN 'Y' THEN 'yyyy' END AS FileDateFormat
    FROM {ETLconfigTasks} t JOIN a ON t.ProjectCode = a.ProjectCode AND t.ProcessLoad = a.ProcessLoad
    JOIN {ETLconfigProcess} p ON p.ProjectCode = t.ProjectCode AND p.ProcessLoad = t.ProcessLoad
   WHERE t.IsActive)
SELECT a.ProcessingDate, a.ProjectCode, a.ProcessLoad, a.ExecutionID, t.WorkFlowID, t.TaskID,
       t.SequenceID, run.Attempts, 'NQUE' AS Status, t.TaskName, q.SequenceCode, t.TaskMandatory,
       t.SourceSystemCode,
       CASE WHEN t.FileNameMask IS NOT NULL AND t.FileDateFormat IS NOT NULL
            THEN concat(t.FileNameMask, '_', date_format(a.ProcessingDate, t.FileDateFormat),
                        coalesce(t.FileExtension, '')) END AS FullFileName,
       t.InFilePath, t.OutFilePath, false AS ForceSkip, t.SourceType,
       a.Now AS LastUpdatedOn, a.By AS LastUpdatedBy
  FROM tasks t CROSS JOIN a CROSS JOIN run
  LEFT JOIN {ETLconfigSequence} q ON q.SequenceID = t.SequenceID
 WHERE run.ExistingRows = 0
   AND NOT EXISTS (
     SELECT 1 FROM day_rows d
      WHERE d.WorkFlowID = t.WorkFlowID AND d.TaskID = t.TaskID AND d.Status = 'DONE'
        AND CASE t.Frequency
              WHEN 'M' THEN trunc(d.ProcessingDate, 'MM') = trunc(a.ProcessingDate, 'MM')
              WHEN 'Y' THEN trunc(d.ProcessingDate, 'YEAR') = trunc(a.ProcessingDate, 'YEAR')
              ELSE d.ProcessingDate = a.ProcessingDate
            END)
"""

# Keyed on the whole row key, so concurrent generations of one execution insert each row once.
_INSERT_NEW_STEPS = """
MERGE INTO {ETLProcessingSteps} t USING {{src}} s
ON t.ProcessingDate = s.ProcessingDate AND t.ProjectCode = s.ProjectCode
   AND t.ProcessLoad = s.ProcessLoad AND t.ExecutionID = s.ExecutionID
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID AND t.Attempts = s.Attempts
WHEN NOT MATCHED THEN INSERT *
"""

_STEP_MATCH = """ON t.ProcessingDate = <DAY> AND t.ProcessingDate = s.ProcessingDate
   AND t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.ExecutionID = s.ExecutionID AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
   AND t.Attempts = s.Attempts"""

_RUNNING = "(t.StartTime IS NOT NULL AND t.EndTime IS NULL AND t.Status IN ('NQUE', 'RQUE'))"

# Start: a row already running is left alone (idempotent).
_START_STEP = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND NOT {_RUNNING}
  THEN UPDATE SET
    t.Status = CASE WHEN t.Attempts > 0 OR t.Status IN ('FAIL', 'RQUE') THEN 'RQUE' ELSE 'NQUE' END,
    t.StartTime = s.StartTime, t.EndTime = NULL, t.DurationSeconds = NULL,
    t.LogMessage = NULL, t.LogType = NULL, t.LogCode = NULL,
    t.SourceType = coalesce(s.SourceType, t.SourceType), t.SourceRunID = s.SourceRunID,
    t.ClusterID = s.ClusterID, t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
WHEN NOT MATCHED THEN INSERT *
"""

_CLOSE_STEP = """UPDATE SET
    t.Status = s.Status, t.EndTime = s.EndTime,
    t.DurationSeconds = CAST(unix_timestamp(s.EndTime)
                             - unix_timestamp(coalesce(t.StartTime, s.EndTime)) AS INT),
    t.LogMessage = s.LogMessage, t.LogType = s.LogType, t.LogCode = s.LogCode,
    t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy"""

# End: recording the status the row already has is a no-op (idempotent).
_END_STEP = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND t.Status <> s.Status THEN {_CLOSE_STEP}
"""

_REOPEN_RUN = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND t.Status IN ('DONE', 'FAIL', 'RQUE') THEN UPDATE SET
    t.Status = 'NQUE', t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
"""

# A failed try to be retried: only a running row is ended, so a repeated call is a no-op.
_RETRY_STEP = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND {_RUNNING} THEN {_CLOSE_STEP}
"""

_SOURCE_RUN_STEP = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND {_RUNNING}
     AND NOT (t.SourceRunID <=> s.SourceRunID AND t.ClusterID <=> s.ClusterID) THEN UPDATE SET
    t.SourceRunID = s.SourceRunID, t.ClusterID = s.ClusterID,
    t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
"""

_SET_FORCE_SKIP = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED AND NOT (t.ForceSkip <=> s.ForceSkip) THEN UPDATE SET
    t.ForceSkip = s.ForceSkip, t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
"""

_RESET_STEPS = f"""
MERGE INTO {{ETLProcessingSteps}} t USING {{{{src}}}} s
{_STEP_MATCH}
WHEN MATCHED THEN UPDATE SET
    t.Status = s.Status, t.ForceSkip = false, t.LogMessage = s.LogMessage,
    t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
"""

# Processing mode: each source row names (in Touch) which value columns it sets.
_SET_MODE = """
MERGE INTO {ETLconfigParameters} t USING {{src}} s
ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad AND t.ParameterName = s.ParameterName
WHEN MATCHED THEN UPDATE SET
    t.ValueINT = if(array_contains(split(s.Touch, ','), 'ValueINT'), s.ValueINT, t.ValueINT),
    t.ValueDateTime = if(array_contains(split(s.Touch, ','), 'ValueDateTime'), s.ValueDateTime, t.ValueDateTime),
    t.ValueBIT = if(array_contains(split(s.Touch, ','), 'ValueBIT'), s.ValueBIT, t.ValueBIT),
    t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy
"""

# One row per (date, attempts): start, end, wall-clock duration and the initiation row's status.
_STATUS_SUMMARY = """
SELECT ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts,
       min(StartTime) AS StartTime, max(EndTime) AS EndTime,
       CAST(unix_timestamp(max(EndTime)) - unix_timestamp(min(StartTime)) AS INT) AS DurationSeconds,
       max(CASE WHEN WorkFlowID = 0 AND TaskID = 0 THEN Status END) AS OverallStatus
  FROM {ETLProcessingSteps}
 GROUP BY ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts
"""
