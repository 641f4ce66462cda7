"""What each Databricks task run cost: ``v_runCost``, our view over Databricks' billing system tables.

Databricks bills usage in ``system.billing.usage`` and lists prices in ``system.billing.list_prices``; neither
knows our executions. A DBX_JOB or DBX_NOTEBOOK step records the Databricks job run id as SourceRunID, which
is ``usage_metadata.job_run_id`` of the run's usage records, so the view joins the two. What makes a naive
cost query wrong, and what the view does about it:

- Corrections: a RETRACTION record cancels an earlier record (negative quantity), a RESTATEMENT states it
  again; summing every record type nets them. ``CorrectionsApplied`` says a run had some.
- Several records per run (serverless bills per SKU and per hour): all of them are summed.
- Late usage: records arrive hours after the run. The view is read live, so it always holds what has
  arrived; ``CostSettled`` is TRUE once ``settle_hours`` have passed since the run ended, after which the
  figures are taken as final.
- Compute not billed per job (an all-purpose cluster, a SQL warehouse): its usage carries no job run id.
  The row says so (``BillingBasis``, ``CostNote``) and its figures stay NULL, never 0.

The billing tables' schema is configurable (``BillingTables``), for a team that copies them elsewhere.
Creating the view needs those tables to exist, so it is not part of ``setup()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ValidationError
from .monitor.store import Store
from .sql import fill, quote_identifier, validate_identifier

VIEW = "v_runCost"
DEFAULT_BILLING = "system.billing"
DEFAULT_SETTLE_HOURS = 48  # Databricks says records usually arrive within 12 hours; corrections come later

_RUN_COST = """
-- What did each Databricks task run cost, at list price? Grain: one step row (a task of one execution's attempt)
-- of a DBX_JOB or DBX_NOTEBOOK task with a SourceRunID, the Databricks job run id of its usage records.
WITH steps AS (
  SELECT ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts, WorkFlowID, TaskID, TaskName,
         SourceType, SourceRunID, ClusterID, Status, StartTime, EndTime
    FROM {v_liveSteps}
   WHERE SourceType IN ('DBX_JOB', 'DBX_NOTEBOOK') AND SourceRunID IS NOT NULL),
usage AS (  -- every record type: retractions (negative) and restatements net out in the sums below
  SELECT s.ExecutionID, s.ProcessingDate, s.ProjectCode, s.ProcessLoad, s.Attempts, s.WorkFlowID, s.TaskID,
         u.record_type, u.sku_name, u.usage_unit, u.usage_quantity, p.currency_code,
         coalesce(p.pricing.effective_list.default, p.pricing.default) AS unit_price
    FROM steps s
    JOIN {usage} u
      ON u.usage_metadata.job_run_id = s.SourceRunID
     AND u.usage_date >= date_sub(to_date(s.StartTime), 1)
    LEFT JOIN {list_prices} p  -- the price valid when the usage began (records never straddle a price change:
      -- both fall on the hour), for the same cloud, SKU and unit
      ON p.sku_name = u.sku_name AND p.cloud = u.cloud AND p.usage_unit = u.usage_unit
     AND u.usage_start_time >= p.price_start_time
     AND (p.price_end_time IS NULL OR u.usage_start_time < p.price_end_time)),
per_run AS (
  SELECT ExecutionID, ProcessingDate, ProjectCode, ProcessLoad, Attempts, WorkFlowID, TaskID,
         count(*) AS UsageRecords,
         sum(IF(usage_unit = 'DBU', usage_quantity, 0)) AS DBUs,
         sum(usage_quantity * unit_price) AS ListCost,
         array_join(array_sort(collect_set(currency_code)), ',') AS Currency,
         count_if(record_type IN ('RETRACTION', 'RESTATEMENT')) > 0 AS CorrectionsApplied,
         count_if(unit_price IS NULL) AS UnpricedRecords,
         array_join(array_sort(collect_set(sku_name)), ', ') AS Skus
    FROM usage
   GROUP BY ExecutionID, ProcessingDate, ProjectCode, ProcessLoad, Attempts, WorkFlowID, TaskID),
shared AS (  -- usage of the run's compute that no job run carries: billed to the cluster or warehouse itself
  SELECT s.ExecutionID, s.ProcessingDate, s.ProjectCode, s.ProcessLoad, s.Attempts, s.WorkFlowID, s.TaskID,
         max(u.usage_metadata.warehouse_id = s.ClusterID) AS OnWarehouse,
         max(u.usage_metadata.cluster_id = s.ClusterID) AS OnCluster
    FROM steps s
    JOIN {usage} u
      ON (u.usage_metadata.cluster_id = s.ClusterID OR u.usage_metadata.warehouse_id = s.ClusterID)
     AND u.usage_metadata.job_run_id IS NULL
     AND u.usage_date >= date_sub(to_date(s.StartTime), 1)
   GROUP BY s.ExecutionID, s.ProcessingDate, s.ProjectCode, s.ProcessLoad, s.Attempts, s.WorkFlowID, s.TaskID)
SELECT s.ProcessingDate, s.ProjectCode, s.ProcessLoad, s.ExecutionID, s.Attempts, s.WorkFlowID, s.TaskID,
       s.TaskName, s.SourceType, s.SourceRunID, s.ClusterID, s.Status, s.StartTime, s.EndTime,
       CASE WHEN r.UsageRecords IS NOT NULL THEN 'JOB_RUN'
            WHEN h.OnWarehouse THEN 'SQL_WAREHOUSE'
            WHEN h.OnCluster THEN 'ALL_PURPOSE_CLUSTER'
            ELSE 'NO_USAGE_YET' END AS BillingBasis,
       r.UsageRecords, CAST(r.DBUs AS DECIMAL(38, 6)) AS DBUs, CAST(r.ListCost AS DECIMAL(38, 6)) AS ListCost,
       r.Currency, coalesce(r.CorrectionsApplied, false) AS CorrectionsApplied, r.UnpricedRecords, r.Skus,
       CASE WHEN r.UsageRecords IS NOT NULL AND r.UnpricedRecords > 0
              THEN concat(r.UnpricedRecords, ' usage record(s) have no list price for their SKU and time')
            WHEN r.UsageRecords IS NOT NULL THEN NULL
            WHEN h.OnWarehouse THEN concat('ran on SQL warehouse ', s.ClusterID,
                                           ': its usage is billed to the warehouse, not per job run')
            WHEN h.OnCluster THEN concat('ran on all-purpose cluster ', s.ClusterID,
                                         ': its usage is billed to the cluster, not per job run')
            ELSE 'no usage record for this run yet' END AS CostNote,
       coalesce(s.EndTime IS NOT NULL
                AND current_timestamp() >= timestampadd(HOUR, {settle_hours}, s.EndTime), false) AS CostSettled
  FROM steps s
  LEFT JOIN per_run r USING (ExecutionID, ProcessingDate, ProjectCode, ProcessLoad, Attempts, WorkFlowID, TaskID)
  LEFT JOIN shared h USING (ExecutionID, ProcessingDate, ProjectCode, ProcessLoad, Attempts, WorkFlowID, TaskID)
"""


class BillingTables(BaseModel):
    """Where the billing system tables are and when a run's cost is final."""

    model_config = ConfigDict(frozen=True)

    schema_name: str = Field(
        default=DEFAULT_BILLING,
        description="Schema holding the tables `usage` and `list_prices` with the columns of Databricks' "
        "system.billing tables: 'system.billing' on Databricks, or 'catalog.schema' (or 'schema') of a copy.")
    settle_hours: int = Field(
        default=DEFAULT_SETTLE_HOURS, ge=0, le=24 * 366,
        description="Hours after a run ended after which its cost counts as final (CostSettled); until then "
        "late usage records still change it.")

    @field_validator("schema_name")
    @classmethod
    def _one_or_two_names(cls, value: str) -> str:
        parts = value.split(".") if isinstance(value, str) else [value]
        if len(parts) not in (1, 2):
            raise ValidationError("schema_name", value, "is 'schema' or 'catalog.schema'")
        for part in parts:
            validate_identifier("schema_name", part)
        return value

    def table(self, name: str) -> str:
        """The quoted, qualified name of one of the billing tables."""
        return ".".join(quote_identifier(p) for p in [*self.schema_name.split("."), name])


def run_cost_view(billing: BillingTables) -> str:
    """``v_runCost``'s body over ``billing``'s tables (``{v_liveSteps}`` left for ``Store.render``)."""
    return fill(_RUN_COST, usage=billing.table("usage"), list_prices=billing.table("list_prices"),
                settle_hours=str(int(billing.settle_hours)))


class RunCosts:
    """``v_runCost`` in one monitor schema: created over ``billing``'s tables, and read."""

    def __init__(self, store: Store, billing: BillingTables | None = None) -> None:
        self.store = store
        self.billing = billing or BillingTables()
        self.name = f"{store.prefix}.{quote_identifier(VIEW)}"

    def create_view(self) -> None:
        """(Re)create ``v_runCost``; the billing tables must exist (the engine checks the view's body)."""
        body = self.store.render(run_cost_view(self.billing))
        self.store.engine.execute(f"CREATE OR REPLACE VIEW {self.name} AS {body}")

    def rows(self, where: dict[str, Any] | None = None, order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows of ``v_runCost`` whose columns equal the non-None values of ``where``."""
        return self.store.collect(self.store.spark.table(self.name), where, order_by)


def cost_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A set of ``v_runCost`` rows (one process and date) as numbers to plot: DBUs and list cost of the runs
    billed per job, how many runs ran on compute not billed per job, whether every figure is final."""
    billed = [r for r in rows if r["BillingBasis"] == "JOB_RUN"]
    currencies = sorted({c for r in billed for c in (r["Currency"] or "").split(",") if c})
    figures: dict[str, Any] = {
        "cost_runs": len(rows),
        "cost_dbus": round(float(sum(r["DBUs"] or 0 for r in billed)), 6),
        "cost_list": round(float(sum(r["ListCost"] or 0 for r in billed)), 6),
        "cost_not_billed_per_job": sum(r["BillingBasis"] in ("ALL_PURPOSE_CLUSTER", "SQL_WAREHOUSE") for r in rows),
        "cost_without_usage_yet": sum(r["BillingBasis"] == "NO_USAGE_YET" for r in rows),
        "cost_corrected_runs": sum(bool(r["CorrectionsApplied"]) for r in rows),
        "cost_settled": all(bool(r["CostSettled"]) for r in rows),
    }
    if currencies:
        figures["cost_currency"] = ",".join(currencies)
    return figures
