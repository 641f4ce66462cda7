"""When runs and writers die: the end of a run that ended unfinished, and stale rows.

A transition is one append, so a writer that dies leaves either the whole transition or none of it:
nothing is half-written. What a dead writer leaves is a row still running, which ``end_run`` (its run
ended) or ``fail_stale`` (past its limit) ends as FAIL, racing a late end by the log's rule: the end
logged first is the one that happened.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import schema as S
from ..enums import EventType, LogCode, LogLevel, LogType, Status
from ..error_class import classify_code
from ..errors import ValidationError
from ..scrub import scrub
from .events import step_event
from .steps import StepKey, Steps, is_initiation, is_running, latest_attempt
from .store import Store

_TASK_KEY = ("ProjectCode", "ProcessLoad", "WorkFlowID", "TaskID")
_START_KEY = ("ExecutionID", "WorkFlowID", "TaskID", "Attempts", "StartTime")  # one start of one step
_NAMESPACE = uuid.UUID("0b8f6f0e-52c4-4d0c-9f0e-6a1d2c3b4a59")  # SLA_AT_RISK event ids: uuid5 of the start
DEFAULT_AT_RISK_SHARE = 0.8
DEFAULT_HEARTBEAT_SECONDS = 60.0

# Per start of a step: its last HEARTBEAT and the interval it announced, logged or folded into ETLsysLogs.
_LAST_HEARTBEATS = """
SELECT ExecutionID, WorkFlowID, TaskID, Attempts, StartTime, max(LogTimeUTC) AS LastHeartbeat,
       max_by(BeatInterval, LogTimeUTC) AS HeartbeatInterval
  FROM (SELECT ExecutionID, WorkFlowID, TaskID, Attempts, StartTime, LogTimeUTC,
               CAST(get_json_object(Message, '$.interval_seconds') AS DOUBLE) AS BeatInterval
          FROM {log_rows} WHERE EventType = 'HEARTBEAT'
        UNION ALL
        SELECT ExecutionID, CAST(get_json_object(Message, '$.workflow_id') AS INT),
               CAST(get_json_object(Message, '$.task_id') AS INT), CAST(get_json_object(Message, '$.attempt') AS INT),
               CAST(get_json_object(Message, '$.start_time') AS TIMESTAMP), LogTimeUTC,
               CAST(get_json_object(Message, '$.interval_seconds') AS DOUBLE)
          FROM {ETLsysLogs} WHERE OperationName = 'HEARTBEAT')
 GROUP BY ExecutionID, WorkFlowID, TaskID, Attempts, StartTime"""


@dataclass(frozen=True)
class StaleLimits:
    """How long a row may run: its task's SlaSeconds times ``sla_factor``, else its process's maximum
    runtime (``process_seconds`` by (project, process)), else ``default_seconds``."""

    sla_factor: float = 3.0
    default_seconds: int = 6 * 3600
    process_seconds: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def limit(self, row: Mapping[str, Any]) -> tuple[int, str]:
        """The row's limit in seconds and where it comes from."""
        if row.get("SlaSeconds"):
            return int(row["SlaSeconds"] * self.sla_factor), f"SlaSeconds {row['SlaSeconds']} x {self.sla_factor:g}"
        own = self.process_seconds.get((row["ProjectCode"], row["ProcessLoad"]))
        if own:
            return own, "the process's max_runtime_minutes"
        return self.default_seconds, "the default limit"


