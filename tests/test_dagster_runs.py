"""Catalogue processes run by a real Dagster instance on the test run's Spark + Delta server."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.catalogue import load_catalogue
from etl_monitor_dagster.dagster.hooks import hooks_finished
from etl_monitor_dagster.dagster.sensors import run_outcomes
from tests import dagster_location
from tests.dagster_location import (
    CATALOGUE,
    IN_PROCESS,
    checkout_job,
    evaluate_reconciliation,
    hookless_job,
    latest_checks,
    launch,
    observations,
    rows,
    tick_run_sensor,
)


@pytest.fixture
def ready(monitor: ETLMonitorFramework):
    """Set the CHECKOUT sources' readiness flags."""

    def set_flags(orders: bool, clicks: bool) -> None:
        for name, value in (("OrdersReady", orders), ("ClicksReady", clicks)):
            monitor.set_processing_mode("QA", "CHECKOUT", parameter_name=name, value_bit=value)

    return set_flags


def assert_monitor_agrees(instance: DagsterInstance, monitor: ETLMonitorFramework, run_id: str) -> None:
    """Every task outcome in Dagster's event log is the status in the monitor; unrun tasks stay queued.

    The initiation row is left out: it is the run's overall status, which a mandatory failure reopens.
    """
    spec, steps = _checkout_index()
    outcomes = run_outcomes(instance, run_id, set(steps))
    by_name = rows(monitor, spec.process, run_id)
    for step, task in steps.items():
        if task.name not in by_name or task.workflow == 0:
            continue
        expected = outcomes[step][0].outcome.value if step in outcomes else by_name[task.name]["Status"]
        assert by_name[task.name]["Status"] == expected, (task.name, by_name[task.name])
        if step not in outcomes:
            assert expected in ("NQUE", "RQUE")


def _checkout_index():
    from etl_monitor_dagster.dagster.assets import build_process_assets

    (spec,) = [s for s in load_catalogue(CATALOGUE) if s.process == "CHECKOUT"]
    return spec, build_process_assets(spec).tasks_by_step


def test_a_partition_runs_every_stage_and_records_done_with_watermarks_and_view_figures(instance, monitor, ready):
    ready(orders=True, clicks=True)
    cursor = tick_run_sensor(instance, "success", None)
    success, run_id = launch(checkout_job, instance, "2026-05-03", run_config=IN_PROCESS)
    assert success
    assert {name: r["Status"] for name, r in rows(monitor, "CHECKOUT", run_id).items()} == {
        "Initiation": "DONE", "Load orders": "DONE", "Load clicks": "DONE", "Build mart": "DONE"}
    assert monitor.get_active_watermark("QA", "CHECKOUT", "MartAsOf") is not None
    summary = instance.get_latest_materialization_event(AssetKey(["qa", "checkout", "v_runSummary"]))
    figures = {k: v.value for k, v in summary.asset_materialization.metadata.items()}
    assert (figures["Done"], figures["Failed"], figures["Pending"], figures["OverallStatus"]) == (4, 0, 0, "COMPLETE")
    marks = instance.get_latest_materialization_event(AssetKey(["qa", "checkout", "v_watermarks"]))
    assert "watermark_MartAsOf" in marks.asset_materialization.metadata
    # What a gate waits for: each task step's two hooks (done, fail) reported after its success.
    _, steps = _checkout_index()
    assert hooks_finished(instance, run_id, dict.fromkeys(steps, 2), timeout=0)
    assert not hooks_finished(instance, run_id, dict.fromkeys(steps, 3), timeout=0.3)
    assert hooks_finished(instance, run_id, {"not_a_step_of_this_run": 2}, timeout=0)
    assert_monitor_agrees(instance, monitor, run_id)
    # The initiation handed every task its row through its materialisation: each START follows that row.
    initiation = instance.get_latest_materialization_event(AssetKey(["qa", "checkout", "initiation"]))
    handed = {r["TaskID"]: r["LastEventID"]
              for r in initiation.asset_materialization.metadata["generated_steps"].value}
    starts = monitor.read_view("v_stepTransitions", ExecutionID=run_id, EventType="TASK_START")
    assert handed == {s["TaskID"]: s["Basis"] for s in starts} and len(handed) == 4

    # The success sensor shows the run's DELTA_DATE move on the task's asset and reports its health checks.
    tick_run_sensor(instance, "success", cursor)
    mart = AssetKey(["qa", "checkout", "build_mart"])
    (move,) = [o for o in observations(instance, mart) if o.metadata["execution_id"].value == run_id]
    assert (move.partition, move.metadata["watermark"].value) == ("2026-05-03", "MartAsOf")
    new = monitor.get_active_watermark("QA", "CHECKOUT", "MartAsOf")
    assert move.metadata["new_value"].value.startswith(new.isoformat(sep="T")[:19])
    assert move.metadata["previous_value"].value != move.metadata["new_value"].value
    health = latest_checks(instance, mart)
    assert set(health) == {"failure_streak", "duration_baseline"}
    assert health["failure_streak"].passed and health["failure_streak"].metadata["failure_streak"].value == 0
    tiles = instance.get_latest_materialization_event(AssetKey(["qa", "checkout", "v_taskHealth"]))
    plotted = {k: v.value for k, v in tiles.asset_materialization.metadata.items()}
    assert plotted["Build mart failure_streak"] == 0 and "Build mart seconds" in plotted


