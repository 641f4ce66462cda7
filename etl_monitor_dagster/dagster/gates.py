"""Stage gates: an asset after each stage whose blocking check stops later stages behind a mandatory failure."""

from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    multi_asset,
)

from ..core.catalogue import ProcessSpec, Stage, TaskSpec
from .metadata import markdown_table
from .resource import ETLMonitorResource
from .sensors import IndexedProcess, reconcile_run

BLOCKERS_CHECK = "no_mandatory_blockers"


def gate_asset(process: ProcessSpec, stage: Stage, spec: AssetSpec, upstream: list[AssetKey],
               partitions: TimeWindowPartitionsDefinition, steps: dict[str, TaskSpec]) -> AssetsDefinition:
    """The gate of ``stage``: depends on its tasks (``steps``: step key -> task), checks v_mandatoryBlockers."""
    spec = spec.replace_attributes(deps=upstream)

    @multi_asset(
        name=spec.key.to_python_identifier(),
        specs=[spec],
        partitions_def=partitions,
        check_specs=[AssetCheckSpec(BLOCKERS_CHECK, asset=spec.key, blocking=True,
                                    description="v_mandatoryBlockers has no row for this run and stage.")],
    )
    def gate(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        m = monitor.get_monitor()
        where: dict[str, Any] = {"ExecutionID": context.run.run_id, "WorkFlowID": stage.workflow,
                                 "SequenceID": stage.sequence}
        blockers = m.read_view("v_mandatoryBlockers", **where)
        if blockers:
            # Dagster starts this step as soon as the tasks succeed, possibly before their success hooks
            # have written DONE (or after a hook failed): bring the monitor in line, then look again.
            reconcile_run(context.instance, context.run.run_id, m, {process.process: IndexedProcess(process, steps)})
            blockers = m.read_view("v_mandatoryBlockers", **where)
        figures: dict[str, Any] = {"mandatory_blockers": len(blockers)}
        if blockers:
            figures["blockers"] = MetadataValue.md(markdown_table(blockers, ["TaskName", "Status", "LogMessage"]))
        return MaterializeResult(
            metadata={"mandatory_blockers": len(blockers), "execution_id": context.run.run_id},
            check_results=[AssetCheckResult(
                check_name=BLOCKERS_CHECK, passed=not blockers, severity=AssetCheckSeverity.ERROR,
                metadata=figures,
                description=None if not blockers else f"{len(blockers)} mandatory task(s) block later stages",
            )],
        )

    return gate
