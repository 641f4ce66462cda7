"""Receipts: the JSON event appended to ETLsysLogs for every status transition (seed 001's audit trail).

Each receipt carries its own ``event_id`` (also stored as CorrelationID), fixed before any write
is attempted, so a retried append can be recognised and is never doubled. Its free-text fields
(``FREE_TEXT``: errors, reasons, remarks) are scrubbed of credentials before they are stored.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from .enums import EventType, LogLevel
from .scrub import scrub

SOURCE_TYPE = "ETL_MONITOR"
# The details that carry an error's or a person's words, not the monitor's own values: every text in them
# (a nested error's message too) is scrubbed.
FREE_TEXT = frozenset({"error", "message", "reason", "remark", "run_error", "log_message", "undelivered"})


def _jsonable(value: Any) -> Any:
    """``value`` for JSON: every timestamp ISO 8601 with its offset (the engine's naive ones are UTC), however
    deep in the event, so all receipts carry one format."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def receipt(
    event: EventType,
    *,
    project_code: str,
    process_load: str,
    processing_date: date | None = None,
    execution_id: str | None = None,
    step: dict[str, Any] | None = None,
    level: LogLevel = LogLevel.INFO,
    event_id: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """One ETLsysLogs row (without ``_ID``) whose Message is the JSON event.

    ``step`` is the ETLProcessingSteps row the event is about; ``details`` go into the event as is
    (status, previous_status, timings, error, watermark values, ...), those named in ``FREE_TEXT``
    scrubbed. ``event_id`` fixes the event id
    (a deterministic one lets a writer recognise its own receipt); by default a new UUID.
    """
    step = step or {}
    event_id = event_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    payload = {
        "event_id": event_id,
        "event_type": event.value,
        "project_code": project_code,
        "process_load": process_load,
        "processing_date": processing_date,
        "execution_id": execution_id,
        "workflow_id": step.get("WorkFlowID"),
        "sequence_id": step.get("SequenceID"),
        "task_id": step.get("TaskID"),
        "task_name": step.get("TaskName"),
        "attempt": step.get("Attempts"),
        "source_run_id": step.get("SourceRunID"),
        **{k: _scrubbed(v) if k in FREE_TEXT else v for k, v in details.items()},
        "logged_at": now,
    }
    message = json.dumps(
        {k: _jsonable(v) for k, v in payload.items() if v is not None},
        ensure_ascii=False,
        default=str,
    )
    return {
        "ProcessingDate": processing_date,
        "ProjectCode": project_code,
        "ProcessLoad": process_load,
        "SourceType": step.get("SourceType") or SOURCE_TYPE,
        "RunID": step.get("SourceRunID"),
        "ExecutionID": execution_id,
        "CorrelationID": event_id,
        "PipelineName": process_load,
        "ActivityName": step.get("TaskName"),
        "OperationName": event.value,
        "Level": int(level),
        "LogTimeUTC": now,
        "Message": message,
    }