def test_a_mandatory_fail_blocks_later_stages_and_reexecution_completes_it_as_attempt_1(instance, monitor, ready):
    ready(orders=False, clicks=True)
    cursor = tick_run_sensor(instance, "failure", None)  # the sensor's last tick before it went down
    success, first = launch(checkout_job, instance, "2026-05-01")  # multiprocess: stage 2 runs in parallel
    assert not success
    failed = rows(monitor, "CHECKOUT", first)
    assert failed["Load orders"]["Status"] == "FAIL"
    assert "source of Load orders is not ready" in failed["Load orders"]["LogMessage"]
    assert failed["Load orders"]["LogCode"] == "RuntimeError"
    assert (failed["Load clicks"]["Status"], failed["Build mart"]["Status"]) == ("DONE", "NQUE")
    assert failed["Initiation"]["Status"] == "NQUE"  # reopened by the mandatory failure
    mart = [e for e in instance.all_logs(first, of_type=DagsterEventType.STEP_START) if "build_mart" in e.step_key]
    assert mart == []  # the stage after the failure never started
    assert_monitor_agrees(instance, monitor, first)

    # The sensor, back after the run ended, catches up from its cursor: the run ends in the monitor too.
    assert tick_run_sensor(instance, "failure", cursor) != cursor
    ended = rows(monitor, "CHECKOUT", first)
    assert (ended["Initiation"]["Status"], ended["Initiation"]["LogCode"]) == ("FAIL", "RUN_FAILED")
    assert "load_orders" in ended["Initiation"]["LogMessage"]  # the run's own failure message names the step
    assert (ended["Build mart"]["Status"], ended["Build mart"]["StartTime"]) == ("NQUE", None)  # for the next attempt
    assert ended["Load orders"]["LogCode"] == "RuntimeError"  # the step's own error is kept
    (summary,) = monitor.read_view("v_runSummary", ExecutionID=first)
    assert (summary["OverallStatus"], summary["Pending"]) == ("FAILED", 1)
    streak = latest_checks(instance, AssetKey(["qa", "checkout", "load_orders"]))["failure_streak"]
    assert not streak.passed and streak.metadata["failure_streak"].value >= 1  # a failed run's checks too

    ready(orders=True, clicks=True)
    options = ReexecutionOptions.from_failure(first, instance)
    with execute_job(reconstructable(checkout_job), instance, reexecution_options=options,
                     tags={"dagster/partition": "2026-05-01"}) as result:  # as the UI's re-execute copies it
        assert result.success
        second = result.run_id
    retried = rows(monitor, "CHECKOUT", second)
    assert set(retried) == {"Initiation", "Load orders", "Build mart"}  # Load clicks was DONE already
    assert {(r["Status"], r["Attempts"]) for r in retried.values()} == {("DONE", 1)}
    assert_monitor_agrees(instance, monitor, second)


