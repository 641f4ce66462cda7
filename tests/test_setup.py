"""setup(): eight tables, six views, seven stages; idempotent; migrates older layouts."""

from __future__ import annotations

import uuid
from datetime import datetime

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core import schema as S

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


def test_setup_creates_the_eight_tables_with_the_spec_columns(monitor, spark):
    assert [t.name for t in S.TABLES] == ["ETLOrganisation", "ETLconfigProject", "ETLconfigSequence",
                                          "ETLconfigProcess", "ETLconfigTasks", "ETLconfigParameters",
                                          "ETLProcessingSteps", "ETLsysLogs"]
    assert spark.table(monitor.table_name("ETLconfigSequence")).columns[-4:] == [c for c, _ in S.AUDIT]
    for table in S.TABLES:
        assert spark.table(monitor.table_name(table.name)).columns == table.column_names


def test_setup_creates_the_six_views_with_dashboard_columns_in_order(monitor, spark):
    for view, columns in SPEC_VIEW_COLUMNS.items():
        assert spark.table(monitor.table_name(view)).columns == columns
    detail = spark.table(monitor.table_name("v_taskDetail")).columns
    assert "SlaBreached" in detail and "ExecutionID" in detail
    for view in ("v_taskDetail", "v_mandatoryBlockers", "v_currentFailures"):
        columns = spark.table(monitor.table_name(view)).columns
        assert columns[:5] == detail[:5]
        assert columns[columns.index("LastUpdatedBy") + 1] == "SourceSystemCode"


def test_setup_without_seed_data_creates_the_tables_but_no_stages(spark):
    m = ETLMonitorFramework(spark, schema="etl_setup_unseeded")
    m.setup(seed_data=False)
    assert spark.table(m.table_name("ETLconfigSequence")).count() == 0
    assert spark.table(m.table_name("ETLProcessingSteps")).columns == S.STEPS.column_names


def test_setup_seeds_the_seven_stages(monitor, spark):
    rows = spark.table(monitor.table_name("ETLconfigSequence")).orderBy("SequenceID").collect()
    assert [(r.SequenceID, r.SequenceCode) for r in rows][:7] == [(sid, code) for sid, code, *_ in S.SEEDED_STAGES]


def test_setup_is_idempotent_and_never_overwrites_a_seeded_stage(spark):
    m = ETLMonitorFramework(spark, schema="etl_setup_twice")
    assert m.setup() is None
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
    spark.sql(  # our earlier stage table: no audit columns
        f"CREATE TABLE {m.table_name('ETLconfigSequence')} (SequenceID INT, SequenceCode STRING, "
        "SequenceName STRING, SequenceDescription STRING, SortOrder INT, IsActive BOOLEAN) USING DELTA"
    )
    m.setup()
    columns = spark.table(m.table_name("ETLconfigTasks")).columns
    assert set(S.TASKS.column_names) <= set(columns)
    assert spark.table(m.table_name("ETLconfigTasks")).collect()[0].TaskName == "kept"
    stages = spark.table(m.table_name("ETLconfigSequence"))
    assert set(S.SEQUENCE.column_names) <= set(stages.columns)
    assert stages.count() == 7


def test_setup_migrates_our_layout_from_before_the_event_log_mid_run_and_loses_nothing(spark):
    """Our tables as they were before ETLEventLog (rows updated in place, no LastEventID nor FoldedThrough),
    holding a run in flight: setup() twice keeps every row, and the run goes on through the log."""
    m = ETLMonitorFramework(spark, schema=f"etl_before_log_{uuid.uuid4().hex[:6]}")
    old = {S.STEPS.name: [c for c in S.STEPS.columns if c[0] != "LastEventID"],
           S.PARAMETERS.name: [c for c in S.PARAMETERS.columns if c[0] != "FoldedThrough"]}
    spark.sql(f"CREATE SCHEMA {m.table_name('ETLsysLogs').rsplit('.', 1)[0]}")
    for table, columns in old.items():
        ddl = ", ".join(f"`{c}` {t}" for c, t in columns)
        spark.sql(f"CREATE TABLE {m.table_name(table)} ({ddl}) USING DELTA")
    steps = m.table_name(S.STEPS.name)
    spark.sql(f"""INSERT INTO {steps} (ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, WorkFlowID, TaskID,
                  SequenceID, Attempts, Status, TaskName, SourceSystemCode, ForceSkip, StartTime)
                  VALUES (DATE'2026-04-09', 'OLD', 'L', 'run-1', 0, 0, 0, 0, 'DONE', 'Initiation', NULL, false,
                          TIMESTAMP'2026-04-09 06:00:00'),
                         (DATE'2026-04-09', 'OLD', 'L', 'run-1', 1, 1, 2, 0, 'NQUE', 'Load', 'Until', false,
                          TIMESTAMP'2026-04-09 06:01:00')""")
    spark.sql(f"""INSERT INTO {m.table_name(S.PARAMETERS.name)} (ProjectCode, ProcessLoad, ParameterName,
                  ParameterType, ValueDateTime) VALUES ('OLD', 'L', 'Until', 'DELTA_DATE', TIMESTAMP'2026-04-01')""")
    before = {t: sorted(map(str, spark.table(m.table_name(t)).collect())) for t in old}

    m.setup()
    m.setup()  # idempotent
    m.register_process("OLD", "L", "Before the log", load_frequency="D")
    m.register_task("OLD", "L", 0, 0, 0, "Initiation", "NONE")
    m.register_task("OLD", "L", 1, 1, 2, "Load", "PYTHON", source_system_code="Until", task_mandatory=False)
    for table, rows in before.items():
        migrated = spark.table(m.table_name(table))
        assert migrated.columns[-1] in ("LastEventID", "FoldedThrough")  # the one column it gained
        assert sorted(map(str, migrated.drop(migrated.columns[-1]).collect())) == rows  # every row, as it was
    (running,) = [r for r in m.status_rows("OLD", "L", execution_id="run-1") if r["TaskID"] == 1]
    assert (running["Status"], running["EndTime"]) == ("NQUE", None)
    m.end_task("run-1", "OLD", "L", 1, 2, 1, "2026-04-09")  # the run in flight ends through the log
    assert m.get_active_watermark("OLD", "L", "Until") == datetime(2026, 4, 9, 6, 1)
    m.fold()
    (row,) = [r for r in spark.table(steps).collect() if r.TaskID == 1]
    assert (row.Status, row.LastEventID is not None) == ("DONE", True)
