"""What a one-row read costs on the embedded default, by the tables it touches.

On a warm server (after a dozen round trips), reads one task's step row alone, its task row alone, its
process's parameter rows alone, and the status read ``task()`` sends (the step joined with its task and
its watermark). Prints the median seconds and the engine's CPU seconds of each.

    .venv/bin/python benchmarks/read_cost.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from round_trip import LOAD, PROJECT, SCHEMA, _register, engine_cpu_seconds, round_trip

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.local_spark import LocalSparkServer
from etl_monitor_dagster.core.monitor import statements as Q


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed reads of each kind")
    args = parser.parse_args()

    with LocalSparkServer.temporary() as server:
        spark = server.session()
        monitor = ETLMonitorFramework(spark, schema=SCHEMA)
        _register(monitor, 1)
        for i in range(12):  # warm the JIT
            round_trip(monitor, f"2026-05-{i + 1:02d}")
        run = monitor.generate_execution_id()
        monitor.generate_execution_steps(run, PROJECT, LOAD, "2026-06-01")
        store, process = monitor.store, {"ProjectCode": PROJECT, "ProcessLoad": LOAD}
        step = {**process, "ExecutionID": run, "WorkFlowID": 1, "TaskID": 1}
        reads: dict[str, Callable[[], object]] = {
            "the step row (1 table)": lambda: store.rows("ETLProcessingSteps", step),
            "the task row (1 table)": lambda: store.rows("ETLconfigTasks", {**process, "TaskID": 1}),
            "the process's parameters (1 table)": lambda: store.rows("ETLconfigParameters", process),
            "the status read (3 tables joined)": lambda: store.query(Q.STEP_ROWS, step),
        }
        seconds: dict[str, list[float]] = {k: [] for k in reads}
        cpu: dict[str, list[float]] = {k: [] for k in reads}
        for _ in range(args.repeat):  # alternated, so a slow moment of the machine hits every kind
            for what, read in reads.items():
                used, started = engine_cpu_seconds(server), time.perf_counter()
                read()
                seconds[what].append(time.perf_counter() - started)
                cpu[what].append(engine_cpu_seconds(server) - used)
        for what in reads:
            print(f"{what}: {1000 * statistics.median(seconds[what]):.0f} ms, engine CPU "
                  f"{1000 * statistics.median(cpu[what]):.0f} ms (median of {args.repeat})")
        spark.stop()


if __name__ == "__main__":
    main()
