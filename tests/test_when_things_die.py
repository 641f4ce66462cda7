"""When runs and writers die, the monitor says so: a run that ended unfinished, a writer that started a
task and exited, a writer killed in the middle of a transition (which is one commit: all of it or none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, build_sensor_context

from etl_monitor_dagster import ETLMonitorResource
from etl_monitor_dagster.core.catalogue import ProcessSpec, TaskSpec
from etl_monitor_dagster.core.enums import LogCode
from etl_monitor_dagster.core.monitor.health import StaleLimits
from etl_monitor_dagster.dagster.metadata import PROCESS_TAG
from etl_monitor_dagster.dagster.sensors import HealthSettings, health_sensor
from tests.conftest import DAY

HOUR = timedelta(hours=1)


def test_stale_limits_come_from_the_sla_then_the_process_then_the_default():
    limits = StaleLimits(sla_factor=2.5, default_seconds=600, process_seconds={("P", "L"): 120})
    assert limits.limit({"SlaSeconds": 60, "ProjectCode": "P", "ProcessLoad": "L"})[0] == 150
    assert limits.limit({"SlaSeconds": None, "ProjectCode": "P", "ProcessLoad": "L"})[0] == 120
    assert limits.limit({"SlaSeconds": None, "ProjectCode": "P", "ProcessLoad": "OTHER"})[0] == 600


def _receipts(process, execution: str) -> list[dict]:
    return [json.loads(r["Message"]) for r in process.receipts(execution)]


def test_a_run_that_ended_unfinished_fails_its_running_rows_keeps_unstarted_ones_queued_and_reads_failed(
        make_process):
    process = make_process(tasks=[{"task_id": 1, "task_mandatory": True}, {"task_id": 2, "sequence_id": 3},
                                  {"task_id": 3}])
    monitor, run = process.monitor, process.new_run()
    scope = (run, process.project, process.load)
    monitor.start_task(*scope, 0, 0, 0, DAY, source_type="NONE")
    monitor.end_task(*scope, 0, 0, 0, DAY)
    monitor.start_task(*scope, 1, 2, 1, DAY, source_type="PYTHON")
    monitor.start_task(*scope, 3, 2, 1, DAY, source_type="PYTHON")
    monitor.end_task(*scope, 3, 2, 1, DAY)  # ended by its hook before the run died

    at = datetime.now(UTC)
    ended = monitor.health.end_run(run, LogCode.RUN_FAILED, "the run worker is gone", at)

    assert sorted((r["TaskID"], r["LogCode"]) for r in ended) == [(0, "RUN_FAILED"), (1, "RUN_LOST")]
    steps = process.steps(run)
    assert (steps[(1, 1)]["Status"], steps[(1, 1)]["LogCode"]) == ("FAIL", "RUN_LOST")
    assert "the run worker is gone" in steps[(1, 1)]["LogMessage"]
    assert (steps[(0, 0)]["Status"], steps[(0, 0)]["LogCode"]) == ("FAIL", "RUN_FAILED")
    assert (steps[(1, 2)]["Status"], steps[(1, 2)]["StartTime"]) == ("NQUE", None)  # never started: stays queued
    assert steps[(1, 3)]["Status"] == "DONE"
    (summary,) = monitor.read_view("v_runSummary", ExecutionID=run)
    assert (summary["OverallStatus"], summary["Pending"]) == ("FAILED", 1)
    (status,) = monitor.read_view("v_processStatus", ProjectCode=process.project)
    assert status["OverallStatus"] == "FAIL"
    (attempt,) = monitor.status_rows(process.project, process.load, execution_id=run, summary_mode=True)
    assert attempt["OverallStatus"] == "FAIL"
    events = [(e["event_type"], e.get("task_id"), (e.get("error") or {}).get("code"), e.get("error_class"))
              for e in _receipts(process, run)]
    # the task's failure has a class like every task failure (nothing says why its run died); the run's end none
    assert events[-2:] in ([("TASK_FAIL", 1, "RUN_LOST", "UNKNOWN"), ("RUN_END", 0, "RUN_FAILED", None)],
                           [("RUN_END", 0, "RUN_FAILED", None), ("TASK_FAIL", 1, "RUN_LOST", "UNKNOWN")])

    before = len(events)
    assert monitor.health.end_run(run, LogCode.RUN_FAILED, "again", datetime.now(UTC)) == []  # idempotent
    assert len(_receipts(process, run)) == before


def _writer(spark_server, process, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter with ``monitor`` bound to the test schema, as a notebook would."""
    prelude = textwrap.dedent(f"""
        import os, signal
        from pyspark.sql import SparkSession
        from etl_monitor_dagster import ETLMonitorFramework
        spark = SparkSession.builder.remote({spark_server.url!r}).getOrCreate()
        monitor = ETLMonitorFramework(spark, schema={process.monitor.schema!r}, updated_by="writer")
        project, load = {process.project!r}, {process.load!r}
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())


@pytest.fixture
def health(spark_server, monitor, instance: DagsterInstance):
    """One tick of the health sensor with the given settings and processes; returns its skip message."""
    resource = ETLMonitorResource(engine="connect", spark_remote=spark_server.url, schema_name=monitor.schema)

    def tick(settings: HealthSettings, specs: list[ProcessSpec] = (), cursor: str | None = None) -> tuple[str, str]:
        sensor = health_sensor(specs, settings)
        result = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor,
                                                           resources={"monitor": resource}))
        return result.skip_message, result.cursor

    return tick


def test_a_writer_that_started_a_task_and_died_leaves_a_row_the_health_sensor_fails_as_stale(
        spark_server, make_process, instance, health):
    process = make_process(tasks=[{"task_id": 1}, {"task_id": 2}, {"task_id": 3, "sla_seconds": 600}])
    dead, live = process.new_run(), process.new_run("2026-04-10")
    instance.add_run(DagsterRun(job_name="checkout", run_id=live, status=DagsterRunStatus.STARTED,
                                tags={PROCESS_TAG: process.load}))  # a run of the process keeps the sensor awake
    started = (datetime.now(UTC) - 2 * HOUR).isoformat()
    writer = _writer(spark_server, process, f"""
        monitor.start_task({dead!r}, project, load, 1, 2, 1, "{DAY}", source_type="PYTHON", timestamp={started!r})
        monitor.start_task({dead!r}, project, load, 2, 2, 1, "{DAY}", source_type="PYTHON")
        monitor.start_task({dead!r}, project, load, 3, 2, 1, "{DAY}", source_type="PYTHON", timestamp={started!r})
        monitor.start_task({live!r}, project, load, 1, 2, 1, "2026-04-10", source_type="PYTHON",
                           timestamp={started!r})
        os._exit(0)  # the notebook dies: nothing ends its tasks
    """)
    assert writer.returncode == 0, writer.stderr

    spec = ProcessSpec(project=process.project, process=process.load, max_runtime_minutes=90,
                       tasks=(TaskSpec(id=1, workflow=1, stage=2, name="task 1.1", source_type="PYTHON"),))
    message, _ = health(HealthSettings(sla_factor=3.0, default_max_runtime_minutes=1000), [spec])

    rows = process.steps(dead)
    # task 1: 2 h > the process's 90 min; task 3: 2 h > SlaSeconds 600 x 3; task 2 started just now
    assert [(rows[(1, t)]["Status"], rows[(1, t)]["LogCode"]) for t in (1, 2, 3)] == [
        ("FAIL", "STALE"), ("NQUE", None), ("FAIL", "STALE")]
    assert "max_runtime_minutes" in rows[(1, 1)]["LogMessage"] and "SlaSeconds 600" in rows[(1, 3)]["LogMessage"]
    assert process.steps(live)[(1, 1)]["EndTime"] is None  # a live run's row is never touched
    stale = [e for e in _receipts(process, dead) if e["event_type"] == "TASK_FAIL"]
    assert sorted(e["task_id"] for e in stale) == [1, 3]
    assert {(e["error"]["code"], e["error_class"]) for e in stale} == {("STALE", "TIMEOUT")}
    assert "stale rows failed" in message  # other tests' rows share the schema: the count is not ours alone

    health(HealthSettings(sla_factor=3.0, default_max_runtime_minutes=1000), [spec])  # a second pass changes nothing
    assert len([e for e in _receipts(process, dead) if e["event_type"] == "TASK_FAIL"]) == 2


def test_a_writer_killed_in_the_middle_of_a_transition_leaves_all_of_it_or_none(spark_server, make_process):
    process = make_process(tasks=[{"task_id": 1, "source_system_code": "LoadedUntil"}, {"task_id": 2}],
                           parameters=[{"parameter_name": "LoadedUntil", "parameter_type": "DELTA_DATE",
                                        "value_datetime": "2026-01-01 00:00:00"}])
    run = process.new_run()
    killed = _writer(spark_server, process, f"""
        from etl_monitor_dagster.core.monitor.store import Store
        monitor.start_task({run!r}, project, load, 1, 2, 1, "{DAY}", source_type="PYTHON")
        Store.append = die  # killed before the DONE's one commit
        monitor.end_task({run!r}, project, load, 1, 2, 1, "{DAY}")
    """)
    assert killed.returncode == -9, killed.stderr
    killed = _writer(spark_server, process, f"""
        from etl_monitor_dagster.core.monitor.steps import Steps
        Steps._first_on_basis = die  # killed after the START's one commit, while it asks whether it came first
        monitor.start_task({run!r}, project, load, 2, 2, 1, "{DAY}", source_type="PYTHON")
    """)
    assert killed.returncode == -9, killed.stderr

    rows = process.steps(run)
    assert (rows[(1, 1)]["Status"], rows[(1, 1)]["EndTime"]) == ("NQUE", None)  # still running: no DONE at all
    assert process.monitor.get_active_watermark(process.project, process.load, "LoadedUntil") == datetime(2026, 1, 1)
    assert rows[(1, 2)]["StartTime"] is not None  # the START is whole: its row and its receipt
    assert [(e["event_type"], e["task_id"]) for e in _receipts(process, run)] == [("TASK_START", 1), ("TASK_START", 2)]
    process.monitor.end_task(run, process.project, process.load, 1, 2, 1, DAY)  # a writer that lives ends it
    assert process.monitor.get_active_watermark(process.project, process.load, "LoadedUntil") == rows[(1, 1)][
        "StartTime"]
