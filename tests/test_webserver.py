"""End to end: `dagster dev` on loopback loads the repo's code location, and the demo launched through
the webserver's GraphQL API runs every stage on the test run's Spark server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from etl_monitor_dagster import ETLMonitorFramework
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-04-02"
LAUNCH = """mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


class Webserver:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def graphql(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    def wait_until_loaded(self, process: subprocess.Popen, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, "dagster dev exited"
            try:
                entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError("the code location did not load")


@pytest.fixture(scope="module")
def dagster_dev(spark_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "instance" / "dagster.yaml", home / "dagster.yaml")  # the instance `make start` creates
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ETL_MONITOR_HOME": str(spark_server.home),
           "ETL_MONITOR_SPARK_PORT": str(spark_server.port)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=(home / "dagster_dev.log").open("w"),
        start_new_session=True)
    try:
        server = Webserver(port)
        server.wait_until_loaded(process)
        yield server, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:  # it stops in 1-3 s, once not in 60 s in a busy suite; nothing here tests its shutdown
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def launch_demo(server: Webserver, day: str) -> str:
    params = {"selector": {"repositoryLocationName": "etl_monitor", "repositoryName": "__repository__",
                           "jobName": "sales_daily"},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]}}
    launched = server.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for(what: str, check, timeout: float, every: float = 3):
    """``check()``'s first truthy value, polled for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout} s")


def run_status(server: Webserver, run_id: str) -> str | None:
    status = server.graphql(STATUS, id=run_id)["runOrError"]["status"]
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


def test_the_demo_launched_through_graphql_succeeds_and_fills_the_monitor(dagster_dev, spark):
    server, home = dagster_dev
    run_id = launch_demo(server, DAY)
    status = wait_for("the demo run's end", lambda: run_status(server, run_id), 720)
    assert status == "SUCCESS", (home / "dagster_dev.log").read_text()[-3000:]

    monitor = ETLMonitorFramework(spark, schema="etl")
    steps = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=run_id)
    assert len(steps) == 10 and {r["Status"] for r in steps} == {"DONE"}
    assert monitor.get_active_watermark("RETAIL", "SALES_DAILY", "LastOrderId") > 0
    sales = spark.table("retail_demo.daily_sales").where("order_date <= DATE'2026-04-02'").count()
    assert sales > 0
    instance = DagsterInstance.from_config(str(home))
    summary = instance.get_latest_materialization_event(AssetKey(["retail", "sales_daily", "v_runSummary"]))
    assert summary.asset_materialization.metadata["Done"].value == 10
    # Each stage gate ran before its tasks' success hooks had written DONE and waited for them, so no gate
    # wrote a row itself.
    gates = [m.metadata for m in _materializations(instance, run_id) if "reconciled_rows" in m.metadata]
    assert len(gates) == 7 and [g["reconciled_rows"].value for g in gates] == [0] * 7


def _materializations(instance: DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    return [r.event_log_entry.asset_materialization for r in records]


def _processes_of(instance: DagsterInstance, run_id: str) -> list[int]:
    """The run's worker and step processes still alive, by the pids its engine events report."""
    pids = set()
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            pids.add(int(getattr(pid, "value", pid)))
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_a_run_whose_worker_is_killed_ends_failed_in_dagster_and_in_the_monitor(dagster_dev, spark):
    server, home = dagster_dev
    assert DagsterInstance.from_config(str(home)).run_monitoring_enabled
    monitor = ETLMonitorFramework(spark, schema="etl")
    run_id = launch_demo(server, "2026-04-03")

    def running_task() -> list[dict]:
        rows = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=run_id)
        return [r for r in rows if r["TaskID"] and r["StartTime"] and r["EndTime"] is None]

    wait_for("a task of the run running", running_task, 600, every=0.5)
    instance = DagsterInstance.from_config(str(home))
    pids = wait_for("the run's processes", lambda: _processes_of(instance, run_id), 30, every=0.2)
    for pid in pids:  # as an OOM kill or a lost node does: no signal handler runs, no event is written
        os.kill(pid, signal.SIGKILL)

    # Run monitoring notices the dead worker; the run sensor then ends the run in the monitor.
    assert wait_for("the run marked failed", lambda: run_status(server, run_id), 300) == "FAILURE"

    def ended() -> list[dict]:
        rows = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=run_id)
        initiation = [r for r in rows if r["WorkFlowID"] == 0 and r["TaskID"] == 0]
        return rows if initiation and initiation[0]["Status"] == "FAIL" else []

    rows = wait_for("the monitor's end of the run", ended, 300)
    assert [r for r in rows if r["StartTime"] and r["EndTime"] is None] == []  # nothing left running
    initiation = next(r for r in rows if r["WorkFlowID"] == 0 and r["TaskID"] == 0)
    assert initiation["LogCode"] == "RUN_FAILED"
    # a task still running at the kill ends RUN_LOST; one whose step finished first keeps its own end
    assert all(r["Status"] == "FAIL" and r["EndTime"] for r in rows if r["LogCode"] == "RUN_LOST")
    assert {r["Status"] for r in rows if r["StartTime"] is None} <= {"NQUE"}  # never started: still queued
    (summary,) = monitor.read_view("v_runSummary", ExecutionID=run_id)
    assert summary["OverallStatus"] == "FAILED"
