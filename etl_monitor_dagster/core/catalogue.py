"""The process catalogue: one versioned YAML file per process, validated before anything runs.

Loading reads files only (no Spark), so a code location can load it at import time. A bad file
fails with a ``CatalogueError`` naming the file, the entry and the problem.

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
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from .enums import LoadFrequency, ParameterType, SourceType
from .errors import ETLMonitorError
from .schema import SEEDED_STAGES

_STAGE_CODES = {sid: code for sid, code, _, _ in SEEDED_STAGES}

DATABRICKS = frozenset({SourceType.DBX_NOTEBOOK, SourceType.DBX_JOB})
DATA_FACTORY = frozenset({SourceType.ADF_PIPELINE, SourceType.DATAFLOW})
# ADF names: up to 140 characters, none of . + ? / < > * % & : \ and no leading or trailing space
_ADF_NAME = re.compile(r"^[^.+?/<>*%&:\\\s](?:[^.+?/<>*%&:\\]{0,138}[^.+?/<>*%&:\\\s])?$")
SEEDED_STAGE_IDS = frozenset(stage[0] for stage in SEEDED_STAGES)
# libyaml when present: several times faster on large catalogues.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# Databricks personal access tokens: a catalogue is versioned and shared, so one must never hold a secret.
_DATABRICKS_TOKEN = re.compile(r"\bdapi[0-9a-f]{32}\b")


class CatalogueError(ETLMonitorError, ValueError):
    """A catalogue file is invalid: ``path`` and ``entry`` say where, ``problem`` what."""

    def __init__(self, path: Path | str | None, entry: str, problem: str) -> None:
        self.path, self.entry, self.problem = str(path), entry, problem
        super().__init__(f"{path}: {entry}: {problem}")


class CatalogueErrors(ETLMonitorError, ValueError):
    """Several catalogue problems found together: ``problems`` holds each ``CatalogueError``."""

    def __init__(self, problems: list[CatalogueError]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


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
    schedule_at: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                             description="HH:MM (UTC) at which a D/W/M/Y schedule launches the last period.")
    max_runtime_minutes: int | None = Field(
        default=None, gt=0, description="How long a task without SlaSeconds may run before its row is stale.")
    compute: ComputeSpec | None = Field(default=None, description="Default compute of its DBX_NOTEBOOK tasks.")
    factory: FactorySpec | None = Field(default=None, description="Default data factory of its ADF tasks.")
    stages: tuple[StageSpec, ...] = ()
    parameters: tuple[ParameterSpec, ...] = ()
    tasks: tuple[TaskSpec, ...]
    path: Path | None = Field(default=None, exclude=True, description="The file it was loaded from.")

    def registration(self) -> dict[str, list[dict[str, Any]]]:
        """Keyword arguments for ``ETLMonitorFramework.register_many``."""
        owner = {"project_code": self.project, "process_load": self.process}
        return {
            "processes": [{**owner, "name": self.name, "description": self.description, "owner": self.owner,
                           "load_frequency": self.frequency, "is_active": self.active}],
            "parameters": [{**owner, "parameter_name": p.name, "parameter_type": p.type,
                            "description": p.description} for p in self.parameters],
            "tasks": [{**owner, "task_id": t.id, "workflow_id": t.workflow, "sequence_id": t.stage,
                       "task_name": t.name, "source_type": t.source_type, "source_identifier": t.source,
                       "source_system_code": t.watermark, "task_description": t.description,
                       "load_frequency": t.frequency, "task_mandatory": t.mandatory,
                       "file_name_mask": t.file_name_mask, "file_extension": t.file_extension,
                       "in_file_path": t.in_file_path, "out_file_path": t.out_file_path,
                       "sla_seconds": t.sla_seconds, "is_active": t.active} for t in self.tasks],
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
    """Every ``*.yaml``/``*.yml`` file under ``directory``, one process each, checked together."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    processes = [load_process(path) for path in files]
    check_catalogue(processes)
    return processes


def check_catalogue(processes: list[ProcessSpec]) -> None:
    """The rule across files: no two processes share a Dagster name."""
    seen: dict[str, Path | None] = {}
    for spec in processes:
        # the process name alone prefixes its groups and names its job, so it must be unique
        key = dagster_name(spec.process)
        if key in seen:
            raise CatalogueError(spec.path, f"process {spec.project}/{spec.process}",
                                 f"collides with the process declared in {seen[key]} (Dagster name {key})")
        seen[key] = spec.path


def load_process(path: Path | str) -> ProcessSpec:
    """One process file, parsed and checked."""
    path = Path(path)
    return parse_process(path.read_text(encoding="utf-8"), path)


