"""Alerts with hygiene: one message per failed run and channel, only final failures, only on the turn to
failing, one "recovered", a suppression window, never doubled, routed to the owner, nothing secret.

The channels are the real client libraries (dagster-msteams, dagster-slack's WebClient, smtplib) talking
to loopback servers started here; the runs are real Dagster runs on a real instance whose monitor rows
are written on the test run's Spark + Delta server.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterResourceFunctionError,
    DagsterRun,
    DagsterRunStatus,
    EnvVar,
    build_resources,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.execution.plan.objects import StepFailureData
from dagster._utils.error import SerializableErrorInfo
from pydantic import ValidationError as ConfigError

from etl_monitor_dagster import ETLMonitorResource
from etl_monitor_dagster.core.alerts import Alert, AlertKind, AlertPolicy, AlertState, alert_event_id, decide, scrub
from etl_monitor_dagster.core.catalogue import ProcessSpec, load_catalogue
from etl_monitor_dagster.core.errors import EngineError
from etl_monitor_dagster.dagster.alerts import ENV, ETLMonitorAlerts, alerts_from_env, run_ends, why_failed
from etl_monitor_dagster.dagster.definitions import build_definitions
from tests.conftest import free_port
from tests.dagster_location import CATALOGUE, REMOTE_ENV, SCHEMA

SLACK_TOKEN = "xoxb-1111-2222-TOKENSECRETVALUE"
SMTP_PASSWORD = "smtp-pw-SECRETVALUE"
WEBHOOK_SECRET = "webhookSECRETPATH0123"
SECRET_ENV = {"ETL_TEST_ALERTS_SLACK_TOKEN": SLACK_TOKEN, "ETL_TEST_ALERTS_SMTP_PASSWORD": SMTP_PASSWORD}


# ------------------------------------------------------------------------------------- loopback fakes

class _Recorder(BaseHTTPRequestHandler):
    """Records every POST; answers Slack's Web API as Slack does and a webhook with 200."""

    def do_POST(self) -> None:  # the http.server hook's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.posts.append({"path": self.path, "headers": dict(self.headers), "body": body})  # type: ignore[attr-defined]
        if self.path.startswith("/api/"):
            answer = json.dumps({"ok": True, "channel": "C0ALERTS", "ts": "1712650000.000100"}).encode()
            content_type = "application/json; charset=utf-8"
        else:
            answer, content_type = b"1", "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


