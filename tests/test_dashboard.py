"""The AI/BI dashboard and its bundle: every dataset query, and every widget's query over its dataset, runs on
the embedded engine against the monitor schema, named as the bundle names it (dataset_catalog/dataset_schema
as the default catalog and schema), so the dashboard cannot drift from the views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from etl_monitor_dagster.core.cost import BillingTables, RunCosts
from tests.billing_tables import Billing
from tests.dagster_location import SCHEMA

BUNDLE = Path(__file__).resolve().parents[1] / "databricks_bundle"
DASHBOARD = json.loads((BUNDLE / "src" / "etl_monitor.lvdash.json").read_text())
DATASETS = {d["name"]: "".join(d["queryLines"]) for d in DASHBOARD["datasets"]}
WIDGETS = [(page["name"], item["widget"]) for page in DASHBOARD["pages"] for item in page["layout"]
           if "queries" in item["widget"]]


@pytest.fixture(scope="module")
def in_monitor_schema(monitor, spark):
    """The session's default schema is the monitor's, as dataset_schema makes it on Databricks; v_runCost exists."""
    billing = Billing.create(spark)
    RunCosts(monitor.store, BillingTables(schema_name=billing.schema)).create_view()
    before = spark.catalog.currentDatabase()
    spark.sql(f"USE `{SCHEMA}`")
    yield spark
    spark.sql(f"USE `{before}`")
    billing.drop()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_query_runs_on_the_views(in_monitor_schema, name):
    in_monitor_schema.sql(DATASETS[name]).collect()


@pytest.mark.parametrize(("page", "widget"), WIDGETS, ids=[w["name"] for _, w in WIDGETS])
def test_every_widget_query_runs_over_its_dataset(in_monitor_schema, page, widget):
    for q in widget["queries"]:
        query = q["query"]
        fields = ", ".join(f"{f['expression']} AS `{f['name']}`" for f in query["fields"])
        grouped = "" if query["disaggregated"] else " GROUP BY ALL"
        frame = in_monitor_schema.sql(f"SELECT {fields} FROM ({DATASETS[query['datasetName']]}){grouped}")
        assert frame.columns == [f["name"] for f in query["fields"]]
        encoded = json.dumps(widget["spec"]["encodings"])
        assert all(f'"fieldName": "{f["name"]}"' in encoded for f in query["fields"]), widget["name"]


def test_the_dashboard_covers_the_six_views_task_health_and_cost():
    text = " ".join(DATASETS.values())
    for view in ("v_processStatus", "v_runSummary", "v_taskDetail", "v_mandatoryBlockers", "v_currentFailures",
                 "v_watermarks", "v_taskHealth", "v_runCost"):
        assert f"FROM {view}" in text, view
    assert all("." not in word for q in DATASETS.values() for word in q.split() if word.startswith("v_")), \
        "views are named without catalog or schema: the bundle's dataset_catalog/dataset_schema place them"


def test_the_bundle_deploys_the_dashboard_into_the_monitor_schema():
    bundle = yaml.safe_load((BUNDLE / "databricks.yml").read_text())
    (dashboard,) = bundle["resources"]["dashboards"].values()
    assert (BUNDLE / dashboard["file_path"]).resolve() == (BUNDLE / "src" / "etl_monitor.lvdash.json").resolve()
    assert (dashboard["dataset_catalog"], dashboard["dataset_schema"]) == ("${var.catalog}", "${var.schema}")
    assert dashboard["warehouse_id"] == "${var.warehouse_id}"
    assert set(bundle["variables"]) == {"catalog", "schema", "warehouse_id"}
