"""The hooks of a task asset: DONE (advancing its DELTA_DATE watermark) or FAIL into the monitor, and how a
later step waits for them.

A hook that raises is only logged by Dagster; ``sensors.py`` repairs what a hook did not write.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import date

from dagster import (
    AssetExecutionContext,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
    Failure,
    HookContext,
    HookDefinition,
    TimeWindowPartitionsDefinition,
    failure_hook,
    success_hook,
)
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.errors import DagsterExecutionInterruptedError

from ..core.catalogue import ProcessSpec, TaskSpec, dagster_name
from ..core.enums import LogCode
from ..core.error_class import ErrorClass
from ..core.outcome import Key, Outcome, TaskOutcome, record_end
from ..core.runs import task_error
from .partitions import processing_date

# How long a gate or the views wait for their tasks' hooks to write DONE/FAIL before they go on without them.
HOOK_WAIT_SECONDS = 60.0
_HOOK_EVENTS = {DagsterEventType.HOOK_COMPLETED, DagsterEventType.HOOK_ERRORED, DagsterEventType.HOOK_SKIPPED}


def task_hooks(spec: ProcessSpec, task: TaskSpec, partitions: TimeWindowPartitionsDefinition) -> set[HookDefinition]:
    name = f"{dagster_name(spec.process)}__{task.dagster_name}"

    def record(context: HookContext, outcome: TaskOutcome) -> None:
        known = outcome.facts.get(Key.PROCESSING_DATE)  # an asset's outcome carries it: no run lookup
        day = date.fromisoformat(known) if known else _processing_date(context, partitions)
        record_end(context.resources.monitor.get_monitor(), spec, task, context.run_id, day, outcome)

    @success_hook(name=f"{name}__done", required_resource_keys={"monitor"})
    def done(context: HookContext) -> None:
        # the asset's output is named after its key; its check results are outputs without an outcome
        outcomes = (TaskOutcome.from_metadata(m) for m in context.op_output_metadata.values())
        outcome = next((o for o in outcomes if o is not None), None)
        if outcome is not None:  # DONE, or FAIL for an optional task whose failure must not stop the run
            record(context, outcome)

    @failure_hook(name=f"{name}__fail", required_resource_keys={"monitor"})
    def fail(context: HookContext) -> None:
        record(context, failed_outcome(context.op_exception))

    return {done, fail}


# What a step raises when its run is terminated (the UI's Terminate interrupts the worker).
_INTERRUPTS = frozenset({DagsterExecutionInterruptedError.__name__, KeyboardInterrupt.__name__})
_CANCELLED = TaskOutcome(Outcome.FAIL, error="the run was terminated while the task ran",
                         error_code=LogCode.RUN_CANCELED.value, error_class=ErrorClass.CANCELED)


def failed_outcome(exc: BaseException | None) -> TaskOutcome:
    """The FAIL outcome of a failed step: the one a ``Failure`` carries in its metadata (a failure the
    asset kept from being retried), RUN_CANCELED for an interrupted one, else read from the exception."""
    if isinstance(exc, Failure) and (carried := TaskOutcome.from_metadata(exc.metadata)) is not None:
        return carried
    if exc is None:
        return TaskOutcome(Outcome.FAIL, error="step failed")
    if type(exc).__name__ in _INTERRUPTS:
        return _CANCELLED
    error = task_error(exc)
    return TaskOutcome(Outcome.FAIL, error=error.message, error_code=error.code, error_class=error.error_class)


def logged_failure_outcome(error_class_name: str | None, message: str) -> TaskOutcome:
    """The same for a step failure read back from Dagster's event log (its error's class name and message)."""
    if error_class_name in _INTERRUPTS:
        return _CANCELLED
    return TaskOutcome(Outcome.FAIL, error=message, error_code=error_class_name)


def _processing_date(context: HookContext, partitions: TimeWindowPartitionsDefinition) -> date | None:
    run = context.instance.get_run_by_id(context.run_id)
    key = run.tags.get("dagster/partition") if run else None
    return processing_date(partitions, key) if key else None


def wait_for_hooks(context: AssetExecutionContext, steps: Iterable[str], timeout: float = HOOK_WAIT_SECONDS) -> bool:
    """Wait for the hooks of the task ``steps`` in this run: Dagster starts a step as soon as its upstream steps
    succeed, before their success hooks have written DONE. A run of a subset holds only some of the steps."""
    job, graph = context.job_def, context.job_def.graph
    hooks = {step: len(job.get_all_hooks_for_handle(NodeHandle(step, None)))
             for step in steps if graph.has_node_named(step)}
    return hooks_finished(context.instance, context.run.run_id, hooks, timeout)


def hooks_finished(instance: DagsterInstance, run_id: str, hooks: Mapping[str, int], timeout: float) -> bool:
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
