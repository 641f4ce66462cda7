"""Eight OS processes write one run at the same moment: nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest

from tests.conftest import DAY

WRITERS = 8


def _writer(url, schema, project, load, run, action, task_id, barrier, results):
    """One OS process: its own Spark Connect client, released at the barrier with the others."""
    from pyspark.sql import SparkSession

    from etl_monitor_dagster import ETLMonitorFramework

    spark = SparkSession.builder.remote(url).getOrCreate()
    try:
        monitor = ETLMonitorFramework(spark, schema=schema, updated_by=f"writer-{task_id}")
        step = {"task_id": task_id, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}
        barrier.wait(timeout=120)
        if action == "start_and_finish":
            monitor.start_task(run, project, load, **step)
            monitor.end_task(run, project, load, **step)
        else:
            monitor.fail_task(run, project, load, **step, log_message="raced")
        results.put((task_id, monitor.engine.stats.conflicts_retried, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((task_id, 0, repr(exc)))
    finally:
        spark.stop()


def _race(spark_server, process, run, action, task_ids):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(task_ids)), ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(spark_server.url, process.monitor.schema, process.project,
                                                 process.load, run, action, task_id, barrier, results))
               for task_id in task_ids]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    errors = [error for _, _, error in outcomes if error]
    assert errors == []
    return sum(conflicts for _, conflicts, _ in outcomes)


@pytest.fixture
def wide(make_process):
    """A process whose first stage has eight parallel tasks, each with its own DELTA_DATE watermark."""
    ids = range(1, WRITERS + 1)
    return make_process(parameters=[{"parameter_name": f"wm{t}", "parameter_type": "DELTA_DATE"} for t in ids],
                        tasks=[{"task_id": t, "source_system_code": f"wm{t}"} for t in ids])


def test_eight_processes_finishing_tasks_of_one_run_at_once_lose_and_double_nothing(spark_server, wide):
    run = wide.new_run()
    conflicts = _race(spark_server, wide, run, "start_and_finish", list(range(1, WRITERS + 1)))

    steps = wide.steps(run)
    assert {tid: steps[(1, tid)]["Status"] for tid in range(1, WRITERS + 1)} == dict.fromkeys(range(1, WRITERS + 1),
                                                                                              "DONE")
    counts = Counter(r["OperationName"] for r in wide.receipts(run))
    assert counts == {"TASK_START": WRITERS, "TASK_DONE": WRITERS, "WATERMARK_MOVE": WRITERS}
    assert all(wide.monitor.get_active_watermark(wide.project, wide.load, f"wm{t}") is not None
               for t in range(1, WRITERS + 1))
    assert conflicts > 0  # the writers really collided, and every collision was retried


def test_processes_racing_on_the_same_transition_record_it_once(spark_server, wide):
    run = wide.new_run()
    for task_id in (1, 2, 3, 4):
        wide.monitor.start_task(run, wide.project, wide.load, task_id=task_id, sequence_id=2, workflow_id=1,
                                processing_date=DAY)
    _race(spark_server, wide, run, "fail", [1, 1, 2, 2, 3, 3, 4, 4])

    steps = wide.steps(run)
    assert [steps[(1, t)]["Status"] for t in (1, 2, 3, 4)] == ["FAIL"] * 4
    fails = Counter(r["ActivityName"] for r in wide.receipts(run) if r["OperationName"] == "TASK_FAIL")
    assert sorted(fails.values()) == [1, 1, 1, 1]


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
