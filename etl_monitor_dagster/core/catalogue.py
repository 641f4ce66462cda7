"""The process catalogue: one versioned YAML file per process, validated before anything runs.

Loading reads files only (no Spark), so a code location can load it at import time. A bad catalogue
fails with ``CatalogueErrors`` naming every problem, each as ``file: entry: problem``; what the loader
refuses is listed in docs/CATALOGUE.md.

```yaml
project: DEMO
process: HR_DAILY
name: HR daily load
owner: HR data team
frequency: D
parameters:
  - {name: SYSDT, type: SYSTEM}
  - {name: LastEmployeeChange, type: DELTA_DATE, description: Last loaded change}
tasks:
  - {id: 0, workflow: 0, stage: 0, name: Initiation, source_type: NONE, mandatory: true}
  - id: 1
    workflow: 1
    stage: 2
    name: Load employees
    source_type: SPARK_SQL
    source: sql/load_employees.sql       # relative to this file
    watermark: LastEmployeeChange
    mandatory: true
    sla_seconds: 300
    maximum_retries: 2                   # Dagster retries the step twice,
    retry_delay_seconds: 60              # a minute apart
  - id: 2
    workflow: 1
    stage: 3
    name: Score employees
    source_type: DBX_NOTEBOOK
    source: /Repos/hr/etl/score_employees  # workspace path; DBX_JOB: the job id
    compute: {existing_cluster_id: 0123-456789-abcdefgh}  # or new_cluster: {...}, or serverless: true
    timeout_minutes: 30
```
"""

from __future__ import annotations

import hashlib
import keyword
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from .enums import LoadFrequency, ParameterType, SourceType
from .errors import ETLMonitorError
from .periods import end_date_problem
from .schema import SEEDED_STAGES
from .secrets import CREDENTIALS, credential_lines, credentials_in_value

_STAGE_CODES = {sid: code for sid, code, _, _ in SEEDED_STAGES}

DATABRICKS = frozenset({SourceType.DBX_NOTEBOOK, SourceType.DBX_JOB})
DATA_FACTORY = frozenset({SourceType.ADF_PIPELINE, SourceType.DATAFLOW})
# ADF names: up to 140 characters, none of . + ? / < > * % & : \ and no leading or trailing space
_ADF_NAME = re.compile(r"^[^.+?/<>*%&:\\\s](?:[^.+?/<>*%&:\\]{0,138}[^.+?/<>*%&:\\\s])?$")
SEEDED_STAGE_IDS = frozenset(stage[0] for stage in SEEDED_STAGES)
# libyaml when present: several times faster on large catalogues.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A PYTHON task's source: an importable dotted module and a function, never a file path.
_PYTHON_SOURCE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_SQL_SOURCE = "SPARK_SQL needs source: a SQL file relative to the catalogue file, inside the catalogue folder"
_NO_SECRETS = ("a catalogue is versioned and shared, so it never holds a credential: give a Databricks secret "
               "reference {{secrets/<scope>/<key>}} in its place, or an environment variable the resource reads "
               "(EnvVar)")
_LISTS = ("tasks", "parameters", "stages")
_REQUIRED = frozenset({"project", "process", "tasks"})
# Dagster's own rules, mirrored so that the load names every problem, not Dagster the first one later
# (tests/test_translator.py pins them to Dagster's): an owner's e-mail address (is_valid_email) and the
# names a job may not have (DISALLOWED_NAMES).
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
_DAGSTER_RESERVED = frozenset({"context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict",
                               "output_arg_dict", "int", "str", "float", "bool", "input", "output", "type",
                               *keyword.kwlist})


class CatalogueError(ETLMonitorError, ValueError):
    """A catalogue file is invalid: ``path`` and ``entry`` say where, ``problem`` what."""

    def __init__(self, path: Path | str | None, entry: str, problem: str) -> None:
        self.path, self.entry, self.problem = str(path), entry, problem
        super().__init__(f"{path}: {entry}: {problem}")


