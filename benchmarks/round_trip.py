"""Cost of one task round trip on the embedded default (local Spark Connect + Delta).

A round trip is what the ``task()`` guard does for one task: status check, start, DONE with the
DELTA_DATE watermark advance and their receipts. Prints statements and Delta commits per round
trip, seconds per round trip (median), the engine's CPU seconds per round trip (how many of the
machine's cores one writer keeps busy), each statement's time in a warm round trip, and round trips
per minute with 1, 4 and 8 concurrent writer processes (each writing different tasks of one run), with
the ratio to one writer.

    .venv/bin/python benchmarks/round_trip.py [--repeat 10] [--per-writer 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core import engine as engine_module
from etl_monitor_dagster.core.engine import EngineStats
from etl_monitor_dagster.core.local_spark import LocalSparkServer
from etl_monitor_dagster.core.monitor import store as store_module

SCHEMA, PROJECT, LOAD, DAY = "etl_bench", "BENCH", "ROUND_TRIP", "2026-04-09"


def _register(monitor: ETLMonitorFramework, tasks: int) -> None:
    monitor.setup()
    monitor.register_process(PROJECT, LOAD, load_frequency="D")
    monitor.register_task(PROJECT, LOAD, 0, 0, 0, "Initiation", "NONE")
    for task_id in range(1, tasks + 1):
        monitor.register_parameter(PROJECT, LOAD, f"wm{task_id}", "DELTA_DATE")
        monitor.register_task(PROJECT, LOAD, task_id, 1, 2, f"task {task_id}", "PYTHON",
                              source_system_code=f"wm{task_id}", task_mandatory=False)


def round_trip(monitor: ETLMonitorFramework, day: str,
               cpu: Callable[[], float] = lambda: 0.0) -> tuple[float, EngineStats, float]:
    """Task 1 of a fresh execution on ``day`` through ``task()``: seconds, the engine's statements and
    commits, and the engine CPU seconds ``cpu`` counts (the steps' generation before it is not counted)."""
    run = monitor.generate_execution_id()
    monitor.generate_execution_steps(run, PROJECT, LOAD, day)
    before, used, started = monitor.engine.stats.snapshot(), cpu(), time.perf_counter()
    with monitor.task(run, PROJECT, LOAD, task_id=1, sequence_id=2, workflow_id=1):
        pass
    return time.perf_counter() - started, monitor.engine.stats - before, cpu() - used


@contextmanager
def statement_clock() -> Iterator[list[tuple[str, float]]]:
    """Times every statement the monitor sends while open: (what, seconds) in the order sent. It wraps the
    engine's three ways of sending one (a read of a DataFrame, a read statement, a write)."""
    sent: list[tuple[str, float]] = []

    def timed(what: Callable[..., str], send: Callable) -> Callable:
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return send(*args, **kwargs)
            finally:
                sent.append((what(*args), time.perf_counter() - started))
        return run

    def write(_engine, text: str, *_) -> str:
        verb, table = text.split()[0], re.search(r"INTO\s+\S*?`?(\w+)`?\s", text)
        return f"{verb} {table.group(1) if table else ''}".strip()

    def read(*_) -> str:
        return "read"

    labels = {(engine_module.Engine, "query"): read, (engine_module.Engine, "execute"): write,
              (store_module, "collect"): read}
    originals = {(owner, name): getattr(owner, name) for owner, name in labels}
    for (owner, name), what in labels.items():
        setattr(owner, name, timed(what, originals[owner, name]))
    try:
        yield sent
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def engine_cpu_seconds(server: LocalSparkServer) -> float:
    """User + system CPU seconds the server's JVM has used so far, its ended threads' included (Linux /proc)."""
    return _cpu_seconds(Path(f"/proc/{int(server.pid_file.read_text())}/stat").read_text())


def _cpu_seconds(stat: str) -> float:
    """User + system CPU seconds of a /proc ``stat`` line (its fields after the command name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# JVM thread names (/proc/<pid>/task/<tid>/comm) -> what the share of CPU is spent on.
THREAD_KINDS = {"C1 CompilerThre": "JIT compiler", "C2 CompilerThre": "JIT compiler", "G1 ": "garbage collector",
                "GC Thread": "garbage collector", "Executor task": "Spark tasks"}
OTHER_THREADS = "planning, commits and the rest"


def engine_cpu_by_thread(server: LocalSparkServer) -> dict[str, float]:
    """The CPU seconds of the JVM's live threads so far by kind (THREAD_KINDS, else OTHER_THREADS)."""
    pid = int(server.pid_file.read_text())
    used: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        kind = next((k for prefix, k in THREAD_KINDS.items() if name.startswith(prefix)), OTHER_THREADS)
        used[kind] = used.get(kind, 0.0) + _cpu_seconds(stat)
    return used


def _writer(server: LocalSparkServer, run: str, task_ids: list[int], barrier, results) -> None:
    spark = server.session()  # as a Dagster step on the embedded engine: it commits the log's appends itself
    monitor = ETLMonitorFramework(spark, schema=SCHEMA)
    monitor.status_rows(PROJECT, LOAD, execution_id=run)  # warm the client before the clock starts
    barrier.wait()
    for task_id in task_ids:
        with monitor.task(run, PROJECT, LOAD, task_id=task_id, sequence_id=2, workflow_id=1, processing_date=DAY):
            pass
    results.put(monitor.engine.stats.conflicts_retried)
    spark.stop()


def _throughput(server: LocalSparkServer, monitor: ETLMonitorFramework, writers: int,
                per_writer: int) -> tuple[float, int]:
    run = monitor.generate_execution_id()
    monitor.generate_execution_steps(run, PROJECT, LOAD, DAY)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(server, run, list(range(w * per_writer + 1, (w + 1) * per_writer + 1)),
                                               barrier, results)) for w in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    conflicts = sum(results.get() for _ in procs)
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    return writers * per_writer / elapsed * 60, conflicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="sequential round trips to time")
    parser.add_argument("--per-writer", type=int, default=3, help="round trips per concurrent writer")
    args = parser.parse_args()

    with LocalSparkServer.temporary() as server:
        spark = server.session()
        monitor = ETLMonitorFramework(spark, schema=SCHEMA)
        _register(monitor, max(args.repeat, 8 * args.per_writer))

        seconds, costs, cpu = [], [], []
        for i in range(args.repeat + 2):  # the first two warm the JVM and are not counted
            if i == 2:
                threads_before = engine_cpu_by_thread(server)
            elapsed, cost, engine_cpu = round_trip(monitor, f"2026-05-{i + 1:02d}", lambda: engine_cpu_seconds(server))
            if i >= 2:
                seconds.append(elapsed)
                costs.append(cost)
                cpu.append(engine_cpu)
        print(f"statements per round trip: {statistics.median(c.statements for c in costs):.0f}")
        print(f"Delta commits per round trip: {statistics.median(c.commits for c in costs):.0f}")
        print(f"seconds per round trip (median of {args.repeat}): {statistics.median(seconds):.2f}")
        # Writers share the engine's cores: what one writer already keeps busy is what more writers cannot add.
        per_trip = statistics.median(cpu)
        busy = per_trip / statistics.median(seconds)
        print(f"engine CPU seconds per round trip: {per_trip:.2f}, that is {busy:.2f} of the "
              f"{os.cpu_count()} cores busy while one writer runs")
        threads = {k: v - threads_before.get(k, 0.0) for k, v in engine_cpu_by_thread(server).items()}
        shares = ", ".join(f"{k} {100 * v / sum(threads.values()):.0f} %" for k, v in
                           sorted(threads.items(), key=lambda kv: -kv[1]))
        print(f"engine CPU by thread: {shares}")

        trips = []
        for i in range(args.repeat):  # the server is warm now
            run = monitor.generate_execution_id()
            monitor.generate_execution_steps(run, PROJECT, LOAD, f"2026-06-{i + 1:02d}")
            with statement_clock() as sent, monitor.task(run, PROJECT, LOAD, task_id=1, sequence_id=2, workflow_id=1):
                pass
            trips.append(sent)
        steps = ", ".join(f"{what} {1000 * statistics.median(t[j][1] for t in trips):.0f} ms"
                          for j, (what, _) in enumerate(trips[0]))
        print(f"a warm round trip's statements in the order sent (median of {args.repeat}): {steps}")

        base = None
        for writers in (1, 4, 8):
            per_minute, conflicts = _throughput(server, monitor, writers, args.per_writer)
            base = base or per_minute
            print(f"{writers} writer(s): {per_minute:.1f} round trips/minute "
                  f"({per_minute / base:.2f}x one writer, {conflicts} conflicts retried)")
        spark.stop()


if __name__ == "__main__":
    main()