class _Mailbox:
    """aiosmtpd handler: keeps every message delivered."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@dataclass
class Channels:
    """The loopback Teams webhook + Slack API server and SMTP server, and what they received."""

    http: ThreadingHTTPServer
    mailbox: _Mailbox
    smtp_port: int
    logins: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def teams(self) -> list[dict]:
        return [json.loads(p["body"]) for p in self.http.posts if p["path"].startswith("/teams/")]  # type: ignore[attr-defined]

    def slack(self) -> list[dict]:
        return [json.loads(p["body"]) for p in self.http.posts if p["path"] == "/api/chat.postMessage"]  # type: ignore[attr-defined]

    def slack_calls(self) -> list[dict]:
        return [p for p in self.http.posts if p["path"].startswith("/api/")]  # type: ignore[attr-defined]

    def emails(self) -> list[Message]:
        return [message_from_bytes(content) for _, content in self.mailbox.messages]

    def texts(self) -> list[str]:
        """Every message as it went out: the Teams card texts, the Slack text, the e-mail (headers and body)."""
        teams = ["\n".join(b["text"] for b in card["attachments"][0]["content"]["body"]) for card in self.teams()]
        slack = [m["text"] for m in self.slack()]
        mails = [content.decode() for _, content in self.mailbox.messages]
        return teams + slack + mails

    def counts(self) -> tuple[int, int, int]:
        return len(self.teams()), len(self.slack()), len(self.emails())


@pytest.fixture
def channels(monkeypatch) -> Iterator[Channels]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    http.posts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    mailbox, port = _Mailbox(), free_port()
    found = Channels(http, mailbox, port)

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        found.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD)

    smtp = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                      auth_require_tls=False)
    smtp.start()
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ETL_TEST_ALERTS_TEAMS_URL", f"{found.base}/teams/{WEBHOOK_SECRET}")
    try:
        yield found
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


# -------------------------------------------------------------------------------------- the process

@dataclass
class Alerted:
    """A fresh process with two mandatory tasks, its code location (with alerts) and the daemon's cursor."""

    instance: DagsterInstance
    monitor: Any
    spec: ProcessSpec
    alerts: ETLMonitorAlerts
    cursor: str | None = None
    day: date = date(2026, 3, 1)

    def __post_init__(self) -> None:
        resource = ETLMonitorResource(engine="connect", spark_remote=EnvVar(REMOTE_ENV), schema_name=SCHEMA,
                                      updated_by="pytest")
        self.defs = build_definitions([self.spec], monitor=resource, alerts=self.alerts)
        self.repo = self.defs.get_repository_def()
        self.job = self.repo.get_sensor_def("etl_monitor_alerts")
        self.resources = {"monitor": resource, "alerts": self.alerts}

    @property
    def scope(self) -> tuple[str, str]:
        return self.spec.project, self.spec.process

    def run(self, failures: dict[int, tuple[str, str]] | None = None, *, end: bool = True,
            retrying: dict[int, tuple[str, str]] | None = None) -> str:
        """One run on the next processing date: initiation DONE, tasks 1 and 2 DONE, FAIL (``failures``:
        task id -> (LogMessage, LogCode)) or a failed try to be retried (``retrying``: RQUE); with ``end``,
        the run ends in Dagster and its failure reconciliation runs, as the daemon would."""
        self.day += timedelta(days=1)
        run = DagsterRun(job_name=self.spec.process.lower(), run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
        self.instance.add_run(run)
        m, (project, load) = self.monitor, self.scope
        m.generate_execution_steps(run.run_id, project, load, self.day)
        m.start_task(run.run_id, project, load, 0, 0, 0, self.day, source_type="NONE")
        m.end_task(run.run_id, project, load, 0, 0, 0, self.day)
        for task in (1, 2):
            m.start_task(run.run_id, project, load, task, 2, 1, self.day, source_type="PYTHON")
            if task in (retrying or {}):
                message, code = (retrying or {})[task]
                m.retry_task(run.run_id, project, load, task, 2, 1, self.day, log_message=message, log_code=code)
            elif task in (failures or {}):
                message, code = (failures or {})[task]
                m.fail_task(run.run_id, project, load, task, 2, 1, self.day, log_message=message, log_code=code)
            else:
                m.end_task(run.run_id, project, load, task, 2, 1, self.day)
        if end:
            self.end(run.run_id, failed=bool(failures))
        return run.run_id

    def end(self, run_id: str, failed: bool) -> None:
        """The run's end in Dagster; a failed run's end is then reconciled into the monitor."""
        run = self.instance.get_run_by_id(run_id)
        if not failed:
            self.instance.report_dagster_event(
                DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run_id)
            return
        self.reconcile(run_id, self.instance.report_run_failed(run, "a task of the run failed"))

    def reconcile(self, run_id: str, event: DagsterEvent) -> None:
        """The failure reconciliation sensor evaluated for the run: the monitor holds the run's end."""
        reconcile = self.repo.get_sensor_def("etl_monitor_reconcile_failure")
        reconcile(build_run_status_sensor_context(
            sensor_name=reconcile.name, dagster_instance=self.instance, dagster_run=self.instance.get_run_by_id(run_id),
            dagster_event=event, resources={"monitor": self.resources["monitor"]}))

    def tick(self, cursor: str | bool | None = True) -> str:
        """One daemon tick of ``etl_monitor_alerts``: from the kept cursor, or from ``cursor`` (None: a sensor
        started afresh); the kept cursor moves only on a tick from it."""
        start = self.cursor if cursor is True else cursor
        context = build_sensor_context(instance=self.instance, cursor=start, resources=self.resources)
        result = self.job.evaluate_tick(context)
        if cursor is True:
            self.cursor = result.cursor
        return result.skip_message or ""

    def receipts(self) -> list[dict]:
        """The process's alert receipts in order: (OperationName, ExecutionID, CorrelationID, event)."""
        logs = self.monitor.spark.table(self.monitor.table_name("v_liveLogs"))
        logs = logs.where((logs["ProjectCode"] == self.spec.project) & (logs["ProcessLoad"] == self.spec.process)
                          & logs["OperationName"].startswith("ALERT_"))
        return [{**r.asDict(), "event": json.loads(r["Message"])} for r in logs.orderBy("LogOrder").collect()]


def _alerts(channels: Channels, **settings: Any) -> ETLMonitorAlerts:
    return ETLMonitorAlerts(
        teams_webhook_url=EnvVar("ETL_TEST_ALERTS_TEAMS_URL"),
        slack_token=EnvVar("ETL_TEST_ALERTS_SLACK_TOKEN"), slack_channel="#etl-alerts",
        slack_base_url=f"{channels.base}/api/",
        smtp_host="127.0.0.1", smtp_port=channels.smtp_port, smtp_from="etl-monitor@example.com",
        smtp_username="etl-monitor", smtp_password=EnvVar("ETL_TEST_ALERTS_SMTP_PASSWORD"), smtp_starttls=False,
        smtp_allow_plaintext_login=True, dagster_base_url="http://dagster.example:3000/", timeout_seconds=10,
        **settings)


@pytest.fixture
def make_alerted(instance: DagsterInstance, monitor, channels: Channels):
    """A fresh alerted process: ``owner`` as its ProcessOwner, alerts configured with ``settings``."""

    def make(owner: str | None = "owner.team@example.com", **settings: Any) -> Alerted:
        name = f"ALERTED_{uuid.uuid4().hex[:8].upper()}"
        spec = ProcessSpec.model_validate({
            "project": "QAALERT", "process": name, "name": "Alerted load", "owner": owner,
            "tasks": [
                {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
                {"id": 1, "workflow": 1, "stage": 2, "name": "Load orders", "source_type": "PYTHON",
                 "source": "tests.tasks:succeed", "mandatory": True, "maximum_retries": 1},
                {"id": 2, "workflow": 1, "stage": 2, "name": "Load refunds", "source_type": "PYTHON",
                 "source": "tests.tasks:succeed", "mandatory": True},
            ]})
        monitor.register_many(**spec.registration())
        return Alerted(instance, monitor, spec, _alerts(channels, **settings))

    return make


FAILING = {1: ("orders source refused the load", "RuntimeError"), 2: ("refunds file missing", "FileNotFoundError")}


# ------------------------------------------------------------------------------------------ the tests

def test_one_alert_per_failed_run_with_two_failed_tasks(make_alerted, channels):
    process = make_alerted()
    run = process.run(FAILING)
    process.tick()

    assert channels.counts() == (1, 1, 1)  # one message per channel, not one per failed task
    for text in channels.texts():
        assert "Load orders" in text and "[RuntimeError]" in text and "orders source refused the load" in text
        assert "Load refunds" in text and "[FileNotFoundError]" in text
        assert run in text and process.spec.process in text and process.day.isoformat() in text
        assert f"http://dagster.example:3000/runs/{run}" in text
    ((operation, execution, correlation, event),) = [
        (r["OperationName"], r["ExecutionID"], r["CorrelationID"], r["event"]) for r in process.receipts()]
    assert (operation, execution, correlation) == ("ALERT_SENT", run, alert_event_id(run, AlertKind.FAILED))
    assert (event["kind"], event["channels"], event["recipient"]) == (
        "FAILED", ["teams", "slack", "email"], "owner.team@example.com")
    assert [t["task_id"] for t in event["failed_tasks"]] == [1, 2]


def test_no_alert_while_a_task_is_retrying_and_one_once_its_last_try_fails(make_alerted, channels):
    process = make_alerted()
    project, load = process.scope
    run = process.run(retrying={1: ("orders source busy", "ConnectionError")}, end=False)
    m, day = process.monitor, process.day
    rows = m.status_rows(project, load, execution_id=run)
    assert {r["TaskID"]: r["Status"] for r in rows} == {0: "DONE", 1: "RQUE", 2: "DONE"}
    decision = decide(rows, AlertState(), None, AlertPolicy(), project_code=project, process_load=load,
                      execution_id=run, ended_at=datetime.now(UTC))
    assert decision.alert is None and "retrying" in decision.reason

    event = process.instance.report_run_failed(process.instance.get_run_by_id(run), "the run ended")
    assert "waiting for the monitor" in process.tick()  # the run ended; its task's retry is not recorded yet
    assert channels.counts() == (0, 0, 0) and process.receipts() == []

    m.start_task(run, project, load, 1, 2, 1, day, source_type="PYTHON")  # the last try ...
    m.fail_task(run, project, load, 1, 2, 1, day, log_message="orders source still busy", log_code="ConnectionError")
    process.reconcile(run, event)
    process.tick()  # ... failed: FAIL is final, so the run is failed
    assert channels.counts() == (1, 1, 1)
    assert all("orders source still busy" in t and "[ConnectionError]" in t for t in channels.texts())


def test_a_process_failing_twice_alerts_once_then_recovers_once_then_alerts_again(make_alerted, channels):
    process = make_alerted(suppress_minutes=0)
    first = process.run(FAILING)
    process.tick()
    second = process.run({1: ("orders source refused the load", "RuntimeError")})
    process.tick()
    assert channels.counts() == (1, 1, 1)  # the second failure of a failing process says nothing new

    healthy = process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)
    recovered = channels.slack()[-1]["text"]
    assert recovered.startswith("ETL process recovered") and healthy in recovered and first in recovered
    process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)  # recovered once, not on every complete run

    again = process.run(FAILING)
    process.tick()
    assert channels.counts() == (3, 3, 3)
    assert again in channels.slack()[-1]["text"]
    assert [(r["OperationName"], r["ExecutionID"]) for r in process.receipts()] == [
        ("ALERT_SENT", first), ("ALERT_RECOVERED", healthy), ("ALERT_SENT", again)]
    assert second not in [r["ExecutionID"] for r in process.receipts()]


