"""The code location of the pool test (tests/pools_catalogue), importable by module name so that Dagster's
step processes can rebuild its job."""

from pathlib import Path

from dagster import Definitions, EnvVar, JobDefinition

from etl_monitor_dagster import DatabricksResource, ETLMonitorResource
from etl_monitor_dagster.dagster.definitions import build_definitions
from tests.dagster_location import DATABRICKS_HOST_ENV, DATABRICKS_TOKEN_ENV, REMOTE_ENV, SCHEMA

CATALOGUE = Path(__file__).parent / "pools_catalogue"


def definitions() -> Definitions:
    monitor = ETLMonitorResource(engine="connect", spark_remote=EnvVar(REMOTE_ENV), schema_name=SCHEMA,
                                 updated_by="pytest")
    databricks = DatabricksResource(host=EnvVar(DATABRICKS_HOST_ENV), token=EnvVar(DATABRICKS_TOKEN_ENV),
                                    poll_interval_seconds=0.2)
    return build_definitions(CATALOGUE, monitor=monitor, databricks=databricks)


def wide_job() -> JobDefinition:
    return definitions().resolve_job_def("wide")
