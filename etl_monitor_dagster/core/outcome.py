"""The outcome of one task run: the contract between whoever runs a task and whoever records its end.

The run policy returns a ``TaskOutcome``; the Dagster layer carries it as materialisation metadata
(``metadata()``), and its hooks and reconciliation read it back (``from_metadata``) to record the end
with ``record_end``. The metadata keys are ``Key``'s, nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from .catalogue import ProcessSpec, TaskSpec
from .enums import LogType, Status
from .error_class import ErrorClass
from .monitor import ETLMonitorFramework
from .schema import STEPS


class Outcome(StrEnum):
    """What a run of a task came to."""

    DONE = "DONE"
    FAIL = "FAIL"  # an optional task's failure: recorded, later stages go on
    SKIPPED = "SKIPPED"  # not run: DONE in an earlier attempt, inactive or force-skipped


class Key(StrEnum):
    """The metadata keys of a task's outcome."""

    OUTCOME = "monitor_outcome"
    EXECUTION_ID = "execution_id"
    PROCESSING_DATE = "processing_date"
    TRY = "try"  # the orchestrator's try in this execution, from 1
    ATTEMPTS = "attempts"  # the monitor's Attempts of the row
    SUMMARY = "summary"  # DONE: what LogMessage records
    ERROR = "error"  # FAIL: LogMessage
    ERROR_CODE = "error_code"  # FAIL: LogCode
    ERROR_CLASS = "error_class"  # FAIL: the ErrorClass of the failure
    ROWS_READ = "rows_read"
    ROWS_WRITTEN = "rows_written"
    NEW_WATERMARK = "new_watermark"
    PREVIOUS_WATERMARK = "previous_watermark"  # the watermark's active value before the task moved it
    SECONDS = "seconds"  # the work's own duration, monitor writes excluded
    STEPS = "generated_steps"  # the initiation's: the rows it generated, handed to the task steps (``handover``)


@dataclass(frozen=True)
class TaskOutcome:
    """One run's outcome; ``facts`` holds every other figure (the runner's metadata too)."""

    outcome: Outcome
    summary: str | None = None
    error: str | None = None
    error_code: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    error_class: ErrorClass | None = None

    @property
    def status(self) -> Status | None:
        """The monitor status this outcome ends the row with; None for SKIPPED."""
        return None if self.outcome is Outcome.SKIPPED else Status(self.outcome.value)

    @property
    def message(self) -> str | None:
        return self.error if self.outcome is Outcome.FAIL else self.summary

    def metadata(self) -> dict[str, Any]:
        """Plain metadata (None values left out) that ``from_metadata`` reads back."""
        own: dict[str, Any] = {Key.OUTCOME: self.outcome.value, Key.SUMMARY: self.summary, Key.ERROR: self.error,
                               Key.ERROR_CODE: self.error_code,
                               Key.ERROR_CLASS: self.error_class.value if self.error_class else None}
        return {str(k): v for k, v in {**self.facts, **own}.items() if v is not None}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TaskOutcome | None:
        """The outcome a task's metadata carries (values raw or wrapped, as Dagster stores them)."""
        raw = {k: getattr(v, "value", v) for k, v in metadata.items()}
        if raw.get(Key.OUTCOME) not in set(Outcome):
            return None
        own = {Key.OUTCOME, Key.SUMMARY, Key.ERROR, Key.ERROR_CODE, Key.ERROR_CLASS}
        error_class = raw.get(Key.ERROR_CLASS)
        return cls(Outcome(raw[Key.OUTCOME]), raw.get(Key.SUMMARY), raw.get(Key.ERROR), raw.get(Key.ERROR_CODE),
                   {k: v for k, v in raw.items() if k not in own},
                   ErrorClass(error_class) if error_class in set(ErrorClass) else None)


def record_end(monitor: ETLMonitorFramework, process: ProcessSpec, task: TaskSpec, execution_id: str,
               processing_date: date | None, outcome: TaskOutcome, at: datetime | None = None) -> None:
    """End the task's row with the outcome's status (idempotent); SKIPPED leaves the row alone."""
    if outcome.status is None:
        return
    failed = outcome.status is Status.FAIL
    monitor.end_task(execution_id, process.project, process.process, task_id=task.id, sequence_id=task.stage,
                     workflow_id=task.workflow, processing_date=processing_date, status=outcome.status,
                     log_message=outcome.message, log_code=outcome.error_code if failed else None,
                     log_type=LogType.ERROR if failed else None, timestamp=at,
                     error_class=outcome.error_class if failed else None)


def handover(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Generated step rows as JSON values (dates and times in ISO 8601), for ``handed`` to read back."""
    return [{k: v.isoformat() if isinstance(v, date) else v for k, v in r.items()} for r in rows]


def handed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step rows ``handover`` carried, with their dates and times back."""
    def value(column: str, v: Any) -> Any:
        if v is None or column not in _STEP_TYPES:
            return v
        if _STEP_TYPES[column] == "DATE":
            return date.fromisoformat(v)
        return datetime.fromisoformat(v) if _STEP_TYPES[column] == "TIMESTAMP" else v

    return [{k: value(k, v) for k, v in r.items()} for r in rows]


_STEP_TYPES = {c: STEPS.base_type(c) for c in STEPS.column_names}
