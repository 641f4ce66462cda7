"""End to end: `dagster dev` on loopback loads the repo's code location, and the demo launched through
the webserver's GraphQL API runs every stage on the test run's Spark server."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.dagster.metadata import RUN_SLOT_TAG
from tests.conftest import free_port
from tests.webserver import Webserver

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


@pytest.fixture(scope="module")
def dagster_dev(spark_server, spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "instance" / "dagster.yaml", home / "dagster.yaml")  # the instance `make start` creates
    # The demo catalogue, its stage-2 orders load first holding for the milliseconds HOLD holds (the engine
    # sleeps, no CPU): the terminated-run test holds it until it has terminated the run.
    ETLMonitorFramework(spark, schema="etl").setup()  # as `make start` does: a test polls its views from the start
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {HOLD.split('.')[0]}")
    spark.sql(f"CREATE OR REPLACE TABLE {HOLD} (ms BIGINT) USING DELTA")
    catalogue = tmp_path_factory.mktemp("catalogue") / "catalogue"
    shutil.copytree(REPO / "catalogue", catalogue)
    orders = catalogue / "sql" / "retail" / "stage_orders.sql"
    orders.write_text("DECLARE OR REPLACE VARIABLE held STRING;\n"
                      "SET VAR held = (SELECT java_method('java.lang.Thread', 'sleep', coalesce(max(ms), 0L)) "
                      f"FROM {HOLD});\n" + orders.read_text())
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ETL_MONITOR_HOME": str(spark_server.home),
           "ETL_MONITOR_SPARK_PORT": str(spark_server.port), "ETL_MONITOR_CATALOGUE": str(catalogue)}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=(home / "dagster_dev.log").open("w"),
        start_new_session=True)
    try:
        server = Webserver(port)
        server.wait_until_loaded(process, home / "dagster_dev.log")
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


def _ended_in_monitor(monitor: ETLMonitorFramework, run_id: str) -> list[dict]:
    """The run's rows once the monitor ended it (its initiation row FAIL), else none."""
    rows = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=run_id)
    initiation = [r for r in rows if r["WorkFlowID"] == 0 and r["TaskID"] == 0]
    return rows if initiation and initiation[0]["Status"] == "FAIL" else []


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
    assert len(gates) == 6 and [g["reconciled_rows"].value for g in gates] == [0] * 6


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

    rows = wait_for("the monitor's end of the run", lambda: _ended_in_monitor(monitor, run_id), 300)
    assert [r for r in rows if r["StartTime"] and r["EndTime"] is None] == []  # nothing left running
    initiation = next(r for r in rows if r["WorkFlowID"] == 0 and r["TaskID"] == 0)
    assert initiation["LogCode"] == "RUN_FAILED"
    # a task still running at the kill ends RUN_LOST; one whose step finished first keeps its own end
    assert all(r["Status"] == "FAIL" and r["EndTime"] for r in rows if r["LogCode"] == "RUN_LOST")
    assert {r["Status"] for r in rows if r["StartTime"] is None} <= {"NQUE"}  # never started: still queued
    (summary,) = monitor.read_view("v_runSummary", ExecutionID=run_id)
    assert summary["OverallStatus"] == "FAILED"


