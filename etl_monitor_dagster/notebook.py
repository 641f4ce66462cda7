"""The utility notebooks' logic: start, end or fail a task from Databricks widget values.

ADF pipelines that run their own activities call these notebooks to write back into the monitor
next to Dagster. The notebooks in ``databricks/notebooks`` are thin callers of this module::

    from etl_monitor_dagster.notebook import start_task_from_widgets
    start_task_from_widgets(spark, dbutils)

Widgets (empty = not given): catalog, schema, execution_id, project_code, process_load, task_id,
workflow_id, processing_date, source_type, source_run_id, cluster_id; end/fail also log_message and
log_code. The notebook exits with a JSON document: ``{"action", "changed", "status"}``.

Notebooks that Dagster runs as DBX_NOTEBOOK tasks read the run's context with ``task_context`` and
report their figures with ``exit_with_result``.
"""

from __future__ import annotations

import json
from typing import Any

from .monitor import ETLMonitorFramework

COMMON = ("catalog", "schema", "execution_id", "project_code", "process_load", "task_id", "workflow_id",
          "processing_date")
START = (*COMMON, "source_type", "source_run_id", "cluster_id")
FINISH = (*COMMON, "log_message", "log_code")


CONTEXT = ("execution_id", "project_code", "process_load", "task_id", "workflow_id", "processing_date",
           "attempts", "watermark_value", "watermark_type", "full_file_name", "in_file_path", "out_file_path")


def task_context(dbutils: Any) -> dict[str, str | None]:
    """The parameters a DBX_NOTEBOOK task is run with (``databricks_tasks``), empty ones as None."""
    return _widgets(dbutils, CONTEXT)


def exit_with_result(dbutils: Any, rows_read: int | None = None, rows_written: int | None = None,
                     new_watermark: Any = None) -> str:
    """End the notebook with the figures the task reports; ``new_watermark`` moves its DELTA_ID."""
    figures = {"rows_read": rows_read, "rows_written": rows_written, "new_watermark": new_watermark}
    result = json.dumps({k: v for k, v in figures.items() if v is not None}, default=str)
    dbutils.notebook.exit(result)
    return result


def _widgets(dbutils: Any, names: tuple[str, ...]) -> dict[str, str | None]:
    for name in names:
        dbutils.widgets.text(name, "etl" if name == "schema" else "")
    return {name: (dbutils.widgets.get(name) or "").strip() or None for name in names}


def _monitor(spark: Any, values: dict[str, str | None]) -> ETLMonitorFramework:
    return ETLMonitorFramework(spark, catalog=values.pop("catalog"), schema=values.pop("schema") or "etl",
                               updated_by="databricks-notebook")


def _finish(dbutils: Any, monitor: ETLMonitorFramework, action: str, changed: bool, values: dict[str, Any]) -> str:
    rows = monitor.get_status(values["project_code"], values["process_load"], execution_id=values["execution_id"],
                              workflow_id=int(values["workflow_id"]), task_id=int(values["task_id"]))
    result = json.dumps({"action": action, "changed": changed, "status": rows[0]["Status"] if rows else None})
    dbutils.notebook.exit(result)
    return result


def start_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``start_task`` with the widgets' values; exits the notebook with the JSON result."""
    values = _widgets(dbutils, START)
    monitor = _monitor(spark, values)
    changed = monitor.start_task(**values)
    return _finish(dbutils, monitor, "start", changed, values)


def end_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``end_task`` (DONE) with the widgets' values; exits the notebook with the JSON result."""
    values = _widgets(dbutils, FINISH)
    monitor = _monitor(spark, values)
    changed = monitor.end_task(**values)
    return _finish(dbutils, monitor, "end", changed, values)


def fail_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``fail_task`` with the widgets' values; exits the notebook with the JSON result."""
    values = _widgets(dbutils, FINISH)
    monitor = _monitor(spark, values)
    changed = monitor.fail_task(**values)
    return _finish(dbutils, monitor, "fail", changed, values)
