"""Tables with the columns of Databricks' billing system tables, filled with hand-made rows, on the embedded engine.

Column names and types follow Databricks' "Billable usage system table reference" (system.billing.usage) and
"Pricing system table reference" (system.billing.list_prices).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

USAGE_METADATA = (
    "cluster_id", "job_id", "warehouse_id", "instance_pool_id", "node_type", "job_run_id", "notebook_id",
    "dlt_pipeline_id", "endpoint_name", "endpoint_id", "dlt_update_id", "dlt_maintenance_id", "run_name", "job_name",
    "notebook_path", "central_clean_room_id", "source_region", "destination_region", "app_id", "app_name",
    "metastore_id", "private_endpoint_name", "storage_api_type", "budget_policy_id")
USAGE = (
    "record_id STRING, account_id STRING, workspace_id STRING, sku_name STRING, cloud STRING, "
    "usage_start_time TIMESTAMP, usage_end_time TIMESTAMP, usage_date DATE, custom_tags MAP<STRING, STRING>, "
    "usage_unit STRING, usage_quantity DECIMAL(38,18), "
    f"usage_metadata STRUCT<{', '.join(f'{f}: STRING' for f in USAGE_METADATA)}>, "
    "identity_metadata STRUCT<run_as: STRING, owned_by: STRING, created_by: STRING>, "
    "record_type STRING, ingestion_date DATE, billing_origin_product STRING, "
    "product_features STRUCT<jobs_tier: STRING, sql_tier: STRING, dlt_tier: STRING, is_serverless: BOOLEAN, "
    "is_photon: BOOLEAN, serving_type: STRING, networking: STRUCT<connectivity_type: STRING>>, "
    "usage_type STRING")
LIST_PRICES = (
    "price_start_time TIMESTAMP, price_end_time TIMESTAMP, account_id STRING, sku_name STRING, cloud STRING, "
    "currency_code STRING, usage_unit STRING, "
    "pricing STRUCT<default: DECIMAL(38,18), promotional: STRUCT<default: DECIMAL(38,18)>, "
    "effective_list: STRUCT<default: DECIMAL(38,18)>>")
ACCOUNT, WORKSPACE = "3b1e4c2a-8d7f-4e21-9a0b-5c6d7e8f9a01", "1234567890123456"


def at(day: int, hour: int, minute: int = 0, month: int = 4) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Billing:
    """A schema with ``usage`` and ``list_prices`` on the test engine."""

    spark: Any
    schema: str

    @classmethod
    def create(cls, spark: Any) -> Billing:
        billing = cls(spark, f"billing_{uuid.uuid4().hex[:8]}")
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{billing.schema}`")
        for name, columns in (("usage", USAGE), ("list_prices", LIST_PRICES)):
            spark.createDataFrame([], columns).write.format("delta").saveAsTable(f"`{billing.schema}`.`{name}`")
        return billing

    def drop(self) -> None:
        self.spark.sql(f"DROP SCHEMA IF EXISTS `{self.schema}` CASCADE")

    def price(self, sku: str, price: str, start: datetime, end: datetime | None = None, currency: str = "USD",
              promotional: str | None = None) -> None:
        """One list price of ``sku`` on AZURE, per DBU; the effective list price is the promotional one if any."""
        value = Decimal(price)
        effective = Decimal(promotional) if promotional else value
        self._append("list_prices", LIST_PRICES, [(
            start, end, ACCOUNT, sku, "AZURE", currency, "DBU",
            (value, (Decimal(promotional) if promotional else None,), (effective,)))])

    def usage(self, sku: str, quantity: str, start: datetime, end: datetime, *, job_run_id: str | None = None,
              job_id: str | None = None, cluster_id: str | None = None, warehouse_id: str | None = None,
              record_type: str = "ORIGINAL", serverless: bool = False, ingested: date | None = None,
              product: str = "JOBS") -> str:
        """One usage record (an hour or less of one SKU); returns its record id."""
        record = str(uuid.uuid4())
        metadata = dict.fromkeys(USAGE_METADATA)
        metadata.update(job_run_id=job_run_id, job_id=job_id, cluster_id=cluster_id, warehouse_id=warehouse_id,
                        node_type=None if serverless else "Standard_DS3_v2")
        features = ("PREMIUM" if product == "JOBS" else None, None, None, serverless, False, None, None)
        self._append("usage", USAGE, [(
            record, ACCOUNT, WORKSPACE, sku, "AZURE", start, end, start.date(), {"team": "etl"}, "DBU",
            Decimal(quantity), tuple(metadata[f] for f in USAGE_METADATA),
            ("etl@example.com", None, None), record_type, ingested or end.date(), product, features,
            "COMPUTE_TIME")])
        return record

    def _append(self, name: str, columns: str, rows: list[tuple]) -> None:
        self.spark.createDataFrame(rows, columns).writeTo(f"`{self.schema}`.`{name}`").append()
