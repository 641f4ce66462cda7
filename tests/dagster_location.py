"""The code location the run tests execute: tests/catalogue against the test run's Spark server.

Importable by module name, so Dagster's step processes can rebuild the jobs.
"""

from pathlib import Path

from dagster import Definitions, EnvVar, JobDefinition

from etl_monitor_dagster import ETLMonitorResource
from etl_monitor_dagster.location import build_definitions

CATALOGUE = Path(__file__).parent / "catalogue"
REMOTE_ENV = "ETL_TEST_SPARK_REMOTE"


def definitions() -> Definitions:
    monitor = ETLMonitorResource(engine="connect", spark_remote=EnvVar(REMOTE_ENV), schema_name="etl_test",
                                 updated_by="pytest")
    return build_definitions(CATALOGUE, monitor=monitor)


def checkout_job() -> JobDefinition:
    return definitions().resolve_job_def("checkout")


def hookless_job() -> JobDefinition:
    return definitions().resolve_job_def("hookless")
