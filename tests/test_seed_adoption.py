"""Adopting a real seed deployment: a schema created and filled by the seed package's own code
(databricks-etl-monitor 1.0.0: its DDL with NOT NULL columns, comments, an identity column and its views)
is taken over by our ``setup()`` without losing a row, and our API then works on that data."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from types import SimpleNamespace

import pytest
from etl_monitor import ETLMonitorFramework as Seed
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from etl_monitor_dagster import ETLMonitorFramework

SCHEMA = "etl_seed_adopt"
PROJECT, LOAD, DAY = "HR", "ADOPT", "2026-03-02"
TABLES = ("ETLOrganisation", "ETLconfigProject", "ETLconfigSequence", "ETLconfigProcess", "ETLconfigTasks",
          "ETLconfigParameters", "ETLProcessingSteps", "ETLsysLogs")
VIEWS = ("v_processStatus", "v_runSummary", "v_taskDetail", "v_mandatoryBlockers", "v_currentFailures",
         "v_watermarks")


def name(schema: str, table: str) -> str:
    return f"`{schema}`.`{table}`"


def snapshot(spark, schema: str) -> dict[str, list[dict]]:
    return {t: [r.asDict() for r in spark.table(name(schema, t)).collect()] for t in TABLES}


def seed_done(call) -> None:
    """Run a seed DONE call. The seed writes the step row, then advances the DELTA_DATE watermark with an
    UPDATE whose condition holds a subquery; open-source Delta refuses that (Databricks accepts it), so the
    call raises after the step row is written. The row is what the adopted deployment holds."""
    try:
        call()
    except AnalysisException as error:
        assert "DELTA_UNSUPPORTED_SUBQUERY" in str(error)


def fill_with_the_seed(spark) -> str:
    """Create and fill the schema through the seed's own API; returns the seed run's ExecutionID."""
    seed = Seed(spark, catalog="", schema=SCHEMA)
    seed.setup()
    seed.register_organisation("CORP", "Corporate Group", "Holding organisation")
    seed.register_project(PROJECT, "HR Data Platform", "HR ingestion", "CORP")
    seed.register_process(PROJECT, LOAD, "Adopted load", "Loaded by the seed", "HR Data Eng", "D")
    seed.register_task(PROJECT, LOAD, 0, 0, 0, "Initiation", "DBX_NOTEBOOK", "/Repos/etl/00-init")
    seed.register_task(PROJECT, LOAD, 1, 1, 2, "Load employees", "ADF_PIPELINE", "pl_employees", "LoadEmployees",
                       "Delta by date", "D", True, "employees", ".csv", "abfss://raw@lake/hr/", "abfss://out@lake/hr/")
    seed.register_task(PROJECT, LOAD, 2, 1, 2, "Load badges", "DBX_NOTEBOOK", "/Repos/etl/badges", "LoadBadges",
                       "Delta by id", "D", False)
    seed.register_task(PROJECT, LOAD, 3, 2, 6, "Build mart", "DBX_NOTEBOOK", "/Repos/etl/mart")
    seed.register_parameter(PROJECT, LOAD, "SYSDT", "SYSTEM", "Processing date", DAY)
    seed.register_parameter(PROJECT, LOAD, "LoadEmployees", "DELTA_DATE", "Employees watermark", "2026-01-01 00:00:00")
    seed.register_parameter(PROJECT, LOAD, "LoadBadges", "DELTA_ID", "Badges watermark", None, 100)
    seed.register_parameter(PROJECT, LOAD, "IsFullReload", "FLAG", "Full reload flag", None, None, False)

    run = Seed.generate_execution_id()
    seed.generate_execution_steps(run, PROJECT, LOAD, DAY)
    seed.start_task(run, PROJECT, LOAD, 0, 0, 0, DAY)
    seed_done(lambda: seed.end_task(run, PROJECT, LOAD, 0, 0, 0, DAY, log_message="started"))
    seed.start_task(run, PROJECT, LOAD, 2, 2, 1, DAY)
    seed_done(lambda: seed.end_task(run, PROJECT, LOAD, 2, 2, 1, DAY, log_message="badges loaded"))
    seed.start_task(run, PROJECT, LOAD, 1, 2, 1, DAY, source_run_id="adf-run-1")
    seed.end_task(run, PROJECT, LOAD, 1, 2, 1, DAY, None, "FAIL", "source unavailable", "ERROR", "E42")
    # The seed has no API for ETLsysLogs: ADF and notebooks append receipts with SQL, as here.
    spark.sql(f"""INSERT INTO {name(SCHEMA, 'ETLsysLogs')}
        (ProcessingDate, ProjectCode, ProcessLoad, SourceType, RunID, ExecutionID, PipelineName, Level,
         LogTimeUTC, Message)
        VALUES (DATE'{DAY}', '{PROJECT}', '{LOAD}', 'ADF', 'adf-run-1', '{run}', 'pl_employees', 3,
                TIMESTAMP'2026-03-02 08:00:00', 'source unavailable')""")
    return run


@pytest.fixture(scope="module")
def adopted(spark, monitor):
    """The seed-filled schema, its rows before and after our setup() (run twice), and our monitor on it."""
    spark.sql(f"DROP SCHEMA IF EXISTS `{SCHEMA}` CASCADE")
    try:
        run = fill_with_the_seed(spark)
        before = snapshot(spark, SCHEMA)
        columns = {t: spark.table(name(SCHEMA, t)).columns for t in TABLES}
        ours = ETLMonitorFramework(spark, schema=SCHEMA)
        ours.setup()
        once = snapshot(spark, SCHEMA)
        ours.setup()
        yield SimpleNamespace(ours=ours, run=run, before=before, once=once, after=snapshot(spark, SCHEMA),
                              seed_columns=columns, reference=monitor.schema)
    finally:
        spark.sql(f"DROP SCHEMA IF EXISTS `{SCHEMA}` CASCADE")


def kept(rows: list[dict], columns: list[str]) -> Counter:
    return Counter(tuple(row[c] for c in columns) for row in rows)


def test_the_seed_filled_every_table(adopted):
    """The adopted deployment is a real one: rows in all eight tables, a FAIL and two DONE steps."""
    assert all(adopted.before[t] for t in TABLES), {t: len(adopted.before[t]) for t in TABLES}
    statuses = {r["TaskID"]: r["Status"] for r in adopted.before["ETLProcessingSteps"]}
    assert statuses == {0: "NQUE", 1: "FAIL", 2: "DONE", 3: "NQUE"}  # the FAIL reopened the DONE initiation


@pytest.mark.parametrize("table", TABLES)
def test_setup_keeps_every_seed_row_with_the_same_values(adopted, table):
    columns = adopted.seed_columns[table]
    assert kept(adopted.after[table], columns) == kept(adopted.before[table], columns)


@pytest.mark.parametrize("table", TABLES)
def test_setup_twice_changes_nothing(adopted, table):
    assert kept(adopted.after[table], list(adopted.after[table][0])) == kept(
        adopted.once[table], list(adopted.once[table][0]))


@pytest.mark.parametrize("table", TABLES)
def test_setup_adds_our_columns_and_drops_none(spark, adopted, table):
    columns = set(spark.table(name(SCHEMA, table)).columns)
    assert set(adopted.seed_columns[table]) <= columns
    assert set(spark.table(name(adopted.reference, table)).columns) <= columns


def test_the_sla_column_is_added_and_null_on_the_seeds_tasks(adopted):
    assert [r["SlaSeconds"] for r in adopted.after["ETLconfigTasks"]] == [None] * 4


@pytest.mark.parametrize("view", VIEWS)
def test_setup_replaces_the_seeds_views_with_ours(spark, adopted, view):
    """Each view now has our columns (those of a schema our setup() created) and reads the seed's rows."""
    frame = spark.table(name(SCHEMA, view))
    assert frame.columns == spark.table(name(adopted.reference, view)).columns
    frame.collect()


