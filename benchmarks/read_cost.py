"""What a one-row read costs on the embedded default: a table as stored against its fold of the event log.

On a warm server (after a dozen round trips), reads one task's step row from ETLProcessingSteps and from
v_liveSteps (the table with the transitions logged since its fold), its process's parameters from
ETLconfigParameters and from v_liveParameters, its logged transitions (what a start reads to learn
whether it came first), and the two reads ``task()`` sends at once (the step with its task; the
watermarks). Prints the median seconds and the engine's CPU seconds of each.

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
            "the step row, as stored": lambda: store.rows("ETLProcessingSteps", step),
            "the step row, live (v_liveSteps)": lambda: store.rows("v_liveSteps", step),
            "the process's parameters, as stored": lambda: store.rows("ETLconfigParameters", process),
            "the process's parameters, live (v_liveParameters)": lambda: store.rows("v_liveParameters", process),
            "the step's transitions (v_stepTransitions)": lambda: store.rows("v_stepTransitions", step),
            "the step with its task (STEP_ROWS)": lambda: store.query(Q.STEP_ROWS, step),
            "the watermarks (WATERMARKS)": lambda: store.query(Q.WATERMARKS, process),
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
