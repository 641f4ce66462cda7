"""Running a catalogue task where its work runs, by SourceType. Knows nothing of Dagster.

A runner takes a ``TaskRun`` (who, when, which watermark) and returns a ``TaskResult``. Local
source types are built in; remote ones (Databricks) plug in with ``register_runner``.

SPARK_SQL files get the run's context as the SQL session variable ``etl`` (a struct bound from a
DataFrame, so values never enter the SQL text)::

    MERGE INTO demo.employees t
    USING (SELECT * FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
           WHERE changed_at > CAST(etl.watermark_value AS TIMESTAMP)) s
    ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *;

Its fields: execution_id, project_code, process_load, task_id, workflow_id, processing_date (DATE),
attempts, watermark_value, watermark_type, full_file_name, in_file_path, out_file_path.

A last statement that is a query may return one row with ``rows_read`` and/or ``new_watermark``:
the first is reported, the second moves the task's DELTA_ID (or overrides its DELTA_DATE).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .catalogue import ProcessSpec, TaskSpec
from .enums import ParameterType, SourceType
from .errors import ETLMonitorError
from .monitor import ETLMonitorFramework, StepFacts


class TaskFailed(ETLMonitorError):
    """The task's own work failed; ``code`` is what LogCode records."""

    def __init__(self, message: str, code: str) -> None:
        self.code = code
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
    databricks: Any = None  # a databricks.sdk WorkspaceClient, for DBX_NOTEBOOK and DBX_JOB tasks
    try_number: int = 0  # the orchestrator's retry of this task in this execution: 0 first, 1 first retry...

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
_RUNNERS: dict[SourceType, Runner] = {}


def register_runner(source_type: SourceType | str, runner: Runner) -> None:
    """Make tasks of ``source_type`` run with ``runner`` (e.g. the Databricks runners)."""
    _RUNNERS[SourceType(source_type)] = runner


def run_task(run: TaskRun) -> TaskResult:
    """Run the task by its SourceType and move its watermark when the work reported one."""
    runner = _RUNNERS.get(run.task.source_type)
    if runner is None:
        raise TaskFailed(f"no runner for SourceType {run.task.source_type.value} here: "
                         f"known are {sorted(t.value for t in _RUNNERS)}", "NO_RUNNER")
    result = runner(run)
    if result.new_watermark is not None and run.task.watermark:
        _advance(run, result.new_watermark)
    return result


def error_text(exc: BaseException) -> tuple[str, str]:
    """(LogMessage, LogCode) for a task's failure."""
    code = exc.code if isinstance(exc, TaskFailed) else type(exc).__name__
    return f"{type(exc).__name__}: {exc}", code


def _advance(run: TaskRun, value: int | datetime | str) -> None:
    is_id = run.watermark_type == ParameterType.DELTA_ID.value
    run.monitor.advance_watermark(run.process.project, run.process.process, run.task.watermark,
                                  new_int_value=int(value) if is_id else None,
                                  new_datetime_value=None if is_id else value)


# ---------------------------------------------------------------------------------------- NONE


def _run_nothing(run: TaskRun) -> TaskResult:
    return TaskResult()


# ----------------------------------------------------------------------------------- SPARK_SQL

_METRICS = ("num_affected_rows", "num_inserted_rows", "num_updated_rows", "num_deleted_rows")


def _run_spark_sql(run: TaskRun) -> TaskResult:
    path = Path(run.path(run.task.source) or "")
    statements = list(split_statements(path.read_text(encoding="utf-8")))
    if not statements:
        raise TaskFailed(f"{path} holds no SQL statement", "EMPTY_SQL")
    spark = run.monitor.spark
    fields = run.variables()
    spark.sql(f"DECLARE OR REPLACE VARIABLE etl STRUCT<{', '.join(f'{n}: {t}' for n, (t, _) in fields.items())}>")
    values = spark.createDataFrame([tuple(v for _, v in fields.values())],
                                   ", ".join(f"{n} {t}" for n, (t, _) in fields.items()))
    spark.sql("SET VAR etl = (SELECT struct(*) FROM {values})", values=values)
    result = TaskResult(metadata={"statements": len(statements), "sql_file": str(path)})
    for index, statement in enumerate(statements, 1):
        try:
            frame = spark.sql(statement)
            last = index == len(statements)
            # commands (MERGE, UPDATE, DELETE) already ran and hold their metrics; a final query runs here
            rows = frame.limit(2).collect() if last or set(frame.columns) & set(_METRICS) else []
        except Exception as exc:  # the Spark error text is what the user needs, with the statement number
            raise TaskFailed(f"{path.name} statement {index}: {_first_line(exc)}",
                             getattr(exc, "getCondition", lambda: None)() or type(exc).__name__) from exc
        _collect_metrics(result, rows, last)
    return result


def _collect_metrics(result: TaskResult, rows: list[Any], last: bool) -> None:
    if not rows:
        return
    row = rows[0].asDict()
    if "num_affected_rows" in row:
        result.rows_written = (result.rows_written or 0) + int(row["num_affected_rows"] or 0)
    elif last:
        if row.get("rows_read") is not None:
            result.rows_read = int(row["rows_read"])
        if row.get("new_watermark") is not None:
            result.new_watermark = row["new_watermark"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split("\n\nJVM stacktrace:")[0].strip()[:1500]


def split_statements(text: str) -> Iterator[str]:
    """The statements of a SQL script, split on ``;`` outside quotes and comments.

    >>> list(split_statements("SELECT ';' AS x; -- a; comment\\nSELECT 2;"))
    ["SELECT ';' AS x", '-- a; comment\\nSELECT 2']
    """
    current: list[str] = []
    quote: str | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < n:
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            current.append(text[i:end])
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(text[i:end])
            i = end
            continue
        elif ch == ";":
            yield from _statement(current)
            current = []
        else:
            current.append(ch)
        i += 1
    yield from _statement(current)


def _statement(chars: list[str]) -> Iterator[str]:
    statement = "".join(chars).strip()
    # a chunk of only comments is not a statement
    code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
    if code and not (code.startswith("/*") and code.endswith("*/")):
        yield statement


# -------------------------------------------------------------------------------------- PYTHON


def _run_python(run: TaskRun) -> TaskResult:
    """``package.module:function`` called with the TaskRun; it may return a TaskResult, a dict of
    metadata, an int (rows written) or None."""
    module_name, _, attribute = (run.task.source or "").partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise TaskFailed(f"cannot import {run.task.source!r}: {exc}", "IMPORT_ERROR") from exc
    returned = function(run)
    if isinstance(returned, TaskResult):
        return returned
    if isinstance(returned, dict):
        return TaskResult(metadata=returned)
    if isinstance(returned, int) and not isinstance(returned, bool):
        return TaskResult(rows_written=returned)
    return TaskResult()


register_runner(SourceType.NONE, _run_nothing)
register_runner(SourceType.SPARK_SQL, _run_spark_sql)
register_runner(SourceType.PYTHON, _run_python)
