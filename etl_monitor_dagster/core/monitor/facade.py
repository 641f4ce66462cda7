"""``ETLMonitorFramework``: the seed package's public API, exactly, over the monitor's small modules.

Each method checks its arguments (ValidationError names the argument) and delegates: registration
to ``registration``, a run's steps to ``steps``, parameter values to ``watermarks``, status and
replay to ``status``, tables and views to ``layout``. Names, positional order, defaults and return
kinds are those of databricks-etl-monitor 1.0.0; our additions are keyword-only, after them.
"""

from __future__ import annotations

import getpass
import shutil
import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .. import schema as S
from .. import validate as v
from ..engine import Engine, RetryPolicy, engine_info, is_connection_loss, lost_engine, reaching, require_catalog
from ..enums import SKIP, LogType, SourceType, Status
from ..error_class import ErrorClass
from ..errors import EngineError, ValidationError
from ..live_views import ALL_VIEWS
from ..scrub import scrub
from ..sql import quote_identifier, validate_identifier
from . import layout
from .fold import FoldReport, fold
from .guide import guide_text
from .health import Health
from .maintenance import Maintenance
from .process_views import LIVE_STEPS, read_process_views
from .registration import Registry, given
from .status import StatusQueries
from .steps import MAX_LOG_MESSAGE, StepKey, Steps, TaskGuard
from .store import Store
from .watermarks import Parameters

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

# Column types of the DataFrames returned, beyond the steps table's own columns.
_EXTRA_TYPES = {"WatermarkType": "STRING", "WatermarkValue": "STRING", "SlaSeconds": "INT", "SlaBreached": "BOOLEAN",
                "OverallStatus": "STRING", "Remark": "STRING"}
# get_pending_tasks' columns in the seed's order (ProcessingDate added at the end).
_PENDING_COLUMNS = ("Status", "ExecutionID", "ProjectCode", "ProcessLoad", "WorkFlowID", "SequenceID", "TaskID",
                    "TaskName", "SequenceCode", "TaskMandatory", "SourceSystemCode", "SourceType", "Attempts",
                    "StartTime", "ForceSkip", "FullFileName", "InFilePath", "OutFilePath", "WatermarkType",
                    "WatermarkValue", "ProcessingDate")
# get_status' columns in the seed's order, then the rest of v_taskDetail's.
_STATUS_COLUMNS = ("ProcessingDate", "ProjectCode", "ProcessLoad", "ExecutionID", "Attempts", "TaskName", "Status",
                   "WorkFlowID", "SequenceID", "TaskID", "TaskMandatory", "SourceSystemCode", "SourceType",
                   "StartTime", "EndTime", "DurationSeconds", "LogMessage", "LogType", "LogCode", "LastUpdatedOn",
                   "SequenceCode", "FullFileName", "InFilePath", "OutFilePath", "ForceSkip", "SourceRunID",
                   "ClusterID", "LastUpdatedBy", "SlaSeconds", "SlaBreached")
_SUMMARY_COLUMNS = ("ProjectCode", "ProcessLoad", "ProcessingDate", "Attempts", "StartTime", "EndTime",
                    "DurationSeconds", "OverallStatus", "Remark", "ExecutionID")