class Health:
    """Ends what died: lost and cancelled runs, stale rows, transitions cut short."""

    def __init__(self, store: Store, steps: Steps) -> None:
        self.store = store
        self.steps = steps

    def baselines(self, project_code: str, process_load: str,
                  baseline_runs: int = S.BASELINE_RUNS) -> list[dict[str, Any]]:
        """``v_taskHealth``'s rows of one process, over a baseline of ``baseline_runs`` DONE runs."""
        if isinstance(baseline_runs, bool) or not isinstance(baseline_runs, int) or not 1 <= baseline_runs <= 1000:
            raise ValidationError("baseline_runs", baseline_runs, "is a whole number of runs from 1 to 1000")
        return self.store.query(S.task_health(baseline_runs), {"ProjectCode": project_code,
                                                               "ProcessLoad": process_load},
                                order_by=["WorkFlowID", "TaskID"])

    def watermark_moves(self, execution_id: str) -> list[dict[str, Any]]:
        """The WATERMARK_MOVE receipts of one execution, oldest first, as their JSON events."""
        rows = self.store.rows("v_liveLogs", {"ExecutionID": execution_id,
                                              "OperationName": EventType.WATERMARK_MOVE.value},
                               order_by=["LogOrder"])
        return [json.loads(r["Message"]) for r in rows]

    def running(self) -> list[dict[str, Any]]:
        """Every running row (v_liveSteps columns, with its task's SlaSeconds and the seconds it has run)."""
        log = self.store.bound_log()  # the log's rows, read once for the steps and their heartbeats
        steps = self.store.table("v_liveSteps", log)
        steps = steps.where(steps["StartTime"].isNotNull() & steps["EndTime"].isNull()
                            & steps["Status"].isin(Status.NQUE.value, Status.RQUE.value))
        tasks = self.store.spark.table(self.store.names[S.TASKS.name]).select(*_TASK_KEY, "SlaSeconds")
        beats = self.store.frame(_LAST_HEARTBEATS, log=log)
        return self.store.collect(steps.join(tasks, list(_TASK_KEY), "left").join(beats, list(_START_KEY), "left")
                                  .selectExpr("*", "unix_timestamp(current_timestamp()) - unix_timestamp(StartTime) "
                                              "AS RunningSeconds", "(unix_micros(current_timestamp()) - "
                                              "unix_micros(LastHeartbeat)) / 1e6 AS HeartbeatAgeSeconds"))

    def heartbeat(self, key: StepKey, remote_state: str, interval_seconds: float, *,
                  row: dict[str, Any] | None = None, **details: Any) -> dict[str, Any] | None:
        """Log a HEARTBEAT of the task's running row (one blind append, DEBUG): its poller is alive and the remote
        run is in ``remote_state``; ``interval_seconds`` is how often the next ones come. ``row``: the row as a
        previous heartbeat returned it (no read). Returns that row, or None when the row is not running."""
        row = row or self.steps.to_end(key, "call start_task first")
        if not is_running(row):
            return None
        self.store.append([step_event(
            EventType.HEARTBEAT, {c: row.get(c) for c in S.STEPS.column_names}, basis=row.get("LastEventID"),
            level=LogLevel.DEBUG, status=row["Status"], start_time=row["StartTime"], remote_state=remote_state,
            interval_seconds=interval_seconds, **details)])
        return row

    def sla_at_risk(self, rows: list[dict[str, Any]], share: float = DEFAULT_AT_RISK_SHARE) -> list[dict[str, Any]]:
        """Log one SLA_AT_RISK event (WARN, in one append) for each of ``rows`` (from ``running``) that has run
        ``share`` of its SlaSeconds or more and has none for this start yet; returns the rows it logged.

        The event's id comes from the start, so two sensors that find one start at once log the same event
        and ``v_taskDetail.SlaAtRisk`` counts it once."""
        if not 0 < share <= 1:
            raise ValidationError("share", share, "is a share of SlaSeconds above 0 and at most 1")
        due = [r for r in rows if r.get("SlaSeconds") and r["RunningSeconds"] >= share * r["SlaSeconds"]]
        if not due:
            return []
        frame = self.store.table("v_taskDetail")
        frame = frame.where(frame["ExecutionID"].isin(sorted({r["ExecutionID"] for r in due})) & frame["SlaAtRisk"])
        logged = {tuple(r[c] for c in _START_KEY) for r in self.store.collect(frame.select(*_START_KEY))}
        new = [r for r in due if tuple(r[c] for c in _START_KEY) not in logged]
        self.store.append([step_event(
            EventType.SLA_AT_RISK, {c: r.get(c) for c in S.STEPS.column_names}, basis=r.get("LastEventID"),
            level=LogLevel.WARN, event_id=at_risk_event_id(r), status=r["Status"], start_time=r["StartTime"],
            sla_seconds=r["SlaSeconds"], running_seconds=r["RunningSeconds"], at_risk_share=share) for r in new])
        return new

    def end_run(self, execution_id: str, code: LogCode, message: str, at: datetime) -> list[dict[str, Any]]:
        """A run that ended unfinished (``code`` RUN_FAILED or RUN_CANCELED): its running rows become FAIL
        (RUN_LOST, or RUN_CANCELED), its initiation row FAIL with ``code``; rows never started stay
        queued for the next attempt. Returns the rows it ended. ``message`` (the orchestrator's) is scrubbed."""
        lost = LogCode.RUN_CANCELED if code is LogCode.RUN_CANCELED else LogCode.RUN_LOST
        message = scrub(message)
        targets = []
        for row in latest_attempt(self.store.rows("v_liveSteps", {"ExecutionID": execution_id})):
            if is_initiation(row) and row["Status"] != Status.FAIL.value:
                targets.append((row, code, f"the run ended: {message}", EventType.RUN_END))
            elif is_running(row):
                targets.append((row, lost, f"the run ended while the task ran: {message}", EventType.TASK_FAIL))
        return self._fail(targets, at)

    def fail_stale(self, rows: list[dict[str, Any]], limits: StaleLimits, at: datetime) -> list[dict[str, Any]]:
        """FAIL (STALE) those of ``rows`` (from ``running``) that are dead: a row whose start sent heartbeats
        when none came for two of their intervals (however long it has run), any other row when it ran past
        its limit. The caller has excluded the rows of live runs. Returns the rows it ended."""
        targets = []
        for row in rows:
            interval = row.get("HeartbeatInterval")
            if interval is not None:
                if row["HeartbeatAgeSeconds"] > 2 * interval:
                    message = (f"no heartbeat for {row['HeartbeatAgeSeconds']:.0f} s, two intervals of "
                               f"{interval:g} s, and its execution is not a live run: its poller died")
                    targets.append((row, LogCode.STALE, message, EventType.TASK_FAIL))
                continue
            limit, source = limits.limit(row)
            if row["RunningSeconds"] > limit:
                message = (f"running for {row['RunningSeconds']} s, past its limit of {limit} s ({source}), "
                           "and its execution is not a live run: its writer died")
                targets.append((row, LogCode.STALE, message, EventType.TASK_FAIL))
        return self._fail(targets, at)

    # ------------------------------------------------------------------------------------------ helpers

    def _fail(self, targets: list[tuple[dict[str, Any], LogCode, str, EventType]],
              at: datetime) -> list[dict[str, Any]]:
        """FAIL each target row with its code and message, all in one append, each following the row as read;
        returns the rows whose FAIL happened (not those another writer ended first)."""
        if not targets:
            return []
        events, rows = [], []
        for row, code, message, event in targets:
            new = self.steps.closed(row, Status.FAIL, at, message, LogType.ERROR, code.value)
            rows.append(new)
            events.append(step_event(
                event, new, basis=row.get("LastEventID"), level=LogLevel.ERROR, previous_status=row["Status"],
                status=Status.FAIL.value, start_time=row.get("StartTime"), end_time=at, log_type=LogType.ERROR.value,
                error={"message": new["LogMessage"], "code": code.value},
                error_class=classify_code(code.value).value if event is EventType.TASK_FAIL else None))
        self.store.append(events)
        outcomes = self.steps.outcomes(events)
        return [n for n, e in zip(rows, events, strict=True) if outcomes[e["EventID"]]["Accepted"]]