class CatalogueErrors(CatalogueError):
    """Every catalogue problem found together, one a line: ``problems`` holds each ``CatalogueError``.

    It is a ``CatalogueError`` itself (``path``, ``entry`` and ``problem`` are the first one's), so code
    that catches one problem catches them all.
    """

    def __init__(self, problems: list[CatalogueError]) -> None:
        if not problems:
            raise ValueError("CatalogueErrors needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        self.path, self.entry, self.problem = first.path, first.entry, first.problem
        Exception.__init__(self, "\n".join(map(str, self.problems)))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Spec):
    name: str = Field(min_length=1, description="ParameterName.")
    type: ParameterType = Field(description="DELTA_DATE, DELTA_ID, FLAG or SYSTEM (SYSDT only).")
    description: str | None = None


class StageSpec(_Spec):
    id: int = Field(ge=10, description="Custom SequenceID; 0-6 are seeded.")
    code: str = Field(min_length=1, description="SequenceCode.")
    name: str | None = None


class ComputeSpec(_Spec):
    """Where a DBX_NOTEBOOK task runs: exactly one of the three."""

    existing_cluster_id: str | None = Field(default=None, min_length=1, description="An all-purpose cluster.")
    new_cluster: dict[str, Any] | None = Field(
        default=None, description="A job cluster for this run, as the Jobs API's new_cluster "
        "(spark_version, node_type_id, num_workers...).")
    serverless: bool = Field(default=False, description="Serverless compute for notebooks.")

    @model_validator(mode="after")
    def _one_kind(self) -> ComputeSpec:
        chosen = [n for n in ("existing_cluster_id", "new_cluster", "serverless") if getattr(self, n)]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of existing_cluster_id, new_cluster or serverless: true "
                             f"(got {', '.join(chosen) or 'none'})")
        return self


class FactorySpec(_Spec):
    """The Azure Data Factory that runs ADF_PIPELINE and DATAFLOW tasks. Credentials never go here."""

    subscription_id: str = Field(pattern=r"^[0-9A-Fa-f-]{1,64}$", description="Azure subscription id.")
    resource_group: str = Field(pattern=r"^[-\w.()]{1,90}$", description="Resource group of the factory.")
    name: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{1,61}[A-Za-z0-9])$", description="Factory name.")


class TaskSpec(_Spec):
    id: int = Field(ge=0, description="TaskID.")
    workflow: int = Field(ge=0, description="WorkFlowID: 0 initiation, N the Nth pass.")
    stage: int = Field(ge=0, description="SequenceID of the stage.")
    name: str = Field(min_length=1, description="TaskName.")
    source_type: SourceType
    source: str | None = Field(default=None, description="SQL file, module:function, job id or notebook path.")
    description: str | None = None
    watermark: str | None = Field(default=None, description="ParameterName of the task's watermark.")
    frequency: LoadFrequency | None = Field(default=None, description="Defaults to the process's.")
    mandatory: bool = False
    active: bool = True
    sla_seconds: int | None = Field(default=None, ge=1)
    file_name_mask: str | None = None
    file_extension: str | None = None
    in_file_path: str | None = None
    out_file_path: str | None = None
    compute: ComputeSpec | None = Field(default=None, description="DBX_NOTEBOOK: cluster, job cluster or "
                                        "serverless; defaults to the process's.")
    timeout_minutes: float | None = Field(default=None, gt=0, description="DBX_*: the Databricks run is "
                                          "stopped (TIMEDOUT) after this long.")
    factory: FactorySpec | None = Field(default=None, description="ADF_PIPELINE, DATAFLOW: the data factory; "
                                        "defaults to the process's.")
    dataflow: str | None = Field(default=None, description="DATAFLOW: the data flow, when source is a wrapper "
                                 "pipeline that takes it as its parameter dataflow_name.")
    maximum_retries: int = Field(default=0, ge=0, le=10, description="Retries of a failed try (Dagster "
                                 "RetryPolicy); every try is recorded in the monitor.")
    retry_delay_seconds: int = Field(default=0, ge=0, le=3600, description="Wait before each retry.")

    @property
    def dagster_name(self) -> str:
        return dagster_name(self.name)


