"""One job per process (its steps forked from a preloaded server) and, unless it is ad hoc, a schedule
following its LoadFrequency."""

from __future__ import annotations

import json
import os
from typing import Any, cast

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Enum,
    EnumValue,
    Executor,
    ExecutorDefinition,
    Field,
    InitExecutorContext,
    PartitionedConfig,
    ScheduleDefinition,
    Selector,
    build_schedule_from_partitioned_job,
    configured,
    define_asset_job,
    multi_or_in_process_executor,
)
from dagster._core.code_pointer import FileCodePointer
from dagster._core.definitions.partitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..core.enums import LoadFrequency
from .assets import ProcessAssets
from .metadata import RUN_SLOT_TAG, process_tags

# What a step process imports before its work: under `spawn` every step paid about 2 s for it. A forkserver
# imports them once per run and forks each step from there; it holds modules only (no Spark session, no gRPC
# channel), so every step still opens its own connection.
STEP_PRELOAD = ["etl_monitor_dagster.dagster.definitions", "pyspark.sql.connect.session",
                # what a step needs to open the default (SQLite) instance: 0.57 s of imports otherwise
                "dagster._core.storage.sqlite_storage", "dagster._core.storage.local_compute_log_manager",
                "etl_monitor_dagster.dagster.step_server"]  # last: it freezes what the others loaded
# Where a run's code location file is, for the step server to load it (set by the run worker before it starts).
STEP_CODE_ENV = "ETL_MONITOR_STEP_CODE"
# A step mostly waits on its engine (Spark, Databricks, ADF), not on this machine's cores: with the CPU
# count as the limit, a stage of three tasks on two cores ran one of them after the other two.
STEPS_AT_ONCE = 8


_STEP_CONFIG = Field(Selector({
    "multiprocess": {
        "start_method": Field(Enum("StepStartMethod", [EnumValue("forkserver"), EnumValue("spawn")]),
                              default_value="forkserver",
                              description="forkserver: steps fork from a process that imported the monitor and "
                                          "the run's code location once; spawn: a fresh interpreter per step."),
        "max_concurrent": Field(int, default_value=STEPS_AT_ONCE,
                                description="Steps at once (Dagster's default would be the CPU count)."),
    },
    "in_process": {},
}), default_value={"multiprocess": {}})


@configured(multi_or_in_process_executor, config_schema=_STEP_CONFIG)
def _default_executor(config: dict[str, Any]) -> dict[str, Any]:
    if "in_process" in config:
        return {"in_process": {}}
    multiprocess = dict(config["multiprocess"])
    forkserver = multiprocess.pop("start_method") == "forkserver"
    start = {"forkserver": {"preload_modules": STEP_PRELOAD}} if forkserver else {"spawn": {}}
    return {"multiprocess": {**multiprocess, "start_method": start}}


def _create_step_executor(init_context: InitExecutorContext) -> Executor:
    # the step server loads a code location read from a file (``step_server``): Dagster preloads only modules
    pointer = getattr(getattr(init_context.job, "repository", None), "pointer", None)
    if isinstance(pointer, FileCodePointer):
        os.environ[STEP_CODE_ENV] = json.dumps([pointer.python_file, pointer.working_directory])
    create = _default_executor.executor_creation_fn
    assert create is not None  # Dagster's default executor has one
    return create(init_context)


step_executor = ExecutorDefinition(
    # the configured schema maps the config as `configured` does; Dagster's annotation leaves that type out
    name="step_executor", config_schema=cast(Any, _default_executor.config_schema),
    requirements=_default_executor.get_requirements, executor_creation_fn=_create_step_executor,
    description="Dagster's default executor (multiprocess or in_process) whose step processes fork from a server "
                "that preloaded the monitor and the run's code location, unless start_method: spawn is asked for.")


def process_job(process: ProcessAssets) -> UnresolvedAssetJobDefinition:
    """All assets of the process with their checks but the task health checks (the run sensors report
    those), partitioned by processing date, run by ``step_executor``."""
    spec = process.spec
    selection: AssetSelection = AssetSelection.assets(*(key for a in process.assets for key in a.keys))
    if process.health_checks is not None:
        selection = selection - AssetSelection.checks(process.health_checks)
    tags = process_tags(spec.project, spec.process)
    slots: dict[str, Any] = {}
    if spec.parallel_partitions:  # a slot per date: its runs queue behind one another, other dates run
        slots["config"] = PartitionedConfig(
            partitions_def=process.partitions, run_config_for_partition_key_fn=lambda _: {},
            tags_for_partition_key_fn=lambda key: {RUN_SLOT_TAG: f"{spec.process}/{key}"})
    else:  # one run of the process at a time: its dates share its watermarks
        tags[RUN_SLOT_TAG] = spec.process
    return define_asset_job(
        name=process.translator.get_job_name(spec),
        selection=selection,
        description=f"{spec.project}/{spec.process}: {spec.name or spec.description or 'ETL process'}",
        tags=tags,
        executor_def=step_executor,
        **slots,
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
