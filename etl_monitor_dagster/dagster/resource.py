"""The monitor resource: typed config choosing the Spark engine, the SPEC API on top. The Databricks and
Data Factory resources live in ``databricks.py`` and ``adf.py``, so only catalogues with their tasks
import those SDKs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from ..core.cost import DEFAULT_SETTLE_HOURS, BillingTables
from ..core.engine import DEFAULT_UNREACHABLE_TIMEOUT, EngineInfo
from ..core.errors import ValidationError
from ..core.local_spark import DEFAULT_HOME, DEFAULT_PORT, LocalSparkServer
from ..core.monitor import ETLMonitorFramework, TaskGuard
from ..core.monitor.fold import FoldReport
from ..core.schema import BASELINE_RUNS


class SparkEngine(str, Enum):
    """Where the monitor's Spark statements run."""

    EMBEDDED = "embedded"  # the project's own local Spark Connect server with Delta
    CONNECT = "connect"  # any Spark Connect URL: a remote cluster, Databricks
    ACTIVE_SESSION = "active_session"  # the process's active SparkSession (inside Databricks)


class ETLMonitorResource(ConfigurableResource):
    """Tracks ETL tasks in the monitor's Delta tables: the monitor's whole API, on the embedded engine by default.

    >>> from dagster import EnvVar
    >>> ETLMonitorResource()  # embedded local Spark + Delta  # doctest: +SKIP
    >>> ETLMonitorResource(engine="connect", catalog="main", schema_name="etl",
    ...     spark_remote="sc://adb-1.azuredatabricks.net:443/;use_ssl=true;x-databricks-cluster-id=0123",
    ...     spark_token=EnvVar("DATABRICKS_TOKEN"))  # doctest: +SKIP
    """

    engine: SparkEngine = Field(
        default=SparkEngine.EMBEDDED,
        description="embedded: a local Spark Connect server with Delta that the project starts; "
        "connect: the Spark Connect URL in spark_remote; active_session: the SparkSession already "
        "active in this process (Databricks notebooks and jobs).",
    )
    spark_remote: str | None = Field(
        default=None,
        description="Spark Connect URL for engine=connect, e.g. sc://host:15002 or, for Databricks, "
        "sc://<workspace-host>:443/;use_ssl=true;x-databricks-cluster-id=<cluster-id>.",
    )
    spark_token: str | None = Field(
        default=None,
        description="Token appended to spark_remote as ;token=... Pass it with EnvVar, never inline.",
    )
    catalog: str | None = Field(
        default=None,
        description="Unity Catalog catalog of the monitor schema; None for the session catalog.",
    )
    schema_name: str = Field(default="etl", description="Schema holding the eight tables and six views.")
    home: str | None = Field(
        default=None,
        description="engine=embedded: folder for the warehouse, metastore and server logs "
        f"(default {DEFAULT_HOME}).",
    )
    port: int = Field(default=DEFAULT_PORT, description="engine=embedded: port of the local Spark Connect server.")
    unreachable_timeout_seconds: float = Field(
        default=DEFAULT_UNREACHABLE_TIMEOUT, gt=0,
        description="engine=embedded or connect: seconds a call keeps retrying an unreachable Spark Connect "
        "server before it fails with EngineError (default: ETL_MONITOR_UNREACHABLE_TIMEOUT, else 20). Raise it "
        "for a Databricks cluster that must start first.",
    )
    updated_by: str | None = Field(
        default=None, description="Value of CreatedBy/LastUpdatedBy; default: the OS user."
    )
    baseline_runs: int = Field(
        default=BASELINE_RUNS, ge=1, le=1000,
        description="DONE runs a task's duration baseline covers in its health checks (p90, mean + 3 sigma).",
    )

    billing_schema: str | None = Field(
        default=None,
        description="Schema of Databricks' billing tables (usage, list_prices): 'system.billing', or a copy's "
        "'catalog.schema'. Set, the views asset keeps v_runCost and reports each partition's cost; None: no cost.",
    )
    cost_settle_hours: int = Field(
        default=DEFAULT_SETTLE_HOURS, ge=0, le=24 * 366,
        description="Hours after a run ended after which its cost counts as final; until then the views asset "
        "reports it again at every materialisation of a later partition.",
    )

    _monitor: ETLMonitorFramework | None = PrivateAttr(default=None)

    def spark_session(self) -> Any:
        """The SparkSession this configuration names: embedded (started, or started again, if not
        running) and connect sessions are shared in the process and renewed once their server is gone."""
        from pyspark.sql import SparkSession

        from ..core.connect import shared_session

        if self.engine is SparkEngine.EMBEDDED:
            home = Path(self.home) if self.home else DEFAULT_HOME
            return LocalSparkServer(home=home, port=self.port,
                                    unreachable_timeout_seconds=self.unreachable_timeout_seconds).session()
        if self.engine is SparkEngine.CONNECT:
            if not self.spark_remote:
                raise ValidationError("spark_remote", None, "engine=connect needs a Spark Connect URL")
            address = self.spark_remote.split(";")[0].rstrip("/")  # the parameters may hold a token
            return shared_session(self._remote_url(), EngineInfo(
                "the Spark Connect engine (engine=connect)", address, timeout_seconds=self.unreachable_timeout_seconds,
                remedy="Check that the server or cluster is up (its log is on that side); the next call opens a "
                "new session."))
        active = SparkSession.getActiveSession()
        if active is None:
            raise ValidationError("engine", self.engine.value, "no SparkSession is active in this process")
        return active

    def billing_tables(self) -> BillingTables | None:
        """Where v_runCost reads billing from (ValidationError naming billing_schema), or None: no cost view."""
        if not self.billing_schema:
            return None
        return BillingTables(schema_name=self.billing_schema, settle_hours=self.cost_settle_hours)

    def _remote_url(self) -> str:
        url = self.spark_remote or ""
        if not self.spark_token:
            return url
        if "/;" not in url:  # parameters follow the path's "/": sc://host:443/;token=...
            url = url.rstrip("/") + "/"
        return url + ";token=" + self.spark_token

    def get_monitor(self) -> ETLMonitorFramework:
        """The plain monitor object behind this resource: one per process, rebuilt on a new session
        (after its engine was lost or restarted)."""
        spark = self.spark_session()
        if self._monitor is None or self._monitor.spark is not spark:
            self._monitor = ETLMonitorFramework(
                spark, catalog=self.catalog, schema=self.schema_name, updated_by=self.updated_by,
            )
        return self._monitor

    # The monitor's API, method for method (``ETLMonitorFramework`` documents each in full).

    @staticmethod
    def generate_execution_id() -> str:
        """A new execution id (a UUID4 string)."""
        return ETLMonitorFramework.generate_execution_id()

    def setup(self, seed_data: bool = True) -> None:
        """Create (or migrate in place) the eight tables and six views; seed the stages. Idempotent."""
        return self.get_monitor().setup(seed_data)

    def create_views(self) -> None:
        """(Re)create the six monitoring views from their current definitions."""
        return self.get_monitor().create_views()

    def table_name(self, name: str) -> str:
        """The qualified, quoted name of one of the eight tables or six views."""
        return self.get_monitor().table_name(name)

    def seed_sequence_data(self) -> None:
        """Insert the seven built-in stages (0 LOAD_GO ... 6 PROCESS_DATA) that are missing; never overwrites."""
        return self.get_monitor().seed_sequence_data()

    def register_organisation(
        self, organisation_code: str, organisation_name: str, organisation_description: str = "", *,
        is_active: bool | None = None
    ) -> ETLMonitorFramework:
        """Insert or update an organisation in ETLOrganisation (keyed on OrganisationCode)."""
        return self.get_monitor().register_organisation(
            organisation_code, organisation_name, organisation_description, is_active=is_active
        )

    def register_project(
        self, project_code: str, project_name: str, project_description: str = "", organisation_code: str = "", *,
        is_active: bool | None = None
    ) -> ETLMonitorFramework:
        """Insert or update a project in ETLconfigProject (keyed on ProjectCode)."""
        return self.get_monitor().register_project(
            project_code, project_name, project_description, organisation_code, is_active=is_active
        )

    def register_process(
        self, project_code: str, process_load: str, name: str = "", description: str = "", owner: str = "",
        load_frequency: str = "D", *, is_active: bool | None = None
    ) -> ETLMonitorFramework:
        """Insert or update a process in ETLconfigProcess (keyed on ProjectCode, ProcessLoad)."""
        return self.get_monitor().register_process(
            project_code, process_load, name, description, owner, load_frequency, is_active=is_active
        )

    def register_task(
        self, project_code: str, process_load: str, task_id: int, workflow_id: int, sequence_id: int, task_name: str,
        source_type: str = "", source_identifier: str = "", source_system_code: str = "", task_description: str = "",
        load_frequency: str = "D", task_mandatory: bool = True, file_name_mask: str = "", file_extension: str = "",
        in_file_path: str = "", out_file_path: str = "", *, sla_seconds: int | None = None,
        is_active: bool | None = None
    ) -> ETLMonitorFramework:
        """Insert or update a task in ETLconfigTasks (keyed on project, process, WorkFlowID, TaskID)."""
        return self.get_monitor().register_task(
            project_code, process_load, task_id, workflow_id, sequence_id, task_name, source_type, source_identifier,
            source_system_code, task_description, load_frequency, task_mandatory, file_name_mask, file_extension,
            in_file_path, out_file_path, sla_seconds=sla_seconds, is_active=is_active
        )

    def register_parameter(
        self, project_code: str, process_load: str, parameter_name: str, parameter_type: str, description: str = "",
        value_datetime: datetime | date | str | None = None, value_int: int | None = None,
        value_bit: bool | None = None
    ) -> ETLMonitorFramework:
        """Insert a parameter, or update only its description: values never move through here."""
        return self.get_monitor().register_parameter(
            project_code, process_load, parameter_name, parameter_type, description, value_datetime, value_int,
            value_bit
        )

    def register_many(
        self, organisations: Iterable[dict[str, Any]] = (), projects: Iterable[dict[str, Any]] = (),
        processes: Iterable[dict[str, Any]] = (), tasks: Iterable[dict[str, Any]] = (),
        parameters: Iterable[dict[str, Any]] = ()
    ) -> ETLMonitorFramework:
        """Register many entries with one MERGE per table and the checks of ``register_*``."""
        return self.get_monitor().register_many(organisations, projects, processes, tasks, parameters)

    def generate_execution_steps(
        self, execution_id: str, project_code: str, process_load: str, processing_date: date | str | None
    ) -> None:
        """Queue one NQUE row per active task not already DONE in its period (Attempts = previous + 1, or 0)."""
        return self.get_monitor().generate_execution_steps(execution_id, project_code, process_load, processing_date)

    def generate_steps(self, execution_id: str, project_code: str, process_load: str,
                       processing_date: date | str | None) -> list[dict[str, Any]]:
        """``generate_execution_steps``, returning the rows it queued (none when the execution had rows)."""
        return self.get_monitor().generate_steps(execution_id, project_code, process_load, processing_date)

    def with_watermark(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """A row ``generate_steps`` returned, with its task's WatermarkType and WatermarkValue as they are now."""
        return self.get_monitor().with_watermark(step)

    def mandatory_blockers(self, execution_id: str, workflow_id: int | None = None,
                           sequence_id: int | None = None) -> list[dict[str, Any]]:
        """The mandatory steps of this execution (of one stage, given) that stop its later stages."""
        return self.get_monitor().mandatory_blockers(execution_id, workflow_id, sequence_id)

    def get_pending_tasks(
        self, execution_id: str, project_code: str, process_load: str, processing_date: date | str | None = None,
        sequence_id: int | None = None, workflow_id: int | None = None, task_id: int | None = None
    ) -> Any:
        """DataFrame of ``pending_rows``: the runnable steps, or with ``task_id`` exactly one row whose Status is 'NULL'
        when the task must be skipped.
        """
        return self.get_monitor().get_pending_tasks(
            execution_id, project_code, process_load, processing_date, sequence_id, workflow_id, task_id
        )

    def pending_rows(
        self, execution_id: str, project_code: str, process_load: str, processing_date: date | str | None = None,
        sequence_id: int | None = None, workflow_id: int | None = None, task_id: int | None = None
    ) -> list[dict[str, Any]]:
        """``get_pending_tasks`` as a list of dicts (generating the steps first if the execution has none)."""
        return self.get_monitor().pending_rows(
            execution_id, project_code, process_load, processing_date, sequence_id, workflow_id, task_id
        )

    def task_status(
        self, execution_id: str, project_code: str, process_load: str, processing_date: date | str | None = None,
        workflow_id: int | None = None, sequence_id: int | None = None, task_id: int | None = None
    ) -> str:
        """The task's Status in this execution, or 'NULL' when it must be skipped."""
        return self.get_monitor().task_status(
            execution_id, project_code, process_load, processing_date, workflow_id, sequence_id, task_id
        )

    def start_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None, attempts: int | None = None,
        source_type: str | None = "DBX_NOTEBOOK", source_run_id: str | None = None,
        timestamp: datetime | str | None = None, *, cluster_id: str | None = None,
        step: Mapping[str, Any] | None = None
    ) -> int:
        """Mark the task running (NQUE on attempt 0, RQUE on a retry), inserting its row if missing."""
        return self.get_monitor().start_task(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date, attempts,
            source_type, source_run_id, timestamp, cluster_id=cluster_id, step=step
        )

    def end_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None, attempts: int | None = None, status: str = "DONE",
        log_message: str | None = None, log_type: str | None = None, log_code: str | None = None,
        timestamp: datetime | str | None = None, *, error_class: str | None = None
    ) -> None:
        """Record DONE or FAIL with EndTime, DurationSeconds and the log fields (idempotent)."""
        return self.get_monitor().end_task(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date, attempts,
            status, log_message, log_type, log_code, timestamp, error_class=error_class
        )

    def fail_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None, attempts: int | None = None, log_message: str = "",
        log_code: str | None = None, timestamp: datetime | str | None = None, *, error_class: str | None = None
    ) -> None:
        """``end_task`` with FAIL and LogType ERROR (the message cut to 2000 characters)."""
        return self.get_monitor().fail_task(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date, attempts,
            log_message, log_code, timestamp, error_class=error_class
        )

    def retry_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None, attempts: int | None = None, log_message: str = "",
        log_code: str | None = None, timestamp: datetime | str | None = None, *, error_class: str | None = None
    ) -> None:
        """Record a failed try the orchestrator retries in the same execution: RQUE with EndTime, LogType WARN and the
        error (``error_class`` into the receipt). Unlike FAIL it does not reopen the run; the next ``start_task``
        starts the retry. A row not running is left as it is.
        """
        return self.get_monitor().retry_task(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date, attempts,
            log_message, log_code, timestamp, error_class=error_class
        )

    def record_source_run(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None, attempts: int | None = None, *,
        source_run_id: str | None = None, cluster_id: str | None = None, **details: Any
    ) -> None:
        """Record where a running task's work runs once it is known (a remote run id, its cluster)."""
        return self.get_monitor().record_source_run(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date, attempts,
            source_run_id=source_run_id, cluster_id=cluster_id, **details
        )

    def task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, sequence_id: int | None,
        workflow_id: int, processing_date: date | str | None = None, source_type: str | None = "DBX_NOTEBOOK",
        log_message: str | None = None, log_type: str | None = None, log_code: str | None = None, *,
        source_run_id: str | None = None, cluster_id: str | None = None
    ) -> AbstractContextManager[TaskGuard]:
        """Run a block as the task: skipped (``guard.active`` False) when its status is 'NULL', else started, then DONE
        with the log fields on a clean exit, or FAIL with the exception's type and text on an exception, which is re-
        raised.
        """
        return self.get_monitor().task(
            execution_id, project_code, process_load, task_id, sequence_id, workflow_id, processing_date,
            source_type, log_message, log_type, log_code, source_run_id=source_run_id, cluster_id=cluster_id
        )

    def skip_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, workflow_id: int,
        sequence_id: int | None, processing_date: date | str | None = None
    ) -> None:
        """Set ForceSkip for this task in this execution only."""
        return self.get_monitor().skip_task(
            execution_id, project_code, process_load, task_id, workflow_id, sequence_id, processing_date
        )

    def unskip_task(
        self, execution_id: str, project_code: str, process_load: str, task_id: int, workflow_id: int,
        sequence_id: int | None, processing_date: date | str | None = None
    ) -> None:
        """Clear ForceSkip for this task in this execution only."""
        return self.get_monitor().unskip_task(
            execution_id, project_code, process_load, task_id, workflow_id, sequence_id, processing_date
        )

    def advance_watermark(
        self, project_code: str, process_load: str, parameter_name: str,
        new_datetime_value: datetime | str | None = None, new_int_value: int | None = None
    ) -> None:
        """Move a DELTA_ID (``new_int_value``) or override a DELTA_DATE (``new_datetime_value``)."""
        return self.get_monitor().advance_watermark(
            project_code, process_load, parameter_name, new_datetime_value, new_int_value
        )

    def advance_step_watermark(self, step: dict[str, Any], parameter_name: str, *,
                               new_datetime_value: datetime | str | None = None,
                               new_int_value: int | None = None) -> None:
        """``advance_watermark`` by one task of a run (``step``: its row); the receipt names the execution,
        processing date and task that moved it."""
        return self.get_monitor().advance_step_watermark(step, parameter_name, new_datetime_value=new_datetime_value,
                                                         new_int_value=new_int_value)

    def get_active_watermark(
        self, project_code: str, process_load: str, parameter_name: str
    ) -> datetime | int | bool | None:
        """The typed value of the parameter's active column."""
        return self.get_monitor().get_active_watermark(project_code, process_load, parameter_name)

    def set_processing_mode(
        self, project_code: str, process_load: str, is_bulk_mode: bool = False, is_historic_mode: bool = False,
        processing_date: date | str | None = None, parameter_name: str | None = None,
        value_datetime: datetime | str | None = None, value_int: int | None = None, value_bit: bool | None = None
    ) -> None:
        """Historic (SYSDT = processing_date) or live (SYSDT = NULL); bulk resets every DELTA_DATE to NULL and DELTA_ID
        to 0; with ``parameter_name``, set just the values given of that parameter.
        """
        return self.get_monitor().set_processing_mode(
            project_code, process_load, is_bulk_mode, is_historic_mode, processing_date, parameter_name,
            value_datetime, value_int, value_bit
        )

    def get_status(
        self, project_code: str, process_load: str, processing_date: date | str | None = None,
        execution_id: str | None = None, workflow_id: int | None = None, sequence_id: int | None = None,
        task_id: int | None = None, attempts: int | None = None, summary_mode: bool = False
    ) -> Any:
        """DataFrame of ``status_rows``."""
        return self.get_monitor().get_status(
            project_code, process_load, processing_date, execution_id, workflow_id, sequence_id, task_id, attempts,
            summary_mode
        )

    def status_rows(
        self, project_code: str, process_load: str, processing_date: date | str | None = None,
        execution_id: str | None = None, workflow_id: int | None = None, sequence_id: int | None = None,
        task_id: int | None = None, attempts: int | None = None, summary_mode: bool = False
    ) -> list[dict[str, Any]]:
        """Task rows (v_taskDetail) filtered by what is given, or with ``summary_mode`` one row per (date, attempts).
        Without a date or execution: the processing date (SYSDT, else today). An execution's rows are those of its
        latest attempt.
        """
        return self.get_monitor().status_rows(
            project_code, process_load, processing_date, execution_id, workflow_id, sequence_id, task_id, attempts,
            summary_mode
        )

    def status_reset(
        self, project_code: str, process_load: str, processing_date: date | str | None = None,
        execution_id: str | None = None, workflow_id: int | None = None, sequence_id: int | None = None,
        task_id: int | None = None, attempts: int | None = None, remark: str | None = None
    ) -> None:
        """Replay a day: DONE and FAIL rows in scope go to RQUE and ForceSkip is cleared; with an execution, its
        initiation row goes to RQUE too.
        """
        return self.get_monitor().status_reset(
            project_code, process_load, processing_date, execution_id, workflow_id, sequence_id, task_id, attempts,
            remark
        )

    def read_view(self, view: str, order_by: list[str] | None = None, **equals: Any) -> list[dict[str, Any]]:
        """Rows of one monitoring view whose columns equal the given values (None = any)."""
        return self.get_monitor().read_view(view, order_by, **equals)

    def read_process_views(self, project_code: str, process_load: str,
                           reads: Mapping[str, tuple[list[str], dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Several monitoring views' rows of one process at one moment, over one fold of the event log."""
        return self.get_monitor().read_process_views(project_code, process_load, reads)

    def fold(self, yield_to_writers: bool = False) -> FoldReport:
        """Write every transition logged so far into the tables that trail the event log; returns what it wrote."""
        return self.get_monitor().fold(yield_to_writers)

    def guide(self) -> None:
        """Print how to use the monitor: the steps of a run and every public method."""
        return self.get_monitor().guide()

    def sample_usage(self, spark: Any) -> str:
        """Copy this package's sample notebooks to the user's workspace folder (or, outside
        Databricks, to ~/etl-monitor-dagster/sample_usage); returns that folder."""
        return self.get_monitor().sample_usage(spark)
