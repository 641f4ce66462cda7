"""One stage of K parallel trivial tasks through `dagster dev`: monitored against plain Dagster assets.

Starts a throwaway embedded Spark server and `dagster dev` with two code locations on one instance (the
one `make start` creates): the monitor's, over a catalogue of one process whose single stage holds K
SPARK_SQL tasks that run `SELECT 1`, and a plain one whose job has K assets that each open a Spark Connect
session and run `SELECT 1`, with the same executor (steps forked from a preloaded server, 8 at once). It
launches both jobs alternately through GraphQL and prints each one's median seconds (launch to run end),
the ratio, the monitor's seconds per task, and the Delta conflicts the run logs show.

    .venv/bin/python benchmarks/wide_stage.py [--tasks 24] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

from demo_run import BIN, LOCATIONS, REPO, free_port, graphql, wait

from etl_monitor_dagster.core.local_spark import LocalSparkServer

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
CONFLICTS = ("DELTA_CONCURRENT_APPEND", "ConcurrentAppendException", "MetadataChangedException",
             "DELTA_METADATA_CHANGED", "ConcurrentDeleteReadException")


def _catalogue(folder: Path, tasks: int) -> None:
    (folder / "one.sql").write_text("SELECT 1 AS one;\n")
    lines = ["project: BENCH", "process: WIDE", "name: Wide stage", "owner: bench", "frequency: D",
             "start_date: 2026-04-01", "tasks:",
             "  - {id: 0, workflow: 0, stage: 0, name: Initiation, source_type: NONE, mandatory: true}"]
    lines += [f"  - {{id: {t}, workflow: 1, stage: 2, name: task {t}, source_type: SPARK_SQL, source: one.sql, "
              "mandatory: false}" for t in range(1, tasks + 1)]
    (folder / "wide.yaml").write_text("\n".join(lines) + "\n")


def _plain(folder: Path, tasks: int, url: str) -> None:
    (folder / "plain.py").write_text(textwrap.dedent(f"""
        from dagster import Definitions, asset, define_asset_job
        from etl_monitor_dagster.dagster.schedules import step_executor

        def one(name):
            @asset(name=name, group_name="plain")
            def run_one() -> None:
                from pyspark.sql import SparkSession
                SparkSession.builder.remote({url!r}).getOrCreate().sql("SELECT 1 AS one").collect()
            return run_one

        assets = [one(f"task_{{t}}") for t in range(1, {tasks} + 1)]
        defs = Definitions(assets=assets, jobs=[define_asset_job("plain_wide", executor_def=step_executor)])
    """))
    (folder / "workspace.yaml").write_text(textwrap.dedent(f"""
        load_from:
          - python_file:
              {{relative_path: {REPO / 'definitions.py'}, working_directory: {REPO}, location_name: etl_monitor}}
          - python_file:
              {{relative_path: {folder / 'plain.py'}, working_directory: {folder}, location_name: plain}}
    """))


def _run(url: str, location: str, job: str, tags: list[dict]) -> float:
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job},
              "executionMetadata": {"tags": tags}}
    started = time.perf_counter()
    launched = graphql(url, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def ended() -> str | None:
        status = graphql(url, STATUS, id=run_id)["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    status = wait(f"the end of {job}", ended, 1800, 0.25)
    assert status == "SUCCESS", f"{job} run {run_id} ended {status}"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with LocalSparkServer.temporary() as server, tempfile.TemporaryDirectory() as home, \
            tempfile.TemporaryDirectory() as folder:
        shutil.copy(REPO / "instance" / "dagster.yaml", Path(home) / "dagster.yaml")
        _catalogue(Path(folder), args.tasks)
        _plain(Path(folder), args.tasks, server.url)
        env = {**os.environ, "DAGSTER_HOME": home, "ETL_MONITOR_HOME": str(server.home),
               "ETL_MONITOR_SPARK_PORT": str(server.port), "ETL_MONITOR_CATALOGUE": folder}
        subprocess.run([str(BIN / "python"), "-m", "etl_monitor_dagster", "setup", folder], cwd=REPO, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        port, log = free_port(), Path(folder) / "dagster_dev.log"
        command = [str(BIN / "dagster"), "dev", "-w", str(Path(folder) / "workspace.yaml"), "-h", "127.0.0.1",
                   "-p", str(port)]
        with log.open("w") as out:
            dev = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}/graphql"
        try:
            wait("dagster dev", lambda: all(e["loadStatus"] == "LOADED" for e in
                                            graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]), 300, 1)
            monitored, plain = [], []
            for i in range(args.runs):
                day = (date(2026, 4, 1) + timedelta(days=i)).isoformat()
                monitored.append(_run(url, "etl_monitor", "wide", [{"key": "dagster/partition", "value": day}]))
                plain.append(_run(url, "plain", "plain_wide", []))
                print(f"run {i + 1}: monitored {monitored[-1]:.1f} s, plain {plain[-1]:.1f} s", flush=True)
            ours, theirs = statistics.median(monitored), statistics.median(plain)
            text = log.read_text(errors="replace")
            conflicts = sum(text.count(name) for name in CONFLICTS)
            print(f"{args.tasks} parallel tasks, launch to run end, median of {args.runs}: monitored {ours:.1f} s, "
                  f"plain Dagster {theirs:.1f} s, ratio {ours / theirs:.2f}; the monitor's seconds per task "
                  f"{(ours - theirs) / args.tasks:.2f}; Delta conflicts in the runs' logs: {conflicts}")
        finally:
            os.killpg(dev.pid, signal.SIGTERM)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
