"""One scrubber at the monitor's edge: credentials in an error's text never reach LogMessage, a receipt,
Dagster's event log or the CLI's output; the monitor's own values pass unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from dagster import DagsterEventType, DagsterInstance, serialize_value

from etl_monitor_dagster import ETLMonitorFramework, ETLMonitorResource
from etl_monitor_dagster.__main__ import _report
from etl_monitor_dagster.core.catalogue import ProcessSpec
from etl_monitor_dagster.core.enums import EventType, LogCode
from etl_monitor_dagster.core.receipts import receipt
from etl_monitor_dagster.core.runs import task_error
from etl_monitor_dagster.core.scrub import scrub
from etl_monitor_dagster.dagster.definitions import build_definitions
from etl_monitor_dagster.dagster.translator import DagsterETLMonitorTranslator
from etl_monitor_dagster.tasks import TaskFailed, TaskResult, TaskRun
from tests.conftest import DAY, Process
from tests.dagster_location import REMOTE_ENV, SCHEMA

# Made-up credentials, each in the shape a driver or a client echoes it.
TOKEN = "dapi" + "0123456789abcdef" * 2
PASSWORD_URL = "postgresql://etl:Hunter2Secret@db.example.com:5432/sales"
SAS_URL = "https://acct.blob.core.windows.net/in/orders.csv?sv=2022-11-02&sp=r&sig=Zm9vYmFyYmF6cXV4MTIz%3D"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkVUTCJ9"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
ACCOUNT_KEY = "Zm9vYmFy" * 10 + "cXV4+/=="  # 88 characters of base64, as Azure shows a storage account key
LEAKED = ("0123456789abcdef0123456789abcdef", "Hunter2Secret", "Zm9vYmFyYmF6cXV4MTIz")  # what must not appear

LEAK = f"could not read {SAS_URL} with token {TOKEN} from {PASSWORD_URL}"
SCRUBBED = ("could not read https://acct.blob.core.windows.net/in/orders.csv?sv=2022-11-02&sp=r&sig=*** "
            "with token *** from postgresql://***@db.example.com:5432/sales")


def assert_clean(text: str) -> None:
    for secret in LEAKED:
        assert secret not in text


# ------------------------------------------------------------------------------------- the function


@pytest.mark.parametrize(("text", "scrubbed"), [
    (f"token {TOKEN} refused", "token *** refused"),
    (PASSWORD_URL, "postgresql://***@db.example.com:5432/sales"),
    (SAS_URL, "https://acct.blob.core.windows.net/in/orders.csv?sv=2022-11-02&sp=r&sig=***"),
    ("Server=tcp:db.database.windows.net;User ID=etl;Password=S3cret!;Encrypt=True",
     "Server=tcp:db.database.windows.net;User ID=etl;Password=***;Encrypt=True"),
    (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=abc",
     "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=*** sr=x&sig=***"),
    ("jdbc:sqlserver://db:1433;user=etl;pwd=p4ss", "jdbc:sqlserver://db:1433;user=etl;pwd=***"),
    ("POST /token client_id=app&client_secret=Abc~123.x failed", "POST /token client_id=app&client_secret=*** failed"),
    (f"id token {JWT} expired", "id token *** expired"),
    ("401: Authorization: Bearer abc.DEF-123 rejected", "401: Authorization: *** rejected"),
    ("headers {'Authorization': 'Basic dXNlcjpwYXNz'}", "headers {'Authorization: ***'}"),
    ('{"password": "p w", "user": "etl"}', '{"password": ***, "user": "etl"}'),
    (f"key {ACCOUNT_KEY} is invalid", "key *** is invalid"),
    (f"key {'QUJD' * 21}AB== is invalid", "key *** is invalid"),  # no '+' or '/' in it: no label either
])
def test_scrub_masks_each_credential_shape_and_keeps_its_label(text, scrubbed):
    assert scrub(text) == scrubbed
    assert scrub(scrubbed) == scrubbed  # a second pass changes nothing


def test_scrub_leaves_ordinary_errors_and_secret_references_alone():
    for text in ("KeyError: 'customer'", "[TABLE_OR_VIEW_NOT_FOUND] The table `etl`.`orders` cannot be found",
                 "task 1.2 Orders: rows_read=7, new_watermark=1234", "password={{secrets/etl/db-password}}",
                 "secret_scope=etl token_type=bearer"):
        assert scrub(text) == text


def test_scrub_replaces_given_secrets_and_a_private_key_block_whole():
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----"
    assert scrub(f"key {pem} rejected for hook-value-42", secrets=["hook-value-42"]) == "key *** rejected for ***"


def test_a_receipt_scrubs_its_error_reason_and_remark_and_keeps_the_monitors_own_values():
    step = {"TaskName": "Orders dapi-like name", "WorkFlowID": 1, "TaskID": 2, "SourceRunID": "run-1"}
    row = receipt(EventType.TASK_FAIL, project_code="P", process_load="L", execution_id="e-1", step=step,
                  error={"message": LEAK, "code": "ConnectionError"}, reason=f"because {PASSWORD_URL}",
                  remark=f"re-run with {TOKEN}", status="FAIL")
    event = json.loads(row["Message"])
    assert event["error"] == {"message": SCRUBBED, "code": "ConnectionError"}
    assert event["reason"] == "because postgresql://***@db.example.com:5432/sales"
    assert event["remark"] == "re-run with ***"
    assert (event["task_name"], event["execution_id"], event["status"]) == ("Orders dapi-like name", "e-1", "FAIL")


def test_a_task_error_is_scrubbed_and_still_classified_and_coded_from_the_exception():
    error = task_error(TaskFailed(LEAK, "SOURCE_DOWN"))
    assert (error.message, error.code) == (f"TaskFailed: {SCRUBBED}", "SOURCE_DOWN")
    assert task_error(ConnectionError(LEAK)).error_class.value == "SOURCE_UNAVAILABLE"


# ------------------------------------------------------------------------------------------ the CLI


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "etl_monitor_dagster", *arguments], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_the_cli_prints_a_users_error_scrubbed(tmp_path):
    done = _cli("export-catalogue", str(tmp_path), "--factory", PASSWORD_URL)
    assert done.returncode == 2
    assert "--factory='postgresql://***@db.example.com:5432/sales'" in done.stderr
    assert_clean(done.stdout + done.stderr)


def test_the_cli_prints_any_other_error_as_a_scrubbed_traceback(capsys):
    try:
        raise RuntimeError(LEAK)  # say, a driver's error the CLI does not know
    except RuntimeError as error:
        code = _report(error)
    printed = capsys.readouterr().err
    assert code == 1
    assert printed.startswith("Traceback (most recent call last):") and f"RuntimeError: {SCRUBBED}" in printed
    assert_clean(printed)


# ------------------------------------------------------------------------------- the monitor's API


def test_fail_retry_and_a_failing_task_body_store_scrubbed_log_messages_and_receipts(monitor, make_process):
    p = make_process(tasks=[{"task_id": 1}, {"task_id": 2}, {"task_id": 3}])
    execution = p.new_run()
    for task_id in (1, 2):
        monitor.start_task(execution, p.project, p.load, task_id, 2, 1, DAY)
    monitor.fail_task(execution, p.project, p.load, 1, 2, 1, DAY, log_message=LEAK, log_code="SOURCE_DOWN")
    monitor.retry_task(execution, p.project, p.load, 2, 2, 1, DAY, log_message=LEAK)
    with pytest.raises(ConnectionError), monitor.task(execution, p.project, p.load, 3, 2, 1, DAY):
        raise ConnectionError(LEAK)
    monitor.health.end_run(execution, LogCode.RUN_FAILED, f"run failed: {LEAK}", datetime.now(UTC))

    steps = p.steps(execution)
    assert (steps[(1, 1)]["Status"], steps[(1, 1)]["LogMessage"]) == ("FAIL", SCRUBBED)
    assert (steps[(1, 2)]["Status"], steps[(1, 2)]["LogMessage"]) == ("RQUE", SCRUBBED)
    assert steps[(0, 0)]["LogMessage"] == f"the run ended: run failed: {SCRUBBED}"
    events = [json.loads(r["Message"]) for r in p.receipts(execution)]
    errors = {(e["event_type"], e.get("task_id")): e["error"]["message"] for e in events if "error" in e}
    assert errors == {("TASK_FAIL", 1): SCRUBBED, ("TASK_RETRY", 2): SCRUBBED,
                      ("TASK_FAIL", 3): f"ConnectionError: {SCRUBBED}",
                      ("RUN_END", 0): f"the run ended: run failed: {SCRUBBED}"}
    assert_clean(json.dumps(events))


def test_a_failing_task_body_stores_a_scrubbed_log_message(monitor, make_process):
    p = make_process(tasks=[{"task_id": 1}])
    execution = p.new_run()
    with pytest.raises(ConnectionError), monitor.task(execution, p.project, p.load, 1, 2, 1, DAY):
        raise ConnectionError(LEAK)
    assert p.steps(execution)[(1, 1)]["LogMessage"] == f"ConnectionError: {SCRUBBED}"


# ------------------------------------------------------------------------------------- a Dagster run


def leaky_source(run: TaskRun) -> TaskResult:
    """A source whose driver echoes its connection: retryable, and failing on every try."""
    raise ConnectionError(LEAK)


def leaky_rows(run: TaskRun) -> TaskResult:
    raise ValueError(LEAK)


def test_a_dagster_run_stores_and_shows_only_scrubbed_failures(instance: DagsterInstance,
                                                                monitor: ETLMonitorFramework):
    spec = ProcessSpec.model_validate({
        "project": f"SCR{uuid.uuid4().hex[:8]}", "process": "LEAKY_LOAD",
        "tasks": [
            {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
            {"id": 1, "workflow": 1, "stage": 2, "name": "Leaky source", "source_type": "PYTHON",
             "source": "tests.test_scrub:leaky_source", "mandatory": True, "maximum_retries": 1},
            {"id": 2, "workflow": 1, "stage": 2, "name": "Leaky rows", "source_type": "PYTHON",
             "source": "tests.test_scrub:leaky_rows"},
        ]})
    resource = ETLMonitorResource(engine="connect", spark_remote=os.environ[REMOTE_ENV], schema_name=SCHEMA,
                                  updated_by="pytest")
    job = build_definitions([spec], monitor=resource).resolve_job_def(
        DagsterETLMonitorTranslator().get_job_name(spec))
    result = job.execute_in_process(instance=instance, partition_key=DAY, raise_on_error=False)
    assert not result.success
    records = instance.all_logs(result.run_id)

    # The mandatory task: a retried try, then its last; each failure's message is the scrubbed one.
    failures = [r.dagster_event for r in records if r.dagster_event and r.dagster_event.event_type in (
        DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_FAILURE)]
    assert [e.event_type for e in failures] == [DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_FAILURE]
    retry_error, failure_data = failures[0].event_specific_data.error, failures[1].step_failure_data
    assert f"ConnectionError: {SCRUBBED}" in retry_error.to_string()
    assert f"ConnectionError: {SCRUBBED}" in failure_data.error.to_string()
    assert failure_data.user_failure_data.metadata["error"].value == f"ConnectionError: {SCRUBBED}"

    # The optional task: its FAIL outcome rides in the materialization's metadata and its check's.
    (materialized,) = [r.dagster_event.step_materialization_data.materialization for r in records
                       if r.dagster_event and r.dagster_event.event_type is DagsterEventType.ASSET_MATERIALIZATION
                       and r.dagster_event.asset_key.path[-1] == "leaky_rows"]
    assert materialized.metadata["error"].value == f"ValueError: {SCRUBBED}"
    (check,) = [r.dagster_event.event_specific_data for r in records if r.dagster_event
                and r.dagster_event.event_type is DagsterEventType.ASSET_CHECK_EVALUATION
                and r.dagster_event.event_specific_data.check_name == "succeeded"]
    assert not check.passed and check.metadata["error"].value == materialized.metadata["error"].value

    # Nothing Dagster keeps of the run holds a credential, and neither does the monitor.
    assert_clean(serialize_value(records))
    rows = {r["TaskName"]: r for r in monitor.status_rows(spec.project, spec.process, execution_id=result.run_id)}
    assert (rows["Leaky source"]["Status"], rows["Leaky source"]["LogMessage"]) == (
        "FAIL", f"ConnectionError: {SCRUBBED}")
    assert (rows["Leaky source"]["LogCode"], rows["Leaky rows"]["Status"]) == ("ConnectionError", "FAIL")
    events = [json.loads(r["Message"]) for r in Process(monitor, spec.project, spec.process).receipts(result.run_id)]
    assert {(e["event_type"], e["task_id"], e["error"]["message"]) for e in events if "error" in e} >= {
        ("TASK_RETRY", 1, f"try 1 of 2 failed, retrying in 0 s: ConnectionError: {SCRUBBED}"),
        ("TASK_FAIL", 1, f"ConnectionError: {SCRUBBED}"), ("TASK_FAIL", 2, f"ValueError: {SCRUBBED}")}
    assert_clean(json.dumps(events))
