"""Races between real OS processes on the shared engine: every one is decided by the log's order.

Each process has its own Spark Connect client and waits at a barrier with the others, so their calls
reach the engine together. Whatever the timing, the rule of ``live_views`` decides: of the
transitions that follow one state of a step, the first logged happened and the others changed nothing.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from datetime import datetime

import pytest

from etl_monitor_dagster.core.errors import ClaimError
from tests.conftest import DAY

WRITERS = 8
STEP = {"sequence_id": 2, "workflow_id": 1, "processing_date": DAY}


def _writer(server, local, schema, project, load, run, action, task_id, barrier, results):
    """One OS process: its own Spark Connect client, released at the barrier with the others. ``local``: it
    commits the log's appends itself, as a Dagster step on the embedded engine does; else the engine does."""
    from pyspark.sql import SparkSession

    from etl_monitor_dagster import ETLMonitorFramework

    spark = server.session() if local else SparkSession.builder.remote(server.url).getOrCreate()
    try:
        monitor = ETLMonitorFramework(spark, schema=schema, updated_by=f"writer-{task_id}-{mp.current_process().name}")
        step = {"task_id": task_id, **STEP}
        result = None
        barrier.wait(timeout=120)
        if action == "start_and_finish":
            monitor.start_task(run, project, load, **step)
            monitor.end_task(run, project, load, **step)
        elif action == "fail":
            monitor.fail_task(run, project, load, **step, log_message="raced")
        elif action == "guard":
            with monitor.task(run, project, load, **step) as guard:
                result = (guard.active, guard.held_by)
        elif action == "generate":
            try:
                monitor.generate_execution_steps(run, project, load, DAY)
                result = "generated"
            except ClaimError as exc:
                result = f"refused: {exc}"
        results.put((task_id, monitor.engine.stats.conflicts_retried, result, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((task_id, 0, None, repr(exc)))
    finally:
        spark.stop()


def _race(spark_server, process, runs, action, task_ids, local=True):
    """Run ``action`` in one OS process per task id (``runs``: one execution for all, or one each)."""
    runs = runs if isinstance(runs, list) else [runs] * len(task_ids)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(task_ids)), ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(spark_server, local, process.monitor.schema, process.project,
                                                 process.load, run, action, task_id, barrier, results))
               for run, task_id in zip(runs, task_ids, strict=True)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [error for *_, error in outcomes if error] == []
    return sum(conflicts for _, conflicts, _, _ in outcomes), [result for _, _, result, _ in outcomes]


def _log(process, run):
    """The run's logged step transitions, in log order, with whether each happened."""
    frame = process.monitor.spark.table(process.monitor.table_name("v_stepTransitions"))
    return [r.asDict() for r in frame.where(frame["ExecutionID"] == run).orderBy("RowID").collect()]


@pytest.fixture
def wide(make_process):
    """A process whose first stage has eight parallel tasks, each with its own DELTA_DATE watermark."""
    ids = range(1, WRITERS + 1)
    return make_process(parameters=[{"parameter_name": f"wm{t}", "parameter_type": "DELTA_DATE"} for t in ids],
                        tasks=[{"task_id": t, "source_system_code": f"wm{t}"} for t in ids])


