"""ADF_PIPELINE and DATAFLOW tasks run by a real Dagster instance through azure-identity and
azure-mgmt-datafactory, against the fake Data Factory API of tests/fake_adf.py over TLS on loopback.

One partition of QA/FACTORY runs once per module; each task of its stage 2 meets one outcome (see
tests/catalogue/factory.yaml), and each test checks one of them in Dagster, the monitor rows and the
receipts.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from etl_monitor_dagster import ETLMonitorFramework, SourceType, tasks
from etl_monitor_dagster.core.catalogue import CatalogueError, CatalogueErrors, load_catalogue
from etl_monitor_dagster.core.notebook import end_task_from_widgets, start_task_from_widgets
from etl_monitor_dagster.dagster.definitions import build_definitions
from tests.dagster_location import (
    ADF_URL_ENV,
    SCHEMA,
    RecordedRun,
    evaluate_reconciliation,
    factory_job,
    launch_and_record,
    materialization,
    rows,
    terminate_while_running,
)
from tests.fake_adf import FakeDataFactory, Script
from tests.test_notebooks import Dbutils, NotebookExit

DAY = "2026-07-01"
CATALOGUE = Path(__file__).parent / "catalogue"
CREDENTIALS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "REQUESTS_CA_BUNDLE", ADF_URL_ENV)


@pytest.fixture(scope="module")
def adf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeDataFactory]:
    """The fake factory, its service principal in the environment (as a deployment sets it)."""
    with FakeDataFactory(tmp_path_factory.mktemp("adf")) as fake:
        os.environ.update({"AZURE_TENANT_ID": fake.tenant, "AZURE_CLIENT_ID": fake.client_id,
                           "AZURE_CLIENT_SECRET": fake.client_secret, "REQUESTS_CA_BUNDLE": str(fake.ca_bundle),
                           ADF_URL_ENV: fake.url})
        yield fake
    for name in CREDENTIALS:
        os.environ.pop(name, None)


def _write_back(spark):
    """What pl_writes_back's own activities do: call the utility notebooks for the task Dagster started."""
    def during(parameters: dict) -> None:
        widgets = {"schema": SCHEMA, "project_code": "QA", "process_load": "FACTORY", "task_id": "6",
                   "sequence_id": "2", "workflow_id": "1", **parameters}
        for call in (start_task_from_widgets, end_task_from_widgets):
            with contextlib.suppress(NotebookExit):  # the notebooks end with dbutils.notebook.exit
                call(spark, Dbutils(widgets))

    return during


@pytest.fixture(scope="module")
def factory(adf: FakeDataFactory, instance: DagsterInstance, monitor: ETLMonitorFramework) -> RecordedRun:
    adf.pipeline("pl_hr_ingest_employees_uk", ("execution_id", "processing_date", "watermark_value",
                                               "in_file_path"), Script(polls=3))
    adf.pipeline("pl_run_dataflow", ("dataflow_name", "execution_id"), Script(dataflow_metrics={
        "sinkBalances": {"rowsWritten": 120, "sources": {"srcLedger": {"rowsRead": 300},
                                                         "srcAccounts": {"rowsRead": 45}}}}))
    adf.pipeline("pl_refresh_cube", (), Script(status="Failed", message="Operation on target Refresh failed",
                                               activity_error={"errorCode": "2011", "message": "cube locked",
                                                               "failureType": "SystemError"}), Script())
    adf.pipeline("pl_broken_copy", ("execution_id",), Script(
        status="Failed", message="Operation on target Copy failed",
        activity_error={"errorCode": "2200", "message": "ErrorCode=UserErrorFileNotFound,'employees.csv'",
                        "failureType": "UserError"}))
    adf.pipeline("pl_overdue", (), Script(hang=True))
    adf.pipeline("pl_writes_back", ("execution_id", "project_code", "process_load", "task_id", "workflow_id",
                                    "processing_date"), Script(polls=2, during=_write_back(monitor.spark)))
    return launch_and_record(factory_job, instance, monitor, "FACTORY", DAY)


