"""One stage of K parallel trivial tasks through `dagster dev`: monitored against plain Dagster assets.

Starts a throwaway embedded Spark server and `dagster dev` with two code locations on one instance (the
one `make start` creates): the monitor's, over a catalogue of one process whose single stage holds K
SPARK_SQL tasks that run `SELECT 1`, and a plain one whose job has K assets that each open a Spark Connect
session and run `SELECT 1`, with the same executor (steps forked from a preloaded server, 8 at once). It
launches both jobs alternately through GraphQL, each once the engine is idle again (the previous run's end
reported and folded), and prints each one's median seconds (launch to run end),
the ratio, the monitor's seconds per task, and the Delta conflicts the engine met (its own log: every writer's,
the sensors' and the steps' alike).

    .venv/bin/python benchmarks/wide_stage.py [--tasks 24] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from demo_run import BIN, REPO, STATUS, STEPS, dagster_dev, graphql, launch

from etl_monitor_dagster.core.local_spark import LocalSparkServer

# The engine logs a statement that failed once, headed by its exception: one line per conflict.
CONFLICT = re.compile(r"^(io\.delta\.exceptions|org\.apache\.spark\.sql\.delta)\.\w*"
                      r"(Concurrent\w*|MetadataChanged|ProtocolChanged)Exception:", re.MULTILINE)


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


def _timeline(url: str, run_id: str) -> str:
    """Where a monitored run's time went: its start, the initiation, the stage's tasks, the gate, the views."""
    run = graphql(url, STATUS, id=run_id)["runOrError"]
    steps = graphql(url, STEPS, id=run_id)["runOrError"]["stepStats"]

    def span(kind: Callable[[str], bool]) -> float:
        chosen = [s for s in steps if kind(s["stepKey"])]
        return max(s["endTime"] for s in chosen) - min(s["startTime"] for s in chosen) if chosen else 0.0

    each = statistics.median(s["endTime"] - s["startTime"] for s in steps if "task_" in s["stepKey"])
    first = min(s["startTime"] for s in steps) - run["startTime"]
    return (f"to first step {first:.1f} s, initiation {span(lambda k: 'initiation' in k):.1f} s, "
            f"tasks {span(lambda k: 'task_' in k):.1f} s (each {each:.2f} s), "
            f"gate {span(lambda k: 'gate' in k):.1f} s, views {span(lambda k: k.endswith('views')):.1f} s, "
            f"to run end {run['endTime'] - max(s['endTime'] for s in steps):.1f} s")


def _engine_cpu(group: int) -> float:
    """CPU seconds the engine's processes (its process group) have used."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; then utime and stime are fields 11 and 12 after the name
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _settle(server: LocalSparkServer, least: float, quiet: float = 0.2, bound: float = 180.0) -> float:
    """Wait ``least`` seconds (a run sensor's tick comes within 30 s of a run's end), then until the engine is
    idle: under ``quiet`` cores for 3 s in a row (the run's end reported and folded), at most ``bound`` seconds in
    all; returns the seconds waited."""
    group, started, calm = int(server.pid_file.read_text()), time.monotonic(), 0
    used = _engine_cpu(group)
    while (calm < 3 or time.monotonic() - started < least) and time.monotonic() - started < bound:
        time.sleep(1.0)
        now = _engine_cpu(group)
        calm, used = (calm + 1 if now - used < quiet else 0), now
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with LocalSparkServer.temporary() as server, tempfile.TemporaryDirectory() as home, \
            tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as plain_folder:
        shutil.copy(REPO / "instance" / "dagster.yaml", Path(home) / "dagster.yaml")
        _catalogue(Path(folder), args.tasks)  # a folder of its own: every YAML file there is a process
        _plain(Path(plain_folder), args.tasks, server.url)
        env = {**os.environ, "DAGSTER_HOME": home, "ETL_MONITOR_HOME": str(server.home),
               "ETL_MONITOR_SPARK_PORT": str(server.port), "ETL_MONITOR_CATALOGUE": folder}
        subprocess.run([str(BIN / "python"), "-m", "etl_monitor_dagster", "setup", folder], cwd=REPO, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        log = Path(plain_folder) / "dagster_dev.log"
        with log.open("w") as output, dagster_dev(env, Path(plain_folder) / "workspace.yaml", output) as url:
            monitored, plain, after = [], [], []
            for i in range(args.runs):
                day = (date(2026, 4, 1) + timedelta(days=i)).isoformat()
                seconds, run_id = launch(url, "etl_monitor", "wide", {"dagster/partition": day})
                monitored.append(seconds)
                # each job starts on an idle engine, not beside the end of the one before
                after.append(_settle(server, least=40.0))
                plain.append(launch(url, "plain", "plain_wide", {})[0])
                _settle(server, least=0.0)
                print(f"run {i + 1}: monitored {monitored[-1]:.1f} s ({_timeline(url, run_id)}; the engine busy "
                      f"{after[-1]:.0f} s after it), plain {plain[-1]:.1f} s", flush=True)
        ours, theirs = statistics.median(monitored), statistics.median(plain)
        conflicts = len(CONFLICT.findall(server.log_file.read_text(errors="replace")))
        print(f"{args.tasks} parallel tasks, launch to run end, median of {args.runs}: monitored {ours:.1f} s, "
              f"plain Dagster {theirs:.1f} s, ratio {ours / theirs:.2f}; the monitor's seconds per task "
              f"{(ours - theirs) / args.tasks:.2f}; the engine busy after a monitored run (its end reported and "
              f"folded) {statistics.median(after):.0f} s; Delta conflicts the engine met: {conflicts}")


if __name__ == "__main__":
    main()
