"""ADF_PIPELINE and DATAFLOW tasks: an Azure Data Factory pipeline run, created and polled to its end.

Knows nothing of Dagster: a ``TaskRun`` carries a ``DataFactory`` (a credential, the management
endpoint, the poll interval). SourceIdentifier is the pipeline name; the factory (subscription,
resource group, name) comes from the task or its process in the catalogue. A DATAFLOW task runs the
pipeline that executes its mapping data flow; with ``dataflow`` in the catalogue, SourceIdentifier is a
wrapper pipeline that takes the data flow's name as its parameter ``dataflow_name``.

The run's context goes as pipeline parameters, named like the fields of SPARK_SQL's ``etl``
variable (execution_id, project_code, process_load, task_id, workflow_id, processing_date,
attempts, watermark_value, watermark_type, full_file_name, in_file_path, out_file_path), but only
those the pipeline declares. The ADF run id becomes SourceRunID (with a receipt) as soon as ADF
names it; while the run is going its row gets a HEARTBEAT with the run's status every
``heartbeat_interval_seconds``. A run that ends other than Succeeded raises ``TaskFailed`` with ADF's error code and
message and the failed activities' errors; past ``timeout_minutes``, or on an interrupt (Dagster
terminating the run), the pipeline run is cancelled first.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.mgmt.datafactory import DataFactoryManagementClient
from azure.mgmt.datafactory.models import ActivityRun, PipelineRun, RunFilterParameters

from ..core.catalogue import FactorySpec
from ..core.error_class import ErrorClass, classify_adf, classify_code
from ..core.monitor.health import DEFAULT_HEARTBEAT_SECONDS, Heartbeat
from ..core.runs import TaskFailed, TaskResult, TaskRun

PUBLIC_CLOUD = "https://management.azure.com"
DATAFLOW_PARAMETER = "dataflow_name"
_RUNNING = {"Queued", "InProgress", "Canceling"}
_CANCEL_SECONDS = 60  # the whole cancel request, retries included (the SDK's default is days)


@dataclass(frozen=True)
class DataFactory:
    """How to reach Azure Data Factory: a credential, the management endpoint, the poll interval."""

    credential: TokenCredential
    endpoint: str = PUBLIC_CLOUD
    poll_interval_seconds: float = 15.0
    heartbeat_interval_seconds: float = DEFAULT_HEARTBEAT_SECONDS  # how often a polled run's row gets a HEARTBEAT

    def client(self, subscription_id: str) -> DataFactoryManagementClient:
        return DataFactoryManagementClient(self.credential, subscription_id, base_url=self.endpoint,
                                           credential_scopes=[f"{self.endpoint.rstrip('/')}/.default"])


@dataclass(frozen=True)
class _Pipeline:
    """One pipeline of one factory, and the client that reaches it."""

    client: DataFactoryManagementClient
    factory: FactorySpec
    name: str

    def monitor_url(self, run_id: str) -> str:
        f = self.factory
        return (f"https://adf.azure.com/en/monitoring/pipelineruns/{run_id}?factory=/subscriptions/"
                f"{f.subscription_id}/resourceGroups/{f.resource_group}/providers/Microsoft.DataFactory/"
                f"factories/{f.name}")


def run_pipeline(run: TaskRun) -> TaskResult:
    """ADF_PIPELINE and DATAFLOW: create a run with the declared parameters and follow it to its end."""
    target = _target(run)
    factory = run.task.factory or run.process.factory
    if factory is None or not run.task.source:  # the catalogue refuses both; a hand-made TaskSpec may not
        raise TaskFailed(f"{run.task.source_type.value} task {run.task.name!r} needs a pipeline name and a "
                         "factory", "NO_FACTORY", error_class=ErrorClass.CONFIGURATION)
    pipeline = _Pipeline(target.client(factory.subscription_id), factory, run.task.source)
    parameters = _parameters(run, pipeline)
    try:
        run_id = pipeline.client.pipelines.create_run(factory.resource_group, factory.name, pipeline.name,
                                                      parameters=parameters).run_id
    except HttpResponseError as exc:
        raise _failed(f"ADF could not start pipeline {pipeline.name!r}", exc) from exc
    url = pipeline.monitor_url(run_id)
    run.log.info(f"{run.task.name}: ADF pipeline run {run_id} created {url}")
    info, polls = _follow(run, target, pipeline, run_id, url)
    return _outcome(run, pipeline, info, polls, url)


def _target(run: TaskRun) -> DataFactory:
    if not isinstance(run.adf, DataFactory):
        raise TaskFailed(f"{run.task.source_type.value} task {run.task.name!r} needs an Azure Data Factory "
                         "client: configure the 'adf' resource", "NO_ADF", error_class=ErrorClass.CONFIGURATION)
    return run.adf


def _parameters(run: TaskRun, pipeline: _Pipeline) -> dict[str, Any]:
    """The run's context, limited to what the pipeline declares (ADF refuses undeclared parameters)."""
    f = pipeline.factory
    try:
        resource = pipeline.client.pipelines.get(f.resource_group, f.name, pipeline.name)
        declared = set((resource.parameters if resource else None) or {})
    except HttpResponseError as exc:
        raise _failed(f"ADF pipeline {pipeline.name!r} of factory {f.name!r} cannot be read", exc) from exc
    parameters: dict[str, Any] = {k: v for k, v in run.parameters().items() if k in declared}
    if run.task.dataflow:
        if DATAFLOW_PARAMETER not in declared:
            raise TaskFailed(f"pipeline {pipeline.name!r} declares no parameter {DATAFLOW_PARAMETER!r} to take the "
                             f"data flow {run.task.dataflow!r}", "ADF_PARAMETER",
                             error_class=ErrorClass.CONFIGURATION)
        parameters[DATAFLOW_PARAMETER] = run.task.dataflow
    return parameters


