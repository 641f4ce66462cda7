"""The code location the run tests execute (tests/catalogue against the test run's Spark server and
the fake Databricks API), and how they launch it.

Importable by module name, so Dagster's step processes can rebuild the jobs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetObservation,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    EnvVar,
    JobDefinition,
    RunsFilter,
    build_run_status_sensor_context,
    build_sensor_context,
    execute_job,
    reconstructable,
)

from etl_monitor_dagster import DatabricksResource, ETLMonitorFramework, ETLMonitorResource
from etl_monitor_dagster.dagster.adf import AzureDataFactoryResource
from etl_monitor_dagster.dagster.definitions import build_definitions

CATALOGUE = Path(__file__).parent / "catalogue"
REMOTE_ENV = "ETL_TEST_SPARK_REMOTE"
DATABRICKS_HOST_ENV, DATABRICKS_TOKEN_ENV = "ETL_TEST_DATABRICKS_HOST", "ETL_TEST_DATABRICKS_TOKEN"
ADF_URL_ENV = "ETL_TEST_ADF_URL"  # the fake's base URL: management endpoint and authority host
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
# The monitor's schema: one per pytest-xdist worker on the shared engine (step processes inherit the variable).
SCHEMA = "_".join(filter(None, ("etl_test", os.environ.get("PYTEST_XDIST_WORKER"))))


def definitions() -> Definitions:
    monitor = ETLMonitorResource(engine="connect", spark_remote=EnvVar(REMOTE_ENV), schema_name=SCHEMA,
                                 updated_by="pytest")
    databricks = DatabricksResource(host=EnvVar(DATABRICKS_HOST_ENV), token=EnvVar(DATABRICKS_TOKEN_ENV),
                                    poll_interval_seconds=0.2)
    adf = AzureDataFactoryResource(management_endpoint=EnvVar(ADF_URL_ENV), authority_host=EnvVar(ADF_URL_ENV),
                                   poll_interval_seconds=0.2)
    return build_definitions(CATALOGUE, monitor=monitor, databricks=databricks, adf=adf)


def checkout_job() -> JobDefinition:
    return definitions().resolve_job_def("checkout")


def hookless_job() -> JobDefinition:
    return definitions().resolve_job_def("hookless")


def lakehouse_job() -> JobDefinition:
    return definitions().resolve_job_def("lakehouse")


def factory_job() -> JobDefinition:
    return definitions().resolve_job_def("factory")


def launch(job, instance: DagsterInstance, day: str, **kwargs) -> tuple[bool, str]:
    """Run a job's partition on the instance: (success, run id)."""
    with execute_job(reconstructable(job), instance, tags={"dagster/partition": day}, **kwargs) as result:
        return result.success, result.run_id


def rows(monitor: ETLMonitorFramework, process: str, run_id: str) -> dict[str, dict]:
    """The run's monitor rows of a QA process, by task name."""
    return {r["TaskName"]: r for r in monitor.status_rows("QA", process, execution_id=run_id)}


def evaluate_reconciliation(instance: DagsterInstance, run_id: str, ended: DagsterEventType) -> None:
    """What the daemon does when the run ends: the reconciliation sensor of its final status
    (RUN_SUCCESS, RUN_FAILURE or RUN_CANCELED) evaluated for it."""
    defs = definitions()
    sensor = defs.get_repository_def().get_sensor_def(
        "etl_monitor_reconcile_" + ended.value.removeprefix("PIPELINE_").removeprefix("RUN_").lower())
    (event,) = instance.all_logs(run_id, of_type=ended)
    sensor(build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=instance.get_run_by_id(run_id),
        dagster_event=event.dagster_event, resources={"monitor": defs.resources["monitor"]}))