def test_the_views_have_our_additions_over_the_seeds_data(spark, adopted):
    assert "LastActivity" in spark.table(name(SCHEMA, "v_runSummary")).columns
    detail = spark.table(name(SCHEMA, "v_taskDetail")).where(F.col("ExecutionID") == adopted.run).collect()
    assert sorted(r.TaskID for r in detail) == [0, 1, 2, 3]
    assert all(r.SlaBreached in (None, False) for r in detail)
    (failure,) = spark.table(name(SCHEMA, "v_currentFailures")).where(F.col("ExecutionID") == adopted.run).collect()
    assert (failure.TaskID, failure.LogMessage) == (1, "source unavailable")


def test_get_status_returns_the_row_the_seed_wrote(adopted):
    rows = {r.TaskID: r for r in adopted.ours.get_status(PROJECT, LOAD, DAY, adopted.run).collect()}
    assert (rows[1].Status, rows[1].LogMessage, rows[1].LogType, rows[1].LogCode) == (
        "FAIL", "source unavailable", "ERROR", "E42")
    by_sysdt = {r.TaskID: r.Status for r in adopted.ours.get_status(PROJECT, LOAD).collect()}
    assert by_sysdt == {0: "NQUE", 1: "FAIL", 2: "DONE", 3: "NQUE"}  # the date comes from the seed's SYSDT


