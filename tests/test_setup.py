"""setup(): six tables, six views, seven stages; idempotent; migrates older layouts."""

from __future__ import annotations

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster import schema as S

SPEC_VIEW_COLUMNS = {
    "v_processStatus": ["ProcessingDate", "ProjectCode", "ProcessLoad", "ProcessName", "ProcessOwner",
                        "LatestAttempt", "TotalRuns", "Done", "Failed", "Pending", "RunStart", "RunEnd",
                        "WallClockSeconds", "OverallStatus"],
    "v_runSummary": ["ProcessingDate", "ProjectCode", "ProcessLoad", "ExecutionID", "Attempts", "TotalTasks",
                     "Done", "Failed", "Pending", "RunStart", "RunEnd", "TotalDurationSeconds",
                     "WallClockSeconds", "OverallStatus", "LastActivity"],
    "v_watermarks": ["ProjectCode", "ProcessLoad", "ParameterName", "ParameterType", "ParameterDescription",
                     "ValueINT", "ValueDateTime", "ValueBIT", "ActiveValue", "WatermarkState",
                     "LinkedTaskName", "LastUpdatedOn", "LastUpdatedBy"],
}


def test_setup_creates_the_six_tables_with_the_spec_columns(monitor, spark):
    for table in S.TABLES:
        assert spark.table(monitor.table_name(table.name)).columns == table.column_names


def test_setup_creates_the_six_views_with_dashboard_columns_in_order(monitor, spark):
    for view, columns in SPEC_VIEW_COLUMNS.items():
        assert spark.table(monitor.table_name(view)).columns == columns
    detail = spark.table(monitor.table_name("v_taskDetail")).columns
    assert "SlaBreached" in detail and "ExecutionID" in detail
    for view in ("v_mandatoryBlockers", "v_currentFailures"):
        assert spark.table(monitor.table_name(view)).columns[:5] == detail[:5]


def test_setup_seeds_the_seven_stages(monitor, spark):
    rows = spark.table(monitor.table_name("ETLconfigSequence")).orderBy("SequenceID").collect()
    assert [(r.SequenceID, r.SequenceCode) for r in rows][:7] == [(sid, code) for sid, code, *_ in S.SEEDED_STAGES]


def test_setup_is_idempotent_and_never_overwrites_a_seeded_stage(spark):
    m = ETLMonitorFramework(spark, schema="etl_setup_twice")
    m.setup()
    spark.sql(f"UPDATE {m.table_name('ETLconfigSequence')} SET SequenceName = 'Ours' WHERE SequenceID = 3")
    m.setup()
    rows = spark.table(m.table_name("ETLconfigSequence")).collect()
    assert len(rows) == 7
    assert next(r.SequenceName for r in rows if r.SequenceID == 3) == "Ours"


def test_setup_adds_the_columns_an_older_layout_lacks(spark):
    m = ETLMonitorFramework(spark, schema="etl_old_layout")
    spark.sql("CREATE SCHEMA IF NOT EXISTS etl_old_layout")
    spark.sql(
        f"CREATE TABLE {m.table_name('ETLconfigTasks')} (TaskID INT, ProjectCode STRING, ProcessLoad STRING, "
        "WorkFlowID INT, SequenceID INT, TaskName STRING) USING DELTA"
    )
    spark.sql(f"INSERT INTO {m.table_name('ETLconfigTasks')} VALUES (7, 'OLD', 'L', 1, 2, 'kept')")
    m.setup()
    columns = spark.table(m.table_name("ETLconfigTasks")).columns
    assert set(S.TASKS.column_names) <= set(columns)
    assert spark.table(m.table_name("ETLconfigTasks")).collect()[0].TaskName == "kept"