def tick_run_sensor(instance: DagsterInstance, ended: str, cursor: str | None) -> str:
    """One daemon tick of a reconciliation sensor (``ended``: success, failure or canceled) from
    ``cursor``, as after a downtime; returns the new cursor (the first tick only sets one)."""
    defs = definitions()
    sensor = defs.get_repository_def().get_sensor_def(f"etl_monitor_reconcile_{ended}")
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"monitor": defs.resources["monitor"]})
    result = sensor.evaluate_tick(context)
    assert result.cursor is not None
    return result.cursor


def observations(instance: DagsterInstance, key: AssetKey) -> list[AssetObservation]:
    """The asset's latest observations, newest first."""
    return [r.event_log_entry.asset_observation for r in instance.fetch_observations(key, limit=50).records]


def latest_checks(instance: DagsterInstance, key: AssetKey) -> dict[str, AssetCheckEvaluation]:
    """The latest evaluation of each task health check of the asset."""
    keys = [AssetCheckKey(key, name) for name in ("failure_streak", "duration_baseline")]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {k.name: r.event.dagster_event.event_specific_data for k, r in latest.items() if r.event}


@dataclass
class RecordedRun:
    """A finished run of a QA process: its outcome, monitor rows by task name and receipts in order."""

    success: bool
    run_id: str
    rows: dict[str, dict]
    receipts: list[dict]  # ETLsysLogs messages of the run, in order

    def receipts_of(self, task_id: int) -> list[dict]:
        """The task's receipts but its heartbeats (``heartbeats_of``), which come as often as it polls."""
        return [r for r in self.receipts if r.get("task_id") == task_id and r.get("event_type") != "HEARTBEAT"]

    def heartbeats_of(self, task_id: int) -> list[dict]:
        return [r for r in self.receipts if r.get("task_id") == task_id and r.get("event_type") == "HEARTBEAT"]


def launch_and_record(job, instance: DagsterInstance, monitor: ETLMonitorFramework, process: str,
                      day: str) -> RecordedRun:
    """Run one partition in process and read back what the monitor holds for it."""
    success, run_id = launch(job, instance, day, run_config=IN_PROCESS)
    logs = monitor.spark.table(monitor.table_name("v_liveLogs"))
    messages = logs.where(logs["ExecutionID"] == run_id).orderBy("LogOrder").select("Message").collect()
    return RecordedRun(success, run_id, rows(monitor, process, run_id), [json.loads(m[0]) for m in messages])


def materialization(instance: DagsterInstance, run_id: str, process: str, name: str) -> dict:
    """The metadata of the run's materialisation of ``qa/<process>/<name>``."""
    (event,) = [e for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
                if e.dagster_event.asset_key == AssetKey(["qa", process, name])]
    return event.dagster_event.step_materialization_data.materialization.metadata


def terminate_while_running(instance: DagsterInstance, job: str, asset: list[str], day: str,
                            running: Callable[[], bool], interrupt: bool = True) -> DagsterRun:
    """Run one asset's partition in a worker process and, once ``running()``, terminate the run as the
    UI's Terminate does (report CANCELING, then interrupt the worker; without ``interrupt`` the signal
    is lost, as one handled inside a garbage-collector callback is); returns the run once the worker ended."""
    launcher = ("from dagster import AssetKey, DagsterInstance, execute_job, reconstructable\n"
                f"from tests.dagster_location import IN_PROCESS, {job}\n"
                "with DagsterInstance.get() as instance:\n"
                f"    execute_job(reconstructable({job}), instance, run_config=IN_PROCESS,\n"
                f"                tags={{'dagster/partition': {day!r}}}, asset_selection=[AssetKey({asset!r})])\n")
    worker = subprocess.Popen([sys.executable, "-c", launcher], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 180
        while not running():
            assert worker.poll() is None and time.monotonic() < deadline, "the task's remote run never started"
            time.sleep(0.2)
        (started,) = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        instance.report_run_canceling(started)
        if interrupt:
            worker.send_signal(signal.SIGINT)
        worker.wait(timeout=120)
    finally:
        worker.kill()
    return started