def test_an_optional_fail_is_recorded_and_later_stages_still_run(instance, monitor, ready):
    ready(orders=True, clicks=False)
    success, run_id = launch(checkout_job, instance, "2026-05-02", run_config=IN_PROCESS)
    assert success
    recorded = rows(monitor, "CHECKOUT", run_id)
    assert recorded["Load clicks"]["Status"] == "FAIL"
    assert "source of Load clicks is not ready" in recorded["Load clicks"]["LogMessage"]
    assert recorded["Build mart"]["Status"] == "DONE"
    (check,) = [e.dagster_event.event_specific_data for e in
                instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
                if e.dagster_event.event_specific_data.check_name == "succeeded"]
    assert not check.passed
    assert_monitor_agrees(instance, monitor, run_id)


@pytest.mark.parametrize(("launch_with", "historic"), [
    ({"tags": {"etl_monitor/mode": "historic"}}, True),
    ({"run_config": {"ops": {"qa__checkout__initiation": {"config": {"mode": "BULK"}}}}}, False),
])
def test_the_processing_mode_is_chosen_at_launch_by_tag_or_config(instance, monitor, launch_with, historic):
    """historic: SYSDT becomes the partition's date; bulk: SYSDT stays live and DELTA_DATEs are cleared."""
    monitor.set_processing_mode("QA", "CHECKOUT")  # live, and a DELTA_DATE to clear
    monitor.advance_watermark("QA", "CHECKOUT", "MartAsOf", new_datetime_value="2026-05-01 00:00:00")
    tags = {"dagster/partition": "2026-05-05", **launch_with.get("tags", {})}
    run_config = {**IN_PROCESS, **launch_with.get("run_config", {})}
    with execute_job(reconstructable(checkout_job), instance, tags=tags, run_config=run_config,
                     asset_selection=[AssetKey(["qa", "checkout", "initiation"])]) as result:
        assert result.success
    sysdt = monitor.get_active_watermark("QA", "CHECKOUT", "SYSDT")
    mart = monitor.get_active_watermark("QA", "CHECKOUT", "MartAsOf")
    if historic:
        assert str(sysdt)[:10] == "2026-05-05" and mart is not None
    else:
        assert sysdt is None and mart is None


def test_a_team_job_outside_the_catalogue_reports_through_the_task_guard(instance, monitor):
    from examples.reuse_job import gl_export

    resource = dagster_location.definitions().resources["monitor"]
    config = {"processing_date": "2026-05-06"}
    result = gl_export.execute_in_process(
        instance=instance, resources={"monitor": resource},
        run_config={"ops": {name: {"config": config} for name in
                            ("initiate", "extract_general_ledger", "export_to_data_hub")}})
    assert result.success
    done = monitor.status_rows("FINANCE", "GL_EXPORT", execution_id=result.run_id)
    assert [(r["TaskName"], r["Status"]) for r in done] == [
        ("Initiation", "DONE"), ("Extract general ledger", "DONE"), ("Export to the data hub", "DONE")]


def test_a_hook_whose_write_failed_is_repaired_by_the_run_sensor(instance, monitor):
    keys = [AssetKey(["qa", "hookless", "initiation"]), AssetKey(["qa", "hookless", "sabotage_own_done"])]
    try:
        success, run_id = launch(hookless_job, instance, "2026-05-04", run_config=IN_PROCESS, asset_selection=keys)
        assert success  # Dagster logs the hook's error and carries on
        assert instance.all_logs(run_id, of_type=DagsterEventType.HOOK_ERRORED)
        assert rows(monitor, "HOOKLESS", run_id)["Sabotage own DONE"]["Status"] == "NQUE"
        steps = {r.step_key for r in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)}
        # the initiation's hook wrote its DONE: only the step whose hook errored is read against its row
        assert len(run_outcomes(instance, run_id, steps)) == 2
        assert set(run_outcomes(instance, run_id, steps, unhooked=True)) == {"qa__hookless__sabotage_own_done"}
    finally:
        log = monitor.table_name("ETLEventLog")
        monitor.spark.sql(f"ALTER TABLE {log} DROP CONSTRAINT IF EXISTS refuse_done")
    evaluate_reconciliation(instance, run_id, DagsterEventType.RUN_SUCCESS)
    repaired = rows(monitor, "HOOKLESS", run_id)["Sabotage own DONE"]
    assert repaired["Status"] == "DONE"
    (materialized,) = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)[1:]
    assert abs(repaired["EndTime"].timestamp() - materialized.timestamp) < 1  # the event's time, not the sensor's
