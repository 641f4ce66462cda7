"""Whether a status read costs the same after a year of runs as after a day, once maintenance has folded.

Builds two schemas on one throwaway embedded server. Each holds one process with the history ``N`` logged
events leave once folded (every Dagster run's end folds its events): a START and a DONE per task run, as
DONE rows of ETLProcessingSteps over the past year (1,000 events in one schema, ``--events`` in the other),
compacted by a maintenance run. Then it times, alternately in both schemas, what a task's guard reads first
for a new run of today (the step with its task, and the watermarks), and prints both medians and their ratio.

    .venv/bin/python benchmarks/log_growth.py [--events 100000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.local_spark import LocalSparkServer
from etl_monitor_dagster.core.monitor.maintenance import MaintenanceSettings

PROJECT, LOAD, TODAY = "BENCH", "GROWTH", date(2026, 12, 6)

# The rows ``rows`` folded task runs leave: ``per_day`` tasks DONE a day, back from yesterday, for up to a year.
HISTORY = """
INSERT INTO {steps} (ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, WorkFlowID, TaskID, SequenceID,
                     Attempts, Status, TaskName, ForceSkip, StartTime, EndTime, DurationSeconds, LastUpdatedOn,
                     LastUpdatedBy, LastEventID)
SELECT date_sub(DATE'{today}', CAST(id DIV {per_day} AS INT) + 1), '{project}', '{load}',
       concat('run-', id DIV {per_day}), 1, CAST(id % {per_day} AS INT) + 1, 2, 0, 'DONE', 'a task', false,
       current_timestamp(), current_timestamp(), 1, current_timestamp(), 'bench', concat('done-', id)
  FROM range({rows})
"""


def history(monitor: ETLMonitorFramework, events: int) -> None:
    monitor.setup()
    monitor.register_process(PROJECT, LOAD, load_frequency="D")
    monitor.register_task(PROJECT, LOAD, 0, 0, 0, "Initiation", "NONE")
    monitor.register_task(PROJECT, LOAD, 1, 1, 2, "task 1", "PYTHON", task_mandatory=False)
    names = {"steps": monitor.table_name("ETLProcessingSteps"), "today": TODAY.isoformat(), "project": PROJECT,
             "load": LOAD, "rows": str(events // 2), "per_day": str(-(-events // 2 // 365))}
    monitor.spark.sql(HISTORY.format(**names)).collect()
    report = monitor.maintenance.run(MaintenanceSettings(vacuum=False))
    print(f"{events:,} events: ETLProcessingSteps holds {events // 2:,} rows in "
          f"{report.files_after['ETLProcessingSteps']} files after compaction", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with LocalSparkServer.temporary() as server:
        spark = server.session()
        small, large = (ETLMonitorFramework(spark, schema=f"bench_log_{n}") for n in (1_000, args.events))
        history(small, 1_000)
        history(large, args.events)
        runs = {}
        for monitor in (small, large):
            runs[monitor.schema] = monitor.generate_execution_id()
            monitor.generate_execution_steps(runs[monitor.schema], PROJECT, LOAD, TODAY)
        seconds: dict[str, list[float]] = {small.schema: [], large.schema: []}
        for _ in range(args.repeat + 2):  # alternated; the first two warm up
            for monitor in (small, large):
                started = time.perf_counter()
                monitor.pending_rows(runs[monitor.schema], PROJECT, LOAD, TODAY, task_id=1, workflow_id=1)
                seconds[monitor.schema].append(time.perf_counter() - started)
        a, b = (statistics.median(seconds[m.schema][2:]) for m in (small, large))
        print(f"a task's status read for today's run: {1000 * a:.0f} ms with 1,000 events of history, "
              f"{1000 * b:.0f} ms with {args.events:,} (x{b / a:.2f}, median of {args.repeat})")
        spark.stop()


if __name__ == "__main__":
    main()