class ProcessSpec(_Spec):
    project: str = Field(min_length=1, description="ProjectCode.")
    process: str = Field(min_length=1, description="ProcessLoad.")
    name: str | None = None
    description: str | None = None
    owner: str | None = None
    frequency: LoadFrequency = LoadFrequency.DAILY
    active: bool = True
    start_date: date = Field(default=date(2026, 1, 1), description="First processing date (partition).")
    end_date: date | None = Field(default=None, description="Last processing date: the last partition is the "
                                  "period that holds it. None: a new period every day, week, month or year.")
    schedule_at: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                             description="HH:MM (UTC) at which a D/W/M/Y schedule launches the last period.")
    parallel_partitions: bool = Field(
        default=False, description="Run different processing dates side by side (one run per date at a time); "
        "only for a process none of whose tasks holds a DELTA_DATE or DELTA_ID watermark.")
    max_runtime_minutes: int | None = Field(
        default=None, gt=0, description="How long a task without SlaSeconds may run before its row is stale.")
    compute: ComputeSpec | None = Field(default=None, description="Default compute of its DBX_NOTEBOOK tasks.")
    factory: FactorySpec | None = Field(default=None, description="Default data factory of its ADF tasks.")
    stages: tuple[StageSpec, ...] = ()
    parameters: tuple[ParameterSpec, ...] = ()
    tasks: tuple[TaskSpec, ...]
    path: Path | None = Field(default=None, exclude=True, description="The file it was loaded from.")
    root: Path | None = Field(default=None, exclude=True, description="The catalogue folder its SQL sources "
                              "lie in; None: the folder of ``path``.")

    def registration(self) -> dict[str, list[dict[str, Any]]]:
        """Keyword arguments for ``ETLMonitorFramework.register_many``."""
        owner = {"project_code": self.project, "process_load": self.process}
        return {
            "processes": [{**owner, "name": self.name, "description": self.description, "owner": self.owner,
                           "load_frequency": self.frequency, "catalogue_active": self.active}],
            "parameters": [{**owner, "parameter_name": p.name, "parameter_type": p.type,
                            "description": p.description} for p in self.parameters],
            "tasks": [{**owner, "task_id": t.id, "workflow_id": t.workflow, "sequence_id": t.stage,
                       "task_name": t.name, "source_type": t.source_type, "source_identifier": t.source,
                       "source_system_code": t.watermark, "task_description": t.description,
                       "load_frequency": t.frequency, "task_mandatory": t.mandatory,
                       "file_name_mask": t.file_name_mask, "file_extension": t.file_extension,
                       "in_file_path": t.in_file_path, "out_file_path": t.out_file_path,
                       "sla_seconds": t.sla_seconds, "catalogue_active": t.active} for t in self.tasks],
        }

    def stage_groups(self) -> list[Stage]:
        """The tasks grouped by (WorkFlowID, SequenceID), in the order they run."""
        codes = {**_STAGE_CODES, **{s.id: s.code for s in self.stages}}
        keys = sorted({(t.workflow, t.stage) for t in self.tasks})
        return [Stage(w, s, codes[s], tuple(t for t in self.tasks if (t.workflow, t.stage) == (w, s)))
                for w, s in keys]


@dataclass(frozen=True)
class Stage:
    """The tasks of one (WorkFlowID, SequenceID) of a process: they run in parallel."""

    workflow: int
    sequence: int
    code: str
    tasks: tuple[TaskSpec, ...]

    @property
    def name(self) -> str:
        """``s02_load_db_tran``; from the second workflow pass on, ``w2_s02_load_db_tran``."""
        stage = f"s{self.sequence:02d}_{dagster_name(self.code)}"
        return stage if self.workflow <= 1 else f"w{self.workflow}_{stage}"

    @property
    def gate_name(self) -> str:
        """``s02_gate``; from the second workflow pass on, ``w2_s05_gate``: short enough that Dagster's graph
        and run timeline show it whole (the stage code is in the gate's group and description)."""
        gate = f"s{self.sequence:02d}_gate"
        return gate if self.workflow <= 1 else f"w{self.workflow}_{gate}"


def registration(processes: list[ProcessSpec]) -> dict[str, list[dict[str, Any]]]:
    """``register_many`` arguments for a whole catalogue: ``monitor.register_many(**registration(c))``."""
    merged: dict[str, list[dict[str, Any]]] = {"processes": [], "parameters": [], "tasks": []}
    for spec in processes:
        for table, rows in spec.registration().items():
            merged[table].extend(rows)
    return merged