@pytest.mark.parametrize("local", [True, False], ids=["appends-committed-by-the-writers", "appends-by-the-engine"])
def test_eight_processes_finishing_tasks_of_one_run_at_once_conflict_never_and_lose_and_double_nothing(
        spark_server, wide, local):
    run = wide.new_run()
    conflicts, _ = _race(spark_server, wide, run, "start_and_finish", list(range(1, WRITERS + 1)), local)

    steps = wide.steps(run)
    assert {tid: steps[(1, tid)]["Status"] for tid in range(1, WRITERS + 1)} == dict.fromkeys(range(1, WRITERS + 1),
                                                                                              "DONE")
    counts = Counter(r["OperationName"] for r in wide.receipts(run))
    assert counts == {"TASK_START": WRITERS, "TASK_DONE": WRITERS, "WATERMARK_MOVE": WRITERS}
    assert all(wide.monitor.get_active_watermark(wide.project, wide.load, f"wm{t}") is not None
               for t in range(1, WRITERS + 1))
    assert conflicts == 0  # blind appends: no writer ever waited for another
    folded = wide.monitor.fold()
    assert folded.events_removed >= 3 * WRITERS
    assert Counter(r["OperationName"] for r in wide.receipts(run)) == counts  # the fold moves, never doubles
    assert [wide.steps(run)[(1, t)]["Status"] for t in range(1, WRITERS + 1)] == ["DONE"] * WRITERS


def test_processes_racing_on_the_same_end_record_the_first_and_refuse_the_other(spark_server, wide):
    run = wide.new_run()
    for task_id in (1, 2, 3, 4):
        wide.monitor.start_task(run, wide.project, wide.load, task_id=task_id, **STEP)
    _race(spark_server, wide, run, "fail", [1, 1, 2, 2, 3, 3, 4, 4])

    steps = wide.steps(run)
    assert [steps[(1, t)]["Status"] for t in (1, 2, 3, 4)] == ["FAIL"] * 4
    fails = Counter(r["ActivityName"] for r in wide.receipts(run) if r["OperationName"] == "TASK_FAIL")
    assert sorted(fails.values()) == [1, 1, 1, 1]
    ends = [e for e in _log(wide, run) if e["EventType"] == "TASK_FAIL"]
    assert len(ends) == 8 and Counter(e["Accepted"] for e in ends) == {True: 4, False: 4}  # both kept in the log
    for task_id in (1, 2, 3, 4):
        first, second = [e for e in ends if e["TaskID"] == task_id]
        assert (first["Accepted"], second["Accepted"]) == (True, False)  # the first logged is the one that happened


def test_of_two_task_guards_entered_at_once_exactly_one_runs_and_the_other_is_told(spark_server, wide):
    run = wide.new_run()
    _, results = _race(spark_server, wide, run, "guard", [1, 1])

    assert sorted(active for active, _ in results) == [False, True]
    (held_by,) = [held for active, held in results if not active]
    starts = [e for e in _log(wide, run) if e["EventType"] == "TASK_START"]
    assert [e["Accepted"] for e in starts] in ([True], [True, False])
    if len(starts) == 2:  # both started: the second is told who holds the step (else it found it DONE)
        assert held_by is not None and starts[0]["LastUpdatedBy"] in held_by
    assert wide.steps(run)[(1, 1)]["Status"] == "DONE"
    assert Counter(r["OperationName"] for r in wide.receipts(run)) == {"TASK_START": 1, "TASK_DONE": 1,
                                                                       "WATERMARK_MOVE": 1}


def test_two_generations_of_one_process_and_date_at_once_never_share_an_attempt(spark_server, wide):
    first, second = (wide.monitor.generate_execution_id() for _ in range(2))
    _, results = _race(spark_server, wide, [first, second], "generate", [1, 2])

    assert sorted(r.split(":")[0] for r in results) == ["generated", "refused"]
    (refusal,) = [r for r in results if r.startswith("refused")]
    rows = wide.monitor.status_rows(wide.project, wide.load, processing_date=DAY)
    (winner,) = {r["ExecutionID"] for r in rows}
    assert winner in refusal and {r["Attempts"] for r in rows} == {0}
    loser = second if winner == first else first
    assert wide.monitor.status_rows(wide.project, wide.load, execution_id=loser) == []
    retried = wide.monitor.generate_execution_id()  # the refused caller runs again: the next attempt
    wide.monitor.generate_execution_steps(retried, wide.project, wide.load, DAY)
    assert {r["Attempts"] for r in wide.monitor.status_rows(wide.project, wide.load, execution_id=retried)} == {1}


