"""DBX_NOTEBOOK and DBX_JOB tasks run by a real Dagster instance through dagster-databricks and the
databricks-sdk, against the fake Jobs API of tests/fake_databricks.py on loopback.

One partition of QA/LAKEHOUSE runs once per module; each task of its stage 2 meets one outcome
(see tests/catalogue/lakehouse.yaml), and each test checks one of them in Dagster, the monitor rows
and the receipts.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, build_resources

from etl_monitor_dagster import ETLMonitorFramework, databricks_from_env
from etl_monitor_dagster.core.notebook import CONTEXT
from tests.dagster_location import (
    DATABRICKS_HOST_ENV,
    DATABRICKS_TOKEN_ENV,
    RecordedRun,
    evaluate_reconciliation,
    lakehouse_job,
    launch_and_record,
    materialization,
    rows,
    terminate_while_running,
)
from tests.fake_databricks import FakeDatabricks, Script

TOKEN = "dapi" + uuid.uuid4().hex  # shaped like a personal access token, to be looked for where it must not be
DAY = "2026-06-01"
SCORE, BROKEN, SLOW = "/Repos/qa/score_customers", "/Repos/qa/broken", "/Repos/qa/slow"
FEATURES_JOB, OVERDUE_JOB = 501, 502


@pytest.fixture(scope="module")
def api() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=TOKEN) as fake:
        os.environ[DATABRICKS_HOST_ENV], os.environ[DATABRICKS_TOKEN_ENV] = fake.host, TOKEN
        yield fake
    del os.environ[DATABRICKS_HOST_ENV], os.environ[DATABRICKS_TOKEN_ENV]


@pytest.fixture(scope="module")
def lakehouse(api: FakeDatabricks, instance: DagsterInstance, monitor: ETLMonitorFramework) -> RecordedRun:
    api.script(SCORE, Script(polls=3, output={"rows_read": 900, "rows_written": 42, "new_watermark": 4242}))
    api.job(FEATURES_JOB, Script(result="FAILED", message="Task refresh failed.",
                                 error="ConnectionError: feature store unreachable"),
            Script(), parameters=("execution_id", "processing_date"))
    api.script(BROKEN, Script(result="FAILED", message="Workload failed, see run output for details",
                              error="ZeroDivisionError: division by zero"))
    api.script(SLOW, Script(hang=True))
    api.job(OVERDUE_JOB, Script(hang=True))
    return launch_and_record(lakehouse_job, instance, monitor, "LAKEHOUSE", DAY)


def test_a_notebook_run_gets_the_run_context_and_its_run_id_cluster_figures_and_url_are_recorded(
        lakehouse, api, instance, monitor):
    assert lakehouse.success
    (run,) = api.runs_of(SCORE)
    (submitted,) = [b for b in api.calls("POST", "/api/2.2/jobs/runs/submit") if b["tasks"][0]["notebook_task"]
                    ["notebook_path"] == SCORE]
    task = submitted["tasks"][0]
    parameters = task["notebook_task"]["base_parameters"]
    assert set(parameters) == set(CONTEXT)
    assert parameters | {"watermark_value": "?"} == {
        "execution_id": lakehouse.run_id, "project_code": "QA", "process_load": "LAKEHOUSE", "task_id": "1",
        "workflow_id": "1", "processing_date": DAY, "attempts": "0", "watermark_value": "?",
        "watermark_type": "DELTA_ID", "full_file_name": "", "out_file_path": "",
        "in_file_path": "abfss://raw@lake.dfs.core.windows.net/customers/"}
    assert task["new_cluster"]["node_type_id"] == "Standard_DS3_v2" and "existing_cluster_id" not in task
    assert task["new_cluster"]["spark_conf"] == {  # the catalogue's secret reference, untouched
        "fs.azure.account.key.lake.dfs.core.windows.net": "{{secrets/qa-lake/account-key}}"}
    assert submitted["timeout_seconds"] == 600
    row = lakehouse.rows["Score customers"]
    assert (row["Status"], row["SourceRunID"], row["ClusterID"]) == ("DONE", str(run.run_id), run.cluster_id)
    assert run.cluster_id.startswith("0000-fake-")  # a job cluster's id, known only once the run is RUNNING
    assert monitor.get_active_watermark("QA", "LAKEHOUSE", "LastScoreId") == 4242
    metadata = materialization(instance, lakehouse.run_id, "lakehouse", "score_customers")
    assert metadata["databricks_run_page_url"].url.endswith(f"/run/{run.run_id}")
    assert (metadata["rows_read"].value, metadata["rows_written"].value) == (900, 42)
    assert metadata["new_watermark"].value == 4242  # the DELTA_ID move, old and new, on the asset
    assert metadata["previous_watermark"].value == parameters["watermark_value"] != "4242"
    assert metadata["databricks_run_seconds"].value >= 0
    assert metadata["databricks_polls"].value == run.gets >= 5  # pending, three times running, terminated


def test_a_failed_job_try_is_retried_by_the_retry_policy_and_every_try_is_in_the_monitor(lakehouse, api, instance):
    first, second = api.runs_of(FEATURES_JOB)
    assert {k for b in api.calls("POST", "/api/2.2/jobs/run-now") if b["job_id"] == FEATURES_JOB
            for k in b["job_parameters"]} == {"execution_id", "processing_date"}  # only what the job declares
    assert first.body["idempotency_token"] != second.body["idempotency_token"]
    row = lakehouse.rows["Refresh features"]
    assert (row["Status"], row["SourceRunID"]) == ("DONE", str(second.run_id))
    tries = [(r["event_type"], r.get("status"), r.get("source_run_id")) for r in lakehouse.receipts_of(2)]
    assert tries == [("TASK_START", "NQUE", lakehouse.run_id), ("TASK_SOURCE_RUN", "NQUE", str(first.run_id)),
                     ("TASK_RETRY", "RQUE", str(first.run_id)), ("TASK_START", "RQUE", lakehouse.run_id),
                     ("TASK_SOURCE_RUN", "RQUE", str(second.run_id)), ("TASK_DONE", "DONE", str(second.run_id))]
    retry = lakehouse.receipts_of(2)[2]
    assert retry["error"]["code"] == "FAILED"
    assert retry["error"]["message"].startswith("try 1 of 3 failed, retrying in 1 s: TaskFailed: Databricks run")
    assert "ConnectionError: feature store unreachable" in retry["error"]["message"]
    retried = instance.all_logs(lakehouse.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retried] == ["qa__lakehouse__refresh_features"]


def test_a_failed_notebook_run_is_a_task_failure_carrying_the_state_message_and_error(lakehouse, api):
    (run,) = api.runs_of(BROKEN)
    row = lakehouse.rows["Broken notebook"]
    assert (row["Status"], row["LogCode"], row["ClusterID"]) == ("FAIL", "FAILED", "0101-shared-cluster")
    assert "Workload failed, see run output for details" in row["LogMessage"]
    assert "ZeroDivisionError: division by zero" in row["LogMessage"]
    assert {"run_id": str(run.task_run_id)} in api.calls("GET", "/api/2.2/jobs/runs/get-output")
    assert lakehouse.receipts_of(3)[-1]["error"]["code"] == "FAILED"


def test_a_notebook_past_its_timeout_is_stopped_by_databricks_as_timedout(lakehouse, api):
    (run,) = api.runs_of(SLOW)
    assert run.body["timeout_seconds"] == 3  # timeout_minutes: 0.05
    assert not {"existing_cluster_id", "new_cluster"} & set(run.body["tasks"][0])  # serverless
    row = lakehouse.rows["Slow notebook"]
    assert (row["Status"], row["LogCode"], row["ClusterID"]) == ("FAIL", "TIMEDOUT", None)
    assert "Run timed out after 3 seconds." in row["LogMessage"]
    assert {"run_id": run.run_id} not in api.calls("POST", "/api/2.2/jobs/runs/cancel")


def test_a_job_past_its_timeout_is_canceled_and_fails_as_timedout(lakehouse, api):
    (run,) = api.runs_of(OVERDUE_JOB)
    assert {"run_id": run.run_id} in api.calls("POST", "/api/2.2/jobs/runs/cancel")
    assert run.state["result_state"] == "CANCELED"
    row = lakehouse.rows["Overdue job"]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "TIMEDOUT")
    assert f"Databricks run {run.run_id} did not end within 3 s" in row["LogMessage"]


def test_a_job_id_databricks_does_not_know_fails_naming_it(lakehouse, api):
    row = lakehouse.rows["Missing job"]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "INVALID_PARAMETER_VALUE")
    assert "Databricks job 599 cannot be read: Job 599 does not exist." in row["LogMessage"]
    assert not api.runs_of(599)


def test_no_credential_reaches_dagster_logs_metadata_or_the_monitor(lakehouse, instance, monitor):
    events = instance.all_logs(lakehouse.run_id)
    assert len(events) > 50
    assert not [e for e in events if TOKEN in repr(e)]
    steps = monitor.spark.table(monitor.table_name("v_liveSteps"))
    assert TOKEN not in repr(steps.where(steps["ExecutionID"] == lakehouse.run_id).collect())
    assert TOKEN not in json.dumps(lakehouse.receipts)


@pytest.mark.parametrize(("interrupt", "day"), [(True, "2026-06-02"), (False, "2026-06-03")],
                         ids=["interrupted", "interrupt-lost"])
def test_terminating_the_dagster_run_cancels_the_databricks_run(api, instance, monitor, lakehouse, interrupt, day):
    api.script(SCORE, Script(hang=True))
    def this_days() -> list:  # not another case's run
        return [r for r in api.runs_of(SCORE)
                if r.body["tasks"][0]["notebook_task"]["base_parameters"]["processing_date"] == day]

    started = terminate_while_running(
        instance, "lakehouse_job", ["qa", "lakehouse", "score_customers"], day,
        lambda: any(r.state["life_cycle_state"] == "RUNNING" for r in this_days()), interrupt=interrupt)
    (run,) = this_days()
    assert {"run_id": run.run_id} in api.calls("POST", "/api/2.2/jobs/runs/cancel")
    assert run.state["result_state"] == "CANCELED"
    assert instance.get_run_by_id(started.run_id).status is DagsterRunStatus.CANCELED
    assert rows(monitor, "LAKEHOUSE", started.run_id)["Score customers"]["Status"] == "NQUE"  # no hook
    evaluate_reconciliation(instance, started.run_id, DagsterEventType.RUN_CANCELED)
    ended = rows(monitor, "LAKEHOUSE", started.run_id)
    row = ended.pop("Score customers")
    # the interrupt is the cancel, recorded as one: not an unknown error to retry, no reopened run
    assert (row["Status"], row["SourceRunID"], row["LogCode"]) == ("FAIL", str(run.run_id), "RUN_CANCELED")
    never_started = [r for name, r in ended.items() if name != "Initiation"]
    assert len(never_started) == 5 and {(r["Status"], r["StartTime"]) for r in never_started} == {("NQUE", None)}
    logs = monitor.spark.table(monitor.table_name("v_liveLogs"))
    receipts = [json.loads(r["Message"]) for r in logs.where(logs["ExecutionID"] == started.run_id).collect()]
    assert [r.get("error_class") for r in receipts if r["event_type"] == "TASK_FAIL"] == ["CANCELED"]
    assert "RUN_REOPEN" not in {r["event_type"] for r in receipts}
    with_start = {r["TaskID"] for r in rows(monitor, "LAKEHOUSE", started.run_id).values() if r["StartTime"]}
    assert with_start == {0, 1} == {r["task_id"] for r in receipts if r["event_type"] == "TASK_START"}


def test_oauth_client_credentials_from_environment_variables_authenticate(monkeypatch):
    with FakeDatabricks(token="oauth-" + uuid.uuid4().hex, oauth_client=("etl-sp", "sp-secret")) as oauth_api:
        oauth_api.job(7, parameters=("execution_id",))
        monkeypatch.setenv("DATABRICKS_HOST", oauth_api.host)
        monkeypatch.setenv("DATABRICKS_CLIENT_ID", "etl-sp")
        monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "sp-secret")
        with build_resources({"databricks": databricks_from_env()}) as resources:
            job = resources.databricks.workspace_client.jobs.get(7)
    assert [p.name for p in job.settings.parameters] == ["execution_id"]
    assert oauth_api.calls("GET", "/api/2.2/jobs/get") == [{"job_id": "7"}]  # reached only with the issued token
