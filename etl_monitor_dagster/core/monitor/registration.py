"""Registration: organisations, projects, processes, tasks and parameters, upserted on their keys.

A first registration inserts; a later one updates only the descriptive columns given (None or ''
leaves a column as it is); CreatedOn/CreatedBy never change and parameter values never move here.
Every entry of a batch is checked before anything is written.

IsActive of a process or task is the operator's word after its first registration. ``is_active``
(the API's explicit value) always applies. ``catalogue_active`` (what a catalogue registers) applies
only to a new row, or when it differs from the CatalogueActive the row recorded from the previous
catalogue registration (the catalogue itself changed it); it is recorded in CatalogueActive either way,
so a row registered before that column existed (NULL) keeps its IsActive (docs/OWNERSHIP.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .. import schema as S
from .. import validate as v
from ..engine import concurrently
from ..enums import LoadFrequency, ParameterType, SourceType
from ..errors import NotFoundError, ValidationError
from . import statements as Q
from .store import Store

SYSDT = "SYSDT"

# Which value column holds each parameter type's value.
ACTIVE_COLUMN = {
    ParameterType.DELTA_DATE: "ValueDateTime",
    ParameterType.DELTA_ID: "ValueINT",
    ParameterType.FLAG: "ValueBIT",
    ParameterType.SYSTEM: "ValueDateTime",
}

# The columns a later registration may change, per table.
_DESCRIPTIVE = {
    S.ORGANISATION.name: ["OrganisationName", "OrganisationDescription", "IsActive"],
    S.PROJECT.name: ["OrganisationCode", "ProjectName", "ProjectDescription", "IsActive"],
    S.PROCESS.name: ["ProcessName", "ProcessDescription", "ProcessOwner", "LoadFrequency", "IsActive",
                     "CatalogueActive"],
    S.TASKS.name: [c for c in S.TASKS.column_names if c not in S.TASKS.key and c not in dict(S.AUDIT)],
    S.PARAMETERS.name: ["ParameterDescription"],
}


def given(field: str, value: object) -> str | None:
    """Optional text where '' means "not given", as in the seed's signatures."""
    return None if value == "" else v.optional_text(field, value)


def _optional_member(field: str, value: object, enum: type) -> Any:
    return None if value in (None, "") else v.member(field, value, enum).value


def _optional_boolean(field: str, value: object) -> bool | None:
    return None if value is None else v.boolean(field, value)


# The row builders take what a caller passed, unchecked (hence Any), and validate every value.
def organisation_row(organisation_code: Any, organisation_name: Any, organisation_description: Any = "",
                     is_active: Any = None) -> dict[str, Any]:
    return {
        "OrganisationCode": v.text("organisation_code", organisation_code),
        "OrganisationName": v.text("organisation_name", organisation_name),
        "OrganisationDescription": given("organisation_description", organisation_description),
        "IsActive": _optional_boolean("is_active", is_active),
    }


def project_row(project_code: Any, project_name: Any, project_description: Any = "", organisation_code: Any = "",
                is_active: Any = None) -> dict[str, Any]:
    return {
        "ProjectCode": v.text("project_code", project_code),
        "OrganisationCode": given("organisation_code", organisation_code),
        "ProjectName": v.text("project_name", project_name),
        "ProjectDescription": given("project_description", project_description),
        "IsActive": _optional_boolean("is_active", is_active),
    }


def process_row(project_code: Any, process_load: Any, name: Any = "", description: Any = "", owner: Any = "",
                load_frequency: Any = "D", is_active: Any = None, *, catalogue_active: Any = None) -> dict[str, Any]:
    return {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ProcessName": given("name", name),
        "ProcessDescription": given("description", description),
        "ProcessOwner": given("owner", owner),
        "LoadFrequency": _optional_member("load_frequency", load_frequency, LoadFrequency),
        "IsActive": _optional_boolean("is_active", is_active),
        "CatalogueActive": _optional_boolean("catalogue_active", catalogue_active),
    }


