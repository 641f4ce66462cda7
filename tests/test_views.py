"""The six views after a run that fails a mandatory task and is then retried as a new execution."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from etl_monitor_dagster import ValidationError
from etl_monitor_dagster.core.live_views import ALL_VIEWS
from etl_monitor_dagster.core.monitor import store as store_module
from etl_monitor_dagster.core.monitor.store import Store
from tests.conftest import DAY


def _at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 4, 9, hh, mm, ss, tzinfo=UTC)


@pytest.fixture(scope="module")
def retried(monitor):
    """Attempt 0: task 1 (mandatory) fails, task 2 (optional) is done. Attempt 1: task 1 done, too slowly."""
    from tests.conftest import Process

    p = Process(monitor, "VIEWS", "DAILY")
    m = monitor
    m.register_process(p.project, p.load, name="Views daily", owner="BI", load_frequency="D")
    p.register(
        tasks=[{"task_id": 0, "workflow_id": 0, "sequence_id": 0, "task_name": "Initiation", "source_type": "NONE",
                "task_mandatory": True},
               {"task_id": 1, "task_name": "Load orders", "task_mandatory": True, "source_system_code": "LastOrder",
                "sla_seconds": 60},
               {"task_id": 2, "task_name": "Load notes", "task_mandatory": False, "sla_seconds": 60}],
        parameters=[{"parameter_name": "LastOrder", "parameter_type": "DELTA_DATE"}],
    )
    init, orders, notes = _step(0), _step(1), _step(2)
    first = p.new_run()
    m.start_task(first, p.project, p.load, **init, timestamp=_at(6, 0))
    m.start_task(first, p.project, p.load, **orders, timestamp=_at(6, 1))
    m.fail_task(first, p.project, p.load, **orders, log_message="source down", log_code="E_SRC", timestamp=_at(6, 2))
    m.start_task(first, p.project, p.load, **notes, timestamp=_at(6, 1))
    m.end_task(first, p.project, p.load, **notes, timestamp=_at(6, 1, 30))
    p.snapshot_after_failure = {view: _rows(p, view) for view in ("v_currentFailures", "v_mandatoryBlockers",
                                                                   "v_runSummary")}
    second = p.new_run()
    m.start_task(second, p.project, p.load, **init, timestamp=_at(7, 0))
    m.start_task(second, p.project, p.load, **orders, timestamp=_at(7, 1))
    m.end_task(second, p.project, p.load, **orders, timestamp=_at(7, 3))  # 120 s > SLA 60 s
    m.end_task(second, p.project, p.load, **init, timestamp=_at(7, 4))
    p.runs = (first, second)
    return p


def _step(task_id: int) -> dict:
    """How start/end/fail_task name a task of the fixture: the initiation row, or task 1 or 2 of stage 2."""
    if task_id == 0:
        return {"task_id": 0, "sequence_id": 0, "workflow_id": 0, "processing_date": DAY}
    return {"task_id": task_id, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}


def _rows(p, view):
    frame = p.monitor.spark.table(p.monitor.table_name(view))
    return [r.asDict() for r in frame.where(frame["ProjectCode"] == p.project).collect()]


def test_after_the_failure_current_failures_lists_the_failed_task(retried):
    failures = retried.snapshot_after_failure["v_currentFailures"]
    assert [(r["TaskName"], r["LogCode"], r["Attempts"]) for r in failures] == [("Load orders", "E_SRC", 0)]


def test_after_the_failure_the_mandatory_blockers_are_the_failed_task_and_the_reopened_run(retried):
    blockers = retried.snapshot_after_failure["v_mandatoryBlockers"]
    assert sorted((r["TaskID"], r["Status"]) for r in blockers) == [(0, "NQUE"), (1, "FAIL")]


def test_after_the_failure_the_run_summary_counts_the_attempt(retried):
    (summary,) = retried.snapshot_after_failure["v_runSummary"]
    assert (summary["TotalTasks"], summary["Done"], summary["Failed"], summary["Pending"]) == (3, 1, 1, 1)
    assert summary["OverallStatus"] == "RUNNING"  # the reopened initiation row is still queued


def test_after_the_retry_nothing_fails_or_blocks(retried):
    assert _rows(retried, "v_currentFailures") == []
    assert _rows(retried, "v_mandatoryBlockers") == []


def test_the_run_summary_has_one_row_per_attempt(retried):
    rows = {r["Attempts"]: r for r in _rows(retried, "v_runSummary")}
    assert sorted(rows) == [0, 1]
    retry = rows[1]
    assert (retry["ExecutionID"], retry["TotalTasks"], retry["Done"], retry["OverallStatus"]) == (
        retried.runs[1], 2, 2, "COMPLETE")
    assert (retry["RunStart"], retry["RunEnd"]) == (_at(7, 0).replace(tzinfo=None), _at(7, 4).replace(tzinfo=None))
    assert (retry["WallClockSeconds"], retry["TotalDurationSeconds"]) == (240, 360)


def test_the_process_status_counts_each_tasks_latest_row_across_attempts(retried):
    (status,) = _rows(retried, "v_processStatus")
    assert status["ProcessingDate"] == date.fromisoformat(DAY)
    assert (status["ProcessName"], status["ProcessOwner"]) == ("Views daily", "BI")
    assert (status["LatestAttempt"], status["TotalRuns"]) == (1, 2)
    assert (status["Done"], status["Failed"], status["Pending"]) == (3, 0, 0)
    assert status["OverallStatus"] == "DONE"
    assert status["WallClockSeconds"] == 64 * 60  # 06:00 to 07:04


def test_task_detail_flags_the_sla_breach(retried):
    detail = {(r["Attempts"], r["TaskID"]): r for r in _rows(retried, "v_taskDetail")}
    assert detail[(1, 1)]["SlaBreached"] is True
    assert detail[(1, 1)]["DurationSeconds"] == 120
    assert detail[(0, 2)]["SlaBreached"] is False
    assert detail[(0, 1)]["LogMessage"] == "source down"


def test_watermarks_show_the_retrys_start_as_the_active_value(retried):
    (wm,) = _rows(retried, "v_watermarks")
    assert wm["ActiveValue"] == "2026-04-09 07:01:00.000"
    assert wm["WatermarkState"] == "DELTA: 2026-04-09 07:01:00.000"
    assert wm["LinkedTaskName"] == "Load orders"


def test_get_status_summary_gives_one_row_per_attempt_with_the_overall_status_newest_first(retried):
    rows = retried.monitor.status_rows(retried.project, retried.load, processing_date=DAY, summary_mode=True)
    assert [(r["Attempts"], r["OverallStatus"], r["ExecutionID"]) for r in rows] == [
        (1, "DONE", retried.runs[1]), (0, "NQUE", retried.runs[0])]
    assert list(rows[0]) == ["ProjectCode", "ProcessLoad", "ProcessingDate", "Attempts", "StartTime", "EndTime",
                             "DurationSeconds", "OverallStatus", "Remark", "ExecutionID"]


def test_get_status_detail_gives_every_attempt_of_the_date_and_an_executions_own_rows(retried):
    rows = retried.monitor.status_rows(retried.project, retried.load, processing_date=DAY)
    assert sorted((r["Attempts"], r["TaskID"]) for r in rows) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    first = retried.monitor.status_rows(retried.project, retried.load, execution_id=retried.runs[0])
    assert {r["Attempts"] for r in first} == {0}


def test_get_status_and_get_pending_tasks_return_dataframes_of_the_rows(retried):
    m, project, load = retried.monitor, retried.project, retried.load

    def same_rows(frame, rows, moving=()):
        """The frame holds the rows (``moving``: columns measured up to now, left out)."""
        columns = [c for c in frame.columns if c not in moving]
        assert [{c: r[c] for c in columns} for r in frame.collect()] == [{c: row[c] for c in columns} for row in rows]

    same_rows(m.get_status(project, load, execution_id=retried.runs[1]),
              m.status_rows(project, load, execution_id=retried.runs[1]))
    summary = m.get_status(project, load, processing_date=DAY, summary_mode=True)
    newest, oldest = summary.collect()
    assert (newest.Attempts, newest.OverallStatus, newest.DurationSeconds) == (1, "DONE", 240)  # 07:00 to 07:04
    assert (oldest.Attempts, oldest.OverallStatus) == (0, "NQUE")
    # attempt 0 still has unfinished rows: as in the seed, its DurationSeconds runs up to now
    same_rows(summary, m.status_rows(project, load, processing_date=DAY, summary_mode=True),
              moving=("DurationSeconds",))
    pending = m.get_pending_tasks(retried.runs[0], project, load)
    assert [r.TaskID for r in pending.collect()] == [0, 1]  # the reopened run and its failed task
    same_rows(pending, m.pending_rows(retried.runs[0], project, load))


def test_read_view_filters_and_orders_by_columns_and_names_an_unknown_one_with_the_views_columns(retried):
    m, (first, _) = retried.monitor, retried.runs
    rows = m.read_view("v_taskDetail", order_by=["TaskID"], ExecutionID=first)
    assert [(r["TaskID"], r["Status"]) for r in rows] == [(0, "NQUE"), (1, "FAIL"), (2, "DONE")]
    for bad, unknown in (({"RunID": first}, ["RunID"]),
                         ({"order_by": ["NoSuchColumn"], "ExecutionID": first}, ["NoSuchColumn"])):
        with pytest.raises(ValidationError) as refused:
            m.read_view("v_taskDetail", **bad)
        assert (refused.value.field, refused.value.value) == ("columns", unknown)
        assert "ExecutionID" in refused.value.problem
    with pytest.raises(ValidationError, match="is not one of the monitoring views"):
        m.read_view("v_nothing")


def test_the_views_of_a_process_read_at_one_moment_are_the_rows_each_view_gives_alone(retried, make_process):
    m, (first, second) = retried.monitor, retried.runs
    other = make_process()  # another process's rows must not reach these views
    other.monitor.generate_execution_steps(other.new_run(), other.project, other.load, DAY)
    reads = {
        "v_runSummary": ([], {"ExecutionID": first}),
        "v_processStatus": ([], {"ProcessingDate": DAY}),
        "v_taskDetail": (["ExecutionID", "TaskID"], {}),
        "v_mandatoryBlockers": (["TaskID"], {"ExecutionID": first}),
        "v_currentFailures": ([], {"ProcessingDate": DAY}),
        "v_watermarks": (["ParameterName"], {}),
        "v_taskHealth": (["WorkFlowID", "TaskID"], {}),
    }
    together = m.read_process_views(retried.project, retried.load, reads)
    for view, (order_by, where) in reads.items():
        alone = m.read_view(view, order_by, ProjectCode=retried.project, ProcessLoad=retried.load, **where)
        assert together[view] == alone, view
    # three rows of the first run; the second has no row for task 2, DONE for the date already
    assert len(together["v_taskDetail"]) == 5 and {r["ExecutionID"] for r in together["v_taskDetail"]} == {
        first, second}
    with pytest.raises(ValidationError, match="v_liveSteps"):
        m.read_process_views(retried.project, retried.load, {"v_liveSteps": ([], {}), "v_nothing": ([], {})})


def test_every_view_the_monitor_reads_over_the_logs_folder_gives_the_rows_the_engines_view_gives(make_process):
    p = make_process(tasks=[{"task_id": 1, "task_mandatory": True, "source_system_code": "LastOrder",
                             "sla_seconds": 1}, {"task_id": 2}, {"task_id": 3, "sla_seconds": 1}],
                     parameters=[{"parameter_name": "LastOrder", "parameter_type": "DELTA_DATE"}])
    m, run = p.monitor, p.new_run()

    def at_risk(task_id: int) -> None:  # an SLA_AT_RISK event for the task's running row
        time.sleep(1.1)  # its SLA of 1 s has passed
        rows = [r for r in m.health.running() if r["ProjectCode"] == p.project and r["TaskID"] == task_id]
        assert len(m.health.sla_at_risk(rows, share=1.0)) == 1

    for task_id in (0, 1, 2):
        m.start_task(run, p.project, p.load, **_step(task_id))
    at_risk(1)
    m.end_task(run, p.project, p.load, **_step(1))
    m.fail_task(run, p.project, p.load, **_step(2), log_message="it's \"quoted\"\nünïcødé")
    m.fold()  # the rows so far in the tables (task 1's SLA_AT_RISK in ETLsysLogs), what follows in the log only
    m.fail_task(run, p.project, p.load, **_step(1), log_message="too late: refused")
    m.skip_task(run, p.project, p.load, **_step(2))
    lower = datetime(2020, 1, 1, tzinfo=UTC)  # than the DONE's: refused
    m.advance_watermark(p.project, p.load, "LastOrder", new_datetime_value=lower)
    m.start_task(run, p.project, p.load, **_step(3))
    at_risk(3)
    m.end_task(run, p.project, p.load, **_step(0))

    through_engine = Store(m.store.engine, m.store.prefix, m.store.updated_by)  # no folder: the engine reads the log
    for view in ALL_VIEWS:
        here, there = (sorted(map(repr, store.rows(view, {"ProjectCode": p.project})))
                       for store in (m.store, through_engine))
        assert here == there and (here or view in ("v_currentFailures", "v_mandatoryBlockers")), view
    detail = m.store.rows("v_taskDetail", {"ProjectCode": p.project})
    assert sorted(r["TaskID"] for r in detail if r["SlaAtRisk"]) == [1, 3]  # one folded, one in the log


def test_a_view_reads_the_log_from_the_folder_unless_the_log_holds_more_rows_than_the_bound(retried, monkeypatch):
    store = retried.monitor.store
    log = store.names["ETLEventLog"].split(".")[-1].strip("`").lower()

    def plan(view: str) -> str:
        return store.table(view)._explain_string(extended=False).lower()

    for view in ("v_liveSteps", "v_taskDetail", "v_watermarks"):  # through v_events, {log_rows}, v_liveParameters
        assert "localtablescan" in plan(view) and log not in plan(view), view
    monkeypatch.setattr(store_module, "BOUND_LOG_ROWS", 0)  # the fixture's events are in the log
    assert log in plan("v_liveSteps")
