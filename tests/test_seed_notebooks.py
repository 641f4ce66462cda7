"""The seed package's own sample notebooks (01-install, 02-config, 03-run) run unchanged against this
project — only the import line and the two values the notebook asks the user to set differ — on the
session's Spark with Delta, and leave the state they describe (see tests/seed_notebooks.py)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from pyspark.sql import functions as F

from tests.seed_notebooks import CODE, NOTEBOOKS, WORKSPACE, notebook_text, parse, run_notebooks

MODULE = "etl_monitor_dagster"
CATALOG = "spark_catalog"
SCHEMA = "etl_seed_notebooks"  # the test's own: the teardown cell drops it with CASCADE

# What 02-config's closing "Configuration Complete" cell announces (checked against its text below).
ANNOUNCED = {"ETLOrganisation": 3, "ETLconfigProject": 2, "ETLconfigProcess": 4, "ETLconfigTasks": 22,
             "ETLconfigParameters": 14}
ANNOUNCED_TYPES = {"SYSTEM": 4, "DELTA_DATE": 8, "FLAG": 2}
SEQUENCE_2_WATERMARKS = {2: "LoadEmployeesUK", 3: "LoadEmployeesUS", 4: "LoadEmployeesIN", 5: "LoadOrgStructure"}
WORKSPACE_CELLS = {
    ("01-install", "Install Databricks ETL Monitor Framework"),
    ("01-install", "Check Installed Version"),
    ("01-install", "Extract Sample Notebooks and Config Template to Workspace"),
}


def table(spark, ns, name):
    return spark.table(f"`{ns['MY_CATALOG']}`.`{ns['ETL_SCHEMA']}`.`{name}`")


def steps(spark, ns, execution) -> dict[int, object]:
    """The execution's rows (HR / EMPLOYEE_MASTER, one attempt) keyed by TaskID."""
    rows = table(spark, ns, "v_liveSteps").where(F.col("ExecutionID") == execution).collect()
    assert len({r.TaskID for r in rows}) == len(rows), f"more than one row per task: {rows}"
    return {r.TaskID: r for r in rows}


def parameters(spark, ns) -> dict[str, object]:
    """The process's parameters with every logged move (what the notebook's API calls read)."""
    frame = table(spark, ns, "v_liveParameters")
    rows = frame.where((F.col("ProjectCode") == "HR") & (F.col("ProcessLoad") == "EMPLOYEE_MASTER")).collect()
    return {r.ParameterName: r for r in rows}


# ------------------------------------------------------------------ checks run right after a cell


def config_registered(spark, ns):
    assert {name: table(spark, ns, name).count() for name in ANNOUNCED} == ANNOUNCED
    types = Counter(r.ParameterType for r in table(spark, ns, "ETLconfigParameters").collect())
    assert types == ANNOUNCED_TYPES


def watermarks_start_in_bulk_mode(spark, ns):
    assert [ns["wm_uk"], ns["wm_us"], ns["wm_in"], ns["wm_org"]] == [None] * 4


def first_run_queued(spark, ns):
    rows = steps(spark, ns, ns["EXECUTION_ID"])
    assert sorted(rows) == list(range(9))
    assert {(r.Status, r.Attempts) for r in rows.values()} == {("NQUE", 0)}


def initiation_done(spark, ns):
    assert steps(spark, ns, ns["EXECUTION_ID"])[0].Status == "DONE"


def mandatory_failure_reopens_the_run(spark, ns):
    rows = steps(spark, ns, ns["EXECUTION_ID"])
    assert rows[2].Status == "FAIL"
    assert "SAP HR connection timeout" in rows[2].LogMessage
    assert rows[0].Status == "NQUE", "the initiation row did not go back to NQUE after a mandatory FAIL"


def retry_queues_what_is_not_done(spark, ns):
    rows = steps(spark, ns, ns["EXECUTION_ID_2"])
    assert sorted(rows) == [0, 2, 3, 4, 5, 6, 7, 8], "TaskID 1 was DONE on attempt 0 and must not be queued"
    assert {(r.Status, r.Attempts) for r in rows.values()} == {("NQUE", 1)}


