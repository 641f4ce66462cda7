"""Write the processes registered in the ETLconfig tables out as catalogue YAML files.

A team that registered its processes with the seed framework (or ``register_*``) gets a catalogue,
hence Dagster assets, without retyping them. Every file is checked by the catalogue's own loader
before any is written: either every file is written, or none is and ``CatalogueErrors`` lists every
problem as ``file: entry: problem``.

>>> export_catalogue(monitor, "catalogue", project_code="HR", compute={"serverless": True})  # doctest: +SKIP
[PosixPath('catalogue/hr__employee_master.yaml')]
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .catalogue import (
    DATA_FACTORY,
    CatalogueError,
    CatalogueErrors,
    ComputeSpec,
    FactorySpec,
    ProcessSpec,
    check_catalogue,
    dagster_name,
    load_process,
    parse_process,
)
from .engine import collect
from .enums import LoadFrequency, SourceType
from .errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from .monitor import ETLMonitorFramework

REGISTRY = ("ETLconfigProcess", "ETLconfigTasks", "ETLconfigParameters")
FIRST_CUSTOM_STAGE = 10
# An error about one entry of a list ("tasks[3] (Load).source_type"): that entry can be set aside.
_LISTED = re.compile(r"^(tasks|parameters|stages)\[(\d+)\]")
# Process keys with a default: one with a problem (a seed LoadFrequency 'Q') can be set aside too.
_OPTIONAL = ("name", "description", "owner", "frequency", "active")
# YAML line breaks that PyYAML's single-quoted style loses (NEL reads back as a space).
_BREAKS = ("\x85", "\u2028", "\u2029")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Row = dict[str, Any]
Key = tuple[str, str]


def export_catalogue(
    monitor: ETLMonitorFramework,
    directory: Path | str,
    *,
    project_code: str | None = None,
    process_load: str | None = None,
    compute: Mapping[str, Any] | None = None,
    factory: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write one catalogue file per registered process into ``directory``; returns the files written.

    ``project_code`` and ``process_load`` narrow the export. ``compute`` (``{"serverless": True}`` or
    ``{"existing_cluster_id": "..."}``) becomes the default compute of processes with DBX_NOTEBOOK
    tasks; ``factory`` (``{"subscription_id", "resource_group", "name"}``) the data factory of
    processes with ADF_PIPELINE or DATAFLOW tasks. Raises ``CatalogueErrors`` naming every problem,
    writing nothing, when a process cannot be expressed as a valid catalogue; never overwrites a file.
    """
    directory = Path(directory)
    compute = _checked("compute", compute, ComputeSpec)
    factory = _checked("factory", factory, FactorySpec)
    registry = _read(monitor, project_code, process_load)
    header = _header(monitor)
    documents = {
        directory / name: _document(process, registry.tasks.get(key, []), registry.parameters.get(key, []),
                                    registry.stages, compute, factory)
        for (key, process), name in zip(registry.processes.items(), _file_names(registry.processes), strict=True)
    }
    texts, problems = _validate(directory, header, documents)
    if problems:
        raise CatalogueErrors(problems)
    return _write(directory, texts)


def _checked(name: str, value: Mapping[str, Any] | None, spec: type[BaseModel]) -> dict[str, Any] | None:
    """A ``compute`` or ``factory`` argument, checked once here rather than reported in every file."""
    if value is None:
        return None
    try:
        spec.model_validate(value)
    except PydanticValidationError as exc:
        raise ValidationError(name, value, exc.errors()[0]["msg"]) from None
    return dict(value)


# ---------------------------------------------------------------------- reading the tables


@dataclass(frozen=True)
class _Registry:
    """The selected processes, their tasks and parameters by process, and the custom stages by id."""

    processes: dict[Key, Row]
    tasks: dict[Key, list[Row]]
    parameters: dict[Key, list[Row]]
    stages: dict[int, Row]


def _read(monitor: ETLMonitorFramework, project_code: str | None, process_load: str | None) -> _Registry:
    """The registry rows of the selected processes, filtered in the query plan (values never in SQL text)."""
    for table in (*REGISTRY, "ETLconfigSequence"):
        if not monitor.engine.table_exists(monitor.table_name(table)):
            raise NotFoundError("monitor table", {"table": monitor.table_name(table)},
                                "create the tables first: python -m etl_monitor_dagster setup")
    where = {"ProjectCode": project_code, "ProcessLoad": process_load}
    process_rows, task_rows, parameter_rows = (
        collect(monitor.engine, monitor.spark.table(monitor.table_name(table)), where,
                ["ProjectCode", "ProcessLoad"]) for table in REGISTRY)
    if not process_rows and (project_code or process_load):
        raise NotFoundError("process", {"project_code": project_code, "process_load": process_load},
                            "nothing registered in ETLconfigProcess matches")
    sequence = monitor.spark.table(monitor.table_name("ETLconfigSequence"))
    stages = collect(monitor.engine, sequence.where(sequence["SequenceID"] >= FIRST_CUSTOM_STAGE))
    return _Registry({_key(r): r for r in process_rows}, _by_process(task_rows), _by_process(parameter_rows),
                     {r["SequenceID"]: r for r in stages})


