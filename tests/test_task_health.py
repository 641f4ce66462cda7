"""v_taskHealth and the task health checks on a history the test writes: a failure streak, an outlier duration;
its figures observed on the process's taskHealth_history after each run."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey

from etl_monitor_dagster import ValidationError
from etl_monitor_dagster.dagster.task_health import DURATION_BASELINE, FAILURE_STREAK, verdicts
from tests.conftest import Process
from tests.dagster_location import IN_PROCESS, checkout_job, launch, materialization, observations, tick_run_sensor

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def _end(p, day: int, ends: dict[int, tuple[str, int]]) -> None:
    """One run on March ``day``: each task of ``ends`` started (its row inserted, as the seed's start_task
    does for a run never generated), then ended with (status, seconds)."""
    run = p.monitor.generate_execution_id()
    start = T0 + timedelta(days=day)
    for task_id, (status, seconds) in ends.items():
        key = (run, p.project, p.load, task_id, 2, 1, f"2026-03-{day:02d}")
        p.monitor.start_task(*key, timestamp=start)
        p.monitor.end_task(*key, status=status, log_message=f"{status} in {seconds} s",
                           timestamp=start + timedelta(seconds=seconds))


@pytest.fixture(scope="module")
def history(monitor):
    """Task 1: six usual DONE runs (10-12 s), a 60 s outlier DONE, then two FAILs; task 2 fails twice and
    never succeeded; task 3 has two DONE runs only."""
    p = Process(monitor, f"P{uuid.uuid4().hex[:10]}", "HEALTH")
    monitor.register_many(processes=[{"project_code": p.project, "process_load": p.load, "owner": "QA",
                                      "load_frequency": "D"}])
    p.register(tasks=[{"task_id": 1, "task_name": "Usual then slow"}, {"task_id": 2, "task_name": "Never DONE"},
                      {"task_id": 3, "task_name": "New"}])
    for day, seconds in enumerate((10, 11, 12, 10, 11, 12), start=1):
        _end(p, day, {1: ("DONE", seconds), 3: ("DONE", seconds)} if day > 4 else {1: ("DONE", seconds)})
    _end(p, 7, {1: ("DONE", 60)})
    _end(p, 8, {1: ("FAIL", 5), 2: ("FAIL", 5)})
    _end(p, 9, {1: ("FAIL", 5), 2: ("FAIL", 5)})
    return p


def _health(p, **kwargs) -> dict[int, dict]:
    return {r["TaskID"]: r for r in p.monitor.health.baselines(p.project, p.load, **kwargs)}


def test_the_failure_streak_counts_fail_ends_since_the_last_done(history):
    rows = _health(history)
    assert (rows[1]["FailureStreak"], rows[1]["LastStatus"]) == (2, "FAIL")
    assert (rows[2]["FailureStreak"], rows[2]["LastDoneSeconds"], rows[2]["BaselineRuns"]) == (2, None, 0)
    assert (rows[3]["FailureStreak"], rows[3]["LastStatus"]) == (0, "DONE")


def test_an_outlier_done_is_judged_against_the_done_runs_before_it(history):
    slow = _health(history)[1]
    assert slow["LastDoneSeconds"] == 60 and slow["BaselineRuns"] == 6  # the outlier is not its own baseline
    assert slow["MeanSeconds"] == pytest.approx(11.0)
    assert slow["StddevSeconds"] == pytest.approx(0.894, abs=1e-3)
    assert slow["AnomalySeconds"] == pytest.approx(11.0 + 3 * 0.894, abs=1e-2)
    assert slow["P90Seconds"] == pytest.approx(12.0)
    assert slow["SlowerThanP90"] and slow["DurationAnomaly"]


def test_a_task_with_too_few_done_runs_is_not_judged(history):
    new = _health(history)[3]
    assert new["BaselineRuns"] == 1 and not new["DurationAnomaly"] and not new["SlowerThanP90"]
    checks = {v.check_name: v for v in verdicts(new)}
    assert checks[DURATION_BASELINE].passed and "too few" in checks[DURATION_BASELINE].description


def test_the_baseline_window_is_the_callers(history):
    last_three = _health(history, baseline_runs=3)[1]  # 10, 11, 12 before the outlier
    assert (last_three["BaselineRuns"], last_three["MeanSeconds"]) == (3, pytest.approx(11.0))
    assert not last_three["DurationAnomaly"]  # three runs are too few to judge
    for bad in (0, 1001, "20", True):
        with pytest.raises(ValidationError, match="baseline_runs"):
            history.monitor.health.baselines(history.project, history.load, baseline_runs=bad)


def test_the_view_holds_the_same_rows_as_the_default_window(history):
    view = {r["TaskID"]: r for r in history.monitor.read_view(
        "v_taskHealth", ProjectCode=history.project, ProcessLoad=history.load)}
    assert view == _health(history)


def test_the_checks_warn_for_a_streak_and_an_anomaly_and_pass_for_a_healthy_task(history):
    rows = _health(history)
    slow = {v.check_name: v for v in verdicts(rows[1])}
    assert not slow[FAILURE_STREAK].passed and slow[FAILURE_STREAK].metadata["failure_streak"] == 2
    assert not slow[DURATION_BASELINE].passed and "mean + 3 sigma" in slow[DURATION_BASELINE].description
    healthy = {v.check_name: v for v in verdicts(rows[3])}
    assert healthy[FAILURE_STREAK].passed
    assert all(v.passed for v in verdicts(None))  # a task that never ended a run


def test_after_each_run_the_sensors_observe_v_taskhealths_figures_on_the_history_asset(instance, monitor):
    """One observation per run, success and failure alike; a successful run's carries exactly the figures of its
    v_taskHealth materialisation."""
    history = AssetKey(["qa", "checkout", "taskHealth_history"])
    cursors = {ended: tick_run_sensor(instance, ended, None) for ended in ("success", "failure")}

    def ready(orders: bool) -> None:
        for name, value in (("OrdersReady", orders), ("ClicksReady", True)):
            monitor.set_processing_mode("QA", "CHECKOUT", parameter_name=name, value_bit=value)

    def observed(run_id: str) -> list[dict]:
        return [{k: v.value for k, v in o.metadata.items()} for o in observations(instance, history)
                if o.metadata["execution_id"].value == run_id]

    ready(orders=True)
    success, done = launch(checkout_job, instance, "2026-06-11", run_config=IN_PROCESS)
    assert success and observed(done) == []  # the job has no step for it
    tick_run_sensor(instance, "success", cursors["success"])
    figures = {k: v.value for k, v in materialization(instance, done, "checkout", "v_taskHealth").items()}
    assert "Build mart seconds" in figures and figures["FailingTasks"] == 0
    assert observed(done) == [{**figures, "execution_id": done, "processing_date": "2026-06-11"}]

    ready(orders=False)
    success, failed = launch(checkout_job, instance, "2026-06-12", run_config=IN_PROCESS)
    assert not success
    tick_run_sensor(instance, "failure", cursors["failure"])
    (after_failure,) = observed(failed)
    assert after_failure["Load orders failure_streak"] >= 1 and after_failure["FailingTasks"] >= 1
    assert len(observed(done)) == 1  # the failure sensor observed its own run only
