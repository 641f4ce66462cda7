"""The project's Dagster resources: the monitor (typed config choosing the Spark engine, the SPEC API on
top) and the Databricks client that runs DBX_NOTEBOOK and DBX_JOB tasks."""

from __future__ import annotations

import functools
import os
from enum import Enum
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from dagster_databricks import DatabricksClientResource
from dagster_databricks.resources import OauthCredentials
from pydantic import Field, PrivateAttr

from .databricks_tasks import Databricks
from .errors import ValidationError
from .local_spark import DEFAULT_HOME, DEFAULT_PORT, LocalSparkServer
from .monitor import ETLMonitorFramework


class SparkEngine(str, Enum):
    """Where the monitor's Spark statements run."""

    EMBEDDED = "embedded"  # the project's own local Spark Connect server with Delta
    CONNECT = "connect"  # any Spark Connect URL: a remote cluster, Databricks
    ACTIVE_SESSION = "active_session"  # the process's active SparkSession (inside Databricks)


class ETLMonitorResource(ConfigurableResource):
    """Tracks ETL tasks in the monitor's Delta tables; every method of SPEC.md is available on it.

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
    updated_by: str | None = Field(
        default=None, description="Value of CreatedBy/LastUpdatedBy; default: the OS user."
    )

    _monitor: ETLMonitorFramework | None = PrivateAttr(default=None)

    def spark_session(self) -> Any:
        """The SparkSession this configuration names (starting the embedded server if needed)."""
        from pyspark.sql import SparkSession

        if self.engine is SparkEngine.EMBEDDED:
            home = Path(self.home) if self.home else DEFAULT_HOME
            return LocalSparkServer(home=home, port=self.port).session()
        if self.engine is SparkEngine.CONNECT:
            if not self.spark_remote:
                raise ValidationError("spark_remote", None, "engine=connect needs a Spark Connect URL")
            return SparkSession.builder.remote(self._remote_url()).getOrCreate()
        active = SparkSession.getActiveSession()
        if active is None:
            raise ValidationError("engine", self.engine.value, "no SparkSession is active in this process")
        return active

    def _remote_url(self) -> str:
        url = self.spark_remote or ""
        if not self.spark_token:
            return url
        if "/;" not in url:  # parameters follow the path's "/": sc://host:443/;token=...
            url = url.rstrip("/") + "/"
        return url + ";token=" + self.spark_token

    def get_monitor(self) -> ETLMonitorFramework:
        """The plain monitor object behind this resource (created once per process)."""
        if self._monitor is None:
            self._monitor = ETLMonitorFramework(
                self.spark_session(), catalog=self.catalog, schema=self.schema_name,
                updated_by=self.updated_by,
            )
        return self._monitor


class DatabricksResource(DatabricksClientResource):
    """dagster-databricks' client resource, plus how often DBX task runs are polled.

    Give credentials with ``EnvVar`` only (``databricks_from_env`` does): a personal access token in
    ``token``, or a service principal in ``oauth_credentials``. They never reach logs or metadata.
    """

    poll_interval_seconds: float = Field(default=10.0, gt=0, description="Seconds between two runs/get calls "
                                         "while a DBX task's Databricks run is going.")

    def target(self) -> Databricks:
        return Databricks(self.get_client().workspace_client, self.poll_interval_seconds)


def databricks_from_env(poll_interval_seconds: float = 10.0) -> DatabricksResource:
    """The Databricks resource from the usual variables: DATABRICKS_HOST with DATABRICKS_TOKEN, or with
    DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (OAuth machine-to-machine) when the id is set.

    Only the choice between the two is made at load; the values are read when a run starts.
    """
    if os.environ.get("DATABRICKS_CLIENT_ID"):
        credentials = {"oauth_credentials": OauthCredentials(client_id=EnvVar("DATABRICKS_CLIENT_ID"),
                                                             client_secret=EnvVar("DATABRICKS_CLIENT_SECRET"))}
    else:
        credentials = {"token": EnvVar("DATABRICKS_TOKEN")}
    return DatabricksResource(host=EnvVar("DATABRICKS_HOST"), poll_interval_seconds=poll_interval_seconds,
                              **credentials)


API = (
    "setup", "seed_sequence_data", "register_organisation", "register_project", "register_process",
    "register_task", "register_parameter", "register_many", "generate_execution_steps", "get_pending_tasks",
    "pending_rows", "task_status", "start_task", "end_task", "fail_task", "retry_task", "record_source_run",
    "task", "skip_task", "unskip_task", "advance_watermark", "get_active_watermark", "set_processing_mode",
    "get_status", "status_rows", "status_reset", "guide", "sample_usage",
)


def _forward(name: str):
    method = getattr(ETLMonitorFramework, name)

    @functools.wraps(method)
    def call(self: ETLMonitorResource, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.get_monitor(), name)(*args, **kwargs)

    return call


for _name in API:
    setattr(ETLMonitorResource, _name, _forward(_name))
ETLMonitorResource.generate_execution_id = staticmethod(ETLMonitorFramework.generate_execution_id)