def at_risk_event_id(row: Mapping[str, Any]) -> str:
    """The SLA_AT_RISK event id of the row's start: the same for every writer that finds it."""
    started = row["StartTime"]
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    key = "/".join(str(row[c]) for c in _START_KEY[:-1]) + "/" + started.isoformat()
    return str(uuid.uuid5(_NAMESPACE, key))


class Heartbeat:
    """A remote task's heartbeats while its runner polls: the first call logs one, later calls log one when
    ``interval_seconds`` have passed since the last (this process's monotonic clock). A heartbeat that cannot
    be written is logged and skipped: a missed one only brings the row nearer to being found stale."""

    def __init__(self, health: Health, key: StepKey, interval_seconds: float, log: Any) -> None:
        if not interval_seconds >= 0:
            raise ValidationError("heartbeat_interval_seconds", interval_seconds, "is a number of seconds, 0 or more")
        self.health, self.key, self.interval, self.log = health, key, interval_seconds, log
        self._last: float | None = None
        self._row: dict[str, Any] | None = None  # the running row, read at the first heartbeat
        self.sent = 0

    def __call__(self, remote_state: str, **details: Any) -> None:
        moment = time.monotonic()
        if self._last is not None and moment - self._last < self.interval:
            return
        self._last = moment
        try:
            self._row = self.health.heartbeat(self.key, remote_state, self.interval, row=self._row, **details)
            self.sent += self._row is not None
        except Exception as exc:  # the engine unreachable: the remote run goes on, and so does its poller
            self.log.warning(f"heartbeat not written: {scrub(str(exc))[:300]}")
