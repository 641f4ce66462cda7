"""PYTHON tasks the Dagster tests run: their behaviour is steered through the monitor's own FLAG parameters."""

from __future__ import annotations

from etl_monitor_dagster.tasks import TaskResult, TaskRun


def succeed(run: TaskRun) -> TaskResult:
    return TaskResult(rows_written=3, metadata={"watermark_seen": run.watermark_value or ""})


def when_ready(run: TaskRun) -> TaskResult:
    """Fails unless the FLAG parameter named by the task's watermark is TRUE (a source that is not ready)."""
    if not run.monitor.get_active_watermark(run.process.project, run.process.process, run.task.watermark):
        raise RuntimeError(f"source of {run.task.name} is not ready")
    return TaskResult(rows_written=5)


def refuse_own_done(run: TaskRun) -> TaskResult:
    """Adds a Delta CHECK constraint under which this task's DONE write fails: a hook write that fails."""
    run.monitor.spark.sql(
        f"ALTER TABLE {run.monitor.table_name('ETLEventLog')} ADD CONSTRAINT refuse_done "
        f"CHECK (coalesce(ExecutionID, '') <> '{run.execution_id}' OR coalesce(TaskID, -1) <> {run.task.id} "
        "OR EventType <> 'TASK_DONE')")
    return TaskResult(rows_written=1)