def test_an_end_after_the_first_end_is_refused_and_moves_nothing(wide):
    m, run = wide.monitor, wide.new_run()
    m.start_task(run, wide.project, wide.load, task_id=1, **STEP)
    m.end_task(run, wide.project, wide.load, task_id=1, **STEP)
    watermark = m.get_active_watermark(wide.project, wide.load, "wm1")
    initiation = wide.steps(run)[(0, 0)]

    m.fail_task(run, wide.project, wide.load, task_id=1, **STEP, log_message="late")
    m.end_task(run, wide.project, wide.load, task_id=1, **STEP)  # the status it has: no event at all

    steps = wide.steps(run)
    assert steps[(1, 1)]["Status"] == "DONE" and steps[(0, 0)] == initiation  # no flip, no reopen
    assert m.get_active_watermark(wide.project, wide.load, "wm1") == watermark
    (refused,) = [e for e in _log(wide, run) if e["EventType"] == "TASK_FAIL"]
    assert refused["Refused"] and not refused["Accepted"] and refused["LogMessage"] == "late"
    assert [r["OperationName"] for r in wide.receipts(run)] == ["TASK_START", "TASK_DONE", "WATERMARK_MOVE"]


def test_a_start_whose_log_rows_a_fold_took_before_it_read_them_still_holds_its_step(wide, monkeypatch):
    """Nothing is faked: the wrapper runs the real append and then a real fold on the shared engine, to put
    the fold at the one moment that processes racing each other reach only by chance."""
    m, run = wide.monitor, wide.new_run()
    steps = m._steps
    append = steps.store.append

    def append_then_fold(events):  # a run ending elsewhere folds the log between this START and its read
        append(events)
        if any(e["EventType"] == "TASK_START" for e in events):
            m.fold()

    monkeypatch.setattr(steps.store, "append", append_then_fold)
    with m.task(run, wide.project, wide.load, task_id=1, **STEP) as guard:
        assert guard.active and guard.held_by is None
    assert wide.steps(run)[(1, 1)]["Status"] == "DONE"


def test_a_generation_whose_rival_a_fold_took_out_of_the_log_is_still_refused(wide, monkeypatch):
    """A rival generates the same Attempts between this generation's query and its append, and a fold moves
    the rival's rows into ETLProcessingSteps before this generation reads who came first: the log then shows
    this generation alone, yet the rival's folded rows came first. Nothing is faked, as above."""
    m = wide.monitor
    rival, late = m.generate_execution_id(), m.generate_execution_id()
    append = m._steps.store.append

    def rival_first_then_fold(events):
        monkeypatch.setattr(m._steps.store, "append", append)  # once: the rival's own append is the real one
        m.generate_execution_steps(rival, wide.project, wide.load, DAY)
        m.fold()
        append(events)

    monkeypatch.setattr(m._steps.store, "append", rival_first_then_fold)
    with pytest.raises(ClaimError, match=rival):
        m.generate_execution_steps(late, wide.project, wide.load, DAY)
    rows = m.status_rows(wide.project, wide.load, processing_date=DAY)
    assert {(r["ExecutionID"], r["Attempts"]) for r in rows} == {(rival, 0)}


