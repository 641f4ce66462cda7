"""End to end: `dagster dev` on loopback loads the repo's code location, and the demo launched through
the webserver's GraphQL API runs every stage on the test run's Spark server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

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
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_the_demo_launched_through_graphql_succeeds_and_fills_the_monitor(dagster_dev, spark):
    server, home = dagster_dev
    params = {"selector": {"repositoryLocationName": "etl_monitor", "repositoryName": "__repository__",
                           "jobName": "sales_daily"},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]}}
    launched = server.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 720
    status = None
    while time.monotonic() < deadline:
        status = server.graphql(STATUS, id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
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