def test_the_suppression_window_holds_back_a_second_failure_alert(make_alerted, channels):
    process = make_alerted(suppress_minutes=60)
    first = process.run(FAILING)
    process.tick()
    healthy = process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)  # the failure and the recovery

    held = process.run(FAILING)  # a failure again, minutes after the first alert: the state would send it
    assert "suppressed" in process.tick()
    assert channels.counts() == (2, 2, 2)
    assert "held back already" in process.tick(cursor=None)  # read again from scratch: recorded once
    process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)  # nobody heard of the held-back failure: no "recovered" either
    receipts = process.receipts()
    assert [(r["OperationName"], r["ExecutionID"]) for r in receipts] == [
        ("ALERT_SENT", first), ("ALERT_RECOVERED", healthy), ("ALERT_SUPPRESSED", held)]
    assert (receipts[-1]["event"]["kind"], receipts[-1]["event"]["channels"]) == ("FAILED", [])
    assert [t["task_id"] for t in receipts[-1]["event"]["failed_tasks"]] == [1, 2]  # what it would have said
    assert held not in channels.texts()[-1]


def test_a_sensor_started_afresh_without_cursor_doubles_nothing(make_alerted, channels):
    process = make_alerted(suppress_minutes=0)
    failed = process.run(FAILING)
    process.tick()
    assert channels.counts() == (1, 1, 1)
    process.tick(cursor=None)  # a fresh evaluation with no cursor reads the same run end again
    assert channels.counts() == (1, 1, 1)

    healthy = process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)
    for _ in range(2):  # restarted twice: both run ends are read again; their receipts are there
        process.tick(cursor=None)
    assert channels.counts() == (2, 2, 2)
    assert [r["ExecutionID"] for r in process.receipts()] == [failed, healthy]


