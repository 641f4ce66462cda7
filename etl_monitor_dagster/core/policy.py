"""The run policy: what one run of one catalogue task does in the monitor, whoever orchestrates it.

``run_task`` decides and records skip / start / done / retry / fail around a runner and returns a
``TaskOutcome``. The Dagster assets call it (leaving the end to their hooks), and so can a notebook
or any other orchestrator::

    outcome = run_task(monitor, process, task, execution_id, date(2026, 4, 9), tasks.run)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from .catalogue import ProcessSpec, TaskSpec
from .enums import SKIP, ParameterType, SourceType
from .errors import ValidationError
from .monitor import ETLMonitorFramework
from .outcome import Key, Outcome, TaskOutcome, handover, record_end
from .runs import Runner, TaskError, TaskRun, task_error


class RunMode(StrEnum):
    """How a launch sets the processing mode before its steps are generated."""

    AS_IS = "as_is"  # leave SYSDT and the watermarks as they are
    LIVE = "live"  # SYSDT back to NULL
    HISTORIC = "historic"  # SYSDT = the partition's processing date
    BULK = "bulk"  # every DELTA_DATE to NULL and every DELTA_ID to 0: a full reload


def run_task(monitor: ETLMonitorFramework, process: ProcessSpec, task: TaskSpec, execution_id: str,
             processing_date: date, runner: Runner, *, try_number: int = 0, initiated: bool = True,
             mode: RunMode | None = None, record_end_status: bool = True, log: logging.Logger | None = None,
             context: Any = None, databricks: Any = None, adf: Any = None,
             check_stop: Callable[[], None] | None = None,
             generated: list[dict[str, Any]] | None = None) -> TaskOutcome:
    """Run one task of an execution and record what happened.

    - The initiation task (workflow 0) first prepares the execution (``initiate`` with ``mode``); a
      run that does not include it (``initiated=False``, a re-execution) opens the attempt itself.
    - A task the monitor says not to run (DONE earlier, inactive, force-skipped) is SKIPPED.
    - Otherwise it is started and ``runner`` does the work; a reported watermark is moved.
    - A failure with retries left (``try_number`` < MaximumRetries) whose ErrorClass is retryable is
      recorded RQUE and re-raised, for the orchestrator to retry. Any other failure is the task's last
      (one not retried only for its class says so in its message): a mandatory task's is re-raised and
      the run stops; an optional task's is the FAIL outcome and the run goes on.
    - With ``record_end_status`` (default) DONE and FAIL are written here; an orchestrator that
      records them after accepting the step (Dagster's hooks) passes False and ``record_end``s later.
    - The initiation's outcome carries the rows it generated (``Key.STEPS``, see ``handover``). A task
      given them as ``generated`` (a first try in the same execution) takes its row from them instead of
      reading it: absent, it was not generated (DONE in its period or inactive) and is SKIPPED. A skip
      or deactivation after the initiation then applies from the next execution.
    """
    log = log or logging.getLogger("etl_monitor_dagster")
    if task.workflow == 0:
        generated = initiate(monitor, process, execution_id, processing_date, mode)
    elif not initiated:
        open_attempt(monitor, process, execution_id, processing_date)
    if generated:
        mine = [r for r in generated if (r["WorkFlowID"], r["TaskID"]) == (task.workflow, task.id)]
        step = monitor.with_watermark(mine[0]) if mine else {"Status": SKIP, "Attempts": generated[0]["Attempts"]}
    else:
        step = monitor.pending_rows(execution_id, process.project, process.process, processing_date,
                                    task_id=task.id, workflow_id=task.workflow)[0]
    facts: dict[str, Any] = {Key.PROCESSING_DATE: processing_date.isoformat(), Key.EXECUTION_ID: execution_id,
                             Key.TRY: try_number + 1, Key.ATTEMPTS: step.get("Attempts")}
    if task.workflow == 0 and generated:
        facts[Key.STEPS] = handover(generated)
    if step["Status"] == SKIP:
        log.info(f"{task.name}: not run (DONE in an earlier attempt, inactive or force-skipped)")
        return TaskOutcome(Outcome.SKIPPED, facts=facts)

    def end(outcome: TaskOutcome) -> TaskOutcome:
        if record_end_status:
            record_end(monitor, process, task, execution_id, processing_date, outcome)
        return outcome

    monitor.start_task(execution_id, process.project, process.process, task_id=task.id, sequence_id=task.stage,
                       workflow_id=task.workflow, processing_date=processing_date, source_type=task.source_type,
                       source_run_id=execution_id, step=step)
    started = time.perf_counter()
    run = TaskRun(execution_id, process, task, processing_date, step, monitor, log=log, context=context,
                  databricks=databricks, adf=adf, try_number=try_number, check_stop=check_stop)
    try:
        result = runner(run)
        previous = None  # the watermark's value before this task moved it, for the outcome
        if result.new_watermark is not None and task.watermark:
            previous = step.get("WatermarkValue")
            advance(run, result.new_watermark)
    except Exception as exc:
        error, retried = failure_of(exc, task, try_number)
        failed = TaskOutcome(Outcome.FAIL, error=error.message, error_code=error.code, facts=facts,
                             error_class=error.error_class)
        if retried:
            tries = f"try {try_number + 1} of {task.maximum_retries + 1}"
            monitor.retry_task(execution_id, process.project, process.process, task_id=task.id,
                               sequence_id=task.stage, workflow_id=task.workflow, processing_date=processing_date,
                               log_code=error.code, error_class=error.error_class,
                               log_message=f"{tries} failed, retrying in {task.retry_delay_seconds} s: {error.message}")
            raise  # the orchestrator starts the next try, which start_task records as RQUE
        end(failed)
        if task.mandatory:
            raise  # the run stops: later stages must not run
        log.error(f"optional task {task.name} failed; later stages go on: {error.message}")
        return failed
    figures: dict[str, Any] = {Key.ROWS_READ: result.rows_read, Key.ROWS_WRITTEN: result.rows_written,
                               Key.NEW_WATERMARK: result.new_watermark,
                               Key.PREVIOUS_WATERMARK: previous,
                               Key.SECONDS: round(time.perf_counter() - started, 3)}
    return end(TaskOutcome(Outcome.DONE, summary=result.summary(), facts={**facts, **figures, **result.metadata}))


def failure_of(exc: BaseException, task: TaskSpec, try_number: int) -> tuple[TaskError, bool]:
    """A failed try: what it is, and whether it is retried (retries left and a retryable class).

    A failure that had retries left but is not retried for its class says so at the front of its
    message (kept when LogMessage is cut): ``not retried: DATA_QUALITY is not retryable: ...``.
    """
    error = task_error(exc)
    if try_number >= task.maximum_retries:
        return error, False
    if not error.retryable:
        return replace(error, message=f"not retried: {error.error_class} is not retryable: {error.message}"), False
    return error, True


def initiate(monitor: ETLMonitorFramework, process: ProcessSpec, execution_id: str, processing_date: date,
             mode: RunMode | None = None) -> list[dict[str, Any]]:
    """The initiation task's work: tables and catalogue up to date, mode applied, steps generated (the rows
    returned; none when the execution had them already)."""
    if not monitor.engine.table_exists(monitor.table_name("ETLProcessingSteps")):
        monitor.setup()
    monitor.register_many(**process.registration())
    project, load = process.project, process.process
    if mode is RunMode.LIVE:
        monitor.set_processing_mode(project, load)
    elif mode is RunMode.HISTORIC:
        monitor.set_processing_mode(project, load, is_historic_mode=True, processing_date=processing_date)
    elif mode is RunMode.BULK:
        monitor.set_processing_mode(project, load, is_bulk_mode=True)
    return monitor.generate_steps(execution_id, project, load, processing_date)


def open_attempt(monitor: ETLMonitorFramework, process: ProcessSpec, execution_id: str,
                 processing_date: date) -> None:
    """An execution without its initiation step (a re-execution from failure): generate the steps and
    record the initiation task DONE, so the attempt is open."""
    monitor.generate_execution_steps(execution_id, process.project, process.process, processing_date)
    with monitor.task(execution_id, process.project, process.process, task_id=0, sequence_id=0, workflow_id=0,
                      processing_date=processing_date, source_type=SourceType.NONE, source_run_id=execution_id):
        pass


def advance(run: TaskRun, value: int | datetime | str) -> None:
    """Move the task's watermark to what its work reported: a DELTA_ID's number, a DELTA_DATE's time."""
    name = run.task.watermark or ""
    if run.watermark_type == ParameterType.DELTA_ID.value:
        if isinstance(value, datetime):
            raise ValidationError("new_watermark", value, f"is a number for the DELTA_ID parameter {name}")
        run.monitor.advance_step_watermark(run.step, name, new_int_value=int(value))
    else:  # the monitor refuses what is not a timestamp, naming the value
        run.monitor.advance_step_watermark(run.step, name,
                                           new_datetime_value=value if not isinstance(value, int) else str(value))


