"""The hooks of a task asset: DONE (advancing its DELTA_DATE watermark) or FAIL into the monitor.

A hook that raises is only logged by Dagster; ``reconcile.py`` repairs what a hook did not write.
"""

from datetime import date

from dagster import HookContext, HookDefinition, TimeWindowPartitionsDefinition, failure_hook, success_hook

from .catalogue import ProcessSpec, TaskSpec, dagster_name
from .enums import Status
from .partitions import processing_date
from .reconcile import OUTCOME, Outcome, metadata_value
from .runners import error_text


def task_hooks(spec: ProcessSpec, task: TaskSpec, partitions: TimeWindowPartitionsDefinition) -> set[HookDefinition]:
    name = f"{dagster_name(spec.process)}__{task.dagster_name}"

    def record(context: HookContext, status: Status, message: str | None, code: str | None) -> None:
        monitor = context.resources.monitor.get_monitor()
        monitor.end_task(context.run_id, spec.project, spec.process, task_id=task.id, sequence_id=task.stage,
                         workflow_id=task.workflow, processing_date=_processing_date(context, partitions),
                         status=status,
                         log_message=message, log_code=code, log_type="ERROR" if status is Status.FAIL else None)

    @success_hook(name=f"{name}__done", required_resource_keys={"monitor"})
    def done(context: HookContext) -> None:
        metadata = context.op_output_metadata.get("result") or {}
        outcome = metadata_value(metadata, OUTCOME)
        if outcome == Outcome.DONE:
            record(context, Status.DONE, metadata_value(metadata, "summary"), None)
        elif outcome == Outcome.FAIL:  # an optional task whose failure must not stop the run
            record(context, Status.FAIL, metadata_value(metadata, "error"), metadata_value(metadata, "error_code"))

    @failure_hook(name=f"{name}__fail", required_resource_keys={"monitor"})
    def fail(context: HookContext) -> None:
        exc = context.op_exception
        message, code = error_text(exc) if exc else ("step failed", None)
        record(context, Status.FAIL, message, code)

    return {done, fail}


def _processing_date(context: HookContext, partitions: TimeWindowPartitionsDefinition) -> date | None:
    run = context.instance.get_run_by_id(context.run_id)
    key = run.tags.get("dagster/partition") if run else None
    return processing_date(partitions, key) if key else None
