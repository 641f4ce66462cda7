"""A catalogue process as Dagster assets: one asset per task, a gate per stage of tasks, the views.

Stage groups run in (WorkFlowID, SequenceID) order: every task of a stage depends on the previous
stage's gate (``gates.py``), or on the initiation. A task asset hands its work to the core's run policy and
turns the outcome into a ``MaterializeResult``; the hooks (``hooks.py``) record DONE/FAIL from it. A task's
``maximum_retries`` is its step's RetryPolicy; each failed try before the last is recorded as RQUE.
The step's work is ``execute_task`` unless the builder is given another ``TaskExecute`` (the component's
``execute``); its pool is the translator's ``get_pool``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    Config,
    DagsterError,
    DagsterRun,
    DagsterRunStatus,
    Failure,
    JsonMetadataValue,
    MaterializeResult,
    RetryPolicy,
    RetryRequested,
    TimeWindowPartitionsDefinition,
    multi_asset,
)
from dagster._core.errors import DagsterExecutionInterruptedError
from pydantic import Field

from .. import tasks
from ..core.catalogue import DATA_FACTORY, DATABRICKS, ProcessSpec, Stage, TaskSpec
from ..core.errors import ValidationError
from ..core.outcome import Key, Outcome, TaskOutcome, handed
from ..core.policy import RunMode, failure_of, run_task
from .gates import gate_asset
from .hooks import task_hooks
from .metadata import TASK_TAG, dagster_metadata, process_tags
from .partitions import partitions_for, processing_date
from .resource import ETLMonitorResource
from .task_health import task_health_checks
from .translator import DagsterETLMonitorTranslator
from .views import view_assets

if TYPE_CHECKING:
    from ..tasks.adf import DataFactory
    from ..tasks.databricks import Databricks

MODE_TAG = "etl_monitor/mode"
SUCCEEDED_CHECK = "succeeded"


class InitiationConfig(Config):
    mode: RunMode | None = Field(
        default=None,
        description="Processing mode for this launch: AS_IS, LIVE, HISTORIC or BULK. Default: the run's "
        f"'{MODE_TAG}' tag (as_is, live, historic or bulk), else AS_IS.",
    )


@dataclass(frozen=True)
class TaskRun:
    """What a task's step hands to its execute function: the catalogue entries, the monitor and, for DBX and
    ADF tasks, their workspace or factory client; ``mode`` is the initiation's processing mode."""

    process: ProcessSpec
    stage: Stage
    task: TaskSpec
    monitor: ETLMonitorResource
    initiation_key: AssetKey  # the process's initiation task: its materialisation carries the generated rows
    mode: RunMode | None = None
    databricks: Optional["Databricks"] = None
    adf: Optional["DataFactory"] = None


TaskExecute = Callable[[AssetExecutionContext, TaskRun], MaterializeResult]
"""A task step's work: ``execute_task``, or a wrapper of it."""


@dataclass
class ProcessAssets:
    """Everything Dagster gets for one process."""

    spec: ProcessSpec
    partitions: TimeWindowPartitionsDefinition
    translator: DagsterETLMonitorTranslator
    assets: list[AssetsDefinition] = field(default_factory=list)
    tasks_by_step: dict[str, TaskSpec] = field(default_factory=dict)  # step key -> task, for reconciling
    task_keys: dict[tuple[int, int], AssetKey] = field(default_factory=dict)  # (workflow, task) -> its asset
    health_checks: AssetChecksDefinition | None = None  # not run by the job: the run sensors report them