def parse_process(text: str, path: Path | str) -> ProcessSpec:
    """One process from ``text``, checked as if it were the file ``path`` (SQL sources resolve next to it)."""
    path = Path(path)
    if token := _DATABRICKS_TOKEN.search(text):
        line = text.count("\n", 0, token.start()) + 1
        raise CatalogueError(path, f"line {line}", "holds what looks like a Databricks access token: credentials "
                                                   "belong in environment variables (EnvVar), never in the catalogue")
    try:
        document = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise CatalogueError(path, "file", f"is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise CatalogueError(path, "file", "must be a mapping with project, process and tasks")
    try:
        spec = ProcessSpec.model_validate({**document, "path": path})
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        raise CatalogueError(path, _entry(document, first["loc"]), first["msg"]) from None
    _check(spec)
    return spec


def _entry(document: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """Name the entry an error is about: 'tasks[2] (Load employees).source_type'."""
    if len(loc) >= 2 and loc[0] in ("tasks", "parameters", "stages") and isinstance(loc[1], int):
        items = document.get(loc[0]) or []
        label = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
        head = f"{loc[0]}[{loc[1]}]" + (f" ({label})" if label else "")
        return ".".join([head, *map(str, loc[2:])])
    return ".".join(map(str, loc)) or "file"


def _check_databricks(spec: ProcessSpec, task: TaskSpec, entry: str) -> None:
    if task.source_type is SourceType.DBX_JOB:
        if not (task.source and task.source.isdigit()):
            raise CatalogueError(spec.path, entry, f"DBX_JOB needs source: the numeric job id (got {task.source!r})")
        if task.compute:
            raise CatalogueError(spec.path, entry, "DBX_JOB runs on its job's own compute: remove compute")
        return
    if not (task.source and task.source.startswith("/")):
        raise CatalogueError(spec.path, entry, f"DBX_NOTEBOOK needs source: the notebook's absolute workspace "
                                               f"path (got {task.source!r})")
    if not (task.compute or spec.compute):
        raise CatalogueError(spec.path, entry, "DBX_NOTEBOOK needs compute (existing_cluster_id, new_cluster or "
                                               "serverless: true), on the task or the process")


def _check_data_factory(spec: ProcessSpec, task: TaskSpec, entry: str) -> None:
    kind = task.source_type.value
    if not (task.source and _ADF_NAME.match(task.source)):
        raise CatalogueError(spec.path, entry, f"{kind} needs source: the pipeline name (up to 140 characters, "
                                               f"none of . + ? / < > * % & : \\) (got {task.source!r})")
    if not (task.factory or spec.factory):
        raise CatalogueError(spec.path, entry, f"{kind} needs factory (subscription_id, resource_group, name), "
                                               "on the task or the process")
    if task.compute:
        raise CatalogueError(spec.path, entry, f"{kind} runs on its factory's integration runtime: remove compute")
    if task.dataflow is not None and (task.source_type is not SourceType.DATAFLOW
                                      or not _ADF_NAME.match(task.dataflow)):
        raise CatalogueError(spec.path, entry, f"dataflow names a data flow of a DATAFLOW task (got {task.dataflow!r})")


def _check(spec: ProcessSpec) -> None:
    """The rules a schema cannot say: keys, the initiation task, stages, watermarks, names."""
    path = spec.path
    folder = path.parent if path else Path.cwd()  # relative sources are relative to the catalogue file
    stages = SEEDED_STAGE_IDS | {s.id for s in spec.stages}
    parameters = {p.name: p for p in spec.parameters}
    if len(parameters) != len(spec.parameters):
        dup = next(p.name for p in spec.parameters if sum(q.name == p.name for q in spec.parameters) > 1)
        raise CatalogueError(path, f"parameter {dup!r}", "is declared twice")
    keys: set[tuple[int, int]] = set()
    names: dict[str, str] = {}
    for index, task in enumerate(spec.tasks):
        entry = f"tasks[{index}] ({task.name})"
        if (task.workflow, task.id) in keys:
            raise CatalogueError(path, entry, f"duplicate (WorkFlowID, TaskID) = ({task.workflow}, {task.id})")
        keys.add((task.workflow, task.id))
        if task.workflow == 0 and (task.id, task.stage) != (0, 0):
            raise CatalogueError(path, entry, "WorkFlowID 0 is the initiation task: it needs id 0 and stage 0")
        if task.workflow != 0 and task.stage == 0:
            raise CatalogueError(path, entry, "stage 0 (LOAD_GO) holds only the initiation task")
        if task.stage not in stages:
            raise CatalogueError(path, entry, f"unknown stage {task.stage}: seeded stages are 0-6, "
                                              "custom ones (>= 10) are declared under stages")
        if task.watermark is not None and task.watermark not in parameters:
            raise CatalogueError(path, entry, f"watermark {task.watermark!r} names no declared parameter")
        if task.source_type is SourceType.SPARK_SQL and not (task.source and (folder / task.source).is_file()):
            raise CatalogueError(path, entry, f"SPARK_SQL needs source: a SQL file next to the catalogue "
                                                  f"(got {task.source!r})")
        if task.source_type is SourceType.PYTHON and not (task.source and _CALLABLE.match(task.source)):
            raise CatalogueError(path, entry, f"PYTHON needs source: 'package.module:function' (got {task.source!r})")
        if task.source_type in DATABRICKS:
            _check_databricks(spec, task, entry)
        elif task.source_type in DATA_FACTORY:
            _check_data_factory(spec, task, entry)
        elif task.compute or task.timeout_minutes:
            raise CatalogueError(path, entry, f"compute and timeout_minutes apply to DBX_NOTEBOOK, DBX_JOB and "
                                              f"ADF tasks, not {task.source_type.value}")
        if task.source_type not in DATA_FACTORY and (task.factory or task.dataflow):
            raise CatalogueError(path, entry, f"factory and dataflow apply to ADF_PIPELINE and DATAFLOW tasks, "
                                              f"not {task.source_type.value}")
        if task.dagster_name in names:
            raise CatalogueError(path, entry, f"its Dagster name {task.dagster_name!r} collides with task "
                                              f"{names[task.dagster_name]!r}")
        names[task.dagster_name] = task.name
    if (0, 0) not in keys:
        raise CatalogueError(path, "tasks", "the initiation task (id 0, workflow 0, stage 0) is missing")
