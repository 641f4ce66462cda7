"""v_runCost on hand-made billing rows: corrections netted, serverless records summed, compute not billed per
job named as such, late usage counted until the run's cost settles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from etl_monitor_dagster.core.cost import BillingTables, RunCosts, cost_figures
from tests.billing_tables import Billing, at
from tests.conftest import DAY

JOBS, SERVERLESS, ALL_PURPOSE = "PREMIUM_JOBS_COMPUTE", "PREMIUM_JOBS_SERVERLESS_COMPUTE_EU_WEST", \
    "PREMIUM_ALL_PURPOSE_COMPUTE"


@pytest.fixture(scope="module")
def billing(spark):
    b = Billing.create(spark)
    # JOBS_COMPUTE got dearer on April 9 at noon: a run's usage is priced at the price valid when it was used
    b.price(JOBS, "0.15", at(1, 0, month=1), at(9, 12))
    b.price(JOBS, "0.20", at(9, 12))
    b.price(SERVERLESS, "0.45", at(1, 0, month=1), promotional="0.35")
    b.price(ALL_PURPOSE, "0.55", at(1, 0, month=1))
    yield b
    b.drop()


def _dbx_run(process, task_id: int, run_id: str, start: datetime, end: datetime | None,
             cluster_id: str | None = None) -> str:
    m, execution = process.monitor, process.new_run()
    key = {"task_id": task_id, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}
    m.start_task(execution, process.project, process.load, **key, source_type="DBX_JOB", timestamp=start)
    m.record_source_run(execution, process.project, process.load, **key, source_run_id=run_id, cluster_id=cluster_id)
    if end is not None:
        m.end_task(execution, process.project, process.load, **key, timestamp=end)
    return execution


def _cost(process, billing, execution: str, settle_hours: int = 48) -> dict:
    costs = RunCosts(process.monitor.store, BillingTables(schema_name=billing.schema, settle_hours=settle_hours))
    costs.create_view()
    (row,) = costs.rows({"ExecutionID": execution})
    return row


def test_a_retraction_and_a_restatement_net_to_the_corrected_usage(make_process, billing):
    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB", "task_name": "Load orders"}])
    execution = _dbx_run(p, 1, "9001", at(9, 6), at(9, 7))
    billing.usage(JOBS, "10", at(9, 6), at(9, 7), job_run_id="9001", job_id="77")
    billing.usage(JOBS, "-10", at(9, 6), at(9, 7), job_run_id="9001", job_id="77", record_type="RETRACTION",
                  ingested=at(11, 0).date())
    billing.usage(JOBS, "8", at(9, 6), at(9, 7), job_run_id="9001", job_id="77", record_type="RESTATEMENT",
                  ingested=at(11, 0).date())
    billing.usage(JOBS, "5", at(9, 6), at(9, 7), job_run_id="9999", job_id="78")  # another run: not ours
    row = _cost(p, billing, execution)
    assert (row["BillingBasis"], row["UsageRecords"], row["DBUs"], row["ListCost"], row["Currency"]) == (
        "JOB_RUN", 3, Decimal("8.000000"), Decimal("1.200000"), "USD")  # 8 DBU at 0.15, the price before noon
    assert row["CorrectionsApplied"] is True and row["CostNote"] is None and row["TaskName"] == "Load orders"
    assert row["CostSettled"] is True  # it ended in April: far past the settle window


def test_a_serverless_run_sums_its_records_at_the_price_valid_for_each(make_process, billing):
    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB"}])
    execution = _dbx_run(p, 1, "9002", at(9, 11), at(9, 13, 30))
    for start, end, quantity in ((at(9, 11), at(9, 12), "1.5"), (at(9, 12), at(9, 13), "2.5"),
                                 (at(9, 13), at(9, 13, 30), "0.75")):
        billing.usage(SERVERLESS, quantity, start, end, job_run_id="9002", serverless=True)
    billing.usage(JOBS, "1", at(9, 11), at(9, 12), job_run_id="9002")  # before noon: 0.15
    billing.usage(JOBS, "1", at(9, 12), at(9, 13), job_run_id="9002")  # after: 0.20
    row = _cost(p, billing, execution)
    assert (row["UsageRecords"], row["DBUs"]) == (5, Decimal("6.750000"))
    # serverless at its effective (promotional) list price 0.35, jobs compute 0.15 then 0.20
    assert row["ListCost"] == Decimal("4.75") * Decimal("0.35") + Decimal("0.35")
    assert row["CorrectionsApplied"] is False and row["Skus"] == f"{JOBS}, {SERVERLESS}"


def test_a_run_on_an_all_purpose_cluster_says_so_instead_of_zero(make_process, billing):
    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB"}])
    execution = _dbx_run(p, 1, "9003", at(9, 8), at(9, 9), cluster_id="0409-081500-ap1")
    billing.usage(ALL_PURPOSE, "3", at(9, 8), at(9, 9), cluster_id="0409-081500-ap1", product="ALL_PURPOSE")
    row = _cost(p, billing, execution)
    assert row["BillingBasis"] == "ALL_PURPOSE_CLUSTER"
    assert row["DBUs"] is None and row["ListCost"] is None and row["UsageRecords"] is None
    assert "all-purpose cluster 0409-081500-ap1" in row["CostNote"] and "not per job run" in row["CostNote"]
    figures = cost_figures([row])
    assert figures["cost_not_billed_per_job"] == 1 and figures["cost_dbus"] == 0.0


def test_late_usage_changes_a_runs_cost_until_it_settles(make_process, billing):
    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB"}])
    ended = datetime.now(UTC) - timedelta(minutes=5)
    execution = _dbx_run(p, 1, "9004", ended - timedelta(hours=1), ended)
    row = _cost(p, billing, execution)
    assert (row["BillingBasis"], row["CostSettled"], row["DBUs"]) == ("NO_USAGE_YET", False, None)
    assert row["CostNote"] == "no usage record for this run yet"
    billing.usage(JOBS, "4", ended - timedelta(hours=1), ended, job_run_id="9004")
    first = _cost(p, billing, execution)
    billing.usage(JOBS, "2", ended - timedelta(hours=1), ended, job_run_id="9004")  # hours later, same run
    late = _cost(p, billing, execution)
    assert (first["DBUs"], late["DBUs"], late["UsageRecords"]) == (Decimal("4.000000"), Decimal("6.000000"), 2)
    assert late["CostSettled"] is False and cost_figures([late])["cost_settled"] is False
    assert _cost(p, billing, execution, settle_hours=0)["CostSettled"] is True


def test_a_running_task_is_not_settled_and_other_kinds_of_task_are_not_costed(make_process, billing):
    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB"}, {"task_id": 2}])
    execution = _dbx_run(p, 1, "9005", at(9, 6), None)
    costs = RunCosts(p.monitor.store, BillingTables(schema_name=billing.schema))
    costs.create_view()
    rows = costs.rows({"ExecutionID": execution})
    assert [(r["TaskID"], r["CostSettled"], r["Status"]) for r in rows] == [(1, False, "NQUE")]


@pytest.mark.parametrize("name", ["system.billing.usage", "a;b", "", "bad-name"])
def test_the_billing_schema_is_one_or_two_plain_names(name):
    with pytest.raises(ValueError, match="schema_name"):
        BillingTables(schema_name=name)


def test_the_billing_tables_are_quoted_under_their_schema():
    assert BillingTables().table("usage") == "`system`.`billing`.`usage`"
    assert BillingTables(schema_name="finops").table("list_prices") == "`finops`.`list_prices`"


def test_the_views_asset_figures_carry_the_dates_cost_and_earlier_unsettled_dates(make_process, billing):
    from datetime import date

    from etl_monitor_dagster.dagster.views import unsettled_costs, view_figures

    p = make_process(tasks=[{"task_id": 1, "source_type": "DBX_JOB", "task_name": "Load orders"}])
    execution = _dbx_run(p, 1, "9006", at(9, 6), at(9, 7))
    billing.usage(JOBS, "2", at(9, 6), at(9, 7), job_run_id="9006")
    costs = RunCosts(p.monitor.store, BillingTables(schema_name=billing.schema, settle_hours=24 * 366))
    costs.create_view()
    summary = view_figures(p.monitor, p.project, p.load, execution, date(2026, 4, 9), costs)["v_runSummary"]
    assert (summary["cost_dbus"], summary["cost_list"], summary["cost_currency"]) == (2.0, 0.3, "USD")
    assert summary["Load orders list_cost"] == 0.3 and summary["cost_settled"] is False
    later = unsettled_costs(costs, p.project, p.load, date(2026, 4, 10))
    assert list(later) == [date(2026, 4, 9)] and later[date(2026, 4, 9)]["cost_list"] == 0.3
    assert unsettled_costs(costs, p.project, p.load, date(2026, 4, 9)) == {}