def task_row(project_code: Any, process_load: Any, task_id: Any, workflow_id: Any, sequence_id: Any,
             task_name: Any, source_type: Any = "", source_identifier: Any = "", source_system_code: Any = "",
             task_description: Any = "", load_frequency: Any = "D", task_mandatory: Any = True,
             file_name_mask: Any = "", file_extension: Any = "", in_file_path: Any = "", out_file_path: Any = "",
             sla_seconds: Any = None, is_active: Any = None, *, catalogue_active: Any = None) -> dict[str, Any]:
    row = {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "TaskID": v.integer("task_id", task_id),
        "WorkFlowID": v.integer("workflow_id", workflow_id),
        "SequenceID": v.integer("sequence_id", sequence_id),
        "TaskName": v.text("task_name", task_name),
        "TaskDescription": given("task_description", task_description),
        "SourceType": _optional_member("source_type", source_type, SourceType),
        "SourceIdentifier": given("source_identifier", source_identifier),
        "SourceSystemCode": given("source_system_code", source_system_code),
        "FileNameMask": given("file_name_mask", file_name_mask),
        "FileExtension": given("file_extension", file_extension),
        "InFilePath": given("in_file_path", in_file_path),
        "OutFilePath": given("out_file_path", out_file_path),
        "LoadFrequency": _optional_member("load_frequency", load_frequency, LoadFrequency),
        "TaskMandatory": v.boolean("task_mandatory", task_mandatory),
        "IsActive": _optional_boolean("is_active", is_active),
        "SlaSeconds": v.optional_integer("sla_seconds", sla_seconds, minimum=1),
        "CatalogueActive": _optional_boolean("catalogue_active", catalogue_active),
    }
    if row["WorkFlowID"] == 0 and (row["TaskID"], row["SequenceID"]) != (0, 0):
        raise ValidationError(
            "workflow_id", 0, "WorkFlowID 0 is the initiation task: it must have task_id=0 "
            f"and sequence_id=0 (got task_id={row['TaskID']}, sequence_id={row['SequenceID']})"
        )
    if row["WorkFlowID"] != 0 and row["SequenceID"] == 0:
        raise ValidationError("sequence_id", 0, "stage 0 (LOAD_GO) holds only the initiation task (WorkFlowID 0)")
    return row


def parameter_row(project_code: Any, process_load: Any, parameter_name: Any, parameter_type: Any, description: Any = "",
                  value_datetime: Any = None, value_int: Any = None, value_bit: Any = None) -> dict[str, Any]:
    ptype = v.member("parameter_type", parameter_type, ParameterType)
    name = v.text("parameter_name", parameter_name)
    if (name == SYSDT) != (ptype is ParameterType.SYSTEM):
        raise ValidationError("parameter_type", ptype.value,
                              "the SYSTEM type is reserved for, and required by, the parameter SYSDT")
    row = {
        "ProjectCode": v.text("project_code", project_code),
        "ProcessLoad": v.text("process_load", process_load),
        "ParameterName": name,
        "ParameterDescription": given("description", description),
        "ParameterType": ptype.value,
        "ValueINT": v.optional_integer("value_int", value_int, minimum=None),
        "ValueDateTime": v.optional_timestamp("value_datetime", value_datetime),
        "ValueBIT": None if value_bit is None else v.boolean("value_bit", value_bit),
    }
    check_value_matches_type(ptype, row["ValueDateTime"], row["ValueINT"], row["ValueBIT"])
    return row


def check_value_matches_type(ptype: ParameterType, value_datetime: Any, value_int: Any, value_bit: Any) -> None:
    given_values = {"ValueDateTime": value_datetime, "ValueINT": value_int, "ValueBIT": value_bit}
    for column, value in given_values.items():
        if value is not None and column != ACTIVE_COLUMN[ptype]:
            raise ValidationError(column, value, f"a {ptype.value} parameter keeps its value in "
                                                 f"{ACTIVE_COLUMN[ptype]}")