def _follow(run: TaskRun, target: DataFactory, pipeline: _Pipeline, run_id: str,
            url: str) -> tuple[PipelineRun, int]:
    """Record the run in the monitor and poll it to its end; cancel it when we stop waiting (deadline,
    interrupt, lost connection), from the moment it exists."""
    f, started = pipeline.factory, time.monotonic()
    deadline = None if run.task.timeout_minutes is None else run.task.timeout_minutes * 60
    try:
        run.monitor.record_source_run(run.execution_id, run.process.project, run.process.process,
                                      task_id=run.task.id, sequence_id=run.task.stage, workflow_id=run.task.workflow,
                                      processing_date=run.processing_date, source_run_id=run_id, run_page_url=url)
        info, polls = pipeline.client.pipeline_runs.get(f.resource_group, f.name, run_id), 1
        beat = Heartbeat(run.monitor.health, run.key(), target.heartbeat_interval_seconds, run.log)
        while info.status in _RUNNING or info.status is None:
            beat(info.status or "Unknown", source_run_id=run_id)
            if deadline is not None and time.monotonic() - started > deadline:
                raise TaskFailed(f"ADF pipeline run {run_id} did not end within {round(deadline)} s "
                                 f"(timeout_minutes={run.task.timeout_minutes}); cancelled. "
                                 f"{pipeline.monitor_url(run_id)}", "TIMEDOUT", error_class=ErrorClass.TIMEOUT)
            time.sleep(target.poll_interval_seconds)
            run.stop_if_asked()
            previous = info.status
            info, polls = pipeline.client.pipeline_runs.get(f.resource_group, f.name, run_id), polls + 1
            if info.status != previous:
                run.log.info(f"{run.task.name}: ADF pipeline run {run_id} {info.status}")
    except BaseException:
        run.cancel_remote(f"ADF pipeline run {run_id}", lambda: pipeline.client.pipeline_runs.cancel(
            f.resource_group, f.name, run_id, is_recursive=True, timeout=_CANCEL_SECONDS, read_timeout=_CANCEL_SECONDS))
        raise
    return info, polls


def _outcome(run: TaskRun, pipeline: _Pipeline, info: PipelineRun, polls: int, url: str) -> TaskResult:
    activities = _activities(pipeline, info.run_id or "")
    failed = [(a.activity_name, a.error) for a in activities
              if isinstance(a.error, dict) and (a.error.get("message") or a.error.get("errorCode"))]
    errors = [f"{name}: {error.get('errorCode') or ''} {error.get('message') or ''}".strip() for name, error in failed]
    figures: dict[str, Any] = {"adf_run_id": info.run_id, "adf_monitor_url": url, "adf_status": info.status,
                               "adf_polls": polls}
    if info.duration_in_ms is not None:
        figures["adf_run_seconds"] = round(info.duration_in_ms / 1000, 3)
    if errors:
        figures["adf_activity_errors"] = " | ".join(errors)
    if info.status != "Succeeded":
        first = next((error for _, error in failed if error.get("errorCode")), None)
        code = first["errorCode"] if first else f"ADF_{(info.status or 'UNKNOWN').upper()}"
        # the activity's code when known, else who ADF says failed (failureType: UserError, SystemError)
        error_class = classify_adf(str(code), first.get("failureType")) if first else classify_code(code)
        if info.status == "Cancelled":
            error_class = ErrorClass.CANCELED
        raise TaskFailed(" | ".join([f"ADF pipeline run {info.run_id} {info.status}: {info.message or 'no message'}",
                                     *errors, url]), str(code), error_class=error_class)
    rows_read, rows_written = _dataflow_rows(activities)
    return TaskResult(rows_read=rows_read, rows_written=rows_written, metadata=figures)


def _activities(pipeline: _Pipeline, run_id: str) -> list[ActivityRun]:
    """The run's activity runs (errors, data flow figures); an empty list if ADF will not say."""
    f, now = pipeline.factory, dt.datetime.now(dt.UTC)
    window = RunFilterParameters(last_updated_after=now - dt.timedelta(days=2), last_updated_before=now
                                 + dt.timedelta(days=1))
    try:
        return list(pipeline.client.activity_runs.query_by_pipeline_run(
            f.resource_group, f.name, run_id, window).value or [])
    except HttpResponseError:
        return []


def _dataflow_rows(activities: list[ActivityRun]) -> tuple[int | None, int | None]:
    """Rows read and written by the run's data flows, from ``output.runStatus.metrics`` when ADF reports them."""
    read = written = None
    for activity in activities:
        metrics = ((activity.output or {}).get("runStatus") or {}).get("metrics") if isinstance(
            activity.output, dict) else None
        for sink in (metrics or {}).values():
            if sink.get("rowsWritten") is not None:
                written = (written or 0) + int(sink["rowsWritten"])
            for source in (sink.get("sources") or {}).values():
                if source.get("rowsRead") is not None:
                    read = (read or 0) + int(source["rowsRead"])
    return read, written


def _failed(what: str, exc: HttpResponseError) -> TaskFailed:
    code = (exc.error.code if exc.error else None) or f"HTTP_{exc.status_code}"
    return TaskFailed(f"{what}: {exc.error.message if exc.error else exc.message}", str(code))
