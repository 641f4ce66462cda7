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
