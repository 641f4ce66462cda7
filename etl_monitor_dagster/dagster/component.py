"""The monitor as a Dagster component: a catalogue folder, the monitor's engine and translator options in a
``defs.yaml``; the same definitions ``build_definitions`` makes.

``dg scaffold defs etl_monitor_dagster.ETLMonitorComponent etl`` writes ``etl/defs.yaml`` and a starter
catalogue. Subclass the component to override ``get_asset_spec`` (each task's spec) or ``execute`` (each
task's step), as in Dagster's own components; ``translation`` and ``post_processing`` in the YAML change
specs without code. docs/COMPONENT.md walks through it.
"""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from dagster import AssetExecutionContext, AssetSpec, Definitions, EnvVar, MaterializeResult
from dagster.components import (
    Component,
    ComponentLoadContext,
    Model,
    Resolvable,
    Scaffolder,
    ScaffoldRequest,
    scaffold_with,
)
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import Field, PrivateAttr

from ..core.catalogue import ProcessSpec, Stage, TaskSpec
from ..core.errors import ValidationError
from ..core.local_spark import DEFAULT_PORT
from ..samples.starter import STARTER_PROCESS, STARTER_SQL
from .assets import TaskRun, execute_task
from .definitions import build_definitions
from .resource import ETLMonitorResource, SparkEngine
from .sensors import HealthSettings
from .translator import DATABRICKS_POOL, DagsterETLMonitorTranslator


class TaskEntry(NamedTuple):
    """What a ``translation`` template sees: ``{{ process.process }}``, ``{{ stage.name }}``, ``{{ task.name }}``."""

    process: ProcessSpec
    stage: Stage
    task: TaskSpec


class MonitorEngine(Resolvable, Model):
    """Where the monitor's tables live: ETLMonitorResource's settings, the token as an environment variable."""

    engine: SparkEngine = Field(default=SparkEngine.EMBEDDED, description="embedded: the project's local Spark "
                                "Connect server; connect: spark_remote; active_session: the process's SparkSession.")
    spark_remote: str | None = Field(default=None, description="engine=connect: the Spark Connect URL, without a "
                                     "token (sc://host:15002, or a Databricks sc:// URL).")
    spark_token_env: str | None = Field(default=None, description="engine=connect: the name of the environment "
                                        "variable holding the token, read when a run starts (never the token).")
    catalog: str | None = Field(default=None, description="Unity Catalog catalog of the monitor schema; none for "
                                "the session catalog.")
    schema_name: str = Field(default="etl", description="Schema of the monitor's tables and views.")
    home: str | None = Field(default=None, description="engine=embedded: folder of the warehouse, metastore and "
                             "server logs (default ETL_MONITOR_HOME, else ./.etl_monitor).")
    port: int = Field(default=DEFAULT_PORT, description="engine=embedded: port of the local Spark Connect server.")
    updated_by: str | None = Field(default=None, description="CreatedBy/LastUpdatedBy; default the OS user.")

    def resource(self) -> ETLMonitorResource:
        token = EnvVar(self.spark_token_env) if self.spark_token_env else None
        return ETLMonitorResource(engine=self.engine, spark_remote=self.spark_remote, spark_token=token,
                                  catalog=self.catalog, schema_name=self.schema_name, home=self.home, port=self.port,
                                  updated_by=self.updated_by)


class TranslatorOptions(Resolvable, Model):
    """How tasks become assets: the translator class and its freshness and pool options."""

    translator_class: str | None = Field(default=None, description="A DagsterETLMonitorTranslator subclass as "
                                         "'package.module:Class'; default the translator itself.")
    freshness: bool = Field(default=True, description="Give each task of a scheduled process a freshness "
                            "policy from schedule_at and its stages' SLAs; false: none.")
    freshness_grace_minutes: int = Field(default=0, ge=0, description="Minutes added to every task's deadline.")
    pools: bool = Field(default=True, description="Put DBX tasks in one pool and ADF tasks in one pool per "
                        "factory; false: no pools.")
    databricks_pool: str = Field(default=DATABRICKS_POOL, description="The pool of DBX tasks (one per "
                                 "workspace: name it after the workspace when several code locations share one).")

    def translator_cls(self) -> type[DagsterETLMonitorTranslator]:
        """The class ``translator_class`` names, checked to be a DagsterETLMonitorTranslator subclass."""
        if not self.translator_class:
            return DagsterETLMonitorTranslator
        module, _, name = self.translator_class.partition(":")
        try:
            found = getattr(importlib.import_module(module), name) if name else None
        except (ImportError, AttributeError) as exc:
            raise ValidationError("translator.translator_class", self.translator_class,
                                  f"cannot be imported ({exc})") from None
        if not (isinstance(found, type) and issubclass(found, DagsterETLMonitorTranslator)):
            raise ValidationError("translator.translator_class", self.translator_class,
                                  "is not 'package.module:Class' of a DagsterETLMonitorTranslator subclass")
        return found

    def options(self) -> dict[str, Any]:
        """The translator's constructor options."""
        return {"freshness": self.freshness, "freshness_grace": timedelta(minutes=self.freshness_grace_minutes),
                "pools": self.pools, "databricks_pool": self.databricks_pool}


