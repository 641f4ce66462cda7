"""A run: step generation, pending tasks, the state machine, the task() guard, skips, resets, receipts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from etl_monitor_dagster import ETLMonitorFramework, NotFoundError, ValidationError
from tests.conftest import DAY

# Each task of the ``loaded`` process as start/end/fail_task name it (stage 2 is the conftest default).
INITIATION = {"task_id": 0, "sequence_id": 0, "workflow_id": 0, "processing_date": DAY}
TASK_1 = {"task_id": 1, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}
TASK_2 = {"task_id": 2, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}


@pytest.fixture
def loaded(make_process):
    """A process with a mandatory task 1 (DELTA_DATE watermark) and an optional task 2 (DELTA_ID)."""
    return make_process(
        parameters=[{"parameter_name": "SYSDT", "parameter_type": "SYSTEM"},
                    {"parameter_name": "LastEmp", "parameter_type": "DELTA_DATE"},
                    {"parameter_name": "LastId", "parameter_type": "DELTA_ID", "value_int": 100}],
        tasks=[{"task_id": 1, "task_mandatory": True, "source_system_code": "LastEmp", "file_name_mask": "emp",
                "file_extension": ".csv"},
               {"task_id": 2, "task_mandatory": False, "source_system_code": "LastId"}],
    )


def _run_all(process, execution, fail=()):
    """Start and end every pending non-initiation task; tasks in ``fail`` fail."""
    m = process.monitor
    for row in m.pending_rows(execution, process.project, process.load):
        if row["WorkFlowID"] == 0:
            continue
        step = {"task_id": row["TaskID"], "sequence_id": row["SequenceID"], "workflow_id": row["WorkFlowID"],
                "processing_date": row["ProcessingDate"]}
        m.start_task(execution, process.project, process.load, **step)
        if row["TaskID"] in fail:
            m.fail_task(execution, process.project, process.load, **step, log_message="boom", log_code="E1")
        else:
            m.end_task(execution, process.project, process.load, **step)


def test_generation_queues_one_nque_row_per_active_task_with_attempts_zero(loaded):
    loaded.task(3, is_active=False)
    run = loaded.new_run()
    steps = loaded.steps(run)
    assert sorted(steps) == [(0, 0), (1, 1), (1, 2)]
    assert {r["Status"] for r in steps.values()} == {"NQUE"}
    assert {r["Attempts"] for r in steps.values()} == {0}
    assert steps[(1, 1)]["FullFileName"] == "emp_20260409.csv"
    assert steps[(1, 1)]["SequenceCode"] == "LOAD_DB_TRAN"


def test_generation_is_idempotent_per_execution(loaded):
    run = loaded.new_run()
    before = loaded.rows("ETLProcessingSteps")
    assert loaded.monitor.generate_execution_steps(run, loaded.project, loaded.load, DAY) is None
    assert loaded.rows("ETLProcessingSteps") == before  # no row added, none rewritten (LastUpdatedOn kept)
    assert len(before) == 3


def test_a_new_execution_of_the_same_date_gets_the_next_attempt_and_only_undone_tasks(loaded):
    first = loaded.new_run()
    _run_all(loaded, first, fail={1})
    second = loaded.new_run()
    steps = loaded.steps(second)
    assert sorted(steps) == [(0, 0), (1, 1)]  # task 2 was DONE at attempt 0
    assert {r["Attempts"] for r in steps.values()} == {1}


def test_tasks_done_earlier_in_their_period_are_not_queued_again(make_process):
    """A daily, a monthly and a yearly task, all DONE on 2026-04-09: a later date queues each task whose
    period (day, month, year) is not the one it was DONE in."""
    p = make_process(tasks=[{"task_id": 1, "load_frequency": "D"}, {"task_id": 2, "load_frequency": "M"},
                            {"task_id": 3, "load_frequency": "Y"}])
    _run_all(p, p.new_run("2026-04-09"))
    later = ("2026-04-10", "2026-04-28", "2026-05-01", "2026-12-31", "2027-01-01")
    queued = {day: sorted(task for workflow, task in p.steps(p.new_run(day)) if workflow == 1) for day in later}
    assert queued == {"2026-04-10": [1], "2026-04-28": [1], "2026-05-01": [1, 2], "2026-12-31": [1, 2],
                      "2027-01-01": [1, 2, 3]}


def test_full_file_name_follows_the_tasks_frequency(make_process):
    frequencies = {1: "D", 2: "M", 3: "Y", 4: "W", 5: "A"}
    p = make_process(tasks=[*({"task_id": task, "load_frequency": frequency, "file_name_mask": "f",
                               "file_extension": ".txt"} for task, frequency in frequencies.items()),
                            {"task_id": 6}])  # task 6: no mask
    names = {task: row["FullFileName"] for (workflow, task), row in p.steps(p.new_run()).items() if workflow == 1}
    assert names == {1: "f_20260409.txt", 2: "f_202604.txt", 3: "f_2026.txt", 4: None, 5: None, 6: None}


def test_pending_tasks_are_ordered_and_carry_their_watermark(loaded):
    loaded.task(1, workflow_id=2, sequence_id=3)
    run = loaded.monitor.generate_execution_id()
    rows = loaded.monitor.pending_rows(run, loaded.project, loaded.load, DAY)  # generates first
    order = [(r["WorkFlowID"], r["SequenceID"], r["TaskID"]) for r in rows]
    assert order == [(0, 0, 0), (1, 2, 1), (1, 2, 2), (2, 3, 1)]
    by_task = {(r["WorkFlowID"], r["TaskID"]): r for r in rows}
    assert by_task[(1, 1)]["WatermarkType"] == "DELTA_DATE"
    assert by_task[(1, 1)]["WatermarkValue"] == "1900-01-01 00:00:00.000"  # bulk: load everything
    assert by_task[(1, 2)]["WatermarkValue"] == "100"
    only_stage = loaded.monitor.pending_rows(run, loaded.project, loaded.load, sequence_id=3)
    assert [(r["WorkFlowID"], r["TaskID"]) for r in only_stage] == [(2, 1)]


def test_task_status_is_null_for_done_skipped_inactive_and_ungenerated_tasks(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    assert m.task_status(run, p, load, workflow_id=1, task_id=1) == "NQUE"
    m.start_task(run, p, load, **TASK_1)
    m.end_task(run, p, load, **TASK_1)
    assert m.task_status(run, p, load, workflow_id=1, task_id=1) == "NULL"  # done
    m.skip_task(run, p, load, task_id=2, workflow_id=1, sequence_id=2)
    assert m.task_status(run, p, load, workflow_id=1, task_id=2) == "NULL"  # force-skipped
    loaded.task(7)  # registered after generation: not generated
    assert m.task_status(run, p, load, workflow_id=1, task_id=7) == "NULL"
    loaded.task(2, is_active=False, source_system_code="LastId")
    m.unskip_task(run, p, load, task_id=2, workflow_id=1, sequence_id=2)
    assert m.task_status(run, p, load, workflow_id=1, task_id=2) == "NULL"  # inactive


def test_done_advances_the_delta_date_watermark_to_the_task_start_time(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    started = datetime(2026, 4, 9, 6, 30, tzinfo=UTC)
    m.start_task(run, p, load, **TASK_1, timestamp=started)
    m.end_task(run, p, load, **TASK_1, timestamp=datetime(2026, 4, 9, 6, 31, 15, tzinfo=UTC))
    watermark = m.get_active_watermark(p, load, "LastEmp")
    assert watermark.replace(tzinfo=None) == started.replace(tzinfo=None)
    row = loaded.steps(run)[(1, 1)]
    assert (row["Status"], row["DurationSeconds"], row["LogType"]) == ("DONE", 75, "INFO")


def test_done_never_moves_a_delta_id_watermark(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    _run_all(loaded, run)
    assert m.get_active_watermark(loaded.project, loaded.load, "LastId") == 100


def test_a_watermark_moved_by_a_task_names_its_run_task_and_values_in_iso_8601_with_offset(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    m.start_task(run, loaded.project, loaded.load, **TASK_1, timestamp=datetime(2026, 4, 9, 6, 30, tzinfo=UTC))
    m.end_task(run, loaded.project, loaded.load, **TASK_1)  # moves LastEmp (DELTA_DATE)
    m.advance_step_watermark(loaded.steps(run)[(1, 2)], "LastId", new_int_value=150)
    m.advance_step_watermark(loaded.steps(run)[(1, 1)], "LastEmp", new_datetime_value="2026-04-10T00:00:00+00:00")
    moves = [json.loads(r["Message"]) for r in loaded.receipts(run) if r["OperationName"] == "WATERMARK_MOVE"]
    assert [(e["parameter_name"], e["execution_id"], e["processing_date"], e["task_id"]) for e in moves] == [
        ("LastEmp", run, "2026-04-09", 1), ("LastId", run, "2026-04-09", 2), ("LastEmp", run, "2026-04-09", 1)]
    assert (moves[1]["previous_value"], moves[1]["new_value"]) == (100, 150)
    assert moves[2]["previous_value"] == moves[0]["new_value"] == "2026-04-09T06:30:00+00:00"
    assert moves[2]["new_value"] == "2026-04-10T00:00:00+00:00"
    assert all(e["logged_at"].endswith("+00:00") for e in moves)


def test_a_mandatory_fail_puts_the_initiation_row_back_to_nque(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    m.start_task(run, p, load, **INITIATION)  # the run starts: initiation row running
    m.end_task(run, p, load, **INITIATION, status="DONE")
    m.start_task(run, p, load, **TASK_1)
    m.fail_task(run, p, load, **TASK_1, log_message="x" * 5000, log_code="E42")
    steps = loaded.steps(run)
    assert steps[(0, 0)]["Status"] == "NQUE"
    fail = steps[(1, 1)]
    assert (fail["Status"], fail["LogType"], fail["LogCode"]) == ("FAIL", "ERROR", "E42")
    assert len(fail["LogMessage"]) == 2000


def test_a_runs_mandatory_blockers_are_the_views_rows_and_stay_its_own_after_a_later_attempt(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    m.start_task(run, p, load, **INITIATION)
    m.end_task(run, p, load, **INITIATION)
    _run_all(loaded, run, fail=(1, 2))  # task 2 is optional: never a blocker
    view = m.read_view("v_mandatoryBlockers", ExecutionID=run)
    assert sorted((r["TaskID"], r["Status"]) for r in view) == [(0, "NQUE"), (1, "FAIL")]  # reopened, failed
    assert sorted(m.mandatory_blockers(run), key=lambda r: r["TaskID"]) == sorted(view, key=lambda r: r["TaskID"])
    assert [r["TaskID"] for r in m.mandatory_blockers(run, workflow_id=1, sequence_id=2)] == [1]
    later = loaded.new_run()  # the date's next attempt: the view now shows that one's rows
    assert m.read_view("v_mandatoryBlockers", ExecutionID=run) == []
    assert [r["TaskID"] for r in m.mandatory_blockers(run, workflow_id=1, sequence_id=2)] == [1]
    assert {r["TaskID"] for r in m.mandatory_blockers(later)} == {0, 1}  # queued again: NQUE blocks


def test_an_optional_fail_leaves_the_initiation_row_alone(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    m.start_task(run, p, load, **INITIATION)
    m.end_task(run, p, load, **INITIATION)
    m.start_task(run, p, load, **TASK_2)
    m.fail_task(run, p, load, **TASK_2, log_message="optional broke")
    assert loaded.steps(run)[(0, 0)]["Status"] == "DONE"


def test_the_full_state_machine_with_retries_and_a_manual_reset(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    first = loaded.new_run()
    seen = []
    assert m.start_task(first, p, load, **TASK_1) == 0  # the attempt
    seen.append(loaded.steps(first)[(1, 1)]["Status"])
    m.fail_task(first, p, load, **TASK_1, log_message="1st")
    seen.append(loaded.steps(first)[(1, 1)]["Status"])
    retry = loaded.new_run()  # a retry of a failed date is a new execution: Attempts + 1
    assert m.start_task(retry, p, load, **TASK_1) == 1
    seen.append(loaded.steps(retry)[(1, 1)]["Status"])
    m.fail_task(retry, p, load, **TASK_1, log_message="2nd")
    seen.append(loaded.steps(retry)[(1, 1)]["Status"])
    m.status_reset(p, load, execution_id=retry, task_id=1, workflow_id=1)
    seen.append(loaded.steps(retry)[(1, 1)]["Status"])
    assert m.start_task(retry, p, load, **TASK_1) == 1
    seen.append(loaded.steps(retry)[(1, 1)]["Status"])
    m.end_task(retry, p, load, **TASK_1)
    seen.append(loaded.steps(retry)[(1, 1)]["Status"])
    assert seen == ["NQUE", "FAIL", "RQUE", "FAIL", "RQUE", "RQUE", "DONE"]
    assert loaded.steps(retry)[(1, 1)]["Attempts"] == 1


def test_the_task_guard_records_done_on_a_clean_exit(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    with m.task(run, loaded.project, loaded.load, task_id=2, sequence_id=2, workflow_id=1,
                processing_date=DAY) as guard:
        assert guard.active and guard.watermark_value == "100"
        guard.log_message = "loaded 3 rows"
    row = loaded.steps(run)[(1, 2)]
    assert (row["Status"], row["LogMessage"]) == ("DONE", "loaded 3 rows")


def test_the_task_guard_records_fail_with_the_exception_text_and_re_raises(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    with pytest.raises(KeyError), m.task(run, loaded.project, loaded.load, task_id=2, sequence_id=2,
                                         workflow_id=1):
        raise KeyError("missing column")
    row = loaded.steps(run)[(1, 2)]
    assert row["Status"] == "FAIL"
    assert row["LogMessage"] == "KeyError: 'missing column'"
    assert row["LogCode"] == "KeyError"


def test_the_task_guard_keeps_the_registered_source_type_unless_one_is_given(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    with m.task(run, p, load, 0, 0, 0, DAY, "DBX_NOTEBOOK"):  # the seed's default, passed positionally
        pass
    with m.task(run, p, load, task_id=1, sequence_id=2, workflow_id=1):  # the default, not passed
        pass
    with m.task(run, p, load, task_id=2, sequence_id=2, workflow_id=1, source_type="SPARK_SQL"):
        pass
    kinds = {key: row["SourceType"] for key, row in loaded.steps(run).items()}
    assert kinds == {(0, 0): "NONE", (1, 1): "PYTHON", (1, 2): "SPARK_SQL"}


def test_the_task_guard_does_nothing_for_a_task_that_must_be_skipped(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    m.skip_task(run, loaded.project, loaded.load, task_id=2, workflow_id=1, sequence_id=2)
    before = loaded.receipts(run)
    with m.task(run, loaded.project, loaded.load, task_id=2, sequence_id=2, workflow_id=1) as guard:
        assert not guard.active and guard.status == "NULL"
    assert loaded.receipts(run) == before
    assert loaded.steps(run)[(1, 2)]["Status"] == "NQUE"


def test_skip_applies_to_that_run_only(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    other = loaded.new_run("2026-04-10")
    m.skip_task(run, loaded.project, loaded.load, task_id=2, workflow_id=1, sequence_id=2)
    assert loaded.steps(run)[(1, 2)]["ForceSkip"] is True
    assert loaded.steps(other)[(1, 2)]["ForceSkip"] is False
    assert [r["TaskID"] for r in m.pending_rows(run, loaded.project, loaded.load)] == [0, 1]
    m.unskip_task(run, loaded.project, loaded.load, task_id=2, workflow_id=1, sequence_id=2)
    assert [r["TaskID"] for r in m.pending_rows(run, loaded.project, loaded.load)] == [0, 1, 2]


def test_status_reset_without_an_execution_replays_every_done_row_of_the_date(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    _run_all(loaded, run)
    m.skip_task(run, loaded.project, loaded.load, task_id=0, workflow_id=0, sequence_id=0)
    before = len(loaded.receipts(run))
    assert m.status_reset(loaded.project, loaded.load, processing_date=DAY, remark="replay") is None
    steps = loaded.steps(run)
    resets = loaded.receipts(run)[before:]
    # three rows changed: the two DONE rows replayed; the initiation row only unskipped (no transition of its own)
    assert sorted(r["OperationName"] for r in resets) == ["STATUS_RESET", "STATUS_RESET", "TASK_UNSKIP"]
    assert (steps[(1, 1)]["Status"], steps[(1, 2)]["Status"]) == ("RQUE", "RQUE")
    assert not any(r["ForceSkip"] for r in steps.values())
    assert steps[(1, 1)]["LogMessage"] == "replay"


def test_status_reset_of_one_task_in_an_execution_also_requeues_the_initiation_row(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    _run_all(loaded, run)
    m.status_reset(loaded.project, loaded.load, execution_id=run, task_id=2, workflow_id=1)
    steps = loaded.steps(run)
    assert [steps[k]["Status"] for k in [(0, 0), (1, 1), (1, 2)]] == ["RQUE", "DONE", "RQUE"]


def test_start_task_inserts_the_row_when_it_is_missing(loaded):
    m = loaded.monitor
    run = m.generate_execution_id()
    attempt = m.start_task(run, loaded.project, loaded.load, **TASK_2, source_run_id="dbx-77", cluster_id="c-1",
                           source_type="DBX_JOB")
    assert attempt == 0
    row = loaded.steps(run)[(1, 2)]
    assert (row["Status"], row["Attempts"], row["SourceRunID"], row["ClusterID"], row["SourceType"]) == (
        "NQUE", 0, "dbx-77", "c-1", "DBX_JOB")


def test_every_transition_leaves_exactly_one_json_receipt(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    skip_2 = {"task_id": 2, "workflow_id": 1, "sequence_id": 2}
    calls = [(m.start_task, {**TASK_1, "source_run_id": "r-1"}), (m.end_task, TASK_1), (m.skip_task, skip_2)]
    for call, arguments in calls:
        call(run, p, load, **arguments)
        after_first = loaded.rows("ETLProcessingSteps")
        call(run, p, load, **arguments)  # repeat: no-op, the row (and its LastUpdatedOn) stays as it is
        assert loaded.rows("ETLProcessingSteps") == after_first
    receipts = loaded.receipts(run)
    assert [r["OperationName"] for r in receipts] == ["TASK_START", "TASK_DONE", "WATERMARK_MOVE", "TASK_SKIP"]
    done = json.loads(receipts[1]["Message"])
    assert done["event_type"] == "TASK_DONE" and done["status"] == "DONE" and done["previous_status"] == "NQUE"
    assert done["execution_id"] == run and done["task_id"] == 1 and done["attempt"] == 0
    assert "duration_seconds" in done and "start_time" in done and "end_time" in done
    assert len({r["CorrelationID"] for r in receipts}) == 4
    assert all(json.loads(r["Message"])["event_id"] == r["CorrelationID"] for r in receipts)


def test_start_and_end_take_the_seeds_positional_order_and_refuse_a_swapped_stage_and_workflow(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    loaded.task(1, workflow_id=2, sequence_id=3)  # task 1 of workflow 2 lives in stage 3
    run = loaded.new_run()
    before = loaded.rows("ETLProcessingSteps")
    with pytest.raises(ValidationError, match="sequence_id"):
        m.start_task(run, p, load, 1, 1, 2, DAY)  # workflow_id and sequence_id swapped: stage 1 is not task 1's
    assert loaded.rows("ETLProcessingSteps") == before
    assert m.start_task(run, p, load, 1, 2, 1, DAY) == 0  # task_id, sequence_id, workflow_id, processing_date
    m.end_task(run, p, load, 1, 2, 1, DAY)
    steps = loaded.steps(run)
    assert (steps[(1, 1)]["Status"], steps[(2, 1)]["Status"]) == ("DONE", "NQUE")


def test_a_fail_receipt_carries_the_error_text_and_code(loaded):
    m = loaded.monitor
    run = loaded.new_run()
    m.start_task(run, loaded.project, loaded.load, **TASK_2)
    m.fail_task(run, loaded.project, loaded.load, **TASK_2, log_message="disk full", log_code="E_DISK")
    fail = loaded.receipts(run)[-1]
    assert (fail["OperationName"], fail["Level"]) == ("TASK_FAIL", 3)
    assert json.loads(fail["Message"])["error"] == {"message": "disk full", "code": "E_DISK"}


def test_ending_a_step_that_was_never_generated_is_refused(loaded):
    with pytest.raises(NotFoundError, match="start_task"):
        loaded.monitor.end_task("no-such-run", loaded.project, loaded.load, **TASK_1)


def test_end_task_accepts_only_done_or_fail(loaded):
    run = loaded.new_run()
    with pytest.raises(ValidationError, match="DONE or FAIL"):
        loaded.monitor.end_task(run, loaded.project, loaded.load, **TASK_1, status="NQUE")


def test_an_ambiguous_task_id_asks_for_its_workflow(loaded):
    loaded.task(1, workflow_id=2, sequence_id=3)
    run = loaded.new_run()
    with pytest.raises(ValidationError, match="give workflow_id"):
        loaded.monitor.task_status(run, loaded.project, loaded.load, task_id=1)


def _spent(monitor, call) -> tuple[int, int]:
    """The statements sent the engine and the Delta commits made (on the embedded engine, the log's appends are
    committed by this process: a commit and no statement)."""
    before = monitor.engine.stats.snapshot()
    call()
    spent = monitor.engine.stats - before
    return spent.statements, spent.commits


def test_a_task_started_with_its_pending_row_and_ended_in_the_same_process_sends_the_engine_nothing(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    (row,) = m.pending_rows(run, p, load, task_id=1, workflow_id=1)
    assert _spent(m, lambda: m.start_task(run, p, load, **TASK_1, step=row)) == (0, 1)  # its START; its claim read here
    assert _spent(m, lambda: m.end_task(run, p, load, **TASK_1)) == (0, 1)  # one append: no read
    assert loaded.steps(run)[(1, 1)]["Status"] == "DONE"
    done = json.loads(loaded.receipts(run)[1]["Message"])
    assert (done["event_type"], done["previous_status"]) == ("TASK_DONE", "NQUE")


def test_start_task_refuses_a_pending_row_of_another_task_and_writes_nothing(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    (other,) = m.pending_rows(run, p, load, task_id=2, workflow_id=1)
    before = loaded.rows("ETLProcessingSteps")
    with pytest.raises(ValidationError, match=r"step.*TaskID differs"):
        m.start_task(run, p, load, **TASK_1, step=other)
    assert loaded.rows("ETLProcessingSteps") == before


def test_an_end_after_another_writer_ended_the_same_start_changes_nothing(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    other = ETLMonitorFramework(m.spark, schema=m.schema, updated_by="another writer")
    run = loaded.new_run()
    m.start_task(run, p, load, **TASK_1)
    other.fail_task(run, p, load, **TASK_1, log_message="declared lost elsewhere")
    m.end_task(run, p, load, **TASK_1)  # follows the start this process made, which another end followed first
    (row,) = [r for r in loaded.monitor.status_rows(p, load, execution_id=run) if r["TaskID"] == 1]
    assert (row["Status"], row["LogMessage"], row["LastUpdatedBy"]) == ("FAIL", "declared lost elsewhere",
                                                                       "another writer")
    assert [r["OperationName"] for r in loaded.receipts(run)] == ["TASK_START", "TASK_FAIL", "RUN_REOPEN"]
    log = m.read_view("v_stepTransitions", ExecutionID=run, TaskID=1, order_by=["RowID"])
    assert [(e["EventType"], e["Accepted"]) for e in log] == [("TASK_START", True), ("TASK_FAIL", True),
                                                             ("TASK_DONE", False)]


def test_a_source_run_recorded_on_a_started_task_leaves_its_end_without_a_read(loaded):
    m, p, load = loaded.monitor, loaded.project, loaded.load
    run = loaded.new_run()
    m.start_task(run, p, load, **TASK_1)
    m.record_source_run(run, p, load, **TASK_1, source_run_id="dbx-9", cluster_id="c-9")
    assert _spent(m, lambda: m.end_task(run, p, load, **TASK_1)) == (0, 1)  # its START is its basis: no read
    row = loaded.steps(run)[(1, 1)]
    assert (row["Status"], row["SourceRunID"], row["ClusterID"]) == ("DONE", "dbx-9", "c-9")