def dagster_name(name: str) -> str:
    """A Dagster-safe identifier for a catalogue name: lower case, runs of other characters as ``_``.

    >>> dagster_name("Load Employees (HR)")
    'load_employees_hr'
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^0-9a-z]+", "_", ascii_name.lower()).strip("_")
    if not safe:  # nothing Latin left (e.g. 日本語): a stable name from the original
        return "n_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"n_{safe}" if safe[0].isdigit() else safe


def load_catalogue(directory: Path | str) -> list[ProcessSpec]:
    """Every ``*.yaml``/``*.yml`` file under ``directory``, one process each, checked together.

    Raises ``CatalogueErrors`` listing every problem of every file and across files. SQL sources
    must lie inside ``directory``.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    processes: list[ProcessSpec] = []
    problems: list[CatalogueError] = []
    for path in files:
        spec, found = process_problems(path.read_text(encoding="utf-8"), path, directory)
        problems += found
        if spec is not None:  # a file with problems still declares its process: it may collide too
            processes.append(spec)
    problems += _collisions(processes)
    if problems:
        raise CatalogueErrors(problems)
    return processes


def check_catalogue(processes: list[ProcessSpec]) -> None:
    """The rule across files: no two processes share a Dagster name (``CatalogueErrors`` names each)."""
    if problems := _collisions(processes):
        raise CatalogueErrors(problems)


def _collisions(processes: list[ProcessSpec]) -> list[CatalogueError]:
    seen: dict[str, Path | None] = {}
    problems = []
    for spec in processes:
        # the process name alone prefixes its groups and names its job, so it must be unique
        key = dagster_name(spec.process)
        if key in seen:
            problems.append(CatalogueError(spec.path, f"process {spec.project}/{spec.process}",
                                           f"collides with the process declared in {seen[key]} (Dagster name {key})"))
        else:
            seen[key] = spec.path
    return problems


def load_process(path: Path | str, root: Path | str | None = None) -> ProcessSpec:
    """One process file, parsed and checked; its SQL sources must lie inside ``root`` (default: its folder)."""
    path = Path(path)
    return parse_process(path.read_text(encoding="utf-8"), path, root)


def parse_process(text: str, path: Path | str, root: Path | str | None = None) -> ProcessSpec:
    """One process from ``text``, checked as if it were the file ``path``: SQL sources resolve next to
    it and must lie inside ``root`` (default: its folder). Raises ``CatalogueErrors`` naming every problem."""
    spec, problems = process_problems(text, path, root)
    if problems or spec is None:
        raise CatalogueErrors(problems)
    return spec


def process_problems(text: str, path: Path | str,
                     root: Path | str | None = None) -> tuple[ProcessSpec | None, list[CatalogueError]]:
    """Every problem of one process file, and the process its valid entries declare (None when even the
    project, process or task list is invalid). An entry with a problem is set aside, the rest checked."""
    path = Path(path)
    try:
        document = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        return None, [*_secrets_in_text(path, text, None), CatalogueError(path, "file", f"is not valid YAML: {exc}")]
    problems = _secrets_in_text(path, text, document)
    if not isinstance(document, dict):
        return None, [*problems, CatalogueError(path, "file", "must be a mapping with project, process and tasks")]
    problems += _secrets_in(path, document)
    spec, kept, found = _validated(path, Path(root) if root is not None else path.parent, document)
    problems += found
    if spec is not None:
        problems += _check(spec, document, kept)
    # a value a problem echoes (a source, an unknown key) never shows a credential
    return spec, [CatalogueError(path, _redacted(p.entry), _redacted(p.problem)) for p in problems]


