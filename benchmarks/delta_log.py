"""Statement cost as a table's Delta log grows: the embedded server's log settings against Delta's defaults.

Three throwaway servers: as shipped, with Delta's own log store for local files instead of the server's,
and without any of ``DELTA_LOG_SETTINGS``. On each, one table gets one-row appends (a commit and a data
file each) up to every ``--at`` count; there, the median of a one-row read and of a one-row append on
that table are printed beside the same on a one-commit table, with the files in its _delta_log. At the
end, the append that writes a checkpoint against the others.

    .venv/bin/python benchmarks/delta_log.py [--at 50 600 1200] [--samples 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from etl_monitor_dagster.core.local_spark import DELTA_LOG_SETTINGS, LocalSparkServer


def without(settings: set[str]) -> type[LocalSparkServer]:
    """The embedded server started without ``settings`` (keys of ``DELTA_LOG_SETTINGS``): Delta's own there."""

    class Without(LocalSparkServer):
        def command(self) -> list[str]:
            args = super().command()
            dropped = {i for i, arg in enumerate(args) if arg.split("=", 1)[0] in settings}
            return [arg for i, arg in enumerate(args) if i not in dropped and i + 1 not in dropped]

    return Without


SERVERS = {  # label -> server class
    "as shipped": LocalSparkServer,
    "Delta's log store": without({"spark.delta.logStore.file.impl"}),
    "Delta's defaults": without(set(DELTA_LOG_SETTINGS)),
}


def _median_ms(action: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _read_and_append_ms(spark: Any, table: str, samples: int) -> tuple[float, float]:
    """Median milliseconds of a one-row read and of a one-row append on ``table``."""
    return (_median_ms(lambda: spark.sql(f"SELECT count(*) FROM {table} WHERE k = 'x'").collect(), samples),
            _median_ms(lambda: spark.sql(f"INSERT INTO {table} VALUES ('w', 0)"), samples))


def measure(server: LocalSparkServer, label: str, at: list[int], samples: int) -> None:
    spark = server.session()
    for table in ("grown", "fresh"):
        spark.sql(f"CREATE TABLE {table} (k STRING, v INT) USING delta")
    spark.sql("INSERT INTO fresh VALUES ('a', 0)")
    log = Path(urlparse(spark.sql("DESCRIBE DETAIL grown").collect()[0]["location"]).path) / "_delta_log"
    commits = 1
    for target in at:
        while commits < target:
            spark.sql(f"INSERT INTO grown VALUES ('k{commits}', {commits})")
            commits += 1
        read, append = _read_and_append_ms(spark, "grown", samples)
        commits += samples
        fresh_read, fresh_append = _read_and_append_ms(spark, "fresh", samples)
        print(f"{label}: {commits} commits, {sum(1 for _ in log.iterdir())} log files: read {read:.0f} ms, "
              f"append {append:.0f} ms (one-commit table: {fresh_read:.0f} / {fresh_append:.0f} ms)", flush=True)
    checkpoints, others = [], []
    for _ in range(30):
        version, started = commits, time.perf_counter()
        spark.sql(f"INSERT INTO grown VALUES ('c{version}', {version})")
        commits += 1
        (checkpoints if version % 10 == 0 else others).append(time.perf_counter() - started)
    print(f"{label}: appends writing a version divisible by 10 {statistics.median(checkpoints) * 1000:.0f} ms, "
          f"others {statistics.median(others) * 1000:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=int, nargs="+", default=[50, 600, 1200])
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    for label, cls in SERVERS.items():
        with cls.temporary() as server:
            measure(server, label, args.at, args.samples)


if __name__ == "__main__":
    main()