class ETLMonitorFramework:
    """The monitor: eight Delta tables, six views and the NQUE/RQUE/DONE/FAIL state machine.

    ``spark`` is any SparkSession (classic or Spark Connect); ``catalog`` a Unity Catalog name, or ''
    for the session catalog; ``schema`` holds the tables and views.

    >>> monitor = ETLMonitorFramework(spark, catalog="main", schema="etl")  # doctest: +SKIP
    >>> monitor.setup()  # doctest: +SKIP
    >>> run = ETLMonitorFramework.generate_execution_id()  # doctest: +SKIP
    >>> with monitor.task(run, "CORP", "HR_DAILY", task_id=1, sequence_id=2, workflow_id=1,
    ...                   processing_date="2026-04-09") as guard:  # doctest: +SKIP
    ...     if guard.active:
    ...         load(since=guard.watermark_value)
    """

    def __init__(self, spark: Any, catalog: str | None = "", schema: str = "etl", *,
                 updated_by: str | None = None, retry: RetryPolicy | None = None) -> None:
        self.catalog = validate_identifier("catalog", catalog) if catalog else None
        self.schema = validate_identifier("schema", schema)
        self.engine = Engine(spark, retry or RetryPolicy())
        prefix = quote_identifier(self.schema)
        if self.catalog:
            prefix = f"{quote_identifier(self.catalog)}.{prefix}"
        warehouse = engine_info(spark).warehouse
        folder = (Path(warehouse) / f"{self.schema.lower()}.db"
                  if warehouse and (self.catalog or "spark_catalog").lower() == "spark_catalog" else None)
        self._store = Store(self.engine, prefix, updated_by or getpass.getuser(), folder)
        if self.catalog:  # else Spark's namespace error surfaces at the first statement, e.g. in setup()
            require_catalog(self.engine, self.catalog, self._store.names[S.SYSLOGS.name])
        self._registry = Registry(self._store)
        self._parameters = Parameters(self._store, self._registry)
        self._steps = Steps(self._store, self._registry, self._parameters)
        self._status = StatusQueries(self._store, self._steps)
        self.health = Health(self._store, self._steps)  # what the run-end and health sensors call
        self.maintenance = Maintenance(self._store)  # what the maintenance job calls
        self._cluster_id: str | bool | None = False  # False: not looked up yet

    @property
    def spark(self) -> Any:
        return self.engine.spark

    @property
    def store(self) -> Store:
        """The tables on the engine (bound reads, receipts): what rules built on the monitor use, e.g. alerts."""
        return self._store

    def table_name(self, name: str) -> str:
        """The qualified, quoted name of one of the eight tables or six views."""
        return self._store.names[name]

    # ------------------------------------------------------------------------------------- setup

    def setup(self, seed_data: bool = True) -> None:
        """Create (or migrate in place) the eight tables and six views; seed the stages. Idempotent."""
        layout.create_or_migrate(self._store)
        if v.boolean("seed_data", seed_data):
            self.seed_sequence_data()

    def seed_sequence_data(self) -> None:
        """Insert the seven built-in stages (0 LOAD_GO ... 6 PROCESS_DATA) that are missing; never overwrites."""
        layout.seed_stages(self._store)

    def create_views(self) -> None:
        """(Re)create the six monitoring views from their current definitions."""
        layout.create_views(self._store)

    def read_view(self, view: str, order_by: list[str] | None = None, **equals: Any) -> list[dict[str, Any]]:
        """Rows of one monitoring view whose columns equal the given values (None = any).

        >>> monitor.read_view("v_mandatoryBlockers", ExecutionID=run_id, SequenceID=2)  # doctest: +SKIP
        """
        if view not in ALL_VIEWS:
            raise ValidationError("view", view, f"is not one of the monitoring views {sorted(ALL_VIEWS)}")
        frame = self._store.table(view)
        try:
            return self._store.collect(frame, equals, order_by or [])
        except EngineError:
            raise
        except Exception:
            # The engine refuses an unknown column; the view's columns are asked for only then, to name it.
            with reaching(self.spark):
                columns = frame.columns
            unknown = sorted((set(equals) | set(order_by or ())) - set(columns))
            if unknown:
                raise ValidationError("columns", unknown, f"{view} has the columns {columns}") from None
            raise

    def read_process_views(self, project_code: str, process_load: str,
                           reads: Mapping[str, tuple[list[str], dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Several monitoring views' rows of one process at one moment: ``reads`` maps a view to its order and
        its filter (as ``read_view``'s). The log is folded once for all of them (``process_views``).

        >>> reads = {"v_runSummary": ([], {"ExecutionID": run_id}), "v_watermarks": (["ParameterName"], {})}
        >>> monitor.read_process_views("SALES", "DAILY", reads)  # doctest: +SKIP
        """
        unknown = sorted(view for view in reads if view not in ALL_VIEWS or view == LIVE_STEPS)
        if unknown:
            raise ValidationError("views", unknown, f"are not among the monitoring views read over {LIVE_STEPS}")
        return read_process_views(self._store, v.text("project_code", project_code),
                                  v.text("process_load", process_load), reads)

    # -------------------------------------------------------------------------------- registration

    def register_organisation(self, organisation_code: str, organisation_name: str,
                              organisation_description: str = "", *,
                              is_active: bool | None = None) -> ETLMonitorFramework:
        """Insert or update an organisation in ETLOrganisation (keyed on OrganisationCode)."""
        return self._register("organisations", locals())

    def register_project(self, project_code: str, project_name: str, project_description: str = "",
                         organisation_code: str = "", *, is_active: bool | None = None) -> ETLMonitorFramework:
        """Insert or update a project in ETLconfigProject (keyed on ProjectCode)."""
        return self._register("projects", locals())

    def register_process(self, project_code: str, process_load: str, name: str = "", description: str = "",
                         owner: str = "", load_frequency: str = "D", *,
                         is_active: bool | None = None) -> ETLMonitorFramework:
        """Insert or update a process in ETLconfigProcess (keyed on ProjectCode, ProcessLoad)."""
        return self._register("processes", locals())

    def register_task(self, project_code: str, process_load: str, task_id: int, workflow_id: int,
                      sequence_id: int, task_name: str, source_type: str = "", source_identifier: str = "",
                      source_system_code: str = "", task_description: str = "", load_frequency: str = "D",
                      task_mandatory: bool = True, file_name_mask: str = "", file_extension: str = "",
                      in_file_path: str = "", out_file_path: str = "", *, sla_seconds: int | None = None,
                      is_active: bool | None = None) -> ETLMonitorFramework:
        """Insert or update a task in ETLconfigTasks (keyed on project, process, WorkFlowID, TaskID)."""
        return self._register("tasks", locals())

    def register_parameter(self, project_code: str, process_load: str, parameter_name: str, parameter_type: str,
                           description: str = "", value_datetime: datetime | date | str | None = None,
                           value_int: int | None = None, value_bit: bool | None = None) -> ETLMonitorFramework:
        """Insert a parameter, or update only its description: values never move through here."""
        return self._register("parameters", locals())

    def register_many(self, organisations: Iterable[dict[str, Any]] = (), projects: Iterable[dict[str, Any]] = (),
                      processes: Iterable[dict[str, Any]] = (), tasks: Iterable[dict[str, Any]] = (),
                      parameters: Iterable[dict[str, Any]] = ()) -> ETLMonitorFramework:
        """Register many entries with one MERGE per table and the checks of ``register_*``.

        Each entry is a dict of that method's keyword arguments. Every entry is checked before
        anything is written; one bad entry refuses the whole batch.

        >>> monitor.register_many(  # doctest: +SKIP
        ...     processes=[{"project_code": "CORP", "process_load": "HR", "load_frequency": "D"}],
        ...     tasks=[{"project_code": "CORP", "process_load": "HR", "task_id": 1, "workflow_id": 1,
        ...             "sequence_id": 2, "task_name": "Load", "source_type": "PYTHON"}])
        """
        self._registry.register_many(organisations, projects, processes, tasks, parameters)
        return self

    def _register(self, batch: str, arguments: dict[str, Any]) -> ETLMonitorFramework:
        self._registry.register_many(**{batch: [{k: x for k, x in arguments.items() if k != "self"}]})
        return self

    # ---------------------------------------------------------------------------------------- a run

    @staticmethod
    def generate_execution_id() -> str:
        """A new ExecutionID (UUID string)."""
        return str(uuid.uuid4())

    def generate_execution_steps(self, execution_id: str, project_code: str, process_load: str,
                                 processing_date: date | str | None) -> None:
        """Queue one NQUE row per active task not already DONE in its period (Attempts = previous + 1, or 0).

        Does nothing when the execution already has rows; None processing_date means SYSDT, else today.
        """
        self.generate_steps(execution_id, project_code, process_load, processing_date)

    def generate_steps(self, execution_id: str, project_code: str, process_load: str,
                       processing_date: date | str | None) -> list[dict[str, Any]]:
        """``generate_execution_steps``, returning the rows it queued (none when the execution had rows).

        Each is what ``pending_rows`` returns for its task, without WatermarkType and WatermarkValue: an
        orchestrator hands them to its task steps, which add those with ``with_watermark`` instead of
        reading their row.
        """
        return self._steps.generate(v.text("execution_id", execution_id), v.text("project_code", project_code),
                                    v.text("process_load", process_load),
                                    v.optional_date("processing_date", processing_date))

    def with_watermark(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """A row ``generate_steps`` returned, with its task's WatermarkType and WatermarkValue as they are now
        (one read, none for a task without a watermark)."""
        return self._steps.with_watermark(dict(step))

    def get_pending_tasks(self, execution_id: str, project_code: str, process_load: str,
                          processing_date: date | str | None = None, sequence_id: int | None = None,
                          workflow_id: int | None = None, task_id: int | None = None) -> Any:
        """DataFrame of ``pending_rows``: the runnable steps, or with ``task_id`` exactly one row
        whose Status is 'NULL' when the task must be skipped."""
        rows = self.pending_rows(execution_id, project_code, process_load, processing_date, sequence_id,
                                 workflow_id, task_id)
        return self._frame(rows, _PENDING_COLUMNS)

    def pending_rows(self, execution_id: str, project_code: str, process_load: str,
                     processing_date: date | str | None = None, sequence_id: int | None = None,
                     workflow_id: int | None = None, task_id: int | None = None) -> list[dict[str, Any]]:
        """``get_pending_tasks`` as a list of dicts (generating the steps first if the execution has none).

        Without ``task_id``: rows not DONE, active and not force-skipped, ordered by WorkFlowID,
        SequenceID, TaskID, each with WatermarkType and WatermarkValue.
        """
        execution_id = v.text("execution_id", execution_id)
        project_code = v.text("project_code", project_code)
        process_load = v.text("process_load", process_load)
        day = v.optional_date("processing_date", processing_date)
        sequence_id = v.optional_integer("sequence_id", sequence_id)
        workflow_id = v.optional_integer("workflow_id", workflow_id)
        if task_id is not None:
            key = StepKey(execution_id, project_code, process_load, v.integer("task_id", task_id), workflow_id,
                          sequence_id, day)
            return [self._steps.pending_one(key)]
        return self._steps.pending(execution_id, project_code, process_load, day, sequence_id, workflow_id)

    def mandatory_blockers(self, execution_id: str, workflow_id: int | None = None,
                           sequence_id: int | None = None) -> list[dict[str, Any]]:
        """The mandatory steps of this execution (of one stage, given its workflow and sequence) that stop its
        later stages: FAIL, NQUE or RQUE and not force-skipped, with v_mandatoryBlockers' columns. Unlike that
        view, which shows each date's latest attempt, it reads the execution's own rows (what a gate asks)."""
        return self._steps.blockers(v.text("execution_id", execution_id),
                                    v.optional_integer("workflow_id", workflow_id),
                                    v.optional_integer("sequence_id", sequence_id))

    def task_status(self, execution_id: str, project_code: str, process_load: str,
                    processing_date: date | str | None = None, workflow_id: int | None = None,
                    sequence_id: int | None = None, task_id: int | None = None) -> str:
        """The task's Status in this execution, or 'NULL' when it must be skipped."""
        rows = self.pending_rows(execution_id, project_code, process_load, processing_date, sequence_id,
                                 workflow_id, task_id)
        return rows[0]["Status"] if rows else SKIP

    def start_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                   sequence_id: int | None, workflow_id: int, processing_date: date | str | None,
                   attempts: int | None = None, source_type: str | None = "DBX_NOTEBOOK",
                   source_run_id: str | None = None, timestamp: datetime | str | None = None, *,
                   cluster_id: str | None = None, step: Mapping[str, Any] | None = None) -> int:
        """Mark the task running (NQUE on attempt 0, RQUE on a retry), inserting its row if missing.

        Returns the attempt. A row already running is left as it is. ClusterID defaults to the
        Databricks cluster this session runs on, when there is one. ``step``: the task's row as
        ``pending_rows`` just returned it, which spares reading it again. A ``timestamp`` more than
        five minutes in the future is refused.
        """
        key = self._key(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                        processing_date, attempts)
        start = v.optional_past_timestamp("timestamp", timestamp)
        row = self._steps.read(key) if step is None else _step_of(key, step)
        row, _ = self._steps.start(key, row, _source_type(source_type),
                                   v.optional_text("source_run_id", source_run_id),
                                   v.optional_text("cluster_id", cluster_id) or self._databricks_cluster(), start)
        return row["Attempts"]

    def end_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                 sequence_id: int | None, workflow_id: int, processing_date: date | str | None,
                 attempts: int | None = None, status: str = "DONE", log_message: str | None = None,
                 log_type: str | None = None, log_code: str | None = None,
                 timestamp: datetime | str | None = None, *, error_class: str | None = None) -> None:
        """Record DONE or FAIL with EndTime, DurationSeconds and the log fields (idempotent).

        DONE advances the DELTA_DATE watermark named by SourceSystemCode to the task's StartTime;
        FAIL of a mandatory task puts the run's initiation row back to NQUE. ``error_class`` (an
        ErrorClass) goes into the FAIL receipt. A ``timestamp`` more than five minutes in the future
        or before the step's StartTime is refused.
        """
        key = self._key(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                        processing_date, attempts)
        final = v.member("status", status, Status)
        if final not in (Status.DONE, Status.FAIL):
            raise ValidationError("status", final.value, "end_task records DONE or FAIL")
        end = v.optional_past_timestamp("timestamp", timestamp)
        row = self._steps.to_end(key, "call start_task or get_pending_tasks first")
        self._steps.end(row, final, _message(log_message), _log_type(log_type), given("log_code", log_code),
                        _after_start(end, row), _error_class(error_class))

    def fail_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                  sequence_id: int | None, workflow_id: int, processing_date: date | str | None,
                  attempts: int | None = None, log_message: str = "", log_code: str | None = None,
                  timestamp: datetime | str | None = None, *, error_class: str | None = None) -> None:
        """``end_task`` with FAIL and LogType ERROR (the message cut to 2000 characters)."""
        self.end_task(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                      processing_date, attempts, Status.FAIL, log_message, LogType.ERROR, log_code, timestamp,
                      error_class=error_class)

    def retry_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                   sequence_id: int | None, workflow_id: int, processing_date: date | str | None,
                   attempts: int | None = None, log_message: str = "", log_code: str | None = None,
                   timestamp: datetime | str | None = None, *, error_class: str | None = None) -> None:
        """Record a failed try the orchestrator retries in the same execution: RQUE with EndTime,
        LogType WARN and the error (``error_class`` into the receipt). Unlike FAIL it does not reopen
        the run; the next ``start_task`` starts the retry. A row not running is left as it is."""
        key = self._key(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                        processing_date, attempts)
        end = v.optional_past_timestamp("timestamp", timestamp)
        row = self._steps.require(key, "call start_task first")
        self._steps.retry(row, _message(log_message), given("log_code", log_code), _after_start(end, row),
                          _error_class(error_class))

    def record_source_run(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                          sequence_id: int | None, workflow_id: int, processing_date: date | str | None,
                          attempts: int | None = None, *, source_run_id: str | None = None,
                          cluster_id: str | None = None, **details: Any) -> None:
        """Record where a running task's work runs once it is known (a remote run id, its cluster).

        ``details`` (e.g. the run page URL) go into the receipt only. A row not running is left as it is.
        """
        key = self._key(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                        processing_date, attempts)
        self._steps.record_source_run(self._steps.require(key, "call start_task first"),
                                      v.optional_text("source_run_id", source_run_id),
                                      v.optional_text("cluster_id", cluster_id), details)

    def task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
             sequence_id: int | None, workflow_id: int, processing_date: date | str | None = None,
             source_type: str | None = "DBX_NOTEBOOK", log_message: str | None = None,
             log_type: str | None = None, log_code: str | None = None, *, source_run_id: str | None = None,
             cluster_id: str | None = None) -> AbstractContextManager[TaskGuard]:
        """Run a block as the task: skipped (``guard.active`` False) when its status is 'NULL' or when
        another writer holds it (started it, or started first: ``guard.held_by`` says who), else
        started, then DONE with the log fields on a clean exit, or FAIL with the exception's type and
        text on an exception, which is re-raised. ``source_type`` left at the seed's default keeps the
        SourceType the task is registered as."""
        key = self._key(execution_id, project_code, process_load, task_id, sequence_id, workflow_id,
                        processing_date)
        # None keeps the step row's SourceType (its task's, snapshotted at generation): the seed's default
        # alone would write DBX_NOTEBOOK onto every PYTHON or SPARK_SQL task run through the guard.
        kind = None if source_type == SourceType.DBX_NOTEBOOK else _source_type(source_type)
        return self._steps.task(key, kind, v.optional_text("source_run_id", source_run_id),
                                v.optional_text("cluster_id", cluster_id) or self._databricks_cluster(),
                                _message(log_message), _log_type(log_type), given("log_code", log_code))

    def skip_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                  workflow_id: int, sequence_id: int | None, processing_date: date | str | None = None) -> None:
        """Set ForceSkip for this task in this execution only."""
        self._steps.force_skip(self._key(execution_id, project_code, process_load, task_id, sequence_id,
                                         workflow_id, processing_date), True)

    def unskip_task(self, execution_id: str, project_code: str, process_load: str, task_id: int,
                    workflow_id: int, sequence_id: int | None, processing_date: date | str | None = None) -> None:
        """Clear ForceSkip for this task in this execution only."""
        self._steps.force_skip(self._key(execution_id, project_code, process_load, task_id, sequence_id,
                                         workflow_id, processing_date), False)

    # ----------------------------------------------------------------------- watermarks and modes

    def advance_watermark(self, project_code: str, process_load: str, parameter_name: str,
                          new_datetime_value: datetime | str | None = None,
                          new_int_value: int | None = None) -> None:
        """Move a DELTA_ID (``new_int_value``) or override a DELTA_DATE (``new_datetime_value``)."""
        self._parameters.advance(v.text("project_code", project_code), v.text("process_load", process_load),
                                 v.text("parameter_name", parameter_name),
                                 v.optional_timestamp("new_datetime_value", new_datetime_value),
                                 v.optional_integer("new_int_value", new_int_value, minimum=-1))

    def advance_step_watermark(self, step: dict[str, Any], parameter_name: str, *,
                               new_datetime_value: datetime | str | None = None,
                               new_int_value: int | None = None) -> None:
        """``advance_watermark`` by one task of a run (``step``: its row); the receipt names the execution,
        processing date and task that moved it."""
        self._parameters.advance(v.text("project_code", step.get("ProjectCode")),
                                 v.text("process_load", step.get("ProcessLoad")),
                                 v.text("parameter_name", parameter_name),
                                 v.optional_timestamp("new_datetime_value", new_datetime_value),
                                 v.optional_integer("new_int_value", new_int_value, minimum=-1), step=step)

    def get_active_watermark(self, project_code: str, process_load: str,
                             parameter_name: str) -> datetime | int | bool | None:
        """The typed value of the parameter's active column."""
        return self._parameters.active_value(v.text("project_code", project_code),
                                             v.text("process_load", process_load),
                                             v.text("parameter_name", parameter_name))

    def set_processing_mode(self, project_code: str, process_load: str, is_bulk_mode: bool = False,
                            is_historic_mode: bool = False, processing_date: date | str | None = None,
                            parameter_name: str | None = None, value_datetime: datetime | str | None = None,
                            value_int: int | None = None, value_bit: bool | None = None) -> None:
        """Historic (SYSDT = processing_date) or live (SYSDT = NULL); bulk resets every DELTA_DATE to NULL
        and DELTA_ID to 0; with ``parameter_name``, set just the values given of that parameter."""
        values = {"ValueDateTime": v.optional_timestamp("value_datetime", value_datetime),
                  "ValueINT": v.optional_integer("value_int", value_int, minimum=None),
                  "ValueBIT": None if value_bit is None else v.boolean("value_bit", value_bit)}
        self._parameters.set_mode(
            v.text("project_code", project_code), v.text("process_load", process_load),
            v.boolean("is_bulk_mode", is_bulk_mode), v.boolean("is_historic_mode", is_historic_mode),
            v.optional_date("processing_date", processing_date), given("parameter_name", parameter_name),
            {c: x for c, x in values.items() if x is not None})

    # ---------------------------------------------------------------------------- status and replay

    def get_status(self, project_code: str, process_load: str, processing_date: date | str | None = None,
                   execution_id: str | None = None, workflow_id: int | None = None,
                   sequence_id: int | None = None, task_id: int | None = None, attempts: int | None = None,
                   summary_mode: bool = False) -> Any:
        """DataFrame of ``status_rows``."""
        rows = self.status_rows(project_code, process_load, processing_date, execution_id, workflow_id,
                                sequence_id, task_id, attempts, summary_mode)
        return self._frame(rows, _SUMMARY_COLUMNS if summary_mode else _STATUS_COLUMNS)

    def status_rows(self, project_code: str, process_load: str, processing_date: date | str | None = None,
                    execution_id: str | None = None, workflow_id: int | None = None,
                    sequence_id: int | None = None, task_id: int | None = None, attempts: int | None = None,
                    summary_mode: bool = False) -> list[dict[str, Any]]:
        """Task rows (v_taskDetail) filtered by what is given, or with ``summary_mode`` one row per
        (date, attempts). Without a date or execution: the processing date (SYSDT, else today).
        An execution's rows are those of its latest attempt."""
        scope = _scope(project_code, process_load, processing_date, execution_id, workflow_id, sequence_id,
                       task_id, attempts)
        if v.boolean("summary_mode", summary_mode):
            return self._status.summary_rows(scope)
        return self._status.task_rows(scope)

    def status_reset(self, project_code: str, process_load: str, processing_date: date | str | None = None,
                     execution_id: str | None = None, workflow_id: int | None = None,
                     sequence_id: int | None = None, task_id: int | None = None, attempts: int | None = None,
                     remark: str | None = None) -> None:
        """Replay a day: DONE and FAIL rows in scope go to RQUE and ForceSkip is cleared; with an
        execution, its initiation row goes to RQUE too."""
        scope = _scope(project_code, process_load, processing_date, execution_id, workflow_id, sequence_id,
                       task_id, attempts)
        self._status.reset(scope, None if remark == "" else v.optional_text("remark", remark,
                                                                             max_length=MAX_LOG_MESSAGE))

    # ------------------------------------------------------------------------------------- helpers

    def fold(self, yield_to_writers: bool = False) -> FoldReport:
        """Write every transition logged so far into ETLProcessingSteps, ETLconfigParameters and ETLsysLogs
        (which trail the log until then) and remove the folded events from ETLEventLog. The API and the
        views see every transition without it; Dagster runs fold when they end, maintenance runs too.
        With ``yield_to_writers`` a removal that meets a concurrent append is left to the next fold."""
        return fold(self._store, v.boolean("yield_to_writers", yield_to_writers))

    def guide(self) -> None:
        """Print how to use the monitor: the steps of a run and every public method."""
        print(guide_text(ETLMonitorFramework))

    def sample_usage(self, spark: Any) -> str:
        """Copy this package's sample notebooks to the user's workspace folder (or, outside
        Databricks, to ~/etl-monitor-dagster/sample_usage); returns that folder."""
        user = spark.sql("SELECT current_user() AS u").collect()[0]["u"]
        workspace = Path("/Workspace/Users")
        root = workspace / user if workspace.is_dir() else Path.home()
        destination = root / "etl-monitor-dagster" / "sample_usage"
        destination.mkdir(parents=True, exist_ok=True)
        for sample in sorted(SAMPLES.glob("*.py")):
            shutil.copy2(sample, destination / sample.name)
        print(f"Sample notebooks copied to: {destination}")
        return str(destination)

    def _key(self, execution_id: Any, project_code: Any, process_load: Any, task_id: Any, sequence_id: Any,
             workflow_id: Any, processing_date: Any = None, attempts: Any = None) -> StepKey:
        return StepKey(
            v.text("execution_id", execution_id), v.text("project_code", project_code),
            v.text("process_load", process_load), v.integer("task_id", task_id),
            v.optional_integer("workflow_id", workflow_id), v.optional_integer("sequence_id", sequence_id),
            v.optional_date("processing_date", processing_date), v.optional_integer("attempts", attempts),
        )

    def _frame(self, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
        types = [(c, _EXTRA_TYPES.get(c) or S.STEPS.base_type(c)) for c in columns]
        return self.engine.bind(rows, types)

    def _databricks_cluster(self) -> str | None:
        """The Databricks cluster this session runs on (looked up once), else None."""
        if self._cluster_id is False:
            try:
                self._cluster_id = self.spark.conf.get("spark.databricks.clusterUsageTags.clusterId", None)
            except Exception as exc:  # not Databricks: the key does not exist or the conf cannot be read
                if is_connection_loss(exc):  # unknown, not absent: ask again on the next session
                    raise lost_engine(self.spark, exc) from exc
                self._cluster_id = None
        return self._cluster_id if isinstance(self._cluster_id, str) and self._cluster_id else None


def _step_of(key: StepKey, step: Mapping[str, Any]) -> dict[str, Any]:
    """``step`` when it is a row of ``key``'s task (pending_rows' answer), else a ValidationError."""
    given = {f: value for f, value in key.where().items() if value is not None}
    wrong = [f for f, value in given.items() if step.get(f) != value]
    if step.get("Status") == SKIP:
        raise ValidationError("step", step.get("Status"), "pending_rows says this task is not to run")
    if wrong or "Status" not in step:
        raise ValidationError("step", {f: step.get(f) for f in given},
                              f"is not a row of this task ({', '.join(wrong) or 'Status'} differs): "
                              "pass what pending_rows returned for it")
    return dict(step)


def _after_start(end: datetime | None, row: Mapping[str, Any]) -> datetime | None:
    """A given end time, refused when before the step's StartTime (a negative duration)."""
    return None if end is None else v.not_before("timestamp", end, row.get("StartTime"), "the step's StartTime")


def _source_type(value: Any) -> SourceType | None:
    return None if value in (None, "") else v.member("source_type", value, SourceType)


def _log_type(value: Any) -> LogType | None:
    return None if value in (None, "") else v.member("log_type", value, LogType)


def _error_class(value: Any) -> ErrorClass | None:
    return None if value in (None, "") else v.member("error_class", value, ErrorClass)


def _message(value: Any) -> str | None:
    """A log message, scrubbed of credentials (any length: it is cut to 2000 characters when stored);
    '' means none."""
    return None if value in (None, "") else scrub(v.text("log_message", value, max_length=10**9))


def _scope(project_code: Any, process_load: Any, processing_date: Any, execution_id: Any, workflow_id: Any,
           sequence_id: Any, task_id: Any, attempts: Any) -> dict[str, Any]:
    """The validated step filter shared by get_status and status_reset (None = any)."""
    return {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ProcessingDate": v.optional_date("processing_date", processing_date),
        "ExecutionID": given("execution_id", execution_id),
        "WorkFlowID": v.optional_integer("workflow_id", workflow_id),
        "SequenceID": v.optional_integer("sequence_id", sequence_id),
        "TaskID": v.optional_integer("task_id", task_id),
        "Attempts": v.optional_integer("attempts", attempts),
    }
