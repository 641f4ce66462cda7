"""task() round trip of this monitor against the seed package (databricks-etl-monitor 1.0.0), one engine.

Both do what their ``task()`` guard does for one task of a fresh execution (status check, start,
DONE with the task's DELTA_DATE watermark), alternating, on one embedded Spark Connect server in one
process, each in its own schema. The seed's DONE ends with a watermark UPDATE whose subqueries
open-source Delta refuses (Databricks accepts it): that statement is counted but not sent, so the
seed is timed without it. Prints statements and Delta commits per round trip for both, the median
seconds and the ratio.

    .venv/bin/python benchmarks/seed_ratio.py [--repeat 8]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from etl_monitor import ETLMonitorFramework as Seed

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.local_spark import LocalSparkServer

PROJECT, LOAD, WATERMARK = "BENCH", "SEED_RATIO", "LoadOrders"
TABLES = ("ETLProcessingSteps", "ETLsysLogs", "ETLconfigParameters")


class CountingSession:
    """The seed's SparkSession, counting its statements and holding back its OSS-incompatible one."""

    def __init__(self, spark: Any) -> None:
        self._spark, self.statements, self.skipped = spark, 0, 0

    def sql(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        if "UPDATE" in text and "ETLconfigParameters" in text and "SELECT e.StartTime" in text:
            self.skipped += 1
            return self._spark.sql("SELECT 1 AS skipped")  # the seed collects nothing from it
        return self._spark.sql(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark, name)


def _versions(spark: Any, schema: str) -> int:
    """The sum of the current Delta versions of the tables a round trip writes (ours: ETLEventLog too)."""
    tables = [*TABLES, *(["ETLEventLog"] if schema == "bench_ours" else [])]
    return sum(spark.sql(f"DESCRIBE HISTORY {schema}.{t} LIMIT 1").collect()[0]["version"] for t in tables)


def _ours(spark: Any, day: str) -> tuple[float, int, int]:
    monitor = ETLMonitorFramework(spark, schema="bench_ours")
    run = monitor.generate_execution_id()
    monitor.generate_execution_steps(run, PROJECT, LOAD, day)
    before, versions, t0 = monitor.engine.stats.snapshot(), _versions(spark, "bench_ours"), time.perf_counter()
    with monitor.task(run, PROJECT, LOAD, task_id=1, sequence_id=2, workflow_id=1, processing_date=day):
        pass
    seconds = time.perf_counter() - t0
    return seconds, (monitor.engine.stats - before).statements, _versions(spark, "bench_ours") - versions


def _seed(spark: Any, day: str) -> tuple[float, int, int, int]:
    session = CountingSession(spark)
    seed = Seed(session, catalog="", schema="bench_seed")
    run = Seed.generate_execution_id()
    seed.generate_execution_steps(run, PROJECT, LOAD, day)
    statements, versions, t0 = session.statements, _versions(spark, "bench_seed"), time.perf_counter()
    with seed.task(run, PROJECT, LOAD, 1, 2, 1, day):
        pass
    seconds = time.perf_counter() - t0
    return seconds, session.statements - statements, _versions(spark, "bench_seed") - versions, session.skipped


def _prepare(spark: Any) -> None:
    ours = ETLMonitorFramework(spark, schema="bench_ours")
    ours.setup()
    seed = Seed(CountingSession(spark), catalog="", schema="bench_seed")
    seed.setup()
    for monitor in (ours, seed):
        monitor.register_process(PROJECT, LOAD, "Seed ratio", "", "bench", "D")
        monitor.register_task(PROJECT, LOAD, 0, 0, 0, "Initiation", "NONE")
        monitor.register_task(PROJECT, LOAD, 1, 1, 2, "Load orders", "PYTHON", "bench:load", WATERMARK)
        monitor.register_parameter(PROJECT, LOAD, WATERMARK, "DELTA_DATE", "", "2026-01-01 00:00:00")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="round trips of each, alternating")
    args = parser.parse_args()
    with LocalSparkServer.temporary() as server:
        spark = server.session()
        _prepare(spark)
        ours, seed, skipped = [], [], 0
        for i in range(args.repeat + 2):  # the first two of each warm the JVM and are not counted
            day = f"2026-05-{i + 1:02d}"
            mine, theirs = _ours(spark, day), _seed(spark, day)
            skipped += theirs[3]
            if i >= 2:
                ours.append(mine)
                seed.append(theirs[:3])
        for name, results in (("ours", ours), ("seed", seed)):
            print(f"{name}: {statistics.median(r[0] for r in results):.2f} s per round trip "
                  f"(median of {len(results)}), {statistics.median(r[1] for r in results):.0f} statements, "
                  f"{statistics.median(r[2] for r in results):.0f} Delta commits")
        ratio = statistics.median(r[0] for r in ours) / statistics.median(r[0] for r in seed)
        print(f"ratio ours/seed: {ratio:.2f}")
        print(f"seed statements held back (its watermark UPDATE open-source Delta refuses): {skipped}")
        spark.stop()


if __name__ == "__main__":
    main()
