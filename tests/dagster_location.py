"""The code location the run tests execute (tests/catalogue against the test run's Spark server and
the fake Databricks API), and how they launch it.

Importable by module name, so Dagster's step processes can rebuild the jobs.
"""

from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EnvVar,
    JobDefinition,
    build_run_status_sensor_context,
    execute_job,
    reconstructable,
)

from etl_monitor_dagster import DatabricksResource, ETLMonitorFramework, ETLMonitorResource
from etl_monitor_dagster.dagster.definitions import build_definitions
from etl_monitor_dagster.dagster.resource import AzureDataFactoryResource

CATALOGUE = Path(__file__).parent / "catalogue"
REMOTE_ENV = "ETL_TEST_SPARK_REMOTE"
DATABRICKS_HOST_ENV, DATABRICKS_TOKEN_ENV = "ETL_TEST_DATABRICKS_HOST", "ETL_TEST_DATABRICKS_TOKEN"
ADF_URL_ENV = "ETL_TEST_ADF_URL"  # the fake's base URL: management endpoint and authority host
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def definitions() -> Definitions:
    monitor = ETLMonitorResource(engine="connect", spark_remote=EnvVar(REMOTE_ENV), schema_name="etl_test",
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