def _validated(path: Path, root: Path,
               document: dict[Any, Any]) -> tuple[ProcessSpec | None, dict[str, list[int]], list[CatalogueError]]:
    """The process of ``document`` once every entry and optional key with a schema problem is set aside;
    which original entries it kept (by list); the problems."""
    candidate = dict(document)
    kept = {kind: list(range(len(items))) if isinstance(items := document.get(kind), list) else []
            for kind in _LISTS}
    problems: list[CatalogueError] = []
    while True:  # each pass sets aside what has a problem, so the next one has fewer or none
        try:
            return ProcessSpec.model_validate({**candidate, "path": path, "root": root}), kept, problems
        except PydanticValidationError as exc:
            errors = exc.errors()
        items = {(e["loc"][0], e["loc"][1]) for e in errors
                 if len(e["loc"]) >= 2 and e["loc"][0] in _LISTS and isinstance(e["loc"][1], int)}
        keys = {e["loc"][0] if e["loc"] else "" for e in errors} - {kind for kind, _ in items}
        for error in errors:
            loc = error["loc"]
            if len(loc) >= 2 and (loc[0], loc[1]) in items:
                loc = (loc[0], kept[str(loc[0])][int(loc[1])], *loc[2:])  # the index in the file
            problems.append(CatalogueError(path, _entry(document, loc), error["msg"]))
        if keys & _REQUIRED or "" in keys or not (items or keys & candidate.keys()):
            return None, kept, problems  # no process without project, process and tasks, or nothing to set aside
        for kind in _LISTS:
            for index in sorted((i for k, i in items if k == kind), reverse=True):
                candidate[kind] = [e for i, e in enumerate(candidate[kind]) if i != index]
                del kept[kind][index]
        for key in keys & candidate.keys():
            del candidate[key]


def _entry(document: dict[Any, Any], loc: tuple[Any, ...]) -> str:
    """Name the entry an error is about: 'tasks[2] (Load employees).source_type', 'spark_conf['fs.x']'."""
    head, rest = "", loc
    if len(loc) >= 2 and loc[0] in _LISTS and isinstance(loc[1], int):
        items = document.get(loc[0])
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        label = item.get("name") if isinstance(item, dict) else None
        head, rest = f"{loc[0]}[{loc[1]}]" + (f" ({label})" if label else ""), loc[2:]
    for part in rest:
        if isinstance(part, int):
            head += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_]\w*", str(part)):
            head += f".{part}" if head else str(part)
        else:
            head += f"[{str(part)!r}]"
    return head or "file"


# ------------------------------------------------------------------------------------- secrets


def _secrets_in(path: Path, document: dict[Any, Any]) -> list[CatalogueError]:
    return [CatalogueError(path, _entry(document, loc), f"{problem}: {_NO_SECRETS}")
            for loc, problem in credentials_in_value(document)]


def _secrets_in_text(path: Path, text: str, document: Any) -> list[CatalogueError]:
    return [CatalogueError(path, f"line {number}", f"{problem}: {_NO_SECRETS}")
            for number, problem in credential_lines(text, document)]


def _redacted(text: str) -> str:
    """A problem's text with the credentials it echoes replaced (``scrub`` would also mask the advice's
    ``credential: give``, a key and value to its eyes)."""
    for credential in CREDENTIALS:
        text = credential.pattern.sub("<credential>", text)
    return text


# ------------------------------------------------------------------------------------- sources


def python_source_problem(source: str | None) -> str | None:
    """What is wrong with a PYTHON task's ``source``, or None when it is ``package.module:function``."""
    if source and _PYTHON_SOURCE.match(source):
        return None
    return f"PYTHON needs source: 'package.module:function', an importable dotted module, never a file path " \
           f"(got {source!r})"


def sql_file(spec: ProcessSpec, task: TaskSpec) -> Path:
    """The SQL file of a SPARK_SQL task: its ``source`` relative to the catalogue file, resolved (symlinks
    too). Raises ``CatalogueError`` when it is absolute or leads out of the catalogue folder."""
    target, problem = _sql_source(spec, task)
    if problem:
        raise CatalogueError(spec.path, f"task {task.name}", f"{_SQL_SOURCE}; {problem}")
    return target