def test_watermarks_never_move_backwards_but_a_deliberate_set_rewinds_them(make_process):
    process = make_process(tasks=[{"task_id": 1, "source_system_code": "wm"}],
                           parameters=[{"parameter_name": "wm", "parameter_type": "DELTA_DATE"},
                                       {"parameter_name": "LastId", "parameter_type": "DELTA_ID"}])
    m, p, load = process.monitor, process.project, process.load
    early, late = process.new_run(), process.new_run("2026-04-10")
    m.start_task(early, p, load, task_id=1, **STEP, timestamp="2026-05-01T08:00:00+00:00")
    m.start_task(late, p, load, task_id=1, **{**STEP, "processing_date": "2026-04-10"},
                 timestamp="2026-05-01T09:00:00+00:00")
    m.end_task(late, p, load, task_id=1, **{**STEP, "processing_date": "2026-04-10"})
    m.end_task(early, p, load, task_id=1, **STEP)  # the earlier run ends last
    assert m.get_active_watermark(p, load, "wm") == datetime(2026, 5, 1, 9, 0)

    m.advance_watermark(p, load, "LastId", new_int_value=100)
    m.advance_watermark(p, load, "LastId", new_int_value=50)
    assert m.get_active_watermark(p, load, "LastId") == 100
    (refused,) = [r for r in process.receipts() if r["OperationName"] == "WATERMARK_MOVE" and "refused" in r["Message"]]
    assert '"new_value": 50' in refused["Message"]

    m.set_processing_mode(p, load, parameter_name="LastId", value_int=50)
    assert m.get_active_watermark(p, load, "LastId") == 50
    m.fold()
    assert m.get_active_watermark(p, load, "LastId") == 50 and m.get_active_watermark(p, load, "wm") == datetime(
        2026, 5, 1, 9, 0)
    m.advance_watermark(p, load, "LastId", new_int_value=60)
    assert m.get_active_watermark(p, load, "LastId") == 60
    (row,) = [r for r in process.rows("ETLconfigParameters") if r["ParameterName"] == "LastId"]
    assert row["ValueINT"] == 60


def test_concurrently_sends_the_reads_at_once_and_raises_the_first_error_after_all_have_ended():
    import threading

    from etl_monitor_dagster.core.engine import concurrently

    together = threading.Barrier(3, timeout=30)  # each read waits for the other two: one at a time would break it
    ended = []

    def read(value):
        def run():
            together.wait()
            ended.append(value)
            if value == "bad":
                raise ValueError("unknown column")
            return value
        return run

    assert concurrently({"a": read(1), "b": read(2), "c": read(3)}) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(ValueError, match="unknown column"):
        concurrently({"a": read("ok"), "b": read("bad"), "c": read("late")})
    assert sorted(map(str, ended[3:])) == ["bad", "late", "ok"]
    assert concurrently({"only": lambda: 7}) == {"only": 7}


def test_a_fold_yielding_to_writers_never_retries_and_the_next_fold_removes_what_it_left(spark_server, wide):
    earlier = {**STEP, "processing_date": "2026-04-08"}
    ended = wide.new_run(earlier["processing_date"])
    for task_id in range(1, WRITERS + 1):
        wide.monitor.start_task(ended, wide.project, wide.load, task_id=task_id, **earlier)
        wide.monitor.end_task(ended, wide.project, wide.load, task_id=task_id, **earlier)
    running = wide.new_run()  # its writers append while the fold removes the ended run's events
    before = wide.monitor.engine.stats.snapshot()
    folds: list = []
    folding = threading.Thread(target=lambda: folds.append(wide.monitor.fold(yield_to_writers=True)))
    folding.start()
    conflicts, _ = _race(spark_server, wide, running, "start_and_finish", list(range(1, WRITERS + 1)))
    folding.join(timeout=600)

    assert len(folds) == 1  # it ended, and without an error
    assert (wide.monitor.engine.stats - before).conflicts_retried == 0 and conflicts == 0
    wide.monitor.fold()  # removes whatever the first left
    assert wide.monitor.spark.table(wide.monitor.table_name("ETLEventLog")).where(
        f"ExecutionID IN ('{ended}', '{running}')").count() == 0
    for run in (ended, running):
        assert [wide.steps(run)[(1, t)]["Status"] for t in range(1, WRITERS + 1)] == ["DONE"] * WRITERS
        counts = Counter(r["OperationName"] for r in wide.receipts(run))
        assert counts == {"TASK_START": WRITERS, "TASK_DONE": WRITERS, "WATERMARK_MOVE": WRITERS}  # none doubled