def retry_run_done(spark, ns):
    rows = steps(spark, ns, ns["EXECUTION_ID_2"])
    assert {task: (r.Status, r.Attempts) for task, r in rows.items()} == {
        task: ("DONE", 1) for task in (0, 2, 3, 4, 5, 6, 7, 8)}
    values = parameters(spark, ns)
    for task, name in SEQUENCE_2_WATERMARKS.items():
        assert values[name].ValueDateTime is not None, f"{name} was not advanced"
        assert values[name].ValueDateTime == rows[task].StartTime, f"{name} is not TaskID {task}'s StartTime"


def day_replayed(spark, ns):
    frame = table(spark, ns, "v_liveSteps")
    day = frame.where((F.col("ProjectCode") == "HR") & (F.col("ProcessingDate") == ns["PROCESSING_DATE"]))
    statuses = Counter(r.Status for r in day.collect())
    assert statuses["DONE"] == 0 and statuses["RQUE"] >= 9, statuses


def bulk_mode(spark, ns):
    values = parameters(spark, ns)
    assert [values[name].ValueDateTime for name in SEQUENCE_2_WATERMARKS.values()] == [None] * 4


def historic_mode(spark, ns):
    assert str(parameters(spark, ns)["SYSDT"].ValueDateTime).startswith("2026-01-01")


def live_mode(spark, ns):
    assert parameters(spark, ns)["SYSDT"].ValueDateTime is None


def adf_failure(spark, ns):
    rows = steps(spark, ns, ns["EXECUTION_ID_ADF"])
    assert (rows[1].Status, rows[1].LogType) == ("FAIL", "ERROR")
    assert rows[0].Status == "NQUE"


def deactivated_guard(spark, ns):
    guard = ns["t"]
    assert (guard.active, guard.status) == (False, "NULL")
    assert steps(spark, ns, ns["EXECUTION_ID_DEACT"])[4].Status == "NQUE", "a skipped task must write nothing"


def reactivated_guard(spark, ns):
    assert ns["t"].active is True
    assert steps(spark, ns, ns["EXECUTION_ID_DEACT"])[4].Status == "DONE"


def force_skipped_guard(spark, ns):
    assert (ns["t"].active, ns["t"].status) == (False, "NULL")
    row = steps(spark, ns, ns["EXECUTION_ID_FSKIP"])[4]
    assert (row.ForceSkip, row.Status) == (True, "NQUE")


def unskipped_guard(spark, ns):
    assert ns["t"].active is True
    row = steps(spark, ns, ns["EXECUTION_ID_FSKIP"])[4]
    assert (row.ForceSkip, row.Status) == (False, "DONE")


HOOKS = {
    "02-config: Verify All Watermarks (v_watermarks view)": config_registered,
    "03-run: Generate Execution Steps — Run 1 (Attempts=0, all 9 tasks)": first_run_queued,
    "03-run: Read Watermarks Before Loading": watermarks_start_in_bulk_mode,
    "03-run: Run Initiation Task (TaskID=0, WF=0, SeqID=0)": initiation_done,
    "03-run: Simulate UK Employee Load FAILURE (TaskID=2, mandatory ADF_PIPELINE)": mandatory_failure_reopens_the_run,
    "03-run: Generate Execution Steps — Run 2 (Attempts=1, skips DONE tasks)": retry_queues_what_is_not_done,
    "03-run: Build Employee Analytics Mart (TaskID=8, Attempts=1)": retry_run_done,
    "03-run: Reset Entire Day for Replay (DONE → RQUE, all tasks on this date)": day_replayed,
    "03-run: Switch to Bulk (Full Reload) Mode": bulk_mode,
    "03-run: Switch to Historic Rerun Mode": historic_mode,
    "03-run: Restore Live Mode (default)": live_mode,
    "03-run: ADF path — Config task: start_task → fail_task (On Failure)": adf_failure,
    "03-run: Task cell — DEACTIVATED state (IsActive=FALSE → t.active=False)": deactivated_guard,
    "03-run: Same task cell — ACTIVE state (IsActive=TRUE → t.active=True)": reactivated_guard,
    "03-run: Task cell — ForceSkip=TRUE → t.active=False (same pattern as IsActive)": force_skipped_guard,
    "03-run: Same task cell — ForceSkip cleared → t.active=True": unskipped_guard,
}


