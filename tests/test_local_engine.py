"""The embedded engine runs with the settings tuned for the monitor's small statements (README, Speed)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from etl_monitor_dagster import EngineError
from etl_monitor_dagster.core.local_spark import LOG_STORE_JAR, LocalSparkServer
from etl_monitor_dagster.core.sql import quote_string


def test_the_embedded_server_runs_with_the_tuned_settings_and_keeps_little_ui_history(spark_server, spark):
    """Each SQL and UI setting the server is started with is the one in effect, the UI history limits among
    them (without them garbage collection grew to a third of the server's CPU)."""
    given = dict(arg.split("=", 1) for arg in spark_server.command() if arg.startswith("spark.") and "=" in arg)
    tuned = {k: v for k, v in given.items()
             if k.startswith(("spark.sql.", "spark.ui.", "spark.connect.ui.")) and k != "spark.sql.warehouse.dir"}
    assert tuned["spark.sql.ui.retainedExecutions"] == "20" and tuned["spark.ui.retainedTasks"] == "200"
    assert {k: spark.conf.get(k) for k in tuned} == tuned


def test_a_view_over_a_column_comment_derby_refuses_is_created_without_retrying_the_refusal(spark_server, spark,
                                                                                          monitor):
    """The seed's ForceSkip comment is longer than the 256 characters Derby's metastore keeps. Creating a
    view over it must not retry the refused write (Hive's default: 10 times, 2 s apart, holding the
    catalog lock every session needs); the view is created and keeps the comment."""
    comment = "Run-level skip flag — " + "x" * 280
    table, view = f"`{monitor.schema}`.long_comment", f"`{monitor.schema}`.v_long_comment"
    spark.sql(f"CREATE OR REPLACE TABLE {table} (ForceSkip BOOLEAN COMMENT {quote_string(comment)}) USING DELTA")
    logged = len(spark_server.log_file.read_text().splitlines())
    try:
        spark.sql(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table}")
        described = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {view}").collect()}
    finally:
        spark.sql(f"DROP VIEW IF EXISTS {view}")
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    retries = [line for line in spark_server.log_file.read_text().splitlines()[logged:]
               if "Retrying HMSHandler" in line]
    assert retries and all("attempt 1 of 1)" in line for line in retries)  # refused once, not retried
    assert described == {"ForceSkip": comment}


def _eleven_commits(spark, table: str, properties: str = "") -> Path:
    """``table`` (k INT) created, then k = 0..10 inserted one row per commit; returns its _delta_log folder."""
    spark.sql(f"CREATE OR REPLACE TABLE {table} (k INT) USING DELTA {properties}")
    for value in range(11):
        spark.sql(f"INSERT INTO {table} VALUES ({value})")
    return Path(urlparse(spark.sql(f"DESCRIBE DETAIL {table}").collect()[0]["location"]).path) / "_delta_log"


def test_a_table_log_holds_one_json_file_per_commit_and_no_early_checkpoint(spark, monitor):
    """Each commit leaves one file in the _delta_log, not four (no checksum, no side files), so a listing
    has fewer to take; nor does every tenth commit rewrite the table's file list as a checkpoint."""
    table = f"`{monitor.schema}`.one_file_per_commit"
    try:
        log = _eleven_commits(spark, table)
        files = sorted(p.name for p in log.iterdir() if p.is_file())
        rows = sorted(r["k"] for r in spark.table(table).collect())
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    assert files == [f"{version:020d}.json" for version in range(12)]
    assert rows == list(range(11))


def test_the_server_lists_delta_logs_with_its_own_store_and_reads_across_checkpoints(spark, monitor):
    """The server's log store for local tables (jars/src) names the files from the last checkpoint on: a
    table whose log crossed two checkpoints, and then lost the files before the last one as Delta's log
    cleanup removes them, still reads every row and takes commits."""
    assert spark.conf.get("spark.delta.logStore.file.impl") == "etlmonitor.LocalLogStore"
    table = f"`{monitor.schema}`.checkpointed"
    try:
        log = _eleven_commits(spark, table, "TBLPROPERTIES (delta.checkpointInterval = 5)")
        checkpoints = sorted(p.name for p in log.glob("*.checkpoint.parquet"))
        for old in log.glob("0*"):
            if int(old.name.split(".")[0]) < 10:
                old.unlink()
        spark.sql(f"INSERT INTO {table} VALUES (11)")
        rows = sorted(r["k"] for r in spark.table(table).collect())
        versions = [r["version"] for r in spark.sql(f"DESCRIBE HISTORY {table}").collect()]
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    assert checkpoints == [f"{v:020d}.checkpoint.parquet" for v in (5, 10)]
    assert rows == list(range(12))
    assert sorted(versions) == [10, 11, 12]


def test_a_server_whose_jars_lack_the_log_store_is_refused_with_what_to_run(tmp_path):
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "delta-spark_4.2_2.13-4.4.0.jar").touch()
    with pytest.raises(EngineError, match=f"{re.escape(LOG_STORE_JAR)} are missing from {re.escape(str(jars))}: "
                                          "run `make install`"):
        LocalSparkServer(home=tmp_path, port=1, jars_dir=jars).command()
