"""Task kinds: one runner per SourceType, each a function ``TaskRun -> TaskResult``. No Dagster here.

SPARK_SQL (``spark_sql``), PYTHON (``python``), DBX_NOTEBOOK and DBX_JOB (``databricks``), ADF_PIPELINE
and DATAFLOW (``adf``) are built in; NONE (the initiation task) does nothing. Other source types plug
in with ``register_runner``.
"""

from __future__ import annotations

from importlib import import_module

from ..core.enums import SourceType
from ..core.error_class import ErrorClass
from ..core.runs import Runner, TaskFailed, TaskResult, TaskRun
from .python import run_python
from .spark_sql import run_spark_sql

__all__ = ["Runner", "TaskFailed", "TaskResult", "TaskRun", "register_runner", "run", "runner_for"]


def _run_nothing(run: TaskRun) -> TaskResult:
    return TaskResult()


def _imported_when_run(module: str, name: str) -> Runner:
    """A runner whose module is imported at its first task: the Databricks SDK alone takes 0.55 s to
    import, and only processes with such tasks pay it."""
    def runner(run: TaskRun) -> TaskResult:
        return getattr(import_module(module, __name__), name)(run)

    runner.__name__ = name
    return runner


_RUNNERS: dict[SourceType, Runner] = {
    SourceType.NONE: _run_nothing,
    SourceType.SPARK_SQL: run_spark_sql,
    SourceType.PYTHON: run_python,
    SourceType.DBX_NOTEBOOK: _imported_when_run(".databricks", "run_notebook"),
    SourceType.DBX_JOB: _imported_when_run(".databricks", "run_job"),
    SourceType.ADF_PIPELINE: _imported_when_run(".adf", "run_pipeline"),
    SourceType.DATAFLOW: _imported_when_run(".adf", "run_pipeline"),
}


def register_runner(source_type: SourceType | str, runner: Runner) -> None:
    """Make tasks of ``source_type`` run with ``runner``."""
    _RUNNERS[SourceType(source_type)] = runner


def runner_for(source_type: SourceType) -> Runner:
    """The runner of ``source_type``; ``TaskFailed`` (LogCode NO_RUNNER) when there is none."""
    runner = _RUNNERS.get(source_type)
    if runner is None:
        raise TaskFailed(f"no runner for SourceType {source_type.value} here: "
                         f"known are {sorted(t.value for t in _RUNNERS)}", "NO_RUNNER",
                         error_class=ErrorClass.CONFIGURATION)
    return runner


def run(task_run: TaskRun) -> TaskResult:
    """The runner of every source type: the one registered for the task's SourceType."""
    return runner_for(task_run.task.source_type)(task_run)