def test_a_run_that_failed_before_any_step_row_alerts_with_its_own_failure_and_recovers(make_alerted, channels):
    process = make_alerted(suppress_minutes=0)
    quiet = DagsterRun(job_name=process.spec.process.lower(), run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    process.instance.add_run(quiet)
    process.instance.report_dagster_event(  # a run that succeeded with no step row says nothing
        DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=quiet.job_name), quiet.run_id)
    assert "holds no rows" in process.tick() and channels.counts() == (0, 0, 0)

    run = _failed_before_any_row(process.instance, process.spec.process.lower(), "initiation", EngineError(
        "the embedded Spark engine is unreachable, password=pa55wordSECRET"))
    assert "before any step row" in process.tick()
    assert channels.counts() == (1, 1, 1)
    assert all("pa55wordSECRET" not in text for text in channels.texts())
    mails = [mail.get_payload(decode=True).decode() for mail in channels.emails()]  # the body, not its encoding
    for text in channels.texts()[:2] + mails:
        assert ("The run failed before the monitor recorded any task: step initiation failed: EngineError: "
                "the embedded Spark engine is unreachable") in text
        assert run in text and process.spec.process in text
    ((operation, execution, event),) = [(r["OperationName"], r["ExecutionID"], r["event"]) for r in process.receipts()]
    assert (operation, execution) == ("ALERT_SENT", run) and "engine is unreachable" in event["run_error"]
    process.tick(cursor=None)  # read again from scratch: its receipt is there
    assert channels.counts() == (1, 1, 1)

    healthy = process.run()
    process.tick()
    assert channels.counts() == (2, 2, 2)
    assert healthy in channels.slack()[-1]["text"] and run in channels.slack()[-1]["text"]


