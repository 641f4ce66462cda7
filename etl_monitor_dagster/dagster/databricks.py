"""The Databricks resource: runs DBX_NOTEBOOK and DBX_JOB tasks through dagster-databricks' client."""

from __future__ import annotations

import os

from dagster import EnvVar
from dagster_databricks import DatabricksClientResource
from dagster_databricks.resources import OauthCredentials
from pydantic import Field

from ..core.monitor.health import DEFAULT_HEARTBEAT_SECONDS
from ..tasks.databricks import Databricks


class DatabricksResource(DatabricksClientResource):
    """dagster-databricks' client resource, plus how often DBX task runs are polled.

    Give credentials with ``EnvVar`` only (``databricks_from_env`` does): a personal access token in
    ``token``, or a service principal in ``oauth_credentials``. They never reach logs or metadata.
    """

    poll_interval_seconds: float = Field(default=10.0, gt=0, description="Seconds between two runs/get calls "
                                         "while a DBX task's Databricks run is going.")

    heartbeat_interval_seconds: float = Field(
        default=DEFAULT_HEARTBEAT_SECONDS, ge=0, description="Seconds between two HEARTBEATs of a running DBX "
        "task's row; the health sensor fails the row as stale when two intervals pass without one.")

    def target(self) -> Databricks:
        return Databricks(self.get_client().workspace_client, self.poll_interval_seconds,
                          self.heartbeat_interval_seconds)


def databricks_from_env(poll_interval_seconds: float = 10.0) -> DatabricksResource:
    """The Databricks resource from the usual variables: DATABRICKS_HOST with DATABRICKS_TOKEN, or with
    DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (OAuth machine-to-machine) when the id is set.

    Only the choice between the two is made at load; the values are read when a run starts.
    """
    host = EnvVar("DATABRICKS_HOST")
    if os.environ.get("DATABRICKS_CLIENT_ID"):
        oauth = OauthCredentials(client_id=EnvVar("DATABRICKS_CLIENT_ID"),
                                 client_secret=EnvVar("DATABRICKS_CLIENT_SECRET"))
        return DatabricksResource(host=host, oauth_credentials=oauth,
                                  poll_interval_seconds=poll_interval_seconds)
    return DatabricksResource(host=host, token=EnvVar("DATABRICKS_TOKEN"),
                              poll_interval_seconds=poll_interval_seconds)
