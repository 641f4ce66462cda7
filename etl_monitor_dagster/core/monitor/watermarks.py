"""Parameter values: DELTA_DATE/DELTA_ID watermarks, FLAGs, SYSDT, and the processing modes that set them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ..enums import EventType, ParameterType
from ..errors import NotFoundError, ValidationError
from ..receipts import receipt
from .events import from_receipt
from .registration import ACTIVE_COLUMN, SYSDT, Registry, check_value_matches_type
from .store import Store


class Parameters:
    """Reads and moves the values of ETLconfigParameters; every move leaves a receipt."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def of(self, project_code: str, process_load: str, name: str | None = None) -> list[dict[str, Any]]:
        """The process's parameters with every logged move (``v_liveParameters``)."""
        return self.store.rows("v_liveParameters", {"ProjectCode": project_code, "ProcessLoad": process_load,
                                                    "ParameterName": name})

    def one(self, project_code: str, process_load: str, name: str) -> dict[str, Any]:
        rows = self.of(project_code, process_load, name)
        if not rows:
            raise NotFoundError("parameter", {"project_code": project_code, "process_load": process_load,
                                              "parameter_name": name}, "register it with register_parameter first")
        return rows[0]

    def processing_date(self, project_code: str, process_load: str, given: date | None) -> date:
        """The given date, else SYSDT (historic mode), else today (live)."""
        if given is not None:
            return given
        sysdt = self.of(project_code, process_load, SYSDT)
        if sysdt and sysdt[0]["ValueDateTime"] is not None:
            return sysdt[0]["ValueDateTime"].date()
        return date.today()

    def active_value(self, project_code: str, process_load: str, name: str) -> datetime | int | bool | None:
        param = self.one(project_code, process_load, name)
        return param[ACTIVE_COLUMN[ParameterType(param["ParameterType"])]]

    def advance(self, project_code: str, process_load: str, name: str, new_datetime_value: datetime | None,
                new_int_value: int | None, step: dict[str, Any] | None = None) -> None:
        """Move a DELTA_ID or a DELTA_DATE forward (exactly one value given, of the parameter's type); ``step``
        is the row of the task that moved it, named in the receipt (execution, processing date, task).

        A watermark never moves backwards here: a value below the current one is logged as refused and
        changes nothing (``set_processing_mode(parameter_name=...)`` rewinds deliberately)."""
        param = self.one(project_code, process_load, name)
        ptype = ParameterType(param["ParameterType"])
        if (new_int_value is None) == (new_datetime_value is None):
            raise ValidationError("new_datetime_value/new_int_value", None, "give exactly one of them")
        value: int | datetime
        if ptype is ParameterType.DELTA_ID and new_int_value is not None:
            column, value = "ValueINT", new_int_value
        elif ptype is ParameterType.DELTA_DATE and new_datetime_value is not None:
            column, value = "ValueDateTime", new_datetime_value
        else:
            given = "new_int_value" if new_int_value is not None else "new_datetime_value"
            raise ValidationError(given, new_int_value if new_int_value is not None else new_datetime_value,
                                  f"parameter {name!r} is {ptype.value}: DELTA_ID takes new_int_value, "
                                  "DELTA_DATE takes new_datetime_value")
        current = param[column]
        refused = current is not None and _comparable(value) < _comparable(current)
        details: dict[str, Any] = {"refused": True, "reason": "a watermark never moves backwards: rewind it "
                                   "with set_processing_mode(parameter_name=...)"} if refused else {}
        step = step or {}
        row = receipt(EventType.WATERMARK_MOVE, project_code=project_code, process_load=process_load,
                      processing_date=step.get("ProcessingDate"), execution_id=step.get("ExecutionID"), step=step,
                      parameter_name=name, previous_value=param[ACTIVE_COLUMN[ptype]], new_value=value, **details)
        self.store.append([from_receipt(row, refused=refused, parameter={"ParameterName": name, column: value})])

    def move_receipt(self, project_code: str, process_load: str, name: str, value: datetime, *, previous: Any,
                     step: dict[str, Any], cause: str) -> dict[str, Any]:
        """The WATERMARK_MOVE receipt of a DONE (``cause``), which itself carries the move: who moved it
        (execution, date, task), from what and to what."""
        return from_receipt(receipt(EventType.WATERMARK_MOVE, project_code=project_code, process_load=process_load,
                                    processing_date=step.get("ProcessingDate"), execution_id=step.get("ExecutionID"),
                                    step=step, parameter_name=name, previous_value=previous, new_value=value),
                            basis=cause)

    def set_mode(self, project_code: str, process_load: str, is_bulk_mode: bool, is_historic_mode: bool,
                 processing_date: date | None, parameter_name: str | None, values: dict[str, Any]) -> None:
        """Historic (SYSDT = date) or live (SYSDT = NULL); bulk resets every watermark; with
        ``parameter_name``, set just that parameter's three values (a deliberate rewind too)."""
        self.registry.require_process(project_code, process_load)
        if parameter_name is not None:
            param = self.one(project_code, process_load, parameter_name)
            check_value_matches_type(ParameterType(param["ParameterType"]), values.get("ValueDateTime"),
                                     values.get("ValueINT"), values.get("ValueBIT"))
            changes = {param["ParameterName"]: values}
            mode: dict[str, Any] = {"parameter_name": parameter_name}
        else:
            if is_historic_mode and processing_date is None:
                raise ValidationError("processing_date", None, "historic mode needs the date to process")
            changes = {}
            for p in self.of(project_code, process_load):
                ptype = ParameterType(p["ParameterType"])
                if ptype is ParameterType.SYSTEM:
                    changes[p["ParameterName"]] = {"ValueDateTime": _midnight(processing_date) if is_historic_mode
                                                   else None}
                elif is_bulk_mode and ptype is ParameterType.DELTA_DATE:
                    changes[p["ParameterName"]] = {"ValueDateTime": None}
                elif is_bulk_mode and ptype is ParameterType.DELTA_ID:
                    changes[p["ParameterName"]] = {"ValueINT": 0}
            if is_historic_mode and SYSDT not in changes:
                raise NotFoundError("parameter", {"project_code": project_code, "process_load": process_load,
                                                  "parameter_name": SYSDT},
                                    "historic mode sets SYSDT: register it (type SYSTEM) first")
            mode = {"historic": is_historic_mode, "bulk": is_bulk_mode, "processing_date": processing_date}
        row = receipt(EventType.MODE_CHANGE, project_code=project_code, process_load=process_load, **mode,
                      parameters={name: {c: _iso(x) for c, x in vals.items()} for name, vals in changes.items()})
        # One commit: the receipt, and one event per parameter set (the same event id prefix, no receipt).
        events = [from_receipt(row)]
        for i, (name, vals) in enumerate(changes.items()):
            events.append(from_receipt({**row, "CorrelationID": f"{row['CorrelationID']}/{i}"}, receipt=False,
                                       parameter={"ParameterName": name, **vals}, deliberate=True))
        self.store.append(events)


def _comparable(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value