def _failed_before_any_row(instance: DagsterInstance, job_name: str, step: str | None,
                           error: Exception | None = None) -> str:
    """A run of ``job_name`` that failed with no monitor row: its step ``step`` failed with ``error`` first,
    or (``step`` None) the run failed on its own."""
    run = DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    instance.add_run(run)
    if step is not None:
        instance.report_dagster_event(DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value, job_name=job_name, step_key=step,
            event_specific_data=StepFailureData(error=SerializableErrorInfo(
                str(error), [], type(error).__name__), user_failure_data=None)), run.run_id)
    instance.report_run_failed(run, "Execution of run failed: the steps of the run failed")
    return run.run_id


def test_why_a_run_failed_is_its_first_failed_steps_error_else_the_runs_own_message():
    with instance_for_test() as instance:
        with_step = _failed_before_any_row(instance, "job", "load_orders", ConnectionError("source refused"))
        without = _failed_before_any_row(instance, "job", None)
        ends = {e.event_log_entry.run_id: e for e in run_ends(instance, ["job"], None, timedelta(hours=1))[0]}
        assert why_failed(instance, ends[with_step]) == "step load_orders failed: ConnectionError: source refused"
        assert why_failed(instance, ends[without]) == "Execution of run failed: the steps of the run failed"


@pytest.mark.parametrize("owner", ["owner.team@example.com", "Data Platform team"])
def test_an_alert_is_routed_to_the_process_owner(make_alerted, channels, owner):
    process = make_alerted(owner=owner, default_recipient="etl-oncall@example.com")
    process.run(FAILING)
    process.tick()

    (mail,) = channels.emails()
    expected = owner if "@" in owner else "etl-oncall@example.com"  # a name has no mailbox: the default gets it
    assert mail["To"] == expected
    assert [rcpt for rcpt, _ in channels.mailbox.messages] == [[expected]]
    assert mail["From"] == "etl-monitor@example.com" and mail["Subject"].startswith("ETL run failed")
    assert all(f"Owner: {owner}" in text for text in channels.texts())
    (receipt,) = process.receipts()
    assert receipt["event"]["recipient"] == owner and receipt["event"]["owner"] == owner
    assert channels.logins == ["etl-monitor"]


def test_nothing_secret_is_in_any_message(make_alerted, channels):
    process = make_alerted()
    leaked = ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldGwifQ.c2lnbmF0dXJlU0VDUkVU", "tok3nSECRET", "hunter2SECRET",
              "QUNDT1VOVEtFWVNFQ1JFVA==", "SASsigSECRET%3D", "pa55wordSECRET", SLACK_TOKEN]
    message = (f"upstream said 401 with Authorization: Bearer {leaked[0]}; retried with token={leaked[1]}&"
               f"password={leaked[2]}; DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={leaked[3]};"
               f"EndpointSuffix=core.windows.net at https://lake.blob.core.windows.net/raw?sv=2022-11-02&sig={leaked[4]}"
               f" via jdbc://etl:{leaked[5]}@db.example.com:1433 and {leaked[6]}")
    process.run({1: (message, "HttpError"), 2: ("refunds file missing", "FileNotFoundError")})
    process.tick()

    assert channels.counts() == (1, 1, 1)
    texts = channels.texts()
    channel_secrets = [SLACK_TOKEN, SMTP_PASSWORD, WEBHOOK_SECRET]
    for text in texts:
        assert "upstream said 401" in text and "[HttpError]" in text  # the error is there, its secrets not
        for secret in [*leaked, *channel_secrets]:
            assert secret not in text
    assert all(secret not in call["body"] for call in channels.slack_calls() for secret in channel_secrets)
    (receipt,) = process.receipts()
    assert all(secret not in receipt["Message"] for secret in [*leaked, *channel_secrets])


# ------------------------------------------------------------------------------- without the engine

def test_scrub_replaces_the_known_secret_shapes_and_given_values():
    text = ("Bearer abc.def-ghi token=t0k password: 'p w' AccountKey=k3y== "
            "https://a.blob.core.windows.net/c?sv=1&sig=s1g%3D xoxb-1-2-abc dapi0123456789abcdef0123456789abcdef "
            "https://user:pass@host/path the value MYVALUE")
    clean = scrub(text, secrets=["MYVALUE"])
    for secret in ("abc.def-ghi", "t0k", "p w", "k3y==", "s1g%3D", "xoxb-1-2-abc", "dapi0123456789abcdef", "pass@",
                   "MYVALUE"):
        assert secret not in clean
    assert "https://a.blob.core.windows.net/c?sv=1&sig=***" in clean and "https://***@host/path" in clean