def _sql_source(spec: ProcessSpec, task: TaskSpec) -> tuple[Path, str | None]:
    source = task.source or ""
    folder = spec.path.parent if spec.path else Path.cwd()
    root = spec.root if spec.root is not None else folder
    target = (folder / source).resolve()
    if not source:
        return target, "there is none"
    if Path(source).is_absolute() or PureWindowsPath(source).anchor or source.startswith(("/", "\\")):
        return target, f"{source!r} is an absolute path"
    if not Path(os.path.normpath(Path(os.path.abspath(folder)) / source)).is_relative_to(os.path.abspath(root)):
        return target, f"{source!r} leads out of the catalogue folder {root} with '..'"
    if not target.is_relative_to(root.resolve()):
        return target, f"{source!r} is a link to {target}, outside the catalogue folder {root}"
    return target, None


# ------------------------------------------------------------------------------------- checks


def _check(spec: ProcessSpec, document: dict[Any, Any], kept: dict[str, list[int]]) -> list[CatalogueError]:
    """The rules a schema cannot say: keys, the end date, the initiation task, stages, watermarks, names,
    sources, the owner. ``kept`` maps each entry of ``spec`` to its place in ``document``; the entries set aside
    (with a problem already) raise no second one, e.g. an undeclared watermark."""
    path = spec.path
    problems: list[CatalogueError] = []

    def problem(entry: str, text: str) -> None:
        problems.append(CatalogueError(path, entry, text))

    aside: dict[str, list[dict[Any, Any]]] = {}
    for kind in _LISTS:
        items = document.get(kind)
        aside[kind] = [e for i, e in enumerate(items) if i not in kept[kind] and isinstance(e, dict)
                       ] if isinstance(items, list) else []
    stages = SEEDED_STAGE_IDS | {s.id for s in spec.stages} | {e.get("id") for e in aside["stages"]}
    parameters = {p.name for p in spec.parameters} | {e.get("name") for e in aside["parameters"]}
    for index, name in enumerate(p.name for p in spec.parameters):
        if name in (p.name for p in spec.parameters[:index]):
            problem(_entry(document, ("parameters", kept["parameters"][index])),
                    f"parameter {name!r} is declared twice")
    if spec.owner is not None and (owner := _owner_problem(spec.owner)):
        problem("owner", owner)
    # a start_date set aside (its own problem) leaves the default, which says nothing about this end
    if spec.end_date is not None and ("start_date" in spec.model_fields_set or "start_date" not in document) and (
            ended := end_date_problem(spec.frequency, spec.start_date, spec.end_date)):
        problem("end_date", ended)
    if (job := dagster_name(spec.process)) in _DAGSTER_RESERVED:
        problem("process", f"{spec.process!r} becomes the Dagster job name {job!r}, a name Dagster reserves (Python "
                           "keywords, context, config, input, output, type...): rename the process, or name its job "
                           "with a translator's get_job_name")
    if spec.parallel_partitions:
        incremental = {p.name for p in spec.parameters if p.type in (ParameterType.DELTA_DATE, ParameterType.DELTA_ID)}
        if held := sorted({t.watermark for t in spec.tasks if t.watermark in incremental}):
            problem("parallel_partitions", f"its tasks hold the watermarks {held}: dates that share a watermark run "
                                           "one after another, oldest first (remove parallel_partitions)")
    codes = {**_STAGE_CODES, **{s.id: s.code for s in spec.stages}}
    gates = {Stage(t.workflow, t.stage, codes[t.stage], ()).gate_name for t in spec.tasks if t.stage in codes}
    keys: set[tuple[int, int]] = set()
    names: dict[str, str] = {}
    for index, task in enumerate(spec.tasks):
        entry = _entry(document, ("tasks", kept["tasks"][index]))
        for text in _task_problems(spec, task, stages, parameters):
            problem(entry, text)
        if (task.workflow, task.id) in keys:
            problem(entry, f"duplicate (WorkFlowID, TaskID) = ({task.workflow}, {task.id})")
        keys.add((task.workflow, task.id))
        if task.dagster_name in names:
            problem(entry, f"its Dagster name {task.dagster_name!r} collides with task {names[task.dagster_name]!r}")
        elif task.dagster_name in gates:
            problem(entry, f"its Dagster name {task.dagster_name!r} is the asset key of a stage gate: rename the task")
        names[task.dagster_name] = task.name
    initiation_aside = any((e.get("workflow", 0), e.get("id", 0)) == (0, 0) for e in aside["tasks"])  # may be it
    if (0, 0) not in keys and not initiation_aside:
        problem("tasks", "the initiation task (id 0, workflow 0, stage 0) is missing")
    return problems


