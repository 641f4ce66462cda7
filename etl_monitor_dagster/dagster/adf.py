"""The Azure Data Factory resource: runs ADF_PIPELINE and DATAFLOW tasks through the Azure SDK."""

from __future__ import annotations

import os
from typing import Any

from azure.core.credentials import TokenCredential
from dagster import ConfigurableResource
from pydantic import Field

from ..core.monitor.health import DEFAULT_HEARTBEAT_SECONDS
from ..tasks.adf import PUBLIC_CLOUD, DataFactory


class AzureDataFactoryResource(ConfigurableResource):
    """Runs ADF_PIPELINE and DATAFLOW tasks through the Azure SDK.

    Credentials are never configuration: when a step starts, AZURE_TENANT_ID, AZURE_CLIENT_ID and
    AZURE_CLIENT_SECRET (a service principal) are read from the environment, else Azure's default
    credential chain is used (workload or managed identity, Azure CLI...).
    """

    management_endpoint: str = Field(default=PUBLIC_CLOUD, description="Azure Resource Manager endpoint (another "
                                     "for a sovereign cloud, e.g. https://management.chinacloudapi.cn).")
    authority_host: str | None = Field(default=None, description="Entra ID authority host; default the "
                                       "AZURE_AUTHORITY_HOST variable, else the public cloud's.")
    poll_interval_seconds: float = Field(default=15.0, gt=0, description="Seconds between two pipeline-run reads "
                                         "while an ADF task's run is going.")
    heartbeat_interval_seconds: float = Field(
        default=DEFAULT_HEARTBEAT_SECONDS, ge=0, description="Seconds between two HEARTBEATs of a running ADF "
        "task's row; the health sensor fails the row as stale when two intervals pass without one.")

    def target(self) -> DataFactory:
        return DataFactory(self._credential(), self.management_endpoint, self.poll_interval_seconds,
                           self.heartbeat_interval_seconds)

    def _credential(self) -> TokenCredential:
        from azure.identity import ClientSecretCredential, DefaultAzureCredential

        authority = self.authority_host or os.environ.get("AZURE_AUTHORITY_HOST")
        # an authority named explicitly is trusted as it is, without asking the public cloud about it
        options: dict[str, Any] = {"authority": authority, "disable_instance_discovery": True} if authority else {}
        tenant, client, secret = (os.environ.get(f"AZURE_{n}") for n in ("TENANT_ID", "CLIENT_ID", "CLIENT_SECRET"))
        if tenant and client and secret:
            return ClientSecretCredential(tenant, client, secret, **options)
        return DefaultAzureCredential(**options)
