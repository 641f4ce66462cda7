"""Alerts with hygiene: what to tell a process's owner when one of its runs ends, and when to keep quiet.

- One alert per failed run, never per task: the run's failed tasks are listed in one message.
- Only final failures: a FAIL row is final; a run with a task in RQUE (a failed try being retried) and no
  final failure is not decided yet. A run is failed when a mandatory task, or its initiation row (the
  run ended unfinished), is FAIL; an optional task's FAIL alone does not fail it.
- Only on the transition healthy -> failing of a (ProjectCode, ProcessLoad): a process failing every day
  alerts once, then stays quiet until its first complete run, which sends one "recovered" message.
- A suppression window: no second failure alert within ``suppress_minutes`` of the previous one (measured
  between the runs' ends, so evaluating a run again decides the same).
- Routed to ETLconfigProcess.ProcessOwner (an e-mail address or a name), else a default recipient.
- A run that failed before the monitor held any row of it (its initiation never generated the steps) is
  failed too: the alert says why the run failed (``run_failure``) instead of listing failed tasks.
- SLA at risk: a running task past its SLA's warning share (an SLA_AT_RISK event) gets one "at risk" message
  per start of the task (``at_risk_alert``), to the same recipient; its ALERT_AT_RISK receipt, keyed on that
  start, keeps it from going twice and changes nothing of the failure alerts' state.

The state lives in ETLsysLogs: every alert sent is an ALERT_SENT or ALERT_RECOVERED receipt whose
CorrelationID is derived from (execution, kind), so "already sent?" is one lookup and the process is
alerting while its latest alert receipt is ALERT_SENT. A failure alert held back by the window is an
ALERT_SUPPRESSED receipt, written once, which changes no state. The sender checks the receipt, sends,
then appends the receipt: a crash between sending and appending sends that one message once more on the
next try.

No Dagster here: a notebook or another orchestrator can call ``decide`` and ``AlertLedger`` as they are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from . import schema as S
from .enums import EventType, LogLevel, Status
from .monitor.store import Store
from .receipts import receipt
from .scrub import scrub

MESSAGE_CHARS = 300  # a task's LogMessage is cut to this in a message: the monitor holds the whole text
_NAMESPACE = uuid.UUID("6f1c2a52-3d0e-4b8e-9a57-1f0c4a7e2b19")  # alert event ids: uuid5 of (execution, kind)


class AlertKind(StrEnum):
    """What an alert says: the run failed, the process recovered, or a running task is near its SLA."""

    FAILED = "FAILED"
    RECOVERED = "RECOVERED"
    AT_RISK = "AT_RISK"


EVENTS = {AlertKind.FAILED: EventType.ALERT_SENT, AlertKind.RECOVERED: EventType.ALERT_RECOVERED}
_HELD = EventType.ALERT_SUPPRESSED


class RunVerdict(StrEnum):
    """What a run's step rows say about it."""

    FAILED = "FAILED"  # a mandatory task or the initiation row is FAIL
    COMPLETE = "COMPLETE"  # nothing failed that counts, nothing queued or retrying
    PENDING = "PENDING"  # tasks still queued or retrying (RQUE): not decided yet


