"""What a task's work is given (``TaskRun``) and gives back (``TaskResult``), whatever runs it.

A runner is a function ``TaskRun -> TaskResult``; the task kinds in ``etl_monitor_dagster.tasks``
are runners, and ``policy.run_task`` calls one between the monitor's start and end.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .catalogue import ProcessSpec, TaskSpec
from .error_class import ErrorClass, classify
from .errors import ETLMonitorError
from .monitor import ETLMonitorFramework, StepFacts
from .monitor.steps import StepKey
from .scrub import scrub


class TaskFailed(ETLMonitorError):
    """The task's own work failed; ``code`` is what LogCode records, ``error_class`` what kind of
    failure it is when the task knows (else ``classify`` decides from the code and the cause)."""

    def __init__(self, message: str, code: str, *, error_class: ErrorClass | None = None) -> None:
        self.code = code
        self.error_class = error_class
        super().__init__(message)


@dataclass
class TaskRun(StepFacts):
    """Everything a runner needs about one task in one run."""

    execution_id: str
    process: ProcessSpec
    task: TaskSpec
    processing_date: date
    step: dict[str, Any]  # the monitor's row: WatermarkValue/Type, FullFileName, Attempts
    monitor: ETLMonitorFramework
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("etl_monitor_dagster"))
    context: Any = None  # the orchestrator's context (Dagster's AssetExecutionContext), for PYTHON tasks
    databricks: Any = None  # a tasks.databricks.Databricks, for DBX_NOTEBOOK and DBX_JOB tasks
    adf: Any = None  # a tasks.adf.DataFactory, for ADF_PIPELINE and DATAFLOW tasks
    try_number: int = 0  # the orchestrator's retry of this task in this execution: 0 first, 1 first retry...
    check_stop: Callable[[], None] | None = None  # raises once the orchestrator asked the run to stop

    def key(self) -> StepKey:
        """The monitor's key of this task's row in this run."""
        return StepKey(self.execution_id, self.process.project, self.process.process, self.task.id,
                       self.task.workflow, self.task.stage, self.processing_date, self.attempts)

    def stop_if_asked(self) -> None:
        """Raise if the run is being stopped (remote runners ask at every poll: an interrupt signal can be lost)."""
        if self.check_stop is not None:
            self.check_stop()

    def cancel_remote(self, what: str, cancel: Callable[[], object]) -> None:
        """Cancel the remote run (``what``) a runner stops waiting for, with interrupts ignored until
        ``cancel`` returns; never raises: the reason to stop matters more than a failed cancel."""
        try:
            with uninterrupted():
                cancel()
            self.log.warning(f"{self.task.name}: {what} cancelled")
        except Exception as exc:
            self.log.error(f"{self.task.name}: could not cancel {what}: {scrub(str(exc))}")

    def path(self, value: str | None) -> str | None:
        """A catalogue path: relative ones are relative to the catalogue file, others are kept."""
        if not value or "://" in value or value.startswith(("/", "dbfs:")) or self.process.path is None:
            return value
        return str((self.process.path.parent / value).resolve())

    def variables(self) -> dict[str, tuple[str, Any]]:
        """The fields of the ``etl`` SQL variable of a SPARK_SQL task: name -> (type, value)."""
        return {
            "execution_id": ("STRING", self.execution_id),
            "project_code": ("STRING", self.process.project),
            "process_load": ("STRING", self.process.process),
            "task_id": ("INT", self.task.id),
            "workflow_id": ("INT", self.task.workflow),
            "processing_date": ("DATE", self.processing_date),
            "attempts": ("INT", self.attempts),
            "watermark_value": ("STRING", self.watermark_value),
            "watermark_type": ("STRING", self.watermark_type),
            "full_file_name": ("STRING", self.full_file_name),
            "in_file_path": ("STRING", self.path(self.task.in_file_path)),
            "out_file_path": ("STRING", self.path(self.task.out_file_path)),
        }

    def parameters(self) -> dict[str, str]:
        """The same fields as text, for a remote run's parameters (Databricks widgets); NULL is ''."""
        return {name: "" if value is None else str(value) for name, (_, value) in self.variables().items()}


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM ignored, for the cancel of a remote run.

    That cancel is already the answer to a stop. The orchestrator's terminate marks the run first
    and signals its worker after, so the signal often arrives while the cancel request is on its way
    and would abandon it with the remote run still going. Only the main thread can swap handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {s: h for s in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(s)) is not None}
    for number in kept:
        signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        for number, handler in kept.items():
            signal.signal(number, handler)


@dataclass
class TaskResult:
    """What a task reports: row counts where known, a new watermark, free metadata."""

    rows_read: int | None = None
    rows_written: int | None = None
    new_watermark: int | datetime | str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{k}={v}" for k, v in (("rows_read", self.rows_read), ("rows_written", self.rows_written),
                                         ("new_watermark", self.new_watermark)) if v is not None]
        return ", ".join(parts) or "ok"


Runner = Callable[[TaskRun], TaskResult]


@dataclass(frozen=True)
class TaskError:
    """What a task's failure is: its LogMessage, its LogCode and its class."""

    message: str
    code: str
    error_class: ErrorClass

    @property
    def retryable(self) -> bool:
        return self.error_class.retryable


def task_error(exc: BaseException) -> TaskError:
    """The one reading of a task's failure: LogMessage (its type and text, scrubbed of credentials),
    LogCode (a TaskFailed's code, else the exception's type name) and ErrorClass (``classify``, which
    reads the unscrubbed exception)."""
    code = exc.code if isinstance(exc, TaskFailed) else type(exc).__name__
    return TaskError(scrub(f"{type(exc).__name__}: {exc}"), code, classify(exc))
