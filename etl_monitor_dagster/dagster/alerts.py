"""Alerts in Dagster: the channels (Teams, Slack, e-mail) as one configurable resource and the sensor
``etl_monitor_alerts`` that, when a process job's run ends, asks ``core.alerts`` whether to tell anyone.

One sensor watches both RUN_FAILURE and RUN_SUCCESS (a run status sensor watches one status), so the
runs of a process are judged in the order they ended: fail, fail, success is one alert and one
"recovered", never the other way round. Its cursor is the last run-end event handled; with no cursor
(first start, a reset) it looks back ``lookback_hours`` and the receipt of every alert sent keeps it
from sending one twice.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

from dagster import (
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    EnvVar,
    EventLogRecord,
    RunStatusChangeRecordsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._config.field_utils import IntEnvVar
from dagster_msteams import MSTeamsResource
from dagster_msteams.adaptive_card import AdaptiveCard
from dagster_slack import SlackResource
from pydantic import Field, ModelWrapValidatorHandler, model_validator
from slack_sdk import WebClient

from ..core.alerts import Alert, AlertLedger, AlertPolicy, RunVerdict, at_risk_alert, decide, run_verdict, trim
from ..core.catalogue import ProcessSpec
from ..core.enums import Status
from ..core.errors import ValidationError
from ..core.monitor import ETLMonitorFramework
from ..core.scrub import scrub
from .resource import ETLMonitorResource

ENV = {  # field -> the environment variable ``alerts_from_env`` reads it from
    "teams_webhook_url": "ETL_MONITOR_ALERTS_TEAMS_WEBHOOK_URL",
    "slack_token": "ETL_MONITOR_ALERTS_SLACK_TOKEN",
    "slack_channel": "ETL_MONITOR_ALERTS_SLACK_CHANNEL",
    "smtp_host": "ETL_MONITOR_ALERTS_SMTP_HOST",
    "smtp_port": "ETL_MONITOR_ALERTS_SMTP_PORT",
    "smtp_from": "ETL_MONITOR_ALERTS_SMTP_FROM",
    "smtp_username": "ETL_MONITOR_ALERTS_SMTP_USERNAME",
    "smtp_password": "ETL_MONITOR_ALERTS_SMTP_PASSWORD",
    "dagster_base_url": "ETL_MONITOR_ALERTS_DAGSTER_BASE_URL",
    "default_recipient": "ETL_MONITOR_ALERTS_DEFAULT_RECIPIENT",
}
_CHANNEL_ENV = ("teams_webhook_url", "slack_token", "smtp_host")
_RUN_ENDS: tuple[Literal[DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE], ...] = (
    DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE)
_BATCH = 100  # run ends handled per tick at most; the next tick goes on from the cursor


class SlackAlertsResource(SlackResource):
    """dagster-slack's resource, plus the Web API's base URL (a proxy, a Slack-compatible gateway)."""

    base_url: str = Field(default=WebClient.BASE_URL, description="Base URL of the Slack Web API, ending in '/'.")
    timeout: int = Field(default=30, gt=0, description="Seconds a Web API call may take.")

    def get_client(self) -> WebClient:
        """A ``slack_sdk.WebClient`` on ``base_url``."""
        return WebClient(token=self.token, base_url=self.base_url, timeout=self.timeout)


class Undeliverable(Exception):
    """A channel cannot take this alert at all (no address to send it to): trying again will not help."""


@dataclass(frozen=True)
class Delivery:
    """Where an alert went: the channels it reached, and why not the others (secrets scrubbed)."""

    sent: list[str]
    problems: dict[str, str]
    retry: bool  # some channel failed for a reason that may pass (network, server): worth another try


class ETLMonitorAlerts(ConfigurableResource):
    """Where and how run alerts go: Microsoft Teams, Slack and e-mail, each optional.

    Pass secrets (the Teams webhook URL, the Slack token, the SMTP password) with ``EnvVar`` only;
    ``alerts_from_env()`` builds the resource from the ETL_MONITOR_ALERTS_* variables.

    >>> ETLMonitorAlerts(slack_token=EnvVar("ETL_MONITOR_ALERTS_SLACK_TOKEN"), slack_channel="#etl")  # doctest: +SKIP
    """

    teams_webhook_url: str | None = Field(
        default=None, description="Teams incoming-webhook (or Workflows) URL; it is a secret: pass it with EnvVar.")
    slack_token: str | None = Field(
        default=None, description="Slack bot token (xoxb-...) allowed to chat.postMessage; pass it with EnvVar.")
    slack_channel: str | None = Field(default=None, description="Slack channel to post to, e.g. #etl-alerts.")
    slack_base_url: str = Field(default=WebClient.BASE_URL, description="Base URL of the Slack Web API.")
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alerts.")
    smtp_port: int = Field(default=587, description="SMTP port (587 with STARTTLS, 25 without).")
    smtp_from: str | None = Field(default=None, description="Sender address of e-mail alerts.")
    smtp_username: str | None = Field(default=None, description="SMTP login, if the server wants one.")
    smtp_password: str | None = Field(default=None, description="SMTP password; pass it with EnvVar.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS before login.")
    smtp_allow_plaintext_login: bool = Field(
        default=False, description="Log in with smtp_username although smtp_starttls is False, i.e. send the password "
        "in clear text: honoured only for a relay on this machine (127.0.0.0/8, ::1, localhost).")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of one delivery on any channel.")
    suppress_minutes: int = Field(
        default=60, ge=0, description="No second failure alert for a process within this many minutes of its "
        "previous one, even after a recovery.")
    settle_minutes: int = Field(
        default=10, ge=0, description="How long after a run ended the sensor waits for the monitor to hold the "
        "run's end (the reconciliation sensors write it) before judging the run on what it holds.")
    lookback_hours: int = Field(
        default=24, gt=0, description="With no cursor (first start, a reset): run ends this recent are judged; "
        "alert receipts keep any alert from being sent twice.")
    dagster_base_url: str | None = Field(
        default=None, description="Base URL of the Dagster UI (e.g. https://dagster.example.com): messages link "
        "to the run.")
    default_recipient: str | None = Field(
        default=None, description="Who gets alerts of a process with no ProcessOwner, and the e-mail of those "
        "whose owner is a name, not an address.")

    @model_validator(mode="wrap")
    @classmethod
    def _no_plaintext_login(cls, settings: Any, build: ModelWrapValidatorHandler[ETLMonitorAlerts]) -> ETLMonitorAlerts:
        alerts = build(settings)
        # Dagster builds the resource again, with EnvVar values read, when a run or sensor uses it: an
        # EnvVar host (here still the variable's name) is checked then.
        env_host = isinstance(settings, dict) and isinstance(settings.get("smtp_host"), EnvVar)
        alerts._refuse_plaintext_login(host_known=not env_host)
        return alerts

    def _refuse_plaintext_login(self, host_known: bool) -> None:
        """ValidationError for an SMTP login without STARTTLS, unless allowed and to a loopback relay."""
        if self.smtp_starttls or not self.smtp_username or not self.smtp_host:
            return
        if not self.smtp_allow_plaintext_login:
            raise ValidationError("smtp_starttls", False, "with smtp_username the login would send the password in "
                                  "clear text: keep STARTTLS, or set smtp_allow_plaintext_login=True for a relay on "
                                  "this machine (127.0.0.0/8, ::1, localhost)")
        if host_known and not _is_loopback(self.smtp_host):
            raise ValidationError("smtp_host", self.smtp_host, "smtp_allow_plaintext_login is honoured only for a "
                                  "relay on this machine (127.0.0.0/8, ::1, localhost); logging in to any other "
                                  "host needs smtp_starttls=True")

    def channels(self) -> list[str]:
        """The channels configured: teams, slack (token and channel), email (host and sender)."""
        found = []
        if self.teams_webhook_url:
            found.append("teams")
        if self.slack_token and self.slack_channel:
            found.append("slack")
        if self.smtp_host and self.smtp_from:
            found.append("email")
        return found

    def policy(self) -> AlertPolicy:
        """The decision's settings; the channels' own secrets are scrubbed from every message too."""
        secrets = tuple(s for s in (self.teams_webhook_url, self.slack_token, self.smtp_password) if s)
        return AlertPolicy(self.suppress_minutes, self.default_recipient, secrets=secrets)

    def run_url(self, run_id: str) -> str | None:
        return f"{self.dagster_base_url.rstrip('/')}/runs/{run_id}" if self.dagster_base_url else None

    def send(self, alert: Alert) -> Delivery:
        """Send ``alert`` on every configured channel."""
        sent: list[str] = []
        problems: dict[str, str] = {}
        retry = False
        senders = {"teams": self._teams, "slack": self._slack, "email": self._email}
        secrets = self.policy().secrets
        for channel in self.channels():
            try:
                senders[channel](alert)
                sent.append(channel)
            except Exception as exc:  # one channel down must not keep the message from the others
                # an HTTP error names the URL, and a webhook URL is a secret
                problems[channel] = trim(scrub(f"{type(exc).__name__}: {exc}", secrets))
                retry = retry or not isinstance(exc, Undeliverable)
        return Delivery(sent, problems, retry)

    def _teams(self, alert: Alert) -> None:
        card = AdaptiveCard()
        card.add_attachment(f"**{alert.title}**")
        for line in alert.lines():
            card.add_attachment(line)
        client = MSTeamsResource(hook_url=self.teams_webhook_url or "", timeout=self.timeout_seconds).get_client()
        client.post_message(card.payload)

    def _slack(self, alert: Alert) -> None:
        slack = SlackAlertsResource(token=self.slack_token or "", base_url=self.slack_base_url,
                                    timeout=max(1, int(self.timeout_seconds)))
        slack.get_client().chat_postMessage(channel=self.slack_channel or "", text=alert.text())

    def _email(self, alert: Alert) -> None:
        to = next((r for r in (alert.recipient, self.default_recipient) if r and "@" in r), None)
        if to is None:
            raise Undeliverable(f"no e-mail address: the owner is {alert.owner!r}; set default_recipient")
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self.smtp_from or ""
        message["To"] = to
        message.set_content(alert.text())
        with smtplib.SMTP(self.smtp_host or "", self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.smtp_username:
                smtp.login(self.smtp_username, self.smtp_password or "")
            smtp.send_message(message)


def _is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1), the hosts a clear-text login may go to."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def alerts_from_env() -> ETLMonitorAlerts | None:
    """The alerts resource from the ETL_MONITOR_ALERTS_* variables set now (values read when used), or
    None when none names a channel (Teams webhook, Slack token, SMTP host)."""
    if not any(os.environ.get(ENV[f]) for f in _CHANNEL_ENV):
        return None
    fields: dict[str, EnvVar | IntEnvVar] = {f: (EnvVar.int(v) if f == "smtp_port" else EnvVar(v))
                                 for f, v in ENV.items() if os.environ.get(v)}
    return ETLMonitorAlerts(**fields)  # type: ignore[arg-type]  # EnvVar fields resolve when the resource is used


def run_ends(instance: DagsterInstance, job_names: Sequence[str], after: int | None,
             lookback: timedelta) -> tuple[list[EventLogRecord], int | None]:
    """RUN_SUCCESS and RUN_FAILURE events of ``job_names`` after storage id ``after`` (with none: those of
    the last ``lookback``), oldest first, and the storage id up to which every run end was read."""
    since = None if after is not None else (datetime.now(UTC) - lookback).timestamp()
    found: list[EventLogRecord] = []
    horizon: int | None = None  # a full page of one kind: the other kind's later events wait for the next tick
    for kind in _RUN_ENDS:
        # no job_names in the filter: SQL storages ignore it or refuse it; the jobs are filtered below
        page = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(kind, after_storage_id=after, after_timestamp=since),
            limit=_BATCH, ascending=True).records
        found += page
        if len(page) == _BATCH:
            horizon = min(page[-1].storage_id, horizon if horizon is not None else page[-1].storage_id)
    read = [r for r in found if horizon is None or r.storage_id <= horizon]
    last = max((r.storage_id for r in read), default=after)
    ours = sorted((r for r in read if r.event_log_entry.job_name in job_names), key=lambda r: r.storage_id)
    return ours, last


def alerts_sensor(processes: Mapping[str, ProcessSpec], interval_seconds: int = 30) -> SensorDefinition:
    """The sensor ``etl_monitor_alerts`` over the runs of ``processes`` (job name -> process)."""
    job_names = sorted(processes)

    @sensor(
        name="etl_monitor_alerts",
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="When a process run ends: one alert per failed run (final failures only) when its process "
        "turns failing, one 'recovered' message on its first complete run after; to the process owner, on the "
        "configured channels; each alert sent is a receipt in ETLsysLogs.",
    )
    def etl_monitor_alerts(context: SensorEvaluationContext, monitor: ETLMonitorResource,
                           alerts: ETLMonitorAlerts) -> SkipReason:
        channels = alerts.channels()
        if not channels:
            return SkipReason("no alert channel is configured: set a Teams webhook URL, a Slack token and channel, "
                              "or an SMTP host and sender")
        after = int(context.cursor) if context.cursor else None
        ends, read_up_to = run_ends(context.instance, job_names, after, timedelta(hours=alerts.lookback_hours))
        m = monitor.get_monitor()
        ledger, policy, now = AlertLedger(m.store), alerts.policy(), datetime.now(UTC)
        notes: list[str] = []
        waiting = False
        for end in ends:
            run_id, spec = end.event_log_entry.run_id, processes[end.event_log_entry.job_name or ""]
            ended_at = datetime.fromtimestamp(end.timestamp, UTC)
            rows = m.status_rows(spec.project, spec.process, execution_id=run_id)
            failed_run = end.event_type is DagsterEventType.RUN_FAILURE
            if rows and not _ended_in_monitor(rows, failed_run) and now - ended_at < timedelta(
                    minutes=alerts.settle_minutes):
                notes.append(f"{spec.process} {run_id}: waiting for the monitor to hold the run's end")
                waiting = True
                break  # later runs wait too: a process's runs are judged in the order they ended
            decision = decide(rows, ledger.state(spec.project, spec.process),
                              ledger.process(spec.project, spec.process), policy, project_code=spec.project,
                              process_load=spec.process, execution_id=run_id, ended_at=ended_at,
                              run_url=alerts.run_url(run_id),
                              run_failure=why_failed(context.instance, end) if failed_run and not rows else None)
            alert = decision.alert
            if decision.held is not None:  # recorded, not sent: who reads ETLsysLogs sees it was held back
                ledger.record(decision.held, [], held=True)
            if alert is not None:
                delivery = alerts.send(alert)
                for channel, problem in delivery.problems.items():
                    context.log.warning(f"{alert.kind.value} alert of {alert.process} {run_id} not sent on "
                                        f"{channel}: {problem}")
                if not delivery.sent and delivery.retry:  # no receipt: the next tick tries this run again
                    raise RuntimeError(f"the {alert.kind.value} alert of {alert.process} {run_id} reached no "
                                       f"channel ({', '.join(delivery.problems)}); it is tried again on the next tick")
                ledger.record(alert, delivery.sent, undelivered=delivery.problems or None)
                notes.append(f"{spec.process} {run_id}: {decision.reason}, sent on "
                             f"{', '.join(delivery.sent) or 'no channel'}")
            else:
                notes.append(f"{spec.process} {run_id}: {decision.reason}")
            context.log.info(notes[-1])
            context.update_cursor(str(end.storage_id))
        if not waiting and read_up_to is not None:  # other jobs' run ends read past too
            context.update_cursor(str(read_up_to))
        return SkipReason(f"{len(ends)} run ends read on {', '.join(channels)}: " + ("; ".join(notes) or "nothing new"))

    return etl_monitor_alerts


def why_failed(instance: DagsterInstance, end: EventLogRecord) -> str:
    """Why a run failed, for an alert with no task rows to name: its first failed step's error (a resource
    that could not start, the engine unreachable), else the run failure's own message."""
    run_id = end.event_log_entry.run_id
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event is not None and (error := event.step_failure_data.error) is not None:
            return f"step {event.step_key} failed: {error.cls_name}: {error.message.strip()}"
    event = end.event_log_entry.dagster_event
    return (event.message if event is not None else None) or "the run failed"


