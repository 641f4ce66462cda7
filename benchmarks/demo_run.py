"""Seconds for the demo partition launched through `dagster dev`, GraphQL launch to run end, as a new user does it.

Starts a throwaway embedded Spark server and `dagster dev` (the instance `make start` creates), prepares the
monitor as `make start` does, then launches `sales_daily` for ``--runs`` successive days and prints each run's
seconds, the median, and where the time went in the last run (step process start-up, steps, gates).

    .venv/bin/python benchmarks/demo_run.py [--runs 3] [--start-method spawn] [--timeline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from etl_monitor_dagster.core.local_spark import LocalSparkServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
EVENTS = """query($id: ID!) { logsForRun(runId: $id, limit: 200) { ... on EventConnection { events {
  __typename ... on MessageEvent { timestamp message } } } } }"""
STEPS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { stepStats { stepKey startTime endTime } } } }"""


def graphql(url: str, query: str, **variables: object) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait(what: str, check, timeout: float, every: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(env: dict[str, str], workspace: Path, output: Any = subprocess.DEVNULL) -> Iterator[str]:
    """`dagster dev` on a free port over ``workspace``; yields its GraphQL URL once every location loaded,
    and stops it (its whole process group) on exit."""
    port = free_port()
    command = [str(BIN / "dagster"), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    dev = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                           start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        wait("dagster dev", lambda: all(e["loadStatus"] == "LOADED" for e in
                                        graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]), 300, 1)
        yield url
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)


def launch(url: str, location: str, job: str, tags: dict[str, str],
           run_config: dict | None = None) -> tuple[float, str]:
    """Launch ``job`` through GraphQL and wait for its end: the seconds from launch to run end, and its run id."""
    params: dict = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                                 "jobName": job},
                    "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    if run_config:  # else the job's default run config
        params["runConfigData"] = run_config
    started = time.perf_counter()
    launched = graphql(url, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def ended() -> str | None:
        status = graphql(url, STATUS, id=run_id)["runOrError"]["status"]
        return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    status = wait(f"the end of {job}", ended, 1800, 0.25)
    seconds = time.perf_counter() - started
    assert status == "SUCCESS", f"{job} run {run_id} ended {status}"
    return seconds, run_id


def one_run(url: str, day: date, start_method: str | None) -> tuple[float, str]:
    config = {"execution": {"config": {"multiprocess": {"start_method": start_method}}}} if start_method else None
    return launch(url, "etl_monitor", "sales_daily", {"dagster/partition": day.isoformat()}, config)


def breakdown(url: str, run_id: str, timeline: bool = False) -> str:
    run = graphql(url, STATUS, id=run_id)["runOrError"]
    steps = sorted(graphql(url, STEPS, id=run_id)["runOrError"]["stepStats"], key=lambda s: s["startTime"])
    if timeline:  # the run's events up to its first step's start, then each step's start and end, seconds after
        # the run's start (the planned materialisations and checks, one per asset and check, say nothing of time)
        for e in graphql(url, EVENTS, id=run_id)["logsForRun"]["events"]:
            if not e["__typename"].endswith("PlannedEvent"):
                print(f"  {int(e['timestamp']) / 1000 - run['startTime']:6.1f}  {e['__typename']}: {e['message'][:90]}")
            if e["__typename"] == "ExecutionStepStartEvent":
                break
        for s in steps:
            print(f"  {s['startTime'] - run['startTime']:6.1f} {s['endTime'] - run['startTime']:6.1f}  {s['stepKey']}")
    gates = sum(s["endTime"] - s["startTime"] for s in steps if "gate" in s["stepKey"])
    work = sum(s["endTime"] - s["startTime"] for s in steps if "gate" not in s["stepKey"])
    first, last = steps[0]["startTime"] - run["startTime"], run["endTime"] - steps[-1]["endTime"]
    return (f"{len(steps)} steps: step time {work:.1f} s (gates {gates:.1f} s); run start to first step {first:.1f} s, "
            f"last step to run end {last:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--start-method", choices=["spawn", "forkserver"], default=None,
                        help="the step processes' start method instead of the job's default (A/B comparisons)")
    parser.add_argument("--timeline", action="store_true",
                        help="print the last run's first events and each step's start and end")
    args = parser.parse_args()
    if not 1 <= args.runs <= 30:
        parser.error("--runs takes 1 to 30: the demo's partitions are the days of April 2026 (its end_date)")
    with LocalSparkServer.temporary() as server, tempfile.TemporaryDirectory() as home:
        shutil.copy(REPO / "instance" / "dagster.yaml", Path(home) / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": home, "ETL_MONITOR_HOME": str(server.home),
               "ETL_MONITOR_SPARK_PORT": str(server.port)}
        subprocess.run([str(BIN / "python"), "-m", "etl_monitor_dagster", "setup", "catalogue"], cwd=REPO, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        with dagster_dev(env, REPO / "workspace.yaml") as url:
            seconds = []
            for i in range(args.runs):
                took, run_id = one_run(url, date(2026, 4, 1) + timedelta(days=i), args.start_method)
                seconds.append(took)
                print(f"run {i + 1}: {took:.1f} s", flush=True)
            print(f"demo partition, GraphQL launch to run end: median {statistics.median(seconds):.1f} s "
                  f"(min {min(seconds):.1f}, max {max(seconds):.1f}, {len(seconds)} runs)")
            print(f"last run: {breakdown(url, run_id, args.timeline)}")


if __name__ == "__main__":
    main()
