"""Stage gates: an asset after each stage whose blocking check stops later stages behind a mandatory failure."""

import time
from collections.abc import Iterable
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    multi_asset,
)
from dagster._core.definitions.dependency import NodeHandle

from ..core.catalogue import ProcessSpec, Stage, TaskSpec
from .metadata import markdown_table
from .resource import ETLMonitorResource
from .sensors import IndexedProcess, reconcile_run

BLOCKERS_CHECK = "no_mandatory_blockers"
# How long a gate waits for its stage's hooks to write DONE/FAIL before it reconciles in their place.
HOOK_WAIT_SECONDS = 60.0
_HOOK_EVENTS = {DagsterEventType.HOOK_COMPLETED, DagsterEventType.HOOK_ERRORED, DagsterEventType.HOOK_SKIPPED}


def gate_asset(process: ProcessSpec, stage: Stage, spec: AssetSpec, upstream: list[AssetKey],
               partitions: TimeWindowPartitionsDefinition, steps: dict[str, TaskSpec]) -> AssetsDefinition:
    """The gate of ``stage``: depends on its tasks (``steps``: step key -> task), checks its mandatory blockers."""
    spec = spec.replace_attributes(deps=upstream)

    @multi_asset(
        name=spec.key.to_python_identifier(),
        specs=[spec],
        partitions_def=partitions,
        check_specs=[AssetCheckSpec(BLOCKERS_CHECK, asset=spec.key, blocking=True,
                                    description="No mandatory task of this stage is FAIL or unfinished in this run "
                                    "(v_mandatoryBlockers' rule).")],
    )
    def gate(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        m = monitor.get_monitor()
        # Dagster starts this step as soon as the tasks succeed, before their success hooks have written DONE.
        # A run of a subset (the gate materialised alone) holds only some of them.
        graph = context.job_def.graph
        hooks = {step: len(context.job_def.get_all_hooks_for_handle(NodeHandle(step, None)))
                 for step in steps if graph.has_node_named(step)}
        hooks_finished(context.instance, context.run.run_id, hooks, HOOK_WAIT_SECONDS)
        def read() -> list[dict[str, Any]]:
            # Only a mandatory task blocks: a stage without one has nothing to read (its rows were generated
            # from this catalogue, which the initiation registered).
            if not any(t.mandatory for t in steps.values()):
                return []
            return m.mandatory_blockers(context.run.run_id, stage.workflow, stage.sequence)

        blockers = read()
        reconciled: list[str] = []
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


def hooks_finished(instance: DagsterInstance, run_id: str, hooks: dict[str, int], timeout: float) -> bool:
    """Wait until every step of ``hooks`` (step key -> its hook count) that succeeded in this run has an
    event for each hook after its last success; False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        events = instance.all_logs(run_id, of_type={DagsterEventType.STEP_SUCCESS, *_HOOK_EVENTS})
        ran = (_hooks_after_success(events, step) for step in hooks)
        if all(done is None or done >= hooks[step] for step, done in zip(hooks, ran, strict=True)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _hooks_after_success(events: Iterable[EventLogEntry], step: str) -> int | None:
    """Hook events of ``step`` after its last STEP_SUCCESS; None when it did not succeed in this run."""
    count = None
    for event in events:
        if event.step_key == step:
            if event.dagster_event_type is DagsterEventType.STEP_SUCCESS:
                count = 0
            elif count is not None:
                count += 1
    return count
