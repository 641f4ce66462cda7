"""PYTHON tasks: a function named ``package.module:function`` in SourceIdentifier.

The function may raise any exception: its type decides its ErrorClass (``core.error_class``), or it
raises ``TaskFailed(message, code, error_class=...)`` to name both.
"""

from __future__ import annotations

import importlib

from ..core.catalogue import python_source_problem
from ..core.error_class import ErrorClass
from ..core.runs import TaskFailed, TaskResult, TaskRun


def run_python(run: TaskRun) -> TaskResult:
    """``package.module:function`` called with the TaskRun; it may return a TaskResult, a dict of
    metadata, an int (rows written) or None."""
    source = run.task.source or ""
    if wrong := python_source_problem(source):  # a file path or a relative import is never imported
        raise TaskFailed(wrong, "IMPORT_ERROR", error_class=ErrorClass.CONFIGURATION)
    module_name, _, attribute = source.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise TaskFailed(f"cannot import {run.task.source!r}: {exc}", "IMPORT_ERROR",
                         error_class=ErrorClass.CODE_ERROR) from exc
    returned = function(run)
    if isinstance(returned, TaskResult):
        return returned
    if isinstance(returned, dict):
        return TaskResult(metadata=returned)
    if isinstance(returned, int) and not isinstance(returned, bool):
        return TaskResult(rows_written=returned)
    return TaskResult()
