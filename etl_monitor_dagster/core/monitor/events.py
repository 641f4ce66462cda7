"""The rows of ETLEventLog: every transition and receipt of the monitor, built here and nowhere else.

A step transition carries the whole step row after it and its ``Basis``: the ``LastEventID`` of the row
its writer read (or started). The views of ``live_views`` fold these rows into what readers see.
"""

from __future__ import annotations

from typing import Any

from .. import schema as S
from ..enums import EventType, LogLevel
from ..receipts import receipt

_STEP_COLUMNS = [c for c in S.STEPS.column_names if c != "LastEventID"]


def step_event(event: EventType, step: dict[str, Any], *, basis: str | None, refused: bool = False,
               level: LogLevel = LogLevel.INFO, parameter: dict[str, Any] | None = None,
               **details: Any) -> dict[str, Any]:
    """A transition of ``step`` (the row after it), following ``basis``; ``details`` go to its receipt."""
    if refused:
        details["refused"] = True
    row = receipt(event, project_code=step["ProjectCode"], process_load=step["ProcessLoad"],
                  processing_date=step["ProcessingDate"], execution_id=step["ExecutionID"], step=step,
                  level=level, basis=basis, **details)
    return from_receipt(row, step=step, basis=basis, refused=refused, parameter=parameter)


def generated(step: dict[str, Any]) -> dict[str, Any]:
    """A step row queued by a generation: the row's base, no receipt."""
    row = receipt(EventType.STEP_GENERATE, project_code=step["ProjectCode"], process_load=step["ProcessLoad"],
                  processing_date=step["ProcessingDate"], execution_id=step["ExecutionID"], step=step)
    return from_receipt(row, step=step, receipt=False)


def from_receipt(row: dict[str, Any], *, step: dict[str, Any] | None = None, basis: str | None = None,
                 refused: bool = False, receipt: bool = True, parameter: dict[str, Any] | None = None,
                 deliberate: bool = False) -> dict[str, Any]:
    """The event of a receipt (an ETLsysLogs row without ``_ID``): about ``step`` if given, moving
    ``parameter`` (ParameterName and the value columns it sets) if given."""
    event: dict[str, Any] = dict.fromkeys(S.EVENTS.column_names)
    event.update({
        "EventID": row["CorrelationID"], "EventType": row["OperationName"], "Basis": basis, "Refused": refused,
        "Receipt": receipt, "ProcessingDate": row["ProcessingDate"], "ProjectCode": row["ProjectCode"],
        "ProcessLoad": row["ProcessLoad"], "ExecutionID": row["ExecutionID"], "SourceType": row["SourceType"],
        "RunID": row["RunID"], "ActivityName": row["ActivityName"], "Level": row["Level"],
        "LogTimeUTC": row["LogTimeUTC"], "Message": row["Message"], "LastUpdatedOn": row["LogTimeUTC"],
    })
    if step is not None:
        event.update({c: step.get(c) for c in _STEP_COLUMNS})
    if parameter is not None:
        values = {c: parameter[c] for c in ("ValueINT", "ValueDateTime", "ValueBIT") if c in parameter}
        event.update({"ParameterName": parameter["ParameterName"], **values,
                      "ValueColumns": ",".join(values) or None, "Deliberate": deliberate})
    return event
