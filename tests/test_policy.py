"""The run policy without Dagster, as a notebook calls it: skip, start, retry, done and fail are decided
and recorded by one function, and the outcome it returns reads back from its own metadata."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest

from etl_monitor_dagster import tasks
from etl_monitor_dagster.core.catalogue import ProcessSpec
from etl_monitor_dagster.core.outcome import Key, Outcome, TaskOutcome, handed, handover
from etl_monitor_dagster.core.policy import run_task
from etl_monitor_dagster.tasks import TaskResult, TaskRun

DAY = date(2026, 4, 9)


def flaky(run: TaskRun) -> TaskResult:
    """Fails on the first try, then reports rows and a DELTA_ID watermark."""
    if run.try_number == 0:
        raise ConnectionError("source busy")
    return TaskResult(rows_read=7, new_watermark=1234)


def broken(run: TaskRun) -> TaskResult:
    raise ValueError("bad row 3")


@pytest.fixture
def spec(monitor) -> ProcessSpec:
    """A catalogue process registered the way the initiation task registers it."""
    return ProcessSpec.model_validate({
        "project": f"POL{uuid.uuid4().hex[:8]}", "process": "NOTEBOOK_LOAD", "owner": "QA",
        "parameters": [{"name": "ORDERS_ID", "type": "DELTA_ID"}],
        "tasks": [
            {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
            {"id": 1, "workflow": 1, "stage": 2, "name": "Orders", "source_type": "PYTHON",
             "source": "tests.test_policy:flaky", "mandatory": True, "maximum_retries": 1, "watermark": "ORDERS_ID"},
            {"id": 2, "workflow": 1, "stage": 2, "name": "Extras", "source_type": "PYTHON",
             "source": "tests.test_policy:broken"},
        ]})


def _row(monitor, spec: ProcessSpec, execution: str, task_id: int) -> dict:
    (row,) = monitor.status_rows(spec.project, spec.process, execution_id=execution, task_id=task_id)
    return row


def test_a_notebook_runs_a_process_with_the_policy_alone(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, orders, extras = spec.tasks
    assert run_task(monitor, spec, initiation, execution, DAY, tasks.run).outcome is Outcome.DONE

    with pytest.raises(ConnectionError):  # a try with retries left: RQUE, raised for the caller to retry
        run_task(monitor, spec, orders, execution, DAY, tasks.run, try_number=0)
    row = _row(monitor, spec, execution, 1)
    assert (row["Status"], row["LogCode"]) == ("RQUE", "ConnectionError")

    done = run_task(monitor, spec, orders, execution, DAY, tasks.run, try_number=1)
    assert (done.outcome, done.facts[Key.ROWS_READ], done.facts[Key.TRY]) == (Outcome.DONE, 7, 2)
    assert _row(monitor, spec, execution, 1)["Status"] == "DONE"
    assert monitor.get_active_watermark(spec.project, spec.process, "ORDERS_ID") == 1234

    failed = run_task(monitor, spec, extras, execution, DAY, tasks.run)  # optional: returned, not raised
    assert (failed.outcome, failed.error_code) == (Outcome.FAIL, "ValueError")
    row = _row(monitor, spec, execution, 2)
    assert (row["Status"], row["LogMessage"]) == ("FAIL", "ValueError: bad row 3")


def test_a_task_done_in_an_earlier_attempt_is_skipped_and_left_alone(monitor, spec):
    first, second = monitor.generate_execution_id(), monitor.generate_execution_id()
    initiation, orders, _ = spec.tasks
    run_task(monitor, spec, initiation, first, DAY, tasks.run)
    run_task(monitor, spec, orders, first, DAY, tasks.run, try_number=1)
    run_task(monitor, spec, initiation, second, DAY, tasks.run)
    skipped = run_task(monitor, spec, orders, second, DAY, tasks.run, try_number=1)
    assert skipped.outcome is Outcome.SKIPPED and skipped.status is None
    assert _row(monitor, spec, first, 1)["Status"] == "DONE"


def test_a_mandatory_last_failure_is_recorded_fail_and_raised(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, orders, _ = spec.tasks
    run_task(monitor, spec, initiation, execution, DAY, tasks.run)
    with pytest.raises(ValueError):
        run_task(monitor, spec, orders, execution, DAY, broken, try_number=1)
    assert _row(monitor, spec, execution, 1)["Status"] == "FAIL"


def test_an_outcome_reads_back_from_its_metadata_raw_or_wrapped():
    class Wrapped:  # how Dagster stores a metadata value
        def __init__(self, value):
            self.value = value

    outcome = TaskOutcome(Outcome.FAIL, error="E: x", error_code="E", facts={Key.TRY: 2, "custom": "kept"})
    metadata = outcome.metadata()
    assert metadata[Key.OUTCOME] == "FAIL" and "summary" not in metadata
    assert TaskOutcome.from_metadata(metadata) == TaskOutcome.from_metadata(
        {k: Wrapped(v) for k, v in metadata.items()})
    back = TaskOutcome.from_metadata(metadata)
    assert (back.outcome, back.message, back.error_code, back.facts["custom"]) == (Outcome.FAIL, "E: x", "E", "kept")
    assert TaskOutcome.from_metadata({"rows": 3}) is None  # not a task's materialisation


def _spent(monitor, call):
    """What ``call`` returned, and the statements it sent the engine."""
    before = monitor.engine.stats.snapshot()
    result = call()
    return result, (monitor.engine.stats - before).statements


def test_tasks_handed_the_initiations_rows_start_without_reading_them(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, orders, extras = spec.tasks
    started = run_task(monitor, spec, initiation, execution, DAY, tasks.run)
    generated = handed(started.facts[Key.STEPS])  # as the Dagster layer carries them: JSON in the metadata
    assert {(r["WorkFlowID"], r["TaskID"]) for r in generated} == {(0, 0), (1, 1), (1, 2)}

    # Extras has no watermark: no read of its row; its START, its claim and its FAIL are the log's, written and
    # read by this process on the embedded engine.
    failed, statements = _spent(monitor, lambda: run_task(monitor, spec, extras, execution, DAY, broken,
                                                          generated=generated))
    assert (failed.outcome, statements) == (Outcome.FAIL, 0)
    # Orders reads its watermark as it is now, not as generated.
    monitor.advance_watermark(spec.project, spec.process, "ORDERS_ID", new_int_value=77)
    seen = {}
    _, statements = _spent(monitor, lambda: run_task(
        monitor, spec, orders, execution, DAY, lambda run: seen.update(run.step) or TaskResult(), try_number=1,
        generated=generated))
    assert (seen["WatermarkValue"], seen["WatermarkType"], statements) == ("77", "DELTA_ID", 1)  # the watermark
    assert (_row(monitor, spec, execution, 1)["Status"], _row(monitor, spec, execution, 2)["Status"]) == (
        "DONE", "FAIL")


def test_a_task_absent_from_the_generated_rows_is_skipped_without_a_statement(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, orders, _ = spec.tasks
    generated = handed(run_task(monitor, spec, initiation, execution, DAY, tasks.run).facts[Key.STEPS])
    without_orders = [r for r in generated if r["TaskID"] != 1]
    skipped, statements = _spent(monitor, lambda: run_task(monitor, spec, orders, execution, DAY, tasks.run,
                                                           generated=without_orders))
    assert (skipped.outcome, statements) == (Outcome.SKIPPED, 0)


def test_generated_rows_are_the_rows_pending_rows_reads_and_survive_the_handover(monitor, spec):
    execution = monitor.generate_execution_id()
    monitor.register_many(**spec.registration())
    generated = monitor.generate_steps(execution, spec.project, spec.process, DAY)
    read = {(r["WorkFlowID"], r["TaskID"]): r for r in monitor.pending_rows(execution, spec.project, spec.process)}
    carried = handed(json.loads(json.dumps(handover(generated))))
    assert carried == generated
    for row in carried:
        assert monitor.with_watermark(row) == read[(row["WorkFlowID"], row["TaskID"])]
    assert monitor.generate_steps(execution, spec.project, spec.process, DAY) == []  # the execution has its rows