def _template_vars(entry: TaskEntry) -> Mapping[str, Any]:
    return {"process": entry.process, "stage": entry.stage, "task": entry.task}


class ETLMonitorComponentScaffolder(Scaffolder):
    """Writes ``defs.yaml`` and a starter catalogue: one daily process of one SPARK_SQL task."""

    def scaffold(self, request: ScaffoldRequest[Any]) -> None:
        folder = request.target_path
        (folder / "catalogue" / "sql").mkdir(parents=True, exist_ok=True)
        process = "".join(c if c.isalnum() else "_" for c in folder.name.upper()) + "_DAILY"
        (folder / "defs.yaml").write_text(_DEFS_YAML.format(type=request.type_name), encoding="utf-8")
        (folder / "catalogue" / "starter.yaml").write_text(STARTER_PROCESS.format(process=process), encoding="utf-8")
        (folder / "catalogue" / "sql" / "starter.sql").write_text(STARTER_SQL, encoding="utf-8")


_DEFS_YAML = textwrap.dedent("""\
    type: {type}

    attributes:
      # The catalogue folder (one YAML file per process), relative to this file.
      catalogue: catalogue
      # Where the monitor's tables live; the embedded engine is the project's local Spark with Delta.
      monitor:
        engine: embedded
        schema_name: etl
      # How tasks become assets: freshness policies from schedule_at and the SLAs, pools for DBX and ADF tasks.
      translator:
        freshness: true
        freshness_grace_minutes: 0
        pools: true
        databricks_pool: databricks
    """)

@scaffold_with(ETLMonitorComponentScaffolder)
class ETLMonitorComponent(Component, Resolvable, Model):
    """ETL processes of a catalogue folder as Dagster assets, monitored in Delta tables (NQUE/RQUE/DONE/FAIL).

    Each task is an asset, each stage ends in a gate, each process gets a job, a schedule, the monitoring
    views and the reconciliation and health sensors, exactly as ``build_definitions`` makes them. Loading
    reads YAML only; the engine is reached when a run starts.
    """

    catalogue: str = Field(default="catalogue", description="The catalogue folder, relative to this defs.yaml "
                           "(or absolute).")
    monitor: MonitorEngine = Field(default_factory=MonitorEngine, description="The monitor's engine and schema.")
    translator: TranslatorOptions = Field(default_factory=TranslatorOptions,
                                          description="Translator class, freshness and pools.")
    health_interval_seconds: int = Field(default=HealthSettings.interval_seconds, ge=30, description="How often "
                                         "the health sensor looks for stale running rows.")
    translation: Annotated[
        TranslationFn[TaskEntry] | None,
        TranslationFnResolver[TaskEntry](template_vars_for_translation_fn=_template_vars),
    ] = Field(default=None, description="Asset attributes applied to every task's spec; templates see "
              "process, stage, task and spec.")

    _translator: DagsterETLMonitorTranslator | None = PrivateAttr(default=None)

    def catalogue_path(self, context: ComponentLoadContext) -> Path:
        path = Path(self.catalogue)
        return path if path.is_absolute() else context.path / path

    def get_translator(self) -> DagsterETLMonitorTranslator:
        """The configured translator, its task specs asked of this component's ``get_asset_spec``."""
        if self._translator is None:
            component = self

            class ComponentTranslator(self.translator.translator_cls()):  # type: ignore[misc]
                def get_asset_spec(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> AssetSpec:
                    return component.get_asset_spec(process, stage, task)

                def default_asset_spec(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> AssetSpec:
                    return super().get_asset_spec(process, stage, task)

            self._translator = ComponentTranslator(**self.translator.options())
        return self._translator

    def get_asset_spec(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> AssetSpec:
        """A task's spec: the translator's, then ``translation``. Override to change it in code."""
        spec: AssetSpec = self.get_translator().default_asset_spec(process, stage, task)  # type: ignore[attr-defined]
        return self.translation(spec, TaskEntry(process, stage, task)) if self.translation else spec

    def execute(self, context: AssetExecutionContext, run: TaskRun) -> MaterializeResult:
        """A task's step: runs the task and records it in the monitor. Override to wrap it (call super())."""
        return execute_task(context, run)

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        return build_definitions(self.catalogue_path(context), monitor=self.monitor.resource(),
                                 translator=self.get_translator(), execute=self.execute,
                                 health=HealthSettings(interval_seconds=self.health_interval_seconds))
