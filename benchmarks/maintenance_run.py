"""Seconds of a maintenance run (archive, OPTIMIZE, VACUUM of the three growing tables) on the embedded default.

Each repeat first writes some history (a run of four tasks on a new day, so every maintained table
gets new files), then runs maintenance with its default settings (VACUUM keeping 168 hours). Prints
each run's seconds and the median; the first run pays the server's JIT.

    .venv/bin/python benchmarks/maintenance_run.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
from datetime import date, timedelta

from round_trip import LOAD, PROJECT, _register, round_trip

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.local_spark import LocalSparkServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with LocalSparkServer.temporary() as server:
        monitor = ETLMonitorFramework(server.session(), schema="etl_bench_maintenance", updated_by="bench")
        _register(monitor, 4)
        seconds = []
        for i in range(args.repeat):
            round_trip(monitor, str(date(2026, 4, 1) + timedelta(days=i)))
            report = monitor.maintenance.run()
            seconds.append(report.seconds)
            print(f"run {i + 1}: {report.seconds:.1f} s, files vacuumed {report.files_vacuumed}", flush=True)
    print(f"maintenance of {PROJECT}/{LOAD}'s schema: median {statistics.median(seconds):.1f} s "
          f"over {args.repeat} runs")


if __name__ == "__main__":
    main()