def test_without_a_channel_there_is_no_alert_sensor_and_a_configured_one_adds_it(monkeypatch):
    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
    assert alerts_from_env() is None
    specs = load_catalogue(CATALOGUE)
    names = {s.name for s in build_definitions(specs).get_repository_def().sensor_defs}
    assert "etl_monitor_alerts" not in names

    monkeypatch.setenv(ENV["slack_token"], SLACK_TOKEN)
    monkeypatch.setenv(ENV["slack_channel"], "#etl")
    repo = build_definitions(specs).get_repository_def()
    assert "etl_monitor_alerts" in {s.name for s in repo.sensor_defs}
    assert build_definitions(specs).resources["alerts"].channels() == ["slack"]


def test_an_alerts_resource_without_channels_skips_saying_so():
    alerts = ETLMonitorAlerts()
    defs = build_definitions(load_catalogue(CATALOGUE), alerts=alerts)
    sensor = defs.get_repository_def().get_sensor_def("etl_monitor_alerts")
    with DagsterInstance.ephemeral() as instance:
        result = sensor.evaluate_tick(build_sensor_context(
            instance=instance, resources={"monitor": ETLMonitorResource(), "alerts": alerts}))
    assert "no alert channel is configured" in (result.skip_message or "")


# ------------------------------------------------------------------------ e-mail login in clear text

def _email_alerts(host: str, **settings: Any) -> ETLMonitorAlerts:
    return ETLMonitorAlerts(smtp_host=host, smtp_from="etl-monitor@example.com", smtp_username="etl-monitor",
                            smtp_password=EnvVar("ETL_TEST_ALERTS_SMTP_PASSWORD"), **settings)


def test_an_smtp_login_without_starttls_is_refused_unless_allowed():
    with pytest.raises(ConfigError, match=r"smtp_starttls=False: .*clear text.*smtp_allow_plaintext_login=True"):
        _email_alerts("127.0.0.1", smtp_starttls=False)
    assert _email_alerts("smtp.example.com").smtp_starttls  # the default upgrades before the login
    assert not ETLMonitorAlerts(smtp_host="smtp.example.com", smtp_from="a@example.com", smtp_starttls=False)\
        .smtp_username  # no login, no password to expose: an open relay without TLS stays possible


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.25", "::ffff:7f00:1", "localhost.example.com",
                                  "127.0.0.1.nip.io", "0.0.0.0"])
def test_a_plaintext_login_is_refused_for_a_host_off_this_machine_even_when_allowed(host):
    with pytest.raises(ConfigError, match=r"smtp_host=.*honoured only for a relay on this machine"):
        _email_alerts(host, smtp_starttls=False, smtp_allow_plaintext_login=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LocalHost."])
def test_a_plaintext_login_is_allowed_for_a_loopback_relay(host):
    assert _email_alerts(host, smtp_starttls=False, smtp_allow_plaintext_login=True).smtp_allow_plaintext_login


def test_an_envvar_host_is_checked_when_dagster_reads_it(monkeypatch):
    monkeypatch.setenv("ETL_TEST_ALERTS_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("ETL_TEST_ALERTS_SMTP_PASSWORD", SMTP_PASSWORD)
    alerts = _email_alerts(EnvVar("ETL_TEST_ALERTS_SMTP_HOST"), smtp_starttls=False, smtp_allow_plaintext_login=True)
    with pytest.raises(DagsterResourceFunctionError) as refused, build_resources({"alerts": alerts}):
        pass
    assert "smtp_host='smtp.example.com'" in str(refused.value.__cause__)


def test_an_allowed_plaintext_login_to_the_loopback_relay_delivers(channels):
    alerts = _email_alerts("127.0.0.1", smtp_port=channels.smtp_port, smtp_starttls=False,
                           smtp_allow_plaintext_login=True, timeout_seconds=10)
    alert = Alert(AlertKind.FAILED, "QAMAIL", "LOAD", None, date(2026, 4, 9), "run-1", "owner@example.com",
                  "owner@example.com", datetime.now(UTC))
    with build_resources({"alerts": alerts}) as resources:
        delivery = resources.alerts.send(alert)
    assert (delivery.sent, delivery.problems) == (["email"], {})
    assert channels.logins == ["etl-monitor"]
    assert [m["To"] for m in channels.emails()] == ["owner@example.com"]