def test_a_pipeline_run_gets_only_its_declared_parameters_and_is_polled_to_success(factory, adf, instance):
    assert factory.success
    (run,) = adf.runs_of("pl_hr_ingest_employees_uk")
    assert run.parameters == {"execution_id": factory.run_id, "processing_date": DAY,
                              "watermark_value": "1900-01-01 00:00:00.000",  # a DELTA_DATE never moved
                              "in_file_path": str((CATALOGUE / "raw/hr/employees/").resolve())}
    assert run.factory == "adf-qa"
    row = factory.rows["Ingest employees"]
    assert (row["Status"], row["SourceRunID"], row["SourceType"]) == ("DONE", run.run_id, "ADF_PIPELINE")
    assert [r["event_type"] for r in factory.receipts_of(1)] == ["TASK_START", "TASK_SOURCE_RUN", "TASK_DONE",
                                                                  "WATERMARK_MOVE"]  # DONE moves its DELTA_DATE
    assert factory.receipts_of(1)[1]["source_run_id"] == run.run_id
    metadata = materialization(instance, factory.run_id, "factory", "ingest_employees")
    assert metadata["adf_monitor_url"].url.startswith(f"https://adf.azure.com/en/monitoring/pipelineruns/{run.run_id}")
    assert "/resourceGroups/rg-data/" in metadata["adf_monitor_url"].url
    assert metadata["adf_polls"].value == run.gets >= 5  # queued, three times in progress, succeeded
    assert metadata["adf_run_seconds"].value >= 0


def test_a_dataflow_runs_through_its_wrapper_pipeline_and_reports_its_rows(factory, adf, instance):
    (run,) = adf.runs_of("pl_run_dataflow")
    assert run.parameters == {"dataflow_name": "df_finance_account_balances", "execution_id": factory.run_id}
    assert run.factory == "adf-fin"  # the task's own factory wins over the process's
    assert factory.rows["Account balances"]["Status"] == "DONE"
    metadata = materialization(instance, factory.run_id, "factory", "account_balances")
    assert (metadata["rows_read"].value, metadata["rows_written"].value) == (345, 120)


def test_a_transient_failure_is_retried_and_every_try_is_in_the_monitor(factory, adf):
    first, second = adf.runs_of("pl_refresh_cube")
    row = factory.rows["Refresh cube"]
    assert (row["Status"], row["SourceRunID"]) == ("DONE", second.run_id)
    tries = [(r["event_type"], r.get("source_run_id")) for r in factory.receipts_of(3)]
    assert tries == [("TASK_START", factory.run_id), ("TASK_SOURCE_RUN", first.run_id),
                     ("TASK_RETRY", first.run_id), ("TASK_START", factory.run_id),
                     ("TASK_SOURCE_RUN", second.run_id), ("TASK_DONE", second.run_id)]
    retry = factory.receipts_of(3)[2]
    assert retry["error"]["code"] == "2011"
    assert "Operation on target Refresh failed" in retry["error"]["message"]
    assert "cube locked" in retry["error"]["message"]


def test_a_failed_pipeline_fails_the_task_with_adfs_error_code_and_the_activity_error(factory, adf, instance):
    (run,) = adf.runs_of("pl_broken_copy")
    row = factory.rows["Broken copy"]
    assert (row["Status"], row["LogCode"], row["SourceRunID"]) == ("FAIL", "2200", run.run_id)
    assert f"ADF pipeline run {run.run_id} Failed: Operation on target Copy failed" in row["LogMessage"]
    assert "Main: 2200 ErrorCode=UserErrorFileNotFound,'employees.csv'" in row["LogMessage"]
    assert not [r for r in adf.requests if r[1].endswith(f"{run.run_id}/cancel")]  # it ended by itself


def test_a_pipeline_past_its_timeout_is_cancelled_and_fails_as_timedout(factory, adf):
    (run,) = adf.runs_of("pl_overdue")
    assert run.cancelled and run.status == "Cancelled"
    row = factory.rows["Overdue pipeline"]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "TIMEDOUT")
    assert f"ADF pipeline run {run.run_id} did not end within 3 s" in row["LogMessage"]


def test_a_pipeline_that_writes_back_itself_ends_as_one_correct_row(factory, adf, monitor):
    (run,) = adf.runs_of("pl_writes_back")
    assert run.gets >= 3  # the notebooks were called while the run was in progress
    row = factory.rows["Self reporting"]
    assert (row["Status"], row["Attempts"], row["SourceRunID"]) == ("DONE", 0, run.run_id)
    steps = monitor.status_rows("QA", "FACTORY", execution_id=factory.run_id, task_id=6)
    assert len(steps) == 1
    events = [r["event_type"] for r in factory.receipts_of(6)]
    assert events.count("TASK_START") == 1 and events.count("TASK_DONE") == 1