def _ended_in_monitor(rows: Sequence[Mapping[str, object]], failed_run: bool) -> bool:
    """Whether the monitor holds the run's end: for a failed run its initiation row FAIL (written by the
    reconciliation), for a successful one no task still queued."""
    if failed_run:
        return any(r["WorkFlowID"] == 0 and r["TaskID"] == 0 and r["Status"] == Status.FAIL.value for r in rows)
    return run_verdict(rows) is not RunVerdict.PENDING


def send_at_risk_alerts(context: SensorEvaluationContext, alerts: ETLMonitorAlerts, monitor: ETLMonitorFramework,
                        execution_ids: set[str], projects: Mapping[str, str]) -> int:
    """Send the "at risk" message of every SLA_AT_RISK event of ``execution_ids`` that has none yet (one per
    task start, to the process owner); returns how many went out. A message that reached no channel for a
    reason that may pass gets no receipt, so the next tick tries it again."""
    if not alerts.channels():
        return 0
    ledger, policy, sent = AlertLedger(monitor.store), alerts.policy(), 0
    for event in ledger.at_risk_pending(execution_ids):
        if projects.get(event["process_load"]) != event["project_code"]:
            continue
        alert = at_risk_alert(event, ledger.process(event["project_code"], event["process_load"]), policy,
                              alerts.run_url(event["execution_id"]))
        delivery = alerts.send(alert)
        for channel, problem in delivery.problems.items():
            context.log.warning(f"at-risk alert of {alert.process} {alert.execution_id} not sent on {channel}: "
                                f"{problem}")
        if not delivery.sent and delivery.retry:
            continue
        ledger.record(alert, delivery.sent, undelivered=delivery.problems or None)
        sent += 1
    return sent