@pytest.fixture(scope="module")
def notebooks(spark):
    spark.sql(f"DROP SCHEMA IF EXISTS `{CATALOG}`.`{SCHEMA}` CASCADE")
    try:
        yield run_notebooks(spark, MODULE, CATALOG, SCHEMA, HOOKS)
    finally:
        spark.sql(f"DROP SCHEMA IF EXISTS `{CATALOG}`.`{SCHEMA}` CASCADE")


def test_every_runnable_cell_passes(notebooks):
    """Every cell that can run outside a Databricks workspace runs without an exception."""
    failures = "\n".join(o.describe() for o in notebooks.failed)
    assert not notebooks.failed, f"{len(notebooks.failed)} notebook cells failed:\n{failures}"


def test_only_the_cells_that_need_a_databricks_workspace_are_skipped(notebooks):
    """%pip cells and the sample extraction are skipped (each time 01-install runs); every other code cell ran."""
    skipped = notebooks.of("skipped")
    assert {(o.cell.notebook, o.cell.title) for o in skipped} == WORKSPACE_CELLS
    assert len(skipped) == 3 * len(WORKSPACE_CELLS)  # 01-install runs itself, then from 02-config and 03-run
    ran = {(o.cell.notebook, o.cell.index) for o in notebooks.outcomes if o.status != "skipped"}
    for name in NOTEBOOKS:
        cells = parse(name, notebook_text(name))
        assert {(name, c.index) for c in cells if c.kind == CODE} <= ran
        assert {(c.notebook, c.title) for c in cells if c.kind == WORKSPACE} <= WORKSPACE_CELLS


def test_only_the_import_line_and_the_two_configuration_values_are_changed(notebooks):
    assert notebooks.substitutions == {"import": 1, "MY_CATALOG": 1, "ETL_SCHEMA": 1}
    assert (notebooks.namespace["MY_CATALOG"], notebooks.namespace["ETL_SCHEMA"]) == (CATALOG, SCHEMA)
    assert notebooks.namespace["ETLMonitorFramework"].__module__.startswith(MODULE)


def test_the_counts_checked_are_the_ones_02_config_announces():
    """The row counts checked after 02-config are read from the notebook's own closing table."""
    text = notebook_text("02-config")
    announced = {name: int(count) for name, count in re.findall(r"\|\s*`(ETL\w+)`\s*\|\s*(\d+) ", text)}
    assert announced == ANNOUNCED
    types = re.search(r"SYSDT \W (\d+) \+ DELTA_DATE \W (\d+) \+ FLAG \W (\d+)", text)
    assert types is not None
    assert dict(zip(["SYSTEM", "DELTA_DATE", "FLAG"], map(int, types.groups()), strict=True)) == ANNOUNCED_TYPES


@pytest.mark.parametrize("checkpoint", HOOKS)
def test_state_after_cell(notebooks, checkpoint):
    """The tables hold what the notebook says right after this cell ran."""
    assert notebooks.hooks_fired.get(checkpoint) == 1, f"the cell {checkpoint!r} did not run exactly once"
    error = notebooks.hook_errors.get(checkpoint)
    assert error is None, f"{type(error).__name__}: {error}"


def test_the_teardown_cell_dropped_the_tests_own_schema(notebooks, spark):
    assert spark.sql(f"SHOW SCHEMAS IN `{CATALOG}` LIKE '{SCHEMA}'").count() == 0


def test_display_exists_only_while_the_notebooks_run(notebooks):
    from pyspark.sql.connect.dataframe import DataFrame

    assert "display" not in vars(DataFrame)
