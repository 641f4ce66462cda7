"""The maintenance job of a monitor schema: receipts archived, tables compacted and vacuumed, on a schedule.

One op calls ``monitor.maintenance.run`` (core/monitor/maintenance.py) through the ``monitor`` resource
and reports its figures as output metadata. The weekly schedule is stopped until turned on: the run
lifts ETLsysLogs' appendOnly for its delete and VACUUM removes old file versions (time travel), so
a team opts in once it has chosen its retention.
"""

from dataclasses import dataclass, field

from dagster import (
    Config,
    DefaultScheduleStatus,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from ..core.monitor.maintenance import SAFE_RETENTION_HOURS, MaintenanceSettings
from .resource import ETLMonitorResource

JOB_NAME = "etl_monitor_maintenance"
SCHEDULE_NAME = f"{JOB_NAME}_schedule"
WEEKLY = "0 3 * * 0"  # Sundays 03:00 UTC: the quietest hour of most weeks' loads


class MaintenanceConfig(Config):
    """Run config of the maintenance op (defaults from the code location's MaintenanceSettings)."""

    archive_after_days: int = Field(
        default=90, description="Receipts (ETLsysLogs rows) older than this many days move to ETLsysLogsArchive, "
        "except those of an execution still running.")
    vacuum_retain_hours: int = Field(
        default=SAFE_RETENTION_HOURS, description="VACUUM keeps the files of this many hours of table versions "
        f"(time travel). Below {SAFE_RETENTION_HOURS} the engine must allow it "
        "(spark.databricks.delta.retentionDurationCheck.enabled=false), else the run is refused.")
    optimize: bool = Field(default=True, description="Compact ETLProcessingSteps, ETLsysLogs and the archive "
                           "(OPTIMIZE) before VACUUM.")
    vacuum: bool = Field(default=True, description="VACUUM the same tables, keeping vacuum_retain_hours of "
                         "versions; off, every old file version stays (time travel, and disk).")


@dataclass(frozen=True)
class MaintenanceSchedule:
    """The maintenance job's defaults and schedule: ``cron`` in ``timezone``, stopped unless ``running``."""

    settings: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    cron: str = WEEKLY
    timezone: str = "UTC"
    running: bool = False


@op(description="Archive old receipts of finished executions, then OPTIMIZE and VACUUM the monitor's busy "
    "tables; the figures are the output's metadata.")
def maintain_monitor_tables(context: OpExecutionContext, config: MaintenanceConfig,
                            monitor: ETLMonitorResource) -> Output[dict]:
    settings = MaintenanceSettings(config.archive_after_days, config.vacuum_retain_hours, config.optimize,
                                   config.vacuum)
    report = monitor.get_monitor().maintenance.run(settings)
    figures = report.figures()
    context.log.info(f"maintenance: {report.rows_archived} receipts archived, {report.receipts_kept} kept, "
                     f"files {report.files_before} -> {report.files_after}, {report.seconds:.1f} s")
    metadata = {k: MetadataValue.float(v) if isinstance(v, float) else MetadataValue.int(v)
                for k, v in figures.items()}
    return Output(figures, metadata=metadata)


def maintenance_job(schedule: MaintenanceSchedule | None = None) -> JobDefinition:
    """The job ``etl_monitor_maintenance``, its op config defaulting to ``schedule.settings``."""
    settings = (schedule or MaintenanceSchedule()).settings
    defaults = {"archive_after_days": settings.archive_after_days,
                "vacuum_retain_hours": settings.vacuum_retain_hours, "optimize": settings.optimize,
                "vacuum": settings.vacuum}

    @job(name=JOB_NAME, config={"ops": {"maintain_monitor_tables": {"config": defaults}}},
         description="Retention of the monitor schema: receipts older than archive_after_days move to "
         "ETLsysLogsArchive (never a running execution's), then OPTIMIZE and VACUUM.",
         tags={"etl_monitor/maintenance": "true"})
    def etl_monitor_maintenance() -> None:
        maintain_monitor_tables()

    return etl_monitor_maintenance


def maintenance_schedule(job_def: JobDefinition, schedule: MaintenanceSchedule | None = None) -> ScheduleDefinition:
    """``etl_monitor_maintenance_schedule``: weekly by default, stopped until turned on."""
    schedule = schedule or MaintenanceSchedule()
    return ScheduleDefinition(
        name=SCHEDULE_NAME, job=job_def, cron_schedule=schedule.cron, execution_timezone=schedule.timezone,
        default_status=DefaultScheduleStatus.RUNNING if schedule.running else DefaultScheduleStatus.STOPPED,
        description="Runs the monitor schema's maintenance (archive, OPTIMIZE, VACUUM).")