def trim(text: str, limit: int = MESSAGE_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def alert_event_id(execution_id: str, kind: AlertKind, *, held: bool = False) -> str:
    """The receipt's event id (CorrelationID) of ``kind`` for this execution, or of its holding back:
    the same on every try."""
    return str(uuid.uuid5(_NAMESPACE, f"{execution_id}/{kind.value}{'/held' if held else ''}"))


def _is_initiation(row: Mapping[str, Any]) -> bool:
    return row["WorkFlowID"] == 0 and row["TaskID"] == 0


def _pending(row: Mapping[str, Any]) -> bool:
    return row["Status"] in (Status.NQUE.value, Status.RQUE.value) and not row.get("ForceSkip")


def run_verdict(rows: Sequence[Mapping[str, Any]]) -> RunVerdict:
    """FAILED when a mandatory task or the initiation row is FAIL, else PENDING while a row is queued or
    retrying, else COMPLETE. ``rows``: the run's step rows (one attempt)."""
    failed = [r for r in rows if r["Status"] == Status.FAIL.value and (r.get("TaskMandatory") or _is_initiation(r))]
    if failed:
        return RunVerdict.FAILED
    if any(_pending(r) for r in rows):
        return RunVerdict.PENDING
    return RunVerdict.COMPLETE


@dataclass(frozen=True)
class FailedTask:
    """One failed task of an alert: its ids, name, LogCode and a trimmed, scrubbed LogMessage."""

    workflow_id: int
    task_id: int
    name: str
    log_code: str | None
    message: str
    mandatory: bool

    def line(self) -> str:
        code = f" [{self.log_code}]" if self.log_code else ""
        optional = "" if self.mandatory else " (optional)"
        return f"- {self.workflow_id}.{self.task_id} {self.name}{optional}{code}: {self.message or '(no message)'}"


@dataclass(frozen=True)
class Alert:
    """One message to send: about which run, to whom, saying what."""

    kind: AlertKind
    project_code: str
    process_load: str
    process_name: str | None
    processing_date: date | None
    execution_id: str
    owner: str | None
    recipient: str | None
    run_ended_at: datetime
    failed_tasks: tuple[FailedTask, ...] = ()
    run_url: str | None = None
    since_execution_id: str | None = None  # RECOVERED: the run whose failure alert it closes
    run_error: str | None = None  # FAILED with no step rows: why the run itself failed
    at_risk: str | None = None  # AT_RISK: which task, how long it has run, its SLA
    at_risk_key: str | None = None  # AT_RISK: the task's start (its SLA_AT_RISK event id), what the receipt is keyed on

    @property
    def process(self) -> str:
        return f"{self.project_code}/{self.process_load}"

    @property
    def title(self) -> str:
        day = self.processing_date.isoformat() if self.processing_date else "no processing date"
        if self.kind is AlertKind.FAILED:
            return f"ETL run failed: {self.process} ({day})"
        if self.kind is AlertKind.AT_RISK:
            return f"ETL task at risk of breaching its SLA: {self.process} ({day})"
        return f"ETL process recovered: {self.process} ({day})"

    def lines(self) -> list[str]:
        """The message body, line by line (plain text, the same on every channel)."""
        lines = [f"Process: {self.process}" + (f" ({self.process_name})" if self.process_name else ""),
                 f"Owner: {self.owner or '(none registered)'}",
                 f"Processing date: {self.processing_date.isoformat() if self.processing_date else '-'}",
                 f"Execution: {self.execution_id}"]
        if self.kind is AlertKind.FAILED and self.run_error is not None:
            lines.append(f"The run failed before the monitor recorded any task: {self.run_error}")
        elif self.kind is AlertKind.FAILED:
            lines.append(f"Failed tasks ({len(self.failed_tasks)}):")
            lines += [t.line() for t in self.failed_tasks]
        elif self.kind is AlertKind.AT_RISK:
            lines.append(self.at_risk or "")
        else:
            lines.append("First complete run since the failure alert"
                         + (f" of execution {self.since_execution_id}." if self.since_execution_id else "."))
        if self.run_url:
            lines.append(f"Run: {self.run_url}")
        return lines

    def text(self) -> str:
        return "\n".join([self.title, "", *self.lines()])


@dataclass(frozen=True)
class AlertState:
    """A process's alert history, from its ALERT receipts: what was sent, and is it alerting now."""

    sent: frozenset[tuple[str, AlertKind]] = frozenset()  # (execution id, kind) of every alert receipt
    held: frozenset[str] = frozenset()  # execution ids whose failure alert was held back (ALERT_SUPPRESSED)
    last_kind: AlertKind | None = None  # kind of the latest alert receipt
    last_execution_id: str | None = None
    last_failure_at: datetime | None = None  # run end of the latest failure alert sent

    @property
    def alerting(self) -> bool:
        """Failing as far as its recipients know: the latest alert receipt is a failure alert."""
        return self.last_kind is AlertKind.FAILED


@dataclass(frozen=True)
class Decision:
    """The alert to send (None: none) and why, in words for the sensor's log; ``held``: the failure
    alert the suppression window holds back, to be recorded as such and not sent."""

    alert: Alert | None
    reason: str
    held: Alert | None = None


@dataclass(frozen=True)
class AlertPolicy:
    """How alerts are decided: the suppression window and who gets a process with no owner."""

    suppress_minutes: int = 60
    default_recipient: str | None = None
    message_chars: int = MESSAGE_CHARS
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values never to be sent (the channels' own)


def decide(rows: Sequence[Mapping[str, Any]], state: AlertState, process: Mapping[str, Any] | None,
           policy: AlertPolicy, *, project_code: str, process_load: str, execution_id: str, ended_at: datetime,
           run_url: str | None = None, run_failure: str | None = None) -> Decision:
    """The alert for a run of (``project_code``, ``process_load``) that ended, given its step rows, its
    process's alert ``state`` and its ETLconfigProcess row (``process``; owner, name), or none and why.
    ``run_failure``: why the run failed, for a failed run the monitor holds no rows of (None otherwise)."""
    if not rows and run_failure is None:
        return Decision(None, "the monitor holds no rows for this run")
    verdict = run_verdict(rows) if rows else RunVerdict.FAILED
    if verdict is RunVerdict.PENDING:
        return Decision(None, "tasks are still queued or retrying: no final failure yet")
    kind = AlertKind.FAILED if verdict is RunVerdict.FAILED else AlertKind.RECOVERED
    if (execution_id, kind) in state.sent:
        return Decision(None, f"the {kind.value} alert of this run was sent already")
    if kind is AlertKind.RECOVERED and not state.alerting:
        return Decision(None, "complete, and the process was not alerting")
    if kind is AlertKind.FAILED and state.alerting:
        return Decision(None, f"failed again; the process is alerting since execution {state.last_execution_id}")
    if kind is AlertKind.FAILED and execution_id in state.held:
        return Decision(None, "its failure alert was held back already")
    window = timedelta(minutes=policy.suppress_minutes)
    last = state.last_failure_at
    suppressed = kind is AlertKind.FAILED and last is not None and abs(ended_at - last) < window
    owner = (process or {}).get("ProcessOwner") or None
    failed = sorted((r for r in rows if r["Status"] == Status.FAIL.value), key=lambda r: (r["WorkFlowID"], r["TaskID"]))
    tasks = [r for r in failed if not _is_initiation(r)] or failed  # the initiation row when no task failed
    alert = Alert(
        kind=kind, project_code=project_code, process_load=process_load,
        process_name=(process or {}).get("ProcessName") or None,
        processing_date=rows[0].get("ProcessingDate") if rows else None,
        execution_id=execution_id, owner=owner, recipient=owner or policy.default_recipient, run_ended_at=ended_at,
        failed_tasks=tuple(FailedTask(
            r["WorkFlowID"], r["TaskID"], r.get("TaskName") or f"task {r['WorkFlowID']}.{r['TaskID']}",
            r.get("LogCode"), trim(scrub(r.get("LogMessage") or "", policy.secrets), policy.message_chars),
            bool(r.get("TaskMandatory")) or _is_initiation(r)) for r in tasks) if kind is AlertKind.FAILED else (),
        run_url=run_url, since_execution_id=state.last_execution_id if kind is AlertKind.RECOVERED else None,
        run_error=None if rows else trim(scrub(run_failure or "", policy.secrets), policy.message_chars),
    )
    if suppressed:
        return Decision(None, f"failed within {policy.suppress_minutes} minutes of the previous failure alert: "
                              "suppressed", held=alert)
    return Decision(alert, f"{verdict.value}{'' if rows else ' before any step row'}: {kind.value} alert to "
                           f"{alert.recipient or '(no recipient)'}")


def at_risk_alert(event: Mapping[str, Any], process: Mapping[str, Any] | None, policy: AlertPolicy,
                  run_url: str | None = None) -> Alert:
    """The "at risk" message of one SLA_AT_RISK event (its JSON as a dict, with its ``event_id``)."""
    owner = (process or {}).get("ProcessOwner") or None
    name = event.get("task_name") or f"task {event.get('workflow_id')}.{event.get('task_id')}"
    running, sla = event.get("running_seconds"), event.get("sla_seconds")
    line = (f"- {event.get('workflow_id')}.{event.get('task_id')} {name} (attempt {event.get('attempt')}) has run "
            f"{running} s of its SLA of {sla} s and is still running")
    day = event.get("processing_date")
    return Alert(
        kind=AlertKind.AT_RISK, project_code=event["project_code"], process_load=event["process_load"],
        process_name=(process or {}).get("ProcessName") or None,
        processing_date=date.fromisoformat(day) if isinstance(day, str) else day,
        execution_id=event["execution_id"], owner=owner, recipient=owner or policy.default_recipient,
        run_ended_at=datetime.fromisoformat(event["logged_at"]) if event.get("logged_at") else datetime.now(UTC),
        run_url=run_url, at_risk=trim(scrub(line, policy.secrets), policy.message_chars),
        at_risk_key=event["event_id"])


class AlertLedger:
    """Alert receipts (``v_liveLogs``): a process's alert state, and the receipt of an alert sent."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def state(self, project_code: str, process_load: str) -> AlertState:
        """The process's alert state from its ALERT_SENT, ALERT_RECOVERED and ALERT_SUPPRESSED receipts."""
        frame = self.store.table("v_liveLogs")
        frame = frame.where(frame["OperationName"].isin([*(e.value for e in EVENTS.values()), _HELD.value]))
        found = self.store.collect(frame, {"ProjectCode": project_code, "ProcessLoad": process_load},
                                   ["LogOrder"])
        held = frozenset(r["ExecutionID"] for r in found if r["OperationName"] == _HELD.value)
        rows = [r for r in found if r["OperationName"] != _HELD.value]
        if not rows:
            return AlertState(held=held)
        kinds = {e.value: k for k, e in EVENTS.items()}
        sent = frozenset((r["ExecutionID"], kinds[r["OperationName"]]) for r in rows)
        last = rows[-1]
        failures = [r for r in rows if r["OperationName"] == EventType.ALERT_SENT.value]
        return AlertState(sent, held, kinds[last["OperationName"]], last["ExecutionID"],
                          _run_end(failures[-1]) if failures else None)

    def process(self, project_code: str, process_load: str) -> dict[str, Any] | None:
        """The process's ETLconfigProcess row (owner, name), or None when it is not registered."""
        rows = self.store.rows(S.PROCESS.name, {"ProjectCode": project_code, "ProcessLoad": process_load})
        return rows[0] if rows else None

    def at_risk_pending(self, execution_ids: set[str]) -> list[dict[str, Any]]:
        """The SLA_AT_RISK events (their JSON) of these executions whose "at risk" message has no receipt yet."""
        if not execution_ids:
            return []
        frame = self.store.table("v_liveLogs")
        frame = frame.where(frame["ExecutionID"].isin(sorted(execution_ids)) & frame["OperationName"].isin(
            EventType.SLA_AT_RISK.value, EventType.ALERT_AT_RISK.value))
        found = self.store.collect(frame.select("OperationName", "CorrelationID", "Message"), order_by=["LogOrder"])
        sent = {json.loads(r["Message"]).get("at_risk_key") for r in found
                if r["OperationName"] == EventType.ALERT_AT_RISK.value}
        events = {r["CorrelationID"]: json.loads(r["Message"]) for r in found
                  if r["OperationName"] == EventType.SLA_AT_RISK.value}
        return [e for key, e in events.items() if key not in sent]

    def record(self, alert: Alert, channels: Sequence[str], *, held: bool = False, **details: Any) -> dict[str, Any]:
        """Append the receipt of ``alert`` sent on ``channels``, or with ``held`` of it held back; returns it."""
        if alert.kind is AlertKind.AT_RISK:  # keyed on the task's start, outside the failure alerts' state
            details.update(at_risk_key=alert.at_risk_key, at_risk=alert.at_risk)
        row = receipt(
            _HELD if held else EVENTS.get(alert.kind, EventType.ALERT_AT_RISK), project_code=alert.project_code,
            process_load=alert.process_load, processing_date=alert.processing_date, execution_id=alert.execution_id,
            level=(LogLevel.ERROR if alert.kind is AlertKind.FAILED and not held
                   else LogLevel.WARN if alert.kind is AlertKind.AT_RISK else LogLevel.INFO),
            event_id=alert_event_id(alert.at_risk_key or alert.execution_id, alert.kind, held=held),
            kind=alert.kind.value, channels=list(channels), recipient=alert.recipient, owner=alert.owner,
            run_ended_at=alert.run_ended_at, failed_tasks=[
                {"workflow_id": t.workflow_id, "task_id": t.task_id, "task_name": t.name, "log_code": t.log_code}
                for t in alert.failed_tasks] or None,
            run_error=alert.run_error, run_url=alert.run_url, **details)
        self.store.append_receipts([row])
        return row


def _run_end(row: Mapping[str, Any]) -> datetime | None:
    """When the alerted run ended, from the receipt's JSON (its LogTimeUTC when absent)."""
    ended = json.loads(row["Message"] or "{}").get("run_ended_at")
    value = datetime.fromisoformat(ended) if ended else row.get("LogTimeUTC")
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