def build_process_assets(spec: ProcessSpec, translator: DagsterETLMonitorTranslator | None = None,
                         execute: TaskExecute | None = None) -> ProcessAssets:
    """Task assets, stage gates and view assets of one process; each task's step runs ``execute``
    (default ``execute_task``)."""
    translator = translator or DagsterETLMonitorTranslator()
    built = ProcessAssets(spec, partitions_for(spec), translator)
    stages = spec.stage_groups()
    initiation = next(t for t in stages[0].tasks if t.workflow == 0)
    # from the spec, not get_asset_key: an override of get_asset_spec may key the task differently
    initiation_key = translator.get_asset_spec(spec, stages[0], initiation).key
    after: list[AssetKey] = []  # what the next stage's tasks depend on
    for stage in stages:
        keys: list[AssetKey] = []
        steps: dict[str, TaskSpec] = {}  # step key -> task
        for task in stage.tasks:
            definition = _task_asset(built, stage, task, after, initiation_key, execute or execute_task)
            built.assets.append(definition)
            steps[definition.op.name] = task
            built.task_keys[(task.workflow, task.id)] = definition.key
            keys.append(definition.key)
        built.tasks_by_step.update(steps)
        if stage is stages[0]:  # the initiation alone: its failed step stops the run, no gate needed
            after = keys
            continue
        gate = gate_asset(spec, stage, translator.get_gate_spec(spec, stage), keys, built.partitions, steps)
        built.assets.append(gate)
        after = [gate.key]
    # The views read the whole run once the last stage's hooks are done, beside its gate, which stops nothing.
    built.assets.append(view_assets(spec, translator, keys, steps, built.partitions))
    built.health_checks = task_health_checks(spec, built.task_keys)
    return built


def _task_asset(built: ProcessAssets, stage: Stage, task: TaskSpec, after: list[AssetKey],
                initiation_key: AssetKey, execute: TaskExecute) -> AssetsDefinition:
    spec = built.spec
    asset_spec = built.translator.get_asset_spec(spec, stage, task).replace_attributes(deps=after)
    checks = [] if task.mandatory else [AssetCheckSpec(
        SUCCEEDED_CHECK, asset=asset_spec.key, blocking=False,
        description="Optional task: its failure is recorded in the monitor and does not stop later stages.")]
    decorate = multi_asset(
        name=asset_spec.key.to_python_identifier(),
        specs=[asset_spec],
        partitions_def=built.partitions,
        check_specs=checks,
        hooks=task_hooks(spec, task, built.partitions),
        retry_policy=RetryPolicy(max_retries=task.maximum_retries, delay=task.retry_delay_seconds)
        if task.maximum_retries else None,
        op_tags={**process_tags(spec.project, spec.process), TASK_TAG: f"{task.workflow}/{task.id}"},
        pool=built.translator.get_pool(spec, task),
    )

    def run(monitor: ETLMonitorResource, mode: RunMode | None = None, databricks: "Databricks | None" = None,
            adf: "DataFactory | None" = None) -> TaskRun:
        return TaskRun(spec, stage, task, monitor, initiation_key, mode, databricks, adf)

    if task.workflow == 0:
        @decorate
        def initiation(context: AssetExecutionContext, config: InitiationConfig,
                       monitor: ETLMonitorResource) -> MaterializeResult:
            return execute(context, run(monitor, mode=config.mode or _tagged_mode(context.run.tags.get(MODE_TAG))))

        return initiation

    if task.source_type in DATABRICKS:
        from .databricks import DatabricksResource  # here, so only catalogues with DBX tasks import its SDK

        @decorate
        def databricks_task(context: AssetExecutionContext, monitor: ETLMonitorResource,
                            databricks: DatabricksResource) -> MaterializeResult:
            return execute(context, run(monitor, databricks=databricks.target()))

        return databricks_task

    if task.source_type in DATA_FACTORY:
        from .adf import AzureDataFactoryResource

        @decorate
        def adf_task(context: AssetExecutionContext, monitor: ETLMonitorResource,
                     adf: AzureDataFactoryResource) -> MaterializeResult:
            return execute(context, run(monitor, adf=adf.target()))

        return adf_task

    @decorate
    def task_asset(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        return execute(context, run(monitor))

    return task_asset


def execute_task(context: AssetExecutionContext, run: TaskRun) -> MaterializeResult:
    """A task's step: the core's run policy runs the task and records its start; the outcome becomes the
    materialisation's metadata (the hooks record its end), a failure a ``Failure`` carrying the outcome."""
    spec, task = run.process, run.task
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, TimeWindowPartitionsDefinition)  # every task asset is time-partitioned
    day = processing_date(partitions, context.partition_key)
    initiated = runs_step(context.run, run.initiation_key.to_python_identifier())
    try:
        outcome = run_task(
            run.monitor.get_monitor(), spec, task, context.run.run_id, day, tasks.run,
            try_number=context.retry_number, initiated=initiated, mode=run.mode,
            record_end_status=False,  # the hooks record the end once Dagster has accepted the step
            log=context.log, context=context, databricks=run.databricks, adf=run.adf,
            check_stop=_stop_when_terminated(context),
            generated=_generated(context, run) if initiated and task.workflow and not context.retry_number else None)
    except (RetryRequested, DagsterError):
        raise  # Dagster's own control flow, in Dagster's words
    except Exception as exc:
        error, retried = failure_of(exc, task, context.retry_number)
        # Dagster stores the text of the exception a step raises, and of its cause: it gets a Failure
        # with the scrubbed message (and the original's traceback, code without values), not the
        # exception. Retried by the RetryPolicy, or not (its last try, or not retried for its class:
        # the policy is bypassed). The outcome rides in the metadata, so the failure hook and the
        # reconciliation record its own LogCode and class, not "Failure".
        failed = TaskOutcome(Outcome.FAIL, error=error.message, error_code=error.code,
                             facts={Key.PROCESSING_DATE: day.isoformat(), Key.TRY: context.retry_number + 1},
                             error_class=error.error_class)
        raise Failure(description=error.message, metadata=dagster_metadata(failed.metadata()),
                      allow_retries=retried).with_traceback(exc.__traceback__) from None
    return _result(task, outcome)


