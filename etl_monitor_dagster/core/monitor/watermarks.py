"""Parameter values: DELTA_DATE/DELTA_ID watermarks, FLAGs, SYSDT, and the processing modes that set them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from .. import schema as S
from ..enums import EventType, ParameterType
from ..errors import NotFoundError, ValidationError
from ..receipts import receipt
from . import statements as Q
from .registration import ACTIVE_COLUMN, SYSDT, Registry, check_value_matches_type
from .store import Store, now

_VALUES = ("ValueINT", "ValueDateTime", "ValueBIT")


class Parameters:
    """Reads and moves the values of ETLconfigParameters; every move leaves a receipt."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def of(self, project_code: str, process_load: str, name: str | None = None) -> list[dict[str, Any]]:
        return self.store.rows(S.PARAMETERS.name, {"ProjectCode": project_code, "ProcessLoad": process_load,
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
                new_int_value: int | None) -> None:
        """Move a DELTA_ID or override a DELTA_DATE (exactly one value given, of the parameter's type)."""
        param = self.one(project_code, process_load, name)
        ptype = ParameterType(param["ParameterType"])
        if (new_int_value is None) == (new_datetime_value is None):
            raise ValidationError("new_datetime_value/new_int_value", None, "give exactly one of them")
        if ptype is ParameterType.DELTA_ID and new_int_value is not None:
            values: dict[str, Any] = {"ValueINT": new_int_value}
        elif ptype is ParameterType.DELTA_DATE and new_datetime_value is not None:
            values = {"ValueDateTime": new_datetime_value}
        else:
            given = "new_int_value" if new_int_value is not None else "new_datetime_value"
            raise ValidationError(given, new_int_value if new_int_value is not None else new_datetime_value,
                                  f"parameter {name!r} is {ptype.value}: DELTA_ID takes new_int_value, "
                                  "DELTA_DATE takes new_datetime_value")
        self.store.append_receipts(self.move(project_code, process_load, name, values,
                                             previous=param[ACTIVE_COLUMN[ptype]]))

    def move(self, project_code: str, process_load: str, name: str, values: dict[str, Any], *,
             previous: Any = None, step: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Set some value columns of one parameter; returns the WATERMARK_MOVE receipt to append."""
        self._write(project_code, process_load, {name: values})
        step = step or {}
        return [receipt(EventType.WATERMARK_MOVE, project_code=project_code, process_load=process_load,
                        processing_date=step.get("ProcessingDate"), execution_id=step.get("ExecutionID"),
                        step=step, parameter_name=name, previous_value=previous,
                        new_value=next(iter(values.values())))]

    def set_mode(self, project_code: str, process_load: str, is_bulk_mode: bool, is_historic_mode: bool,
                 processing_date: date | None, parameter_name: str | None, values: dict[str, Any]) -> None:
        """Historic (SYSDT = date) or live (SYSDT = NULL); bulk resets every watermark; with
        ``parameter_name``, set just that parameter's three values."""
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
        if changes:
            self._write(project_code, process_load, changes)
        self.store.append_receipts([receipt(
            EventType.MODE_CHANGE, project_code=project_code, process_load=process_load, **mode,
            parameters={name: {c: _iso(x) for c, x in vals.items()} for name, vals in changes.items()},
        )])

    def _write(self, project_code: str, process_load: str, changes: dict[str, dict[str, Any]]) -> None:
        """One MERGE setting, per parameter, just the value columns named in ``changes``."""
        moment = now()
        rows = [{"ProjectCode": project_code, "ProcessLoad": process_load, "ParameterName": name,
                 "LastUpdatedOn": moment, "LastUpdatedBy": self.store.updated_by, "Touch": ",".join(vals),
                 **{c: vals.get(c) for c in _VALUES}} for name, vals in changes.items()]
        columns = ["ProjectCode", "ProcessLoad", "ParameterName", *_VALUES, "LastUpdatedOn", "LastUpdatedBy"]
        self.store.write(Q.SET_PARAMETERS, S.PARAMETERS, rows, columns=columns, extra=[("Touch", "STRING")])


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value