def _task_problems(spec: ProcessSpec, task: TaskSpec, stages: frozenset[Any], parameters: set[Any]) -> list[str]:
    """One task's problems; a stage or watermark declared by an entry set aside is no problem here."""
    found = []
    if task.workflow == 0 and (task.id, task.stage) != (0, 0):
        found.append("WorkFlowID 0 is the initiation task: it needs id 0 and stage 0")
    if task.workflow != 0 and task.stage == 0:
        found.append("stage 0 (LOAD_GO) holds only the initiation task")
    if task.stage not in stages:
        found.append(f"unknown stage {task.stage}: seeded stages are 0-6, custom ones (>= 10) are declared under "
                     "stages")
    if task.watermark is not None and task.watermark not in parameters:
        found.append(f"watermark {task.watermark!r} names no declared parameter")
    if task.source_type is SourceType.SPARK_SQL:
        target, outside = _sql_source(spec, task)
        if outside or not target.is_file():
            found.append(f"{_SQL_SOURCE}; " + (outside or f"{task.source!r} is no file"))
    if task.source_type is SourceType.PYTHON and (wrong := python_source_problem(task.source)):
        found.append(wrong)
    if task.source_type in DATABRICKS:
        found += _databricks_problems(spec, task)
    elif task.source_type in DATA_FACTORY:
        found += _data_factory_problems(spec, task)
    elif task.compute or task.timeout_minutes:
        found.append(f"compute and timeout_minutes apply to DBX_NOTEBOOK, DBX_JOB and ADF tasks, not "
                     f"{task.source_type.value}")
    if task.source_type not in DATA_FACTORY and (task.factory or task.dataflow):
        found.append(f"factory and dataflow apply to ADF_PIPELINE and DATAFLOW tasks, not {task.source_type.value}")
    return found


def _databricks_problems(spec: ProcessSpec, task: TaskSpec) -> list[str]:
    found = []
    if task.source_type is SourceType.DBX_JOB:
        if not (task.source and task.source.isdigit()):
            found.append(f"DBX_JOB needs source: the numeric job id (got {task.source!r})")
        if task.compute:
            found.append("DBX_JOB runs on its job's own compute: remove compute")
        return found
    if not (task.source and task.source.startswith("/")):
        found.append(f"DBX_NOTEBOOK needs source: the notebook's absolute workspace path (got {task.source!r})")
    if not (task.compute or spec.compute):
        found.append("DBX_NOTEBOOK needs compute (existing_cluster_id, new_cluster or serverless: true), on the "
                     "task or the process")
    return found


def _data_factory_problems(spec: ProcessSpec, task: TaskSpec) -> list[str]:
    kind = task.source_type.value
    found = []
    if not (task.source and _ADF_NAME.match(task.source)):
        found.append(f"{kind} needs source: the pipeline name (up to 140 characters, none of . + ? / < > * % & : \\) "
                     f"(got {task.source!r})")
    if not (task.factory or spec.factory):
        found.append(f"{kind} needs factory (subscription_id, resource_group, name), on the task or the process")
    if task.compute:
        found.append(f"{kind} runs on its factory's integration runtime: remove compute")
    if task.dataflow is not None and (task.source_type is not SourceType.DATAFLOW
                                      or not _ADF_NAME.match(task.dataflow)):
        found.append(f"dataflow names a data flow of a DATAFLOW task (got {task.dataflow!r})")
    return found


def _owner_problem(owner: str) -> str | None:
    """Dagster takes an owner that is an e-mail address or ``team:<name>``; a name without '@' becomes the
    latter (the translator's get_owners)."""
    if "@" in owner and not _EMAIL.fullmatch(owner):
        return (f"{owner!r} is no e-mail address (Dagster takes an owner that is an e-mail address or a team): "
                "give a whole address (hr-team@example.com) or a team name without '@' (HR data team)")
    if owner.startswith("team:") and not owner[5:].strip():
        return f"{owner!r} names no team: give a team name (HR data team) or an e-mail address"
    return None
