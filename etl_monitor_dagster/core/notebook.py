"""The utility notebooks' logic: start, end or fail a task from Databricks widget values.

ADF pipelines that run their own activities call these notebooks to write back into the monitor
next to Dagster. The notebooks in ``databricks/notebooks`` are thin callers of this module::

    from etl_monitor_dagster.core.notebook import start_task_from_widgets
    start_task_from_widgets(spark, dbutils)

Widgets (empty = not given): catalog, schema, execution_id, project_code, process_load, task_id,
sequence_id, workflow_id, processing_date, attempts, timestamp; start also source_type,
source_run_id, cluster_id; end/fail also log_message and log_code. The notebook exits with a JSON
document: ``{"action", "changed", "status"}`` (``changed``: whether the call changed the row).

Notebooks that Dagster runs as DBX_NOTEBOOK tasks read the run's context with ``task_context`` and
report their figures with ``exit_with_result``.
"""

from __future__ import annotations

import json
from typing import Any

from .monitor import ETLMonitorFramework

COMMON = ("catalog", "schema", "execution_id", "project_code", "process_load", "task_id", "sequence_id",
          "workflow_id", "processing_date", "attempts", "timestamp")
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


def _row(monitor: ETLMonitorFramework, values: dict[str, Any]) -> dict[str, Any] | None:
    rows = monitor.status_rows(values["project_code"], values["process_load"], execution_id=values["execution_id"],
                               workflow_id=values["workflow_id"], task_id=values["task_id"])
    return rows[0] if rows else None


def _call(spark: Any, dbutils: Any, action: str, widgets: tuple[str, ...]) -> str:
    """Run the monitor method of ``action`` with the widgets' values; exit with the JSON result."""
    values = _widgets(dbutils, widgets)
    monitor = _monitor(spark, values)
    before = _row(monitor, values)
    getattr(monitor, f"{action}_task")(**values)
    after = _row(monitor, values)
    changed = before is None or after is None or before["LastUpdatedOn"] != after["LastUpdatedOn"]
    result = json.dumps({"action": action, "changed": changed, "status": after["Status"] if after else None})
    dbutils.notebook.exit(result)
    return result


def start_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``start_task`` with the widgets' values; exits the notebook with the JSON result."""
    return _call(spark, dbutils, "start", START)


def end_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``end_task`` (DONE) with the widgets' values; exits the notebook with the JSON result."""
    return _call(spark, dbutils, "end", FINISH)


def fail_task_from_widgets(spark: Any, dbutils: Any) -> str:
    """``fail_task`` with the widgets' values; exits the notebook with the JSON result."""
    return _call(spark, dbutils, "fail", FINISH)