def _key(row: Row) -> Key:
    return row["ProjectCode"], row["ProcessLoad"]


def _by_process(rows: Iterable[Row]) -> dict[Key, list[Row]]:
    grouped: dict[Key, list[Row]] = {}
    for row in rows:
        grouped.setdefault(_key(row), []).append(row)
    return grouped


# ---------------------------------------------------------------------- rendering


def _file_names(processes: Mapping[Key, Row]) -> list[str]:
    """``project__process.yaml`` per process; a hash of the codes separates names that would clash."""
    bases = [f"{dagster_name(project)}__{dagster_name(process)}" for project, process in processes]
    names = []
    for (project, process), base in zip(processes, bases, strict=True):
        if bases.count(base) > 1:  # e.g. HR/DAILY and hr/daily, or codes with no Latin letters
            base += "_" + hashlib.sha1(f"{project}\0{process}".encode()).hexdigest()[:8]
        names.append(base + ".yaml")
    return names


def _document(process: Row, tasks: list[Row], parameters: list[Row], stages: Mapping[int, Row],
              compute: Mapping[str, Any] | None, factory: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalogue mapping of one process, keys in the catalogue's order, defaults left out."""
    frequency = _text(process["LoadFrequency"]) or LoadFrequency.DAILY.value
    document: dict[str, Any] = {"project": process["ProjectCode"], "process": process["ProcessLoad"]}
    _put(document, "name", _text(process["ProcessName"]))
    _put(document, "description", _text(process["ProcessDescription"]))
    _put(document, "owner", _text(process["ProcessOwner"]))
    _put(document, "frequency", frequency, LoadFrequency.DAILY.value)
    _put(document, "active", process["IsActive"] is not False, True)
    if compute and any(t["SourceType"] == SourceType.DBX_NOTEBOOK.value for t in tasks):
        document["compute"] = dict(compute)
    if factory and any(t["SourceType"] in DATA_FACTORY for t in tasks):
        document["factory"] = dict(factory)
    used = sorted({t["SequenceID"] for t in tasks if t["SequenceID"] >= FIRST_CUSTOM_STAGE})
    # a used stage missing from ETLconfigSequence stays undeclared: the loader names the task
    _put(document, "stages", [_stage(stages[s]) for s in used if s in stages], [])
    _put(document, "parameters", [_parameter(p) for p in sorted(parameters, key=lambda p: p["ParameterName"])], [])
    document["tasks"] = [_task(t, frequency) for t in
                         sorted(tasks, key=lambda t: (t["WorkFlowID"], t["SequenceID"], t["TaskID"]))]
    return document


def _stage(row: Row) -> dict[str, Any]:
    stage = {"id": row["SequenceID"]}
    _put(stage, "code", _text(row["SequenceCode"]))
    _put(stage, "name", _text(row["SequenceName"]))
    return stage


def _parameter(row: Row) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": row["ParameterName"]}
    _put(parameter, "type", _text(row["ParameterType"]))
    _put(parameter, "description", _text(row["ParameterDescription"]))
    return parameter


def _task(row: Row, process_frequency: str) -> dict[str, Any]:
    task: dict[str, Any] = {"id": row["TaskID"], "workflow": row["WorkFlowID"], "stage": row["SequenceID"]}
    for key, column in (("name", "TaskName"), ("source_type", "SourceType"), ("source", "SourceIdentifier"),
                        ("description", "TaskDescription"), ("watermark", "SourceSystemCode")):
        _put(task, key, _text(row[column]))
    if (row["WorkFlowID"], row["TaskID"]) == (0, 0):  # the seed's notebooks register it without a source type
        task.setdefault("source_type", SourceType.NONE.value)
    _put(task, "frequency", _text(row["LoadFrequency"]), process_frequency)  # equal: it inherits
    _put(task, "mandatory", row["TaskMandatory"] is True, False)  # the seed's DDL: NULL = not mandatory
    _put(task, "active", row["IsActive"] is not False, True)
    _put(task, "sla_seconds", row.get("SlaSeconds"))
    for key, column in (("file_name_mask", "FileNameMask"), ("file_extension", "FileExtension"),
                        ("in_file_path", "InFilePath"), ("out_file_path", "OutFilePath")):
        _put(task, key, _text(row[column]))
    return task


def _text(value: Any) -> Any:
    """None for NULL and for the seed's '' (or blanks) meaning "not given"; other values as they are."""
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _put(mapping: dict[str, Any], key: str, value: Any, default: Any = None) -> None:
    if value is not None and value != default:
        mapping[key] = value


def _header(monitor: ETLMonitorFramework) -> str:
    moment = datetime.now(UTC).isoformat(timespec="seconds")
    tables = "".join(f"#   {monitor.table_name(t)}\n" for t in (*REGISTRY, "ETLconfigSequence"))
    return (f"# Exported at {moment} from:\n{tables}"
            f"# Parameter values are not exported: they stay in {monitor.table_name('ETLconfigParameters')},\n"
            "# and registering this file never overwrites them (it declares names, types and descriptions).\n")


class _Dumper(yaml.SafeDumper):
    """Safe YAML whose strings read back exactly."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(c in value for c in _BREAKS) else None  # double quotes escape them
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def _render(header: str, document: Mapping[str, Any]) -> str:
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


# ---------------------------------------------------------------------- validating and writing


def _validate(directory: Path, header: str,
              documents: Mapping[Path, dict[str, Any]]) -> tuple[dict[Path, str], list[CatalogueError]]:
    """Each file's text, and every problem of every file and across files."""
    texts: dict[Path, str] = {}
    specs: list[ProcessSpec] = []
    problems: list[CatalogueError] = []
    if directory.exists() and not directory.is_dir():
        problems.append(CatalogueError(directory, "folder", "is a file: give a folder to export to"))
    for path, document in documents.items():
        spec, found = _check_file(path, header, document)
        if path.exists():
            found.insert(0, CatalogueError(path, "file", "already exists: an export never overwrites a file; "
                                                         "move it away or export to another folder"))
        elif spec is not None:  # even with entries set aside: its name may still collide
            specs.append(spec)
        problems += found
        texts[path] = _render(header, document)
    return texts, problems + _collisions(_existing(directory), specs)


def _check_file(path: Path, header: str, document: dict[str, Any]) -> tuple[ProcessSpec | None, list[CatalogueError]]:
    """Load the rendered file with the catalogue's loader, as if it were at ``path``: its problems, and
    the process it declares (None when the file as a whole is invalid).

    The loader stops at the first problem, so an entry with a problem is set aside and the file
    loaded again, until no problem is left: every problem is found, not just the first.
    """
    document = dict(document)
    kept = {kind: list(range(len(document.get(kind, ())))) for kind in ("tasks", "parameters", "stages")}
    problems: list[CatalogueError] = []
    initiation_set_aside = False
    while True:
        text = _render(header, document)
        try:
            spec = parse_process(text, path)
        except CatalogueError as error:
            if error.entry in _OPTIONAL and error.entry in document:
                problems.append(error)
                del document[error.entry]
                continue
            listed = _LISTED.match(error.entry)
            if listed is None:
                # once the initiation task is set aside, its absence is no second problem
                if not (error.entry == "tasks" and initiation_set_aside):
                    problems.append(error)
                return None, problems
            kind, index = listed[1], int(listed[2])
            entry = document[kind][index]
            initiation_set_aside |= kind == "tasks" and (entry.get("workflow"), entry.get("id")) == (0, 0)
            original = kept[kind].pop(index)  # name the entry by its place in the exported file
            problems.append(CatalogueError(path, f"{kind}[{original}]{error.entry[listed.end():]}", error.problem))
            document[kind] = [e for i, e in enumerate(document[kind]) if i != index]
            continue
        if not problems and yaml.load(text, Loader=_YAML_LOADER) != document:
            problems.append(CatalogueError(path, "file", "a value does not read back from YAML exactly as exported"))
        return spec, problems


def _existing(directory: Path) -> list[ProcessSpec]:
    """The processes of catalogue files already in ``directory`` that load (the others are not ours)."""
    specs = []
    for path in sorted(directory.rglob("*")) if directory.is_dir() else ():
        if path.suffix in (".yaml", ".yml") and path.is_file():
            try:
                specs.append(load_process(path))
            except CatalogueError:
                continue
    return specs


def _collisions(existing: list[ProcessSpec], exported: list[ProcessSpec]) -> list[CatalogueError]:
    """Every exported process whose Dagster name another process of the folder already has."""
    accepted: list[ProcessSpec] = []
    problems: list[CatalogueError] = []
    for spec, ours in [*((s, False) for s in existing), *((s, True) for s in exported)]:
        try:
            check_catalogue([*accepted, spec])  # accepted holds no collision: only spec can collide
        except CatalogueError as error:
            if ours:
                problems.append(error)
            continue
        accepted.append(spec)
    return problems


def _write(directory: Path, texts: Mapping[Path, str]) -> list[Path]:
    """Write every file under a temporary name first, so a failed write leaves no catalogue file."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = {path: path.with_name(f".{path.name}.tmp") for path in texts}
    try:
        for path, text in texts.items():
            temporary[path].write_text(text, encoding="utf-8")
        for path, staged in temporary.items():
            os.replace(staged, path)
    finally:
        for staged in temporary.values():
            staged.unlink(missing_ok=True)
    return list(texts)
