"""Task runners: SQL scripts split safely, the run's context reaches Spark SQL bound, failures name the statement."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import date

import pytest

from etl_monitor_dagster import tasks
from etl_monitor_dagster.core.catalogue import ProcessSpec, TaskSpec
from etl_monitor_dagster.core.runs import uninterrupted
from etl_monitor_dagster.tasks import TaskFailed, TaskRun
from etl_monitor_dagster.tasks.spark_sql import split_statements

HOSTILE = "O'Brien \"$x\" ${env:HOME}\n; DROP TABLE x; -- ü 日本"


def test_a_script_splits_on_semicolons_outside_quotes_and_comments():
    script = "SELECT ';' AS a, \"x;y\" AS `b;c`;\n-- a comment; still a comment\n/* block; */ SELECT 'it\\'s;'; ;"
    assert list(split_statements(script)) == [
        "SELECT ';' AS a, \"x;y\" AS `b;c`",
        "-- a comment; still a comment\n/* block; */ SELECT 'it\\'s;'",
    ]


def _run(tmp_path, monitor, sql: str, process: str = "LOAD") -> TaskRun:
    (tmp_path / "task.sql").write_text(sql, encoding="utf-8")
    task = TaskSpec(id=1, workflow=1, stage=2, name="Echo", source_type="SPARK_SQL", source="task.sql")
    spec = ProcessSpec(project="QA", process=process, tasks=(task,), path=tmp_path / "p.yaml")
    return TaskRun("exec-1", spec, task, date(2026, 4, 9), {"WatermarkValue": HOSTILE, "Attempts": 2}, monitor)


def test_the_run_context_reaches_spark_sql_as_bound_values_that_round_trip_intact(tmp_path, monitor):
    table = f"{monitor.schema}.sql_runner_echo"
    run = _run(tmp_path, monitor, f"""
        CREATE OR REPLACE TABLE {table} (process STRING, mark STRING, day DATE, attempts INT) USING DELTA;
        INSERT INTO {table} SELECT etl.process_load, etl.watermark_value, etl.processing_date, etl.attempts;
        SELECT count(*) AS rows_read, 42 AS new_watermark FROM {table};""", process=HOSTILE)
    result = tasks.run(run)
    (row,) = monitor.spark.table(table).collect()
    assert (row.process, row.mark, row.day, row.attempts) == (HOSTILE, HOSTILE, date(2026, 4, 9), 2)
    assert (result.rows_read, result.new_watermark) == (1, 42)


def test_a_script_that_never_names_etl_runs_without_setting_it(tmp_path, monitor):
    tasks.run(_run(tmp_path, monitor, "SELECT etl.attempts AS rows_read;"))  # sets etl for attempt 2
    later = _run(tmp_path, monitor, "SELECT 7 AS rows_read;")
    later.step["Attempts"] = 5
    assert tasks.run(later).rows_read == 7
    assert monitor.spark.sql("SELECT etl.attempts AS a").first().a == 2  # not set again for attempt 5
    later = _run(tmp_path, monitor, "SELECT ETL.attempts AS rows_read;")  # names are case-insensitive
    later.step["Attempts"] = 5
    assert tasks.run(later).rows_read == 5


def test_a_failing_statement_names_the_file_and_its_number(tmp_path, monitor):
    run = _run(tmp_path, monitor, f"SELECT 1;\nSELECT * FROM {monitor.schema}.no_such_table;")
    with pytest.raises(TaskFailed, match=r"task\.sql statement 2: .*no_such_table") as failure:
        tasks.run(run)
    assert failure.value.code == "TABLE_OR_VIEW_NOT_FOUND"


class Stopped(Exception):
    pass


def test_a_run_asked_to_stop_interrupts_its_running_statement_on_the_engine(tmp_path, monitor):
    table = f"{monitor.schema}.sql_runner_stopped"
    held = f"etl_monitor.test.held.{uuid.uuid4().hex}"  # a server property the held statement sets first
    run = _run(tmp_path, monitor, f"""
        CREATE OR REPLACE TABLE {table} (step STRING) USING DELTA;
        INSERT INTO {table} VALUES ('started');
        INSERT INTO {table} SELECT concat(reflect('java.lang.System', 'setProperty', '{held}', 'yes'),
                                          java_method('java.lang.Thread', 'sleep', CAST(600000 AS BIGINT)));""")
    watcher = monitor.spark  # the process's one session, asked from the runner's stop thread

    def check_stop() -> None:  # the run is stopped once the held statement runs: no signal, no timing
        if watcher.sql(f"SELECT java_method('java.lang.System', 'getProperty', '{held}') AS v").first().v:
            raise Stopped

    run.check_stop = check_stop
    with pytest.raises(Stopped) as stop:
        tasks.run(run)
    assert stop.value.__cause__.getCondition() == "OPERATION_CANCELED"  # raised by the interrupted statement
    assert [r.step for r in watcher.table(table).collect()] == ["started"]  # the held INSERT never landed


class Interrupted(Exception):
    pass


def _raise(*_: object) -> None:
    raise Interrupted


def test_a_signal_during_an_uninterrupted_block_is_ignored_and_the_handlers_come_back():
    kept = {number: signal.signal(number, _raise) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        reached = []
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append("the block's end")  # where a remote run's cancel request returns
        assert reached == ["the block's end"]
        for number in kept:
            assert signal.getsignal(number) is _raise
            with pytest.raises(Interrupted):
                os.kill(os.getpid(), number)
    finally:
        for number, handler in kept.items():
            signal.signal(number, handler)
