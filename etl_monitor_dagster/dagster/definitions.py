"""The code location: a catalogue folder in, Dagster ``Definitions`` out. Reads files only, no Spark.

>>> defs = build_definitions("catalogue")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import Definitions, JobDefinition

from .. import tasks
from ..core.catalogue import DATA_FACTORY, DATABRICKS, CatalogueError, CatalogueErrors, ProcessSpec, load_catalogue
from ..core.enums import LoadFrequency
from ..core.monitor.maintenance import MaintenanceSettings
from .alerts import ETLMonitorAlerts, alerts_from_env, alerts_sensor
from .assets import TaskExecute, build_process_assets
from .maintenance import MaintenanceSchedule, maintenance_job, maintenance_schedule
from .resource import ETLMonitorResource
from .schedules import process_job, process_schedule
from .sensors import HealthSettings, IndexedProcess, StepIndex, health_sensor, reconciliation_sensors
from .task_health import task_health_history
from .translator import DagsterETLMonitorTranslator

if TYPE_CHECKING:  # imported below only for a catalogue with their tasks: their SDKs are slow to import
    from .adf import AzureDataFactoryResource
    from .databricks import DatabricksResource


def build_definitions(
    catalogue: Path | str | Sequence[ProcessSpec],
    monitor: ETLMonitorResource | None = None,
    jobs: Sequence[JobDefinition] = (),
    databricks: DatabricksResource | None = None,
    translator: DagsterETLMonitorTranslator | None = None,
    adf: AzureDataFactoryResource | None = None,
    health: HealthSettings | None = None,
    alerts: ETLMonitorAlerts | None = None,
    maintenance: MaintenanceSettings | MaintenanceSchedule | None = None,
    execute: TaskExecute | None = None,
) -> Definitions:
    """Assets (with each process's ``taskHealth_history``), one job and (unless ad hoc) one schedule per process,
    the reconciliation and health sensors.

    ``jobs`` are a team's other jobs that share the ``monitor`` resource. A catalogue with DBX tasks
    gets the ``databricks`` resource, by default ``databricks_from_env()``; one with ADF tasks the
    ``adf`` resource, by default ``AzureDataFactoryResource()``. ``translator`` names and groups the
    assets (subclass ``DagsterETLMonitorTranslator``). A task whose source type has no runner is
    refused here, naming its file and task. ``health`` tunes the sensor that fails stale rows and
    repairs transitions a crash cut short. ``alerts`` (by default ``alerts_from_env()``, None when no
    ETL_MONITOR_ALERTS_* channel variable is set) adds the ``etl_monitor_alerts`` sensor.
    ``maintenance`` sets the defaults (MaintenanceSettings) or also the cron (MaintenanceSchedule) of the
    ``etl_monitor_maintenance`` job and its schedule (stopped until turned on): one for the monitor schema.
    ``execute`` replaces each task step's work (default ``assets.execute_task``; a wrapper calls it).
    """
    specs = load_catalogue(catalogue) if isinstance(catalogue, Path | str) else list(catalogue)
    _check_runners(specs)
    resources: dict[str, Any] = {"monitor": monitor or ETLMonitorResource()}
    if any(t.source_type in DATABRICKS for spec in specs for t in spec.tasks):
        from .databricks import databricks_from_env

        resources["databricks"] = databricks or databricks_from_env()
    if any(t.source_type in DATA_FACTORY for spec in specs for t in spec.tasks):
        from .adf import AzureDataFactoryResource

        resources["adf"] = adf or AzureDataFactoryResource()
    processes = [build_process_assets(spec, translator, execute) for spec in specs]
    process_jobs = [process_job(p) for p in processes]
    alerts = alerts or alerts_from_env()
    alerting = []
    if alerts is not None:
        resources["alerts"] = alerts
        alerting.append(alerts_sensor({j.name: p.spec for p, j in zip(processes, process_jobs, strict=True)}))
    plan = maintenance if isinstance(maintenance, MaintenanceSchedule) else MaintenanceSchedule(
        maintenance or MaintenanceSettings())
    upkeep = maintenance_job(plan)
    # not in the process jobs: the run sensors observe it, so a run gains no step
    histories = {p.spec.process: task_health_history(p.spec, p.translator) for p in processes}
    index: StepIndex = {p.spec.process: IndexedProcess(p.spec, p.tasks_by_step, p.task_keys,
                                                       histories[p.spec.process].key) for p in processes}
    return Definitions(
        assets=[*(a for p in processes for a in p.assets), *histories.values()],
        asset_checks=[p.health_checks for p in processes if p.health_checks is not None],
        jobs=[*process_jobs, *jobs, upkeep],
        schedules=[*(process_schedule(p, job) for p, job in zip(processes, process_jobs, strict=True)
                     if p.spec.frequency is not LoadFrequency.AD_HOC), maintenance_schedule(upkeep, plan)],
        sensors=[*reconciliation_sensors(process_jobs, index),
                 health_sensor(specs, health or HealthSettings(), alerting=alerts is not None),
                 *alerting],
        resources=resources,
    )


def _check_runners(specs: Sequence[ProcessSpec]) -> None:
    """Every task's source type has a runner here: refused at load, not when a run reaches it."""
    problems = []
    for spec in specs:
        for index, task in enumerate(spec.tasks):
            try:
                tasks.runner_for(task.source_type)
            except tasks.TaskFailed as missing:
                entry = f"tasks[{index}] ({task.name})"
                problems.append(CatalogueError(spec.path or spec.process, entry, str(missing)))
    if problems:
        raise CatalogueErrors(problems)