def test_no_credential_reaches_dagster_logs_metadata_or_the_monitor(factory, adf, instance, monitor):
    events = instance.all_logs(factory.run_id)
    assert len(events) > 50
    assert not [e for e in events if adf.client_secret in repr(e) or any(t in repr(e) for t in adf.tokens)]
    steps = monitor.spark.table(monitor.table_name("v_liveSteps"))
    assert adf.client_secret not in repr(steps.where(steps["ExecutionID"] == factory.run_id).collect())
    assert adf.client_secret not in json.dumps(factory.receipts)
    assert adf.tokens  # the SDK did authenticate against the token endpoint


@pytest.mark.parametrize(("interrupt", "day"), [(True, "2026-07-02"), (False, "2026-07-03")],
                         ids=["interrupted", "interrupt-lost"])
def test_terminating_the_dagster_run_cancels_the_pipeline_run(adf, instance, monitor, factory, interrupt, day):
    adf.pipeline("pl_hr_ingest_employees_uk", ("execution_id", "processing_date"), Script(hang=True))
    def this_days() -> list:  # not another case's run
        return [r for r in adf.runs_of("pl_hr_ingest_employees_uk") if r.parameters.get("processing_date") == day]

    started = terminate_while_running(instance, "factory_job", ["qa", "factory", "ingest_employees"], day,
                                      lambda: any(r.status == "InProgress" for r in this_days()), interrupt=interrupt)
    (run,) = this_days()
    assert run.cancelled and run.status == "Cancelled"
    assert instance.get_run_by_id(started.run_id).status is DagsterRunStatus.CANCELED
    evaluate_reconciliation(instance, started.run_id, DagsterEventType.RUN_CANCELED)
    row = rows(monitor, "FACTORY", started.run_id)["Ingest employees"]
    assert (row["Status"], row["SourceRunID"]) == ("FAIL", run.run_id)


# ------------------------------------------------------------------------------ catalogue checks


def _process(tmp_path: Path, **task: object) -> Path:
    document = {"project": "QA", "process": "ADF_CHECK", "tasks": [
        {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
        {"id": 1, "workflow": 1, "stage": 2, "name": "Ingest", "source_type": "ADF_PIPELINE", **task}]}
    (tmp_path / "adf_check.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return tmp_path


FACTORY = {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg", "name": "adf-x"}


@pytest.mark.parametrize(("task", "problem"), [
    ({"source": "pl_ingest"}, "ADF_PIPELINE needs factory (subscription_id, resource_group, name)"),
    ({"source": "pl/ingest", "factory": FACTORY}, "ADF_PIPELINE needs source: the pipeline name"),
    ({"factory": FACTORY}, "ADF_PIPELINE needs source: the pipeline name"),
    ({"source": "pl_ingest", "factory": FACTORY, "compute": {"serverless": True}},
     "runs on its factory's integration runtime: remove compute"),
    ({"source": "pl_ingest", "factory": FACTORY, "dataflow": "df_x"}, "dataflow names a data flow of a DATAFLOW task"),
    ({"source": "pl_ingest", "factory": {**FACTORY, "name": "a"}}, "factory"),
    ({"source": "pl_ingest", "factory": {**FACTORY, "client_secret": "s3cret"}}, "factory.client_secret"),
    ({"source_type": "PYTHON", "source": "tests.tasks:succeed", "factory": FACTORY},
     "factory and dataflow apply to ADF_PIPELINE and DATAFLOW tasks, not PYTHON"),
])
def test_the_catalogue_refuses_an_adf_task_it_cannot_run(tmp_path, task, problem):
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(_process(tmp_path, **task))
    assert "adf_check.yaml" in str(refused.value) and problem in str(refused.value)


def test_a_source_type_without_a_runner_is_refused_when_the_code_location_loads(tmp_path, monkeypatch):
    specs = load_catalogue(_process(tmp_path, source="pl_ingest", factory=FACTORY))
    monkeypatch.delitem(tasks._RUNNERS, SourceType.ADF_PIPELINE)
    with pytest.raises(CatalogueErrors) as refused:
        build_definitions(specs)
    (problem,) = refused.value.problems
    assert "adf_check.yaml" in str(problem) and "tasks[1] (Ingest)" in str(problem)
    assert "no runner for SourceType ADF_PIPELINE" in str(problem)


def test_the_adf_example_loads_with_the_adf_resource_and_no_credentials_in_the_environment(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    defs = build_definitions(Path(__file__).resolve().parents[1] / "examples" / "adf")
    assert sorted(defs.resources) == ["adf", "monitor"]
    specs = {s.key.path[-1]: s for a in defs.assets for s in a.specs}
    assert set(specs["account_balances"].kinds) == {"azure", "adf", "dataflow"}
    assert specs["ingest_employees_uk"].owners == ["data-platform@example.com"]
