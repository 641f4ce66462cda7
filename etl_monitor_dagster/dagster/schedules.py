"""One job per process and, unless it is ad hoc, a schedule following its LoadFrequency."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster._core.definitions.partitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..core.enums import LoadFrequency
from .assets import ProcessAssets
from .metadata import process_tags


def process_job(process: ProcessAssets) -> UnresolvedAssetJobDefinition:
    """All assets of the process with their checks but the task health checks (the run sensors report
    those), partitioned by processing date."""
    spec = process.spec
    selection: AssetSelection = AssetSelection.assets(*(key for a in process.assets for key in a.keys))
    if process.health_checks is not None:
        selection = selection - AssetSelection.checks(process.health_checks)
    return define_asset_job(
        name=process.translator.get_job_name(spec),
        selection=selection,
        description=f"{spec.project}/{spec.process}: {spec.name or spec.description or 'ETL process'}",
        tags=process_tags(spec.project, spec.process),
    )


def process_schedule(
    process: ProcessAssets, job: UnresolvedAssetJobDefinition
) -> ScheduleDefinition | UnresolvedPartitionedAssetScheduleDefinition:
    """Launches the last complete period at ``schedule_at`` (UTC): yesterday, last week, month or year."""
    hour, minute = map(int, process.spec.schedule_at.split(":"))
    yearly = process.spec.frequency is LoadFrequency.YEARLY  # its partitions carry the time already
    return build_schedule_from_partitioned_job(
        job, name=f"{job.name}_schedule", default_status=DefaultScheduleStatus.STOPPED,
        hour_of_day=None if yearly else hour, minute_of_hour=None if yearly else minute)
