"""How catalogue processes and tasks become Dagster asset specs. Subclass it to change any of them.

>>> class ByTeam(DagsterETLMonitorTranslator):
...     def get_group_name(self, process, stage):
...         return dagster_name(process.owner or "unowned")
>>> defs = build_definitions("catalogue", translator=ByTeam())  # doctest: +SKIP

Every method is pure: it sees the catalogue, never the monitor tables or a run. The constructor's
options turn freshness policies and pools off (``freshness=False``, ``pools=False``), add a grace to
every deadline and name the Databricks pool; docs/COMPONENT.md says how deadlines and pools are derived.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dagster import AssetKey, AssetSpec, FreshnessPolicy

from ..core.catalogue import DATA_FACTORY, DATABRICKS, ProcessSpec, Stage, TaskSpec, dagster_name
from ..core.enums import SourceType
from ..core.errors import ValidationError
from ..core.schema import VIEWS
from .freshness import deadline_policy

DATABRICKS_POOL = "databricks"
ADF_POOL_PREFIX = "adf/"

_KINDS = {SourceType.SPARK_SQL: {"spark", "sql"}, SourceType.PYTHON: {"python"},
          SourceType.DBX_NOTEBOOK: {"databricks", "notebook"}, SourceType.DBX_JOB: {"databricks", "job"},
          SourceType.ADF_PIPELINE: {"azure", "adf"}, SourceType.DATAFLOW: {"azure", "adf", "dataflow"}}


class DagsterETLMonitorTranslator:
    """Turns a process, its stages, tasks and views into asset keys, groups, kinds, descriptions,
    metadata, owners, tags, freshness policies and pools."""

    def __init__(self, *, freshness: bool = True, freshness_grace: timedelta = timedelta(0), pools: bool = True,
                 databricks_pool: str = DATABRICKS_POOL) -> None:
        if freshness_grace < timedelta(0):
            raise ValidationError("freshness_grace", freshness_grace, "must not be negative")
        if not databricks_pool or any(c.isspace() for c in databricks_pool):
            raise ValidationError("databricks_pool", databricks_pool, "must be a non-empty name without spaces "
                                  "(a Dagster pool name)")
        self.freshness, self.freshness_grace, self.pools = freshness, freshness_grace, pools
        self.databricks_pool = databricks_pool

    # ------------------------------------------------------------------------------------ tasks

    def get_asset_key(self, process: ProcessSpec, task: TaskSpec) -> AssetKey:
        """``[project, process, task name]``, each made a Dagster name."""
        return AssetKey([*self.get_process_key_prefix(process).path, task.dagster_name])

    def get_group_name(self, process: ProcessSpec, stage: Stage) -> str:
        """``<process>/<stage>``: one group per stage, so the UI shows the stages in order."""
        return f"{dagster_name(process.process)}/{stage.name}"

    def get_kinds(self, process: ProcessSpec, task: TaskSpec) -> set[str]:
        return _KINDS.get(task.source_type, {"etl_monitor"})

    def get_description(self, process: ProcessSpec, task: TaskSpec) -> str:
        return task.description or task.name

    def get_metadata(self, process: ProcessSpec, task: TaskSpec) -> dict[str, Any]:
        """The task's catalogue row, as the monitor's column names."""
        return {"TaskID": task.id, "WorkFlowID": task.workflow, "SequenceID": task.stage,
                "TaskName": task.name, "SourceType": task.source_type.value, "Source": task.source or "",
                "Mandatory": task.mandatory, "Watermark": task.watermark or "",
                "MaximumRetries": task.maximum_retries}

    def get_owners(self, process: ProcessSpec) -> list[str]:
        """The process owner: an e-mail address or ``team:<name>`` as it is, any other name as ``team:<name>``."""
        if not process.owner:
            return []
        return [process.owner if "@" in process.owner or process.owner.startswith("team:") else f"team:{process.owner}"]

    def get_tags(self, process: ProcessSpec, task: TaskSpec) -> dict[str, str]:
        """Filterable in the asset catalogue; values are vocabulary, so always valid tag values."""
        return {"etl_monitor/source_type": task.source_type.value,
                "etl_monitor/mandatory": str(task.mandatory).lower()}

    def get_freshness_policy(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> FreshnessPolicy | None:
        """Late unless materialised between ``schedule_at`` and ``schedule_at`` + the largest SLA of each stage
        up to this one's (+ ``freshness_grace``); None for an ad hoc process, one whose stages up to this one
        give no SLA nor ``max_runtime_minutes``, or when ``freshness=False``."""
        if not self.freshness:
            return None
        return deadline_policy(process, stage, self.freshness_grace)

    def get_pool(self, process: ProcessSpec, task: TaskSpec) -> str | None:
        """The concurrency pool of the task's step: DBX tasks share ``databricks_pool`` (the one workspace the
        ``databricks`` resource names), ADF tasks ``adf/<factory name>``; other tasks, or ``pools=False``: None."""
        if not self.pools:
            return None
        if task.source_type in DATABRICKS:
            return self.databricks_pool
        factory = task.factory or process.factory
        if task.source_type in DATA_FACTORY and factory is not None:
            return f"{ADF_POOL_PREFIX}{factory.name}"  # factory names are unique in Azure
        return None

    def get_asset_spec(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> AssetSpec:
        """The task's spec, from the methods above (dependencies are the builder's: the previous gate)."""
        return AssetSpec(
            key=self.get_asset_key(process, task),
            group_name=self.get_group_name(process, stage),
            kinds=self.get_kinds(process, task),
            description=self.get_description(process, task),
            metadata=self.get_metadata(process, task),
            owners=self.get_owners(process),
            tags=self.get_tags(process, task),
            freshness_policy=self.get_freshness_policy(process, stage, task),
        )

    # ------------------------------------------------------------------------- gates and views

    def get_process_key_prefix(self, process: ProcessSpec) -> AssetKey:
        """``[project, process]``: the prefix of every key of the process."""
        return AssetKey([dagster_name(process.project), dagster_name(process.process)])

    def get_gate_spec(self, process: ProcessSpec, stage: Stage) -> AssetSpec:
        """``s02_gate`` (``w2_s05_gate`` in a later workflow pass) in the stage's group."""
        return AssetSpec(
            key=AssetKey([*self.get_process_key_prefix(process).path, stage.gate_name]),
            group_name=self.get_group_name(process, stage),
            kinds={"etl_monitor"},
            owners=self.get_owners(process),
            description=f"Gate after stage {stage.sequence} ({stage.code}) of workflow {stage.workflow}: later "
            "stages run only when no mandatory task of this stage is FAIL, NQUE or RQUE.",
        )

    def get_view_spec(self, process: ProcessSpec, view: str) -> AssetSpec:
        """One of the six monitoring views, described by its header (the question it answers)."""
        question = next(line for line in VIEWS[view].splitlines() if line.startswith("--"))[2:].strip()
        return AssetSpec(
            key=AssetKey([*self.get_process_key_prefix(process).path, view]),
            group_name=f"{dagster_name(process.process)}/views",
            kinds={"delta", "etl_monitor"},
            owners=self.get_owners(process),
            description=question,
        )

    def get_job_name(self, process: ProcessSpec) -> str:
        return dagster_name(process.process)