class Registry:
    """Upserts registrations in batches: one MERGE per table, none for a table the batch leaves as it is."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def register_many(
        self,
        organisations: Iterable[dict[str, Any]] = (),
        projects: Iterable[dict[str, Any]] = (),
        processes: Iterable[dict[str, Any]] = (),
        tasks: Iterable[dict[str, Any]] = (),
        parameters: Iterable[dict[str, Any]] = (),
    ) -> None:
        batches = {
            S.ORGANISATION: _rows("organisations", organisation_row, organisations),
            S.PROJECT: _rows("projects", project_row, projects),
            S.PROCESS: _rows("processes", process_row, processes),
            S.TASKS: _rows("tasks", task_row, tasks),
            S.PARAMETERS: _rows("parameters", parameter_row, parameters),
        }
        for table, rows in batches.items():
            _refuse_duplicate_keys(table, rows)
        self._check_organisations(batches[S.ORGANISATION], batches[S.PROJECT])
        self._check_processes(batches[S.PROCESS], batches[S.TASKS] + batches[S.PARAMETERS])
        # What is registered already under the batch's keys (and the stages, for tasks), read at once.
        reads: dict[str, Callable[[], list[dict[str, Any]]]] = {
            table.name: partial(self.store.rows_in, table.name, table.key[0], {r[table.key[0]] for r in rows})
            for table, rows in batches.items() if rows}
        if batches[S.TASKS]:
            reads[S.SEQUENCE.name] = partial(self.store.rows, S.SEQUENCE.name)
        found = concurrently(reads)
        self._check_stages(batches[S.TASKS], found.get(S.SEQUENCE.name, []))
        self._check_parameter_types(batches[S.PARAMETERS], found.get(S.PARAMETERS.name, []))
        audit = self.store.audit()
        for table, rows in batches.items():
            rows = _changing(table, _catalogue_active(rows, table, found.get(table.name, [])),
                             found.get(table.name, []))
            if rows:
                self.store.write(Q.upsert(table, _DESCRIPTIVE[table.name]), table, [{**r, **audit} for r in rows])

    def require_process(self, project_code: str, process_load: str) -> dict[str, Any]:
        rows = self.store.rows(S.PROCESS.name, {"ProjectCode": project_code, "ProcessLoad": process_load})
        if not rows:
            raise NotFoundError("process", {"project_code": project_code, "process_load": process_load},
                                "register it with register_process first")
        return rows[0]

    def _check_organisations(self, organisations: list[dict[str, Any]], projects: list[dict[str, Any]]) -> None:
        named = {r["OrganisationCode"] for r in projects if r["OrganisationCode"] is not None}
        missing = named - {r["OrganisationCode"] for r in organisations}
        if missing:
            missing -= {r["OrganisationCode"] for r in self.store.rows_in(S.ORGANISATION.name, "OrganisationCode",
                                                                          missing)}
        if missing:
            raise NotFoundError("organisation", {"organisation_code": sorted(missing)[0]},
                                "register it with register_organisation first")

    def _check_processes(self, processes: list[dict[str, Any]], owned: list[dict[str, Any]]) -> None:
        owners = {(r["ProjectCode"], r["ProcessLoad"]) for r in owned}
        missing = owners - {(r["ProjectCode"], r["ProcessLoad"]) for r in processes}
        if missing:
            found = self.store.rows_in(S.PROCESS.name, "ProjectCode", {p for p, _ in missing})
            missing -= {(r["ProjectCode"], r["ProcessLoad"]) for r in found}
        if missing:
            project_code, process_load = sorted(missing)[0]
            raise NotFoundError("process", {"project_code": project_code, "process_load": process_load},
                                "register it with register_process first")

    def _check_stages(self, tasks: list[dict[str, Any]], sequence: list[dict[str, Any]]) -> None:
        stages = {r["SequenceID"] for r in sequence}
        for row in tasks:
            if row["SequenceID"] not in stages:
                raise NotFoundError("stage", {"sequence_id": row["SequenceID"]},
                                    "seeded stages are 0-6; add custom stages (>= 10) to ETLconfigSequence first")

    def _check_parameter_types(self, parameters: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
        known = {(r["ProjectCode"], r["ProcessLoad"], r["ParameterName"]): r["ParameterType"] for r in found}
        for row in parameters:
            registered = known.get((row["ProjectCode"], row["ProcessLoad"], row["ParameterName"]))
            if registered not in (None, row["ParameterType"]):
                raise ValidationError("parameter_type", row["ParameterType"],
                                      f"parameter {row['ParameterName']!r} is already registered as {registered}")


def _catalogue_active(rows: list[dict[str, Any]], table: S.Table,
                      registered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the IsActive a catalogue's ``catalogue_active`` sets: the catalogue's value for a new
    row or one whose recorded CatalogueActive differs from it; else None (the row's IsActive is kept).
    An explicit ``is_active`` is left as given."""
    if "CatalogueActive" not in table.column_names:
        return rows
    by_key = {tuple(r[c] for c in table.key): r for r in registered}
    resolved = []
    for row in rows:
        said = row["CatalogueActive"]
        if said is not None and row["IsActive"] is None:
            old = by_key.get(tuple(row[c] for c in table.key))
            if old is None or old["CatalogueActive"] not in (None, said):
                row = {**row, "IsActive": said}
        resolved.append(row)
    return resolved


def _changing(table: S.Table, rows: list[dict[str, Any]], registered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the upsert would insert or change (a read costs a fraction of a MERGE, and a run's
    initiation re-registers a catalogue that is usually in place already)."""
    by_key = {tuple(r[c] for c in table.key): r for r in registered}
    descriptive = _DESCRIPTIVE[table.name]
    return [r for r in rows if (old := by_key.get(tuple(r[c] for c in table.key))) is None
            or any(r[c] is not None and r[c] != old[c] for c in descriptive)]


def _rows(batch: str, builder: Callable[..., dict[str, Any]], entries: Iterable[dict[str, Any]]) -> list[dict]:
    rows = []
    for index, entry in enumerate(entries):
        try:
            rows.append(builder(**entry))
        except TypeError as exc:  # an unknown or missing keyword in a batch entry
            raise ValidationError(f"{batch}[{index}]", entry, str(exc)) from None
    return rows


def _refuse_duplicate_keys(table: S.Table, rows: list[dict[str, Any]]) -> None:
    seen: set[tuple] = set()
    for row in rows:
        key = tuple(row[c] for c in table.key)
        if key in seen:
            raise ValidationError(", ".join(table.key), key, f"appears twice in one {table.name} batch")
        seen.add(key)