def test_a_seed_registered_task_runs_to_done_and_advances_its_watermark(spark, adopted):
    ours = adopted.ours
    before = ours.get_active_watermark(PROJECT, LOAD, "LoadEmployees")
    assert before == datetime(2026, 1, 1)
    retry = ours.generate_execution_id()
    ours.generate_execution_steps(retry, PROJECT, LOAD, DAY)
    queued = {r.TaskID: r.Attempts for r in ours.get_pending_tasks(retry, PROJECT, LOAD, DAY).collect()}
    assert queued == {0: 1, 1: 1, 3: 1}  # TaskID 2 was DONE by the seed on attempt 0

    with ours.task(retry, PROJECT, LOAD, 1, 2, 1, DAY) as guard:
        assert guard.active

    (row,) = ours.get_status(PROJECT, LOAD, DAY, retry, task_id=1).collect()
    assert (row.Status, row.Attempts) == ("DONE", 1)
    after = ours.get_active_watermark(PROJECT, LOAD, "LoadEmployees")
    assert after is not None and after > before
    assert after == row.StartTime
    ours.fold()  # the run's receipts reach the seed's ETLsysLogs
    logs = spark.table(name(SCHEMA, "ETLsysLogs"))
    seed_ids = [r["_ID"] for r in adopted.before["ETLsysLogs"]]
    ours_ids = [r._ID for r in logs.where(F.col("ExecutionID") == retry).collect()]
    assert ours_ids and min(ours_ids) > max(seed_ids)  # the seed's identity column still numbers new receipts


def test_register_task_updates_a_seed_task_in_place(spark, adopted):
    seed_row = next(r for r in adopted.before["ETLconfigTasks"] if r["TaskID"] == 3)
    adopted.ours.register_task(PROJECT, LOAD, 3, 2, 6, "Build mart v2", "DBX_NOTEBOOK", "/Repos/etl/mart",
                               sla_seconds=600)
    tasks = spark.table(name(SCHEMA, "ETLconfigTasks"))
    (row,) = tasks.where((F.col("ProjectCode") == PROJECT) & (F.col("TaskID") == 3)).collect()
    assert (row.TaskName, row.SlaSeconds, row.SourceIdentifier) == ("Build mart v2", 600, "/Repos/etl/mart")
    assert (row.CreatedOn, row.CreatedBy) == (seed_row["CreatedOn"], seed_row["CreatedBy"])


def test_registering_with_the_seeds_default_descriptions_fits_its_not_null_columns(spark, adopted):
    """The seed's DDL makes OrganisationDescription and ProjectDescription NOT NULL; its defaults are ''."""
    adopted.ours.register_organisation("NEWORG", "New organisation")
    adopted.ours.register_project("NEWPRJ", "New project")
    assert spark.table(name(SCHEMA, "ETLOrganisation")).where(F.col("OrganisationCode") == "NEWORG").count() == 1
    assert spark.table(name(SCHEMA, "ETLconfigProject")).where(F.col("ProjectCode") == "NEWPRJ").count() == 1