# ------------------------------------------------------------------------------------- when runs meet
# These run in file order after the tests above (2026-04-02 and 04-03) on the same engine and schema, and
# each uses dates no other test uses, later than theirs: the demo's watermarks are the process's, not a date's.
TWICE = "2026-04-04"
BACKFILL_DAYS = ["2026-04-05", "2026-04-06", "2026-04-07"]
TERMINATED = "2026-04-08"
HOLD = "retail_demo.test_hold"  # milliseconds the orders load holds first
RUN = """query($id: ID!) {
  runOrError(runId: $id) { ... on Run { runId status startTime endTime tags { key value } } }
}"""
RUNS = """query($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status startTime endTime tags { key value } } } }
}"""
QUEUE_LIMITS = "{ instance { runQueueConfig { tagConcurrencyLimitsYaml } } }"
BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
  }
}"""
TERMINATE = """mutation($id: String!) {
  terminateRun(runId: $id) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""


def _run(server: Webserver, run_id: str) -> dict:
    run = server.graphql(RUN, id=run_id)["runOrError"]
    return {**run, "tags": {t["key"]: t["value"] for t in run["tags"]}}


def _receipts(monitor: ETLMonitorFramework, execution_id: str) -> list[dict]:
    """The execution's receipts in log order, each its JSON event."""
    rows = monitor.read_view("v_liveLogs", ["LogOrder"], ProjectCode="RETAIL", ProcessLoad="SALES_DAILY",
                             ExecutionID=execution_id)
    return [json.loads(r["Message"]) for r in rows]


def _moves(receipts: list[dict], parameter: str) -> list[dict]:
    return [r for r in receipts if r["event_type"] == "WATERMARK_MOVE" and r.get("parameter_name") == parameter
            and not r.get("refused")]


def _loaded_once(spark, table: str, key: str) -> None:
    frame = spark.table(table)
    assert frame.count() == frame.select(key).distinct().count(), f"a row of {table} was loaded twice"


def _highest(spark, table: str, key: str, day_column: str, day: str) -> int:
    frame = spark.table(table)
    return frame.where(frame[day_column] <= date.fromisoformat(day)).agg({key: "max"}).collect()[0][0]


def _slot_limit(server: Webserver) -> list[dict]:
    return yaml.safe_load(server.graphql(QUEUE_LIMITS)["instance"]["runQueueConfig"]["tagConcurrencyLimitsYaml"])


def test_a_second_launch_of_a_partition_waits_in_the_queue_and_reruns_nothing(dagster_dev, spark):
    server, home = dagster_dev
    monitor = ETLMonitorFramework(spark, schema="etl")
    launched = [launch_demo(server, TWICE), launch_demo(server, TWICE)]

    def one_started() -> dict | None:
        runs = [_run(server, run_id) for run_id in launched]
        started = [r for r in runs if r["status"] == "STARTED"]
        return {"started": started[0], "other": next(r for r in runs if r is not started[0])} if started else None

    seen = wait_for("one of the two runs started", one_started, 300, every=1)
    ran, held = seen["started"]["runId"], seen["other"]
    # The other waits while the first runs, and says why: its slot tag is held by the first, and the
    # instance limits that tag to one run per value (what the run's page shows as its queue criteria).
    assert held["status"] == "QUEUED", held
    assert held["tags"][RUN_SLOT_TAG] == seen["started"]["tags"][RUN_SLOT_TAG] == "SALES_DAILY"
    assert {"key": RUN_SLOT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in _slot_limit(server)

    for run_id in launched:
        status = wait_for("the run's end", lambda run_id=run_id: run_status(server, run_id), 900)
        assert status == "SUCCESS", (home / "dagster_dev.log").read_text()[-3000:]
    second = held["runId"]
    assert _run(server, second)["startTime"] >= _run(server, ran)["endTime"]

    rows = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=ran)
    assert len(rows) == 10 and {r["Status"] for r in rows} == {"DONE"}
    # the second generated after the first had ended: every task was DONE, none ran again
    started = {r["task_id"] for r in _receipts(monitor, second) if r["event_type"] == "TASK_START"}
    assert started <= {0}, started
    # one execution per attempt of the date
    steps = monitor.read_view("v_liveSteps", ProjectCode="RETAIL", ProcessLoad="SALES_DAILY",
                              ProcessingDate=date.fromisoformat(TWICE))
    executions: dict[int, set[str]] = {}
    for row in steps:
        executions.setdefault(row["Attempts"], set()).add(row["ExecutionID"])
    assert all(len(ids) == 1 for ids in executions.values()), executions
    # LastOrderId moved once, by the run that ran, to the highest order id loaded
    moves = _moves(_receipts(monitor, ran), "LastOrderId") + _moves(_receipts(monitor, second), "LastOrderId")
    assert len(moves) == 1 and moves[0]["execution_id"] == ran, moves
    assert moves[0]["new_value"] == _highest(spark, "retail_demo.stg_orders", "order_id", "order_date", TWICE)
    _loaded_once(spark, "retail_demo.stg_orders", "order_id")


def test_a_three_day_backfill_runs_its_dates_one_after_another_oldest_first(dagster_dev, spark):
    server, home = dagster_dev
    monitor = ETLMonitorFramework(spark, schema="etl")
    params = {"selector": {"partitionSetName": "sales_daily_partition_set",
                           "repositorySelector": {"repositoryLocationName": "etl_monitor",
                                                  "repositoryName": "__repository__"}},
              "partitionNames": BACKFILL_DAYS}
    launched = server.graphql(BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    tags = [{"key": "dagster/backfill", "value": launched["backfillId"]}]

    def ended() -> list[dict] | None:
        runs = server.graphql(RUNS, tags=tags)["runsOrError"]["results"]
        done = len(runs) == len(BACKFILL_DAYS) and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                                                       for r in runs)
        return runs if done else None

    runs = wait_for("the backfill's three runs", ended, 2400, every=5)
    assert {r["status"] for r in runs} == {"SUCCESS"}, (home / "dagster_dev.log").read_text()[-3000:]
    by_day = {t["value"]: r for r in runs for t in r["tags"] if t["key"] == "dagster/partition"}
    assert sorted(by_day) == BACKFILL_DAYS
    ordered = [by_day[day] for day in BACKFILL_DAYS]
    for earlier, later in itertools.pairwise(ordered):  # one after another, oldest first
        assert earlier["endTime"] <= later["startTime"], (earlier, later)

    previous = None
    for day, run in zip(BACKFILL_DAYS, ordered, strict=True):
        (move,) = _moves(_receipts(monitor, run["runId"]), "LastOrderId")  # once per day
        assert move["processing_date"] == day and move["task_name"] == "Stage orders"
        assert move["new_value"] == _highest(spark, "retail_demo.stg_orders", "order_id", "order_date", day)
        if previous is not None:  # each date saw the watermark the one before it left
            assert move["previous_value"] == previous
        previous = move["new_value"]
    for table, key in (("retail_demo.stg_orders", "order_id"), ("retail_demo.valid_orders", "order_id"),
                       ("retail_demo.orders_eur", "order_id")):
        _loaded_once(spark, table, key)


def test_a_run_terminated_mid_stage_records_what_happened_and_its_rerun_completes(dagster_dev, spark):
    server, home = dagster_dev
    monitor = ETLMonitorFramework(spark, schema="etl")
    spark.sql(f"INSERT INTO {HOLD} VALUES (600000)")  # the orders load holds until the run is terminated
    try:
        run_id = launch_demo(server, TERMINATED)

        def holding() -> list[dict]:
            rows = monitor.status_rows("RETAIL", "SALES_DAILY", execution_id=run_id)
            return [r for r in rows if r["TaskName"] == "Stage orders" and r["StartTime"] and r["EndTime"] is None]

        wait_for("the orders load running", holding, 600, every=0.5)
        terminated = server.graphql(TERMINATE, id=run_id)["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        assert wait_for("the run's end", lambda: run_status(server, run_id), 300) == "CANCELED"
    finally:
        spark.sql(f"DELETE FROM {HOLD}")

    rows = wait_for("the monitor's end of the run", lambda: _ended_in_monitor(monitor, run_id), 300)
    receipts = _receipts(monitor, run_id)
    assert [r for r in rows if r["StartTime"] and r["EndTime"] is None] == []  # nothing left running
    assert next(r for r in rows if r["TaskID"] == 0)["LogCode"] == "RUN_CANCELED"
    interrupted = [r for r in rows if r["TaskID"] and r["Status"] == "FAIL"]
    assert interrupted, rows  # the task caught running
    assert {r["LogCode"] for r in interrupted} == {"RUN_CANCELED"}
    fails = {r["task_id"]: r for r in receipts if r["event_type"] == "TASK_FAIL"}
    assert {fails[r["TaskID"]]["error_class"] for r in interrupted} == {"CANCELED"}
    never = [r for r in rows if r["StartTime"] is None]
    assert never and {r["Status"] for r in never} == {"NQUE"}  # queued for the next attempt, not failed
    assert not {r["TaskID"] for r in never} & set(fails)
    starts = {r["task_id"] for r in receipts if r["event_type"] == "TASK_START"}
    assert {r["TaskID"] for r in rows if r["StartTime"]} <= starts  # every start has its receipt
    assert [r for r in receipts if r["event_type"] == "RUN_REOPEN"] == []

    rerun = launch_demo(server, TERMINATED)
    status = wait_for("the rerun's end", lambda: run_status(server, rerun), 900)
    assert status == "SUCCESS", (home / "dagster_dev.log").read_text()[-3000:]
    sessions = spark.table("retail_demo.stg_web_sessions").agg({"session_id": "max"}).collect()[0][0]
    assert monitor.get_active_watermark("RETAIL", "SALES_DAILY", "LastSessionId") == sessions
    assert monitor.get_active_watermark("RETAIL", "SALES_DAILY", "LastOrderId") == _highest(
        spark, "retail_demo.stg_orders", "order_id", "order_date", TERMINATED)
    for table, key in (("retail_demo.stg_web_sessions", "session_id"), ("retail_demo.stg_orders", "order_id")):
        _loaded_once(spark, table, key)
