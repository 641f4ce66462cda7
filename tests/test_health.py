"""The health sensor: idle (no statement to the engine) while nothing of ours runs, SLA at risk reported once
per task start with its one message to the owner, heartbeats deciding when a remote task's row is stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, build_sensor_context, instance_for_test

from etl_monitor_dagster import ETLMonitorResource
from etl_monitor_dagster.core.catalogue import ProcessSpec, TaskSpec
from etl_monitor_dagster.core.errors import ValidationError
from etl_monitor_dagster.dagster.metadata import PROCESS_TAG
from etl_monitor_dagster.dagster.sensors import HealthSettings, health_sensor
from tests.conftest import DAY, free_port
from tests.test_alerts import _alerts, channels  # noqa: F401  (the loopback Teams, Slack and SMTP fakes)

TASK = {"task_id": 1, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}


def _spec(process, *task_ids: int) -> ProcessSpec:
    return ProcessSpec(project=process.project, process=process.load, tasks=tuple(
        TaskSpec(id=t, workflow=1, stage=2, name=f"task 1.{t}", source_type="PYTHON") for t in task_ids))


def _tick(instance: DagsterInstance, specs: list[ProcessSpec], monitor: ETLMonitorResource,
          settings: HealthSettings | None = None, alerts=None) -> str:
    sensor = health_sensor(specs, settings or HealthSettings(), alerting=alerts is not None)
    resources = {"monitor": monitor, **({"alerts": alerts} if alerts is not None else {})}
    return sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources)).skip_message or ""


def _live(instance: DagsterInstance, run_id: str, process_load: str) -> None:
    instance.add_run(DagsterRun(job_name="process_job", run_id=run_id, status=DagsterRunStatus.STARTED,
                                tags={PROCESS_TAG: process_load}))


def test_the_health_sensor_sends_nothing_to_the_engine_while_no_run_of_its_processes_is_recent():
    # an engine that is not there: a single statement would fail the tick (after its 1 s retry bound)
    unreachable = ETLMonitorResource(engine="connect", spark_remote=f"sc://127.0.0.1:{free_port()}",
                                     unreachable_timeout_seconds=1)
    spec = ProcessSpec(project="IDLE", process="IDLE_LOAD", tasks=(
        TaskSpec(id=1, workflow=1, stage=2, name="t", source_type="PYTHON"),))
    with instance_for_test() as instance:
        assert _tick(instance, [spec], unreachable).startswith("idle: no run of 1 process(es)")
        # a run of another process, in progress, does not wake it either
        _live(instance, "other-run", "SOMETHING_ELSE")
        assert _tick(instance, [spec], unreachable).startswith("idle:")
        # a run of the process does: now it asks the engine, which is not there
        _live(instance, "our-run", "IDLE_LOAD")
        with pytest.raises(Exception) as failed:  # Dagster wraps the engine's error
            _tick(instance, [spec], unreachable)
        chain, error = [], failed.value
        while error is not None:
            chain.append(str(error))
            error = error.__cause__
        assert any("127.0.0.1" in text for text in chain), chain  # it went to the engine


def test_health_settings_are_checked_at_the_edge():
    with pytest.raises(ValidationError, match="at_risk_share"):
        HealthSettings(at_risk_share=1.5)
    with pytest.raises(ValidationError, match="lookback_minutes"):
        HealthSettings(lookback_minutes=-1)


@pytest.fixture
def resource(spark_server, monitor) -> ETLMonitorResource:
    return ETLMonitorResource(engine="connect", spark_remote=spark_server.url, schema_name=monitor.schema)


def _events(process, execution: str, kind: str) -> list[dict]:
    return [json.loads(r["Message"]) for r in process.receipts(execution) if r["OperationName"] == kind]


def test_a_task_past_its_slas_warning_share_is_at_risk_once_per_start_with_one_message(
        make_process, instance, resource, channels):  # noqa: F811
    process = make_process(tasks=[{"task_id": 1, "sla_seconds": 100, "task_name": "Load orders"}])
    process.monitor.register_process(process.project, process.load, owner="orders.team@example.com")
    m, run = process.monitor, process.new_run()
    _live(instance, run, process.load)
    alerts = _alerts(channels)
    m.start_task(run, process.project, process.load, **TASK, timestamp=datetime.now(UTC) - timedelta(seconds=90))
    spec = _spec(process, 1)

    _tick(instance, [spec], resource, alerts=alerts)
    _tick(instance, [spec], resource, alerts=alerts)  # a second tick: the same start, nothing new
    (risk,) = _events(process, run, "SLA_AT_RISK")
    assert (risk["task_id"], risk["attempt"], risk["sla_seconds"], risk["at_risk_share"]) == (1, 0, 100, 0.8)
    assert risk["running_seconds"] >= 80
    (row,) = m.read_view("v_taskDetail", ExecutionID=run, TaskID=1)
    assert (row["SlaAtRisk"], row["Status"]) == (True, "NQUE")
    assert channels.counts() == (1, 1, 1)  # one message, on each channel
    (mail,) = channels.emails()
    assert mail["To"] == "orders.team@example.com" and "at risk of breaching its SLA" in mail["Subject"]
    assert "Load orders (attempt 0) has run" in channels.texts()[0]
    (receipt,) = _events(process, run, "ALERT_AT_RISK")
    assert receipt["at_risk_key"] == risk["event_id"] and receipt["recipient"] == "orders.team@example.com"

    # a retry is a new start: at risk again, one more message
    m.retry_task(run, process.project, process.load, **TASK, log_message="transient")
    m.start_task(run, process.project, process.load, **TASK, timestamp=datetime.now(UTC) - timedelta(seconds=85))
    _tick(instance, [spec], resource, alerts=alerts)
    assert len(_events(process, run, "SLA_AT_RISK")) == 2 and channels.counts() == (2, 2, 2)
    m.end_task(run, process.project, process.load, **TASK)
    (row,) = m.read_view("v_taskDetail", ExecutionID=run, TaskID=1)
    assert (row["SlaAtRisk"], row["Status"]) == (True, "DONE")  # the view keeps what the start went through
    m.fold()  # folded into ETLsysLogs, the events still say so
    assert m.read_view("v_taskDetail", ExecutionID=run, TaskID=1)[0]["SlaAtRisk"] is True


def test_a_task_below_its_warning_share_or_without_an_sla_is_not_at_risk(make_process, instance, resource):
    process = make_process(tasks=[{"task_id": 1, "sla_seconds": 3600}, {"task_id": 2}])
    m, run = process.monitor, process.new_run()
    _live(instance, run, process.load)
    started = datetime.now(UTC) - timedelta(seconds=600)
    for task in (1, 2):
        m.start_task(run, process.project, process.load, task, 2, 1, DAY, timestamp=started)
    _tick(instance, [_spec(process, 1, 2)], resource)
    assert _events(process, run, "SLA_AT_RISK") == []
    assert [r["SlaAtRisk"] for r in m.read_view("v_taskDetail", ExecutionID=run, order_by=["TaskID"])] == [
        False, False, False]


# ---------------------------------------------------------------------------------------------- heartbeats

def _notebook_run(process, api, execution: str, path: str, heartbeat_seconds: float):
    """The DBX_NOTEBOOK runner on the fake Jobs API, for task 1 of ``process`` (started an hour ago, SLA 1 s:
    without heartbeats its row is long past the stale limit of 3 s)."""
    from databricks.sdk import WorkspaceClient

    from etl_monitor_dagster.core.runs import TaskRun
    from etl_monitor_dagster.tasks.databricks import Databricks, run_notebook

    m = process.monitor
    m.start_task(execution, process.project, process.load, **TASK, source_type="DBX_NOTEBOOK",
                 timestamp=datetime.now(UTC) - timedelta(hours=1))
    spec = ProcessSpec(project=process.project, process=process.load, tasks=())
    task = TaskSpec(id=1, workflow=1, stage=2, name="Score", source_type="DBX_NOTEBOOK", source=path, sla_seconds=1)
    client = WorkspaceClient(host=api.host, token=HEARTBEAT_TOKEN)
    return run_notebook(TaskRun(execution, spec, task, datetime(2026, 4, 9).date(), {"Attempts": 0}, m,
                                databricks=Databricks(client, 0.05, heartbeat_seconds)))


HEARTBEAT_TOKEN = "dapi-heartbeat-test-token"


@pytest.fixture
def api():
    from tests.fake_databricks import FakeDatabricks

    with FakeDatabricks(token=HEARTBEAT_TOKEN) as fake:
        yield fake


def test_heartbeats_keep_a_slow_remote_task_alive_and_a_stopped_one_is_found_stale(
        make_process, instance, resource, api):
    from tests.fake_databricks import Script

    process = make_process(tasks=[{"task_id": 1, "sla_seconds": 1, "source_type": "DBX_NOTEBOOK"}])
    _live(instance, f"another-run-{process.load}-{process.project}", process.load)  # the sensor is awake
    spec = _spec(process, 1)
    settings = HealthSettings(sla_factor=3.0)

    slow = process.new_run()
    api.script("/Repos/qa/slow_but_alive", Script(polls=3))
    _notebook_run(process, api, slow, "/Repos/qa/slow_but_alive", heartbeat_seconds=600)
    beats = _events(process, slow, "HEARTBEAT")
    assert beats and beats[0]["interval_seconds"] == 600 and beats[0]["remote_state"].startswith(("PENDING",
                                                                                                    "RUNNING"))
    assert beats[0]["source_run_id"] == process.steps(slow)[(1, 1)]["SourceRunID"]
    _tick(instance, [spec], resource, settings)
    # an hour past its 3 s limit, but its heartbeat is fresh: never failed as stale
    assert (process.steps(slow)[(1, 1)]["Status"], process.steps(slow)[(1, 1)]["EndTime"]) == ("NQUE", None)

    stopped = process.new_run("2026-04-10")
    api.script("/Repos/qa/poller_dies", Script(polls=2))
    task_10 = {**TASK, "processing_date": "2026-04-10"}
    m = process.monitor
    m.start_task(stopped, process.project, process.load, **task_10, source_type="DBX_NOTEBOOK",
                 timestamp=datetime.now(UTC) - timedelta(minutes=1))
    from etl_monitor_dagster.core.monitor.steps import StepKey
    key = StepKey(stopped, process.project, process.load, 1, 1, 2, datetime(2026, 4, 10).date(), 0)
    assert m.health.heartbeat(key, "RUNNING", 0.5) is not None  # then its poller is killed: no more heartbeats
    import time
    time.sleep(1.5)  # past two intervals of 0.5 s
    _tick(instance, [spec], resource, settings)
    row = process.steps(stopped)[(1, 1)]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "STALE") and "no heartbeat for" in row["LogMessage"]
    # the slow one still beats within its interval: untouched by the same tick
    assert process.steps(slow)[(1, 1)]["Status"] == "NQUE"


def test_heartbeats_change_no_step_row_and_fold_into_receipts(make_process):
    from etl_monitor_dagster.core.monitor.steps import StepKey

    process = make_process(tasks=[{"task_id": 1}])
    m, run = process.monitor, process.new_run()
    m.start_task(run, process.project, process.load, **TASK)
    before = process.steps(run)[(1, 1)]
    key = StepKey(run, process.project, process.load, 1, 1, 2, datetime(2026, 4, 9).date(), 0)
    row = m.health.heartbeat(key, "RUNNING", 60)
    assert row is not None and m.health.heartbeat(key, "RUNNING", 60, row=row) == row
    assert process.steps(run)[(1, 1)] == before  # status, times, LastEventID: as the START left them
    m.fold()
    assert len(_events(process, run, "HEARTBEAT")) == 2  # folded into ETLsysLogs as receipts
    (beat,) = [r for r in m.health.running() if r["ExecutionID"] == run]
    assert beat["HeartbeatInterval"] == 60 and beat["HeartbeatAgeSeconds"] < 120  # read back after the fold
    m.end_task(run, process.project, process.load, **TASK)
    assert m.health.heartbeat(StepKey(run, process.project, process.load, 1, 1, 2, None, None), "RUNNING", 60) is None
