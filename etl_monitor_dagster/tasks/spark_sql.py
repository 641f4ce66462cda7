"""SPARK_SQL tasks: a SQL script run on the monitor's Spark session.

SPARK_SQL files get the run's context as the SQL session variable ``etl`` (a struct bound from a
DataFrame, so values never enter the SQL text)::

    MERGE INTO demo.employees t
    USING (SELECT * FROM IDENTIFIER('json.`' || etl.in_file_path || '`')
           WHERE changed_at > CAST(etl.watermark_value AS TIMESTAMP)) s
    ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *;

Its fields: execution_id, project_code, process_load, task_id, workflow_id, processing_date (DATE),
attempts, watermark_value, watermark_type, full_file_name, in_file_path, out_file_path. A script that
never names ``etl`` runs without it (setting it costs two statements).

A last statement that is a query may return one row with ``rows_read`` and/or ``new_watermark``:
the first is reported, the second moves the task's DELTA_ID (or overrides its DELTA_DATE). A query
before the last is analysed, never run.

While the script runs, the orchestrator is asked every ``STOP_POLL_SECONDS`` whether the run is being
stopped (``TaskRun.check_stop``); once it is, the running statement is interrupted on the engine and the
script ends there. The orchestrator's interrupt signal does the same, but a signal can be lost.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.catalogue import CatalogueError, sql_file
from ..core.engine import is_connection_loss, lost_engine, reaching
from ..core.error_class import ErrorClass, classify
from ..core.runs import TaskFailed, TaskResult, TaskRun

_NAMES_ETL = re.compile(r"\betl\b", re.IGNORECASE)  # in a comment or a string too: then it is set for nothing
_METRICS = ("num_affected_rows", "num_inserted_rows", "num_updated_rows", "num_deleted_rows")
STOP_POLL_SECONDS = 2.0


def run_spark_sql(run: TaskRun) -> TaskResult:
    try:  # the loader refused such a source already; a process built in code is held to the same rule
        path = sql_file(run.process, run.task)
    except CatalogueError as exc:
        raise TaskFailed(str(exc), "NO_SQL_FILE", error_class=ErrorClass.CONFIGURATION) from exc
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # the catalogue names a file that is not there: trying again cannot help
        raise TaskFailed(f"cannot read the SQL file {path}: {exc}", "NO_SQL_FILE",
                         error_class=ErrorClass.CONFIGURATION) from exc
    statements = list(split_statements(text))
    if not statements:
        raise TaskFailed(f"{path} holds no SQL statement", "EMPTY_SQL", error_class=ErrorClass.CODE_ERROR)
    spark = run.monitor.spark
    if _NAMES_ETL.search(text):
        fields = run.variables()
        with reaching(spark):
            struct = ", ".join(f"{n}: {t}" for n, (t, _) in fields.items())
            spark.sql(f"DECLARE OR REPLACE VARIABLE etl STRUCT<{struct}>")
            values = spark.createDataFrame([tuple(v for _, v in fields.values())],
                                           ", ".join(f"{n} {t}" for n, (t, _) in fields.items()))
            spark.sql("SET VAR etl = (SELECT struct(*) FROM {values})", values=values)
    result = TaskResult(metadata={"statements": len(statements), "sql_file": str(path)})
    with _stopped_on_request(run) as stopped:
        for index, statement in enumerate(statements, 1):
            if stopped:
                raise stopped[0]
            try:
                frame = spark.sql(statement)
                last = index == len(statements)
                # commands (MERGE, UPDATE, DELETE) already ran and hold their metrics; a final query runs here
                rows = frame.limit(2).collect() if last or set(frame.columns) & set(_METRICS) else []
            except Exception as exc:  # the Spark error text is what the user needs, with the statement number
                if stopped:  # the statement was interrupted because the run is being stopped
                    raise stopped[0] from exc
                if is_connection_loss(exc):  # not the statement's fault: the engine is gone
                    raise lost_engine(spark, exc) from exc
                raise TaskFailed(f"{path.name} statement {index}: {_first_line(exc)}",
                                 getattr(exc, "getCondition", lambda: None)() or type(exc).__name__,
                                 error_class=classify(exc)) from exc
            _collect_metrics(result, rows, last)
    return result


@contextmanager
def _stopped_on_request(run: TaskRun) -> Iterator[list[BaseException]]:
    """While the block runs, a thread asks ``run.check_stop`` every ``STOP_POLL_SECONDS``; the first error it
    raises is put in the yielded list and the block's running statement is interrupted on the engine (the
    block's statements carry a tag of their own: tags are per thread)."""
    stopped: list[BaseException] = []
    spark = run.monitor.spark
    if run.check_stop is None:
        yield stopped
        return
    check_stop = run.check_stop
    tagged = hasattr(spark, "interruptTag")  # a classic session before Spark 4 stops between statements only
    tag = f"etl-monitor-task-{uuid.uuid4().hex}"
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_SECONDS):
            try:
                check_stop()
            except BaseException as exc:  # the orchestrator's interrupt is one (Dagster's is no Exception)
                stopped.append(exc)
                try:
                    if tagged:
                        spark.interruptTag(tag)
                except Exception as lost:  # a lost engine ends the statement anyway
                    run.log.warning(f"{run.task.name}: could not interrupt its statement: {_first_line(lost)}")
                return

    if tagged:
        spark.addTag(tag)
    watcher = threading.Thread(target=watch, name=f"{tag}-stop", daemon=True)
    watcher.start()
    try:
        yield stopped
    finally:
        done.set()
        watcher.join(timeout=30)  # bounded: a check_stop stuck on the orchestrator is left behind (daemon)
        if tagged:
            spark.removeTag(tag)


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