def _generated(context: AssetExecutionContext, run: TaskRun) -> list[dict[str, Any]] | None:
    """The rows this run's initiation generated, from its materialisation (Dagster's event log, not the
    engine); None when it generated none (the execution had its rows already)."""
    found = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=run.initiation_key, asset_partitions=[context.partition_key]), limit=1).records
    if not found or found[0].run_id != context.run.run_id:
        return None
    materialization = found[0].asset_materialization
    carried = materialization.metadata.get(Key.STEPS) if materialization else None
    rows = carried.value if isinstance(carried, JsonMetadataValue) else None
    return handed(list(rows)) if isinstance(rows, list) and rows else None


def _tagged_mode(tag: str | None) -> RunMode | None:
    if not tag:
        return None
    try:
        return RunMode(tag.strip().lower())
    except ValueError:
        raise ValidationError(MODE_TAG, tag, f"is one of {[m.value for m in RunMode]}") from None


def _result(task: TaskSpec, outcome: TaskOutcome) -> MaterializeResult:
    checks = [] if task.mandatory else [AssetCheckResult(
        check_name=SUCCEEDED_CHECK, passed=outcome.outcome is not Outcome.FAIL, severity=AssetCheckSeverity.WARN,
        metadata={"error": outcome.error} if outcome.error else {})]
    return MaterializeResult(metadata=dagster_metadata(outcome.metadata()), check_results=checks)


def runs_step(run: DagsterRun, step_key: str) -> bool:
    """Whether this run executes ``step_key`` (re-executions from failure and asset subsets may not).

    An empty asset selection selects nothing in particular: ``execute_in_process`` and ``materialize``
    record one for a whole job.
    """
    if run.step_keys_to_execute is not None and step_key not in run.step_keys_to_execute:
        return False
    return not run.asset_selection or any(k.to_python_identifier() == step_key for k in run.asset_selection)


def _stop_when_terminated(context: AssetExecutionContext) -> Callable[[], None]:
    """Raises Dagster's interrupt once the run is being terminated. Termination interrupts the run
    worker with a signal, and that can be lost (one handled inside a garbage-collector callback is
    swallowed); the run's status is not, so a task polling a remote run stops and cancels it anyway."""
    def check() -> None:
        run = context.instance.get_run_by_id(context.run.run_id)
        if run is not None and run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED):
            raise DagsterExecutionInterruptedError(f"the run is {run.status.value}")

    return check
