"""The code location: a catalogue folder in, Dagster ``Definitions`` out. Reads files only, no Spark.

>>> defs = build_definitions("catalogue")  # doctest: +SKIP
"""

from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    JobDefinition,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from .assets import ProcessAssets, build_process_assets
from .catalogue import DATABRICKS, ProcessSpec, load_catalogue
from .enums import LoadFrequency
from .reconcile import StepIndex, reconciliation_sensors
from .resource import DatabricksResource, ETLMonitorResource, databricks_from_env


def build_definitions(
    catalogue: Path | str | Sequence[ProcessSpec],
    monitor: ETLMonitorResource | None = None,
    jobs: Sequence[JobDefinition] = (),
    databricks: DatabricksResource | None = None,
) -> Definitions:
    """Assets, one job and (unless ad hoc) one schedule per process, and the reconciliation sensors.

    ``jobs`` are a team's other jobs that share the ``monitor`` resource. A catalogue with DBX tasks
    gets the ``databricks`` resource, by default ``databricks_from_env()``.
    """
    specs = load_catalogue(catalogue) if isinstance(catalogue, Path | str) else list(catalogue)
    resources = {"monitor": monitor or ETLMonitorResource()}
    if any(t.source_type in DATABRICKS for spec in specs for t in spec.tasks):
        resources["databricks"] = databricks or databricks_from_env()
    processes = [build_process_assets(spec) for spec in specs]
    process_jobs = [process_job(p) for p in processes]
    index: StepIndex = {p.spec.process: (p.spec, p.tasks_by_step) for p in processes}
    return Definitions(
        assets=[a for p in processes for a in p.assets],
        jobs=[*process_jobs, *jobs],
        schedules=[process_schedule(p, job) for p, job in zip(processes, process_jobs, strict=True)
                   if p.spec.frequency is not LoadFrequency.AD_HOC],
        sensors=reconciliation_sensors(process_jobs, index),
        resources=resources,
    )


def process_job(process: ProcessAssets) -> UnresolvedAssetJobDefinition:
    """All assets of the process (with their checks), partitioned by processing date."""
    spec = process.spec
    return define_asset_job(
        name=process.prefix,
        selection=AssetSelection.assets(*(key for a in process.assets for key in a.keys)),
        description=f"{spec.project}/{spec.process}: {spec.name or spec.description or 'ETL process'}",
        tags={"etl_monitor/project": spec.project, "etl_monitor/process": spec.process},
    )


def process_schedule(process: ProcessAssets, job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    """Launches the last complete period at ``schedule_at`` (UTC): yesterday, last week, month or year."""
    hour, minute = map(int, process.spec.schedule_at.split(":"))
    offsets = {} if process.spec.frequency is LoadFrequency.YEARLY else {"hour_of_day": hour, "minute_of_hour": minute}
    return build_schedule_from_partitioned_job(
        job, name=f"{process.prefix}_schedule", default_status=DefaultScheduleStatus.STOPPED, **offsets)
