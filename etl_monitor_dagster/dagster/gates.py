"""Stage gates: an asset after each stage of tasks whose blocking check stops later stages behind a mandatory
failure. The initiation's stage has none: its one task is mandatory, so its failed step stops the run itself."""

from functools import partial
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
from .hooks import wait_for_hooks
from .metadata import markdown_table
from .resource import ETLMonitorResource
from .sensors import IndexedProcess, reconcile_run

BLOCKERS_CHECK = "no_mandatory_blockers"


def gate_asset(process: ProcessSpec, stage: Stage, spec: AssetSpec, upstream: list[AssetKey],
               partitions: TimeWindowPartitionsDefinition, steps: dict[str, TaskSpec]) -> AssetsDefinition:
    """The gate of ``stage``: depends on its tasks (``steps``: step key -> task), checks its mandatory blockers."""
    spec = spec.replace_attributes(deps=upstream)
    # Only a mandatory task blocks: a stage without one has nothing to read (its rows were generated from this
    # catalogue, which the initiation registered), so nothing to wait for either.
    mandatory = any(t.mandatory for t in steps.values())

    @multi_asset(
        name=spec.key.to_python_identifier(),
        specs=[spec],
        partitions_def=partitions,
        check_specs=[AssetCheckSpec(BLOCKERS_CHECK, asset=spec.key, blocking=True,
                                    description="No mandatory task of this stage is FAIL or unfinished in this run "
                                    "(v_mandatoryBlockers' rule).")],
    )
    def gate(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        blockers: list[dict[str, Any]] = []
        reconciled: list[str] = []
        if mandatory:
            m = monitor.get_monitor()
            wait_for_hooks(context, steps)
            read = partial(m.mandatory_blockers, context.run.run_id, stage.workflow, stage.sequence)
            blockers = read()
            if blockers:
                # A hook failed or is still writing: bring the monitor in line, then look again.
                index = {process.process: IndexedProcess(process, steps)}
                reconciled = reconcile_run(context.instance, context.run.run_id, m, index)
                blockers = read()
        figures: dict[str, Any] = {"mandatory_blockers": len(blockers)}
        if blockers:
            figures["blockers"] = MetadataValue.md(markdown_table(blockers, ["TaskName", "Status", "LogMessage"]))
        return MaterializeResult(
            # reconciled_rows: outcomes this gate recorded because their hooks had not (0 normally)
            metadata={"mandatory_blockers": len(blockers), "reconciled_rows": len(reconciled),
                      "execution_id": context.run.run_id},
            check_results=[AssetCheckResult(
                check_name=BLOCKERS_CHECK, passed=not blockers, severity=AssetCheckSeverity.ERROR,
                metadata=figures,
                description=None if not blockers else f"{len(blockers)} mandatory task(s) block later stages",
            )],
        )

    return gate
