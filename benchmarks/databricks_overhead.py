"""What a DBX_NOTEBOOK task costs on our side, beyond the Databricks run itself.

Runs notebook tasks against the fake Jobs API (tests/fake_databricks.py, real HTTP on loopback,
the real databricks-sdk) with the monitor on the embedded local Spark + Delta, and prints: seconds
per Jobs API call, seconds per task for the runner (submit, polls, output, the SourceRunID write)
and for the monitor's start + DONE (with receipts), and the share of the latter.

    .venv/bin/python benchmarks/databricks_overhead.py [--tasks 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from databricks.sdk import WorkspaceClient

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.catalogue import ProcessSpec
from etl_monitor_dagster.core.local_spark import LocalSparkServer
from etl_monitor_dagster.tasks import TaskRun, run
from etl_monitor_dagster.tasks.databricks import Databricks
from tests.conftest import free_port
from tests.fake_databricks import FakeDatabricks, Script

TOKEN, DAY = "bench-token", date(2026, 4, 9)
SPEC = ProcessSpec.model_validate({
    "project": "BENCH", "process": "DBX_OVERHEAD", "compute": {"existing_cluster_id": "0101-bench"},
    "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"},
              {"id": 1, "workflow": 1, "stage": 2, "name": "Notebook", "source_type": "DBX_NOTEBOOK",
               "source": "/Repos/bench/notebook"}]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, FakeDatabricks(token=TOKEN) as api:
        server = LocalSparkServer(home=Path(home), port=free_port())
        server.ensure_running()
        try:
            spark = server.session()
            monitor = ETLMonitorFramework(spark, schema="etl_bench")
            monitor.setup()
            monitor.register_many(**SPEC.registration())
            client = WorkspaceClient(host=api.host, token=TOKEN)
            api.script("/Repos/bench/notebook", Script(polls=2, output={"rows_written": 1}))
            per_call = _per_call(client, api, args.calls)
            monitor_s, runner_s = zip(*(_one_task(monitor, client) for _ in range(args.tasks)), strict=True)
            spark.stop()
        finally:
            server.stop()
    total = statistics.median(monitor_s) + statistics.median(runner_s)
    print(f"Jobs API call through the SDK (loopback):                     {per_call * 1000:7.1f} ms")
    print(f"runner per task (submit, 4 polls, output, SourceRunID write): {statistics.median(runner_s):7.2f} s")
    print(f"monitor start + DONE per task:                                {statistics.median(monitor_s):7.2f} s")
    print(f"start + DONE share of our side of a DBX task:                 {statistics.median(monitor_s) / total:7.0%}")


def _per_call(client: WorkspaceClient, api: FakeDatabricks, calls: int) -> float:
    run_id = client.jobs.submit(run_name="warm", tasks=[]).run_id
    started = time.perf_counter()
    for _ in range(calls):
        client.jobs.get_run(run_id)
    return (time.perf_counter() - started) / calls


def _one_task(monitor: ETLMonitorFramework, client: WorkspaceClient) -> tuple[float, float]:
    """(start + DONE seconds, runner seconds) of one task."""
    execution = monitor.generate_execution_id()
    task = SPEC.tasks[1]
    where = {"task_id": task.id, "sequence_id": task.stage, "workflow_id": task.workflow, "processing_date": DAY}
    (step,) = monitor.pending_rows(execution, SPEC.project, SPEC.process, **where)
    started = time.perf_counter()
    monitor.start_task(execution, SPEC.project, SPEC.process, **where, source_type="DBX_NOTEBOOK")
    before = time.perf_counter()
    run(TaskRun(execution, SPEC, task, DAY, step, monitor,
                     databricks=Databricks(client, poll_interval_seconds=0)))
    after = time.perf_counter()
    monitor.end_task(execution, SPEC.project, SPEC.process, **where)
    return (before - started) + (time.perf_counter() - after), after - before


if __name__ == "__main__":
    main()
