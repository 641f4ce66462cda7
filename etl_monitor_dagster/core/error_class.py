"""Error classes: what kind of failure a task's failure is, and whether trying again can help.

The LogCode of a failure stays its specific code (a Spark error condition, a Databricks result
state, an ADF error code, an exception's name); its ``ErrorClass`` is the coarse kind above it,
recorded beside it (the task outcome, the FAIL and RETRY receipts). The run policy retries only
a failure whose class is ``retryable``.

``classify`` reads, in order: a class the exception carries itself (``TaskFailed(...,
error_class=...)`` or any exception with an ``error_class`` attribute holding an ``ErrorClass``),
the code of one of our own errors, the Spark error condition and SQLSTATE, then the Python type.
Knows nothing of Dagster, Databricks or Azure: their codes are plain text here.
"""

from __future__ import annotations

import builtins
import re
from enum import StrEnum

from .engine import is_conflict, is_connection_loss
from .enums import LogCode
from .errors import ConcurrencyError, EngineError, ETLMonitorError, NotFoundError, ValidationError


class ErrorClass(StrEnum):
    """The kind of a task's failure; ``retryable`` says whether the policy tries it again."""

    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"  # a source, service or engine could not be reached or failed itself
    TIMEOUT = "TIMEOUT"  # the work did not end within its time limit
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"  # memory, quota, rate limit or a contended table ran out for now
    DATA_QUALITY = "DATA_QUALITY"  # the data broke a rule: bad value, cast, division by zero, constraint, duplicate
    SCHEMA_CHANGE = "SCHEMA_CHANGE"  # a table, column or field the task names is missing or not what it expects
    PERMISSION = "PERMISSION"  # the task's identity may not read, write or run what it needs
    CODE_ERROR = "CODE_ERROR"  # the task's own code is wrong: SQL that does not parse, a Python bug, a bad import
    CONFIGURATION = "CONFIGURATION"  # the catalogue or a resource is wrong: missing setting, unknown job or pipeline
    CANCELED = "CANCELED"  # someone or something stopped the work on purpose
    UNKNOWN = "UNKNOWN"  # nothing says which of the above it is

    @property
    def retryable(self) -> bool:
        """Whether another try of the same work can succeed without anyone changing anything."""
        return _RETRYABLE[self]


_RETRYABLE: dict[ErrorClass, bool] = {
    ErrorClass.SOURCE_UNAVAILABLE: True,
    ErrorClass.TIMEOUT: True,
    ErrorClass.RESOURCE_EXHAUSTED: True,
    ErrorClass.DATA_QUALITY: False,  # the same data fails the same way
    ErrorClass.SCHEMA_CHANGE: False,
    ErrorClass.PERMISSION: False,
    ErrorClass.CODE_ERROR: False,
    ErrorClass.CONFIGURATION: False,
    ErrorClass.CANCELED: False,  # retrying would undo the cancel
    # Before classes existed every failure with retries left was retried; an unclassified one still
    # is, so a failure nobody recognised never loses the retries its task was given.
    ErrorClass.UNKNOWN: True,
}

# Codes our runners and the services they call report (LogCode values), by class. Matched whole.
_CODES: dict[str, ErrorClass] = {
    # the monitor's own, for a task whose run or writer died (RUN_LOST says nothing more: UNKNOWN)
    LogCode.STALE.value: ErrorClass.TIMEOUT,
    LogCode.RUN_CANCELED.value: ErrorClass.CANCELED,
    # our own runners
    "NO_RUNNER": ErrorClass.CONFIGURATION,
    "NO_DATABRICKS": ErrorClass.CONFIGURATION,
    "NO_ADF": ErrorClass.CONFIGURATION,
    "NO_FACTORY": ErrorClass.CONFIGURATION,
    "ADF_PARAMETER": ErrorClass.CONFIGURATION,
    "IMPORT_ERROR": ErrorClass.CODE_ERROR,
    "EMPTY_SQL": ErrorClass.CODE_ERROR,
    "NO_SQL_FILE": ErrorClass.CONFIGURATION,
    # Databricks run result and life cycle states
    "TIMEDOUT": ErrorClass.TIMEOUT,  # also the ADF runner's own deadline
    "CANCELED": ErrorClass.CANCELED,
    "UPSTREAM_CANCELED": ErrorClass.CANCELED,
    "INTERNAL_ERROR": ErrorClass.SOURCE_UNAVAILABLE,  # the Databricks service failed the run, not the notebook
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ErrorClass.RESOURCE_EXHAUSTED,
    "SKIPPED": ErrorClass.RESOURCE_EXHAUSTED,  # skipped because an earlier run of the job was still active
    "DISABLED": ErrorClass.CONFIGURATION,
    "FAILED": ErrorClass.UNKNOWN,  # the notebook failed; its error text may say more (``classify_text``)
    "UPSTREAM_FAILED": ErrorClass.UNKNOWN,
    # Databricks REST API error codes (an unknown job, no permission, throttling)
    "RESOURCE_DOES_NOT_EXIST": ErrorClass.CONFIGURATION,
    "NOT_FOUND": ErrorClass.CONFIGURATION,
    "INVALID_PARAMETER_VALUE": ErrorClass.CONFIGURATION,
    "BAD_REQUEST": ErrorClass.CONFIGURATION,
    "PERMISSION_DENIED": ErrorClass.PERMISSION,
    "UNAUTHENTICATED": ErrorClass.PERMISSION,
    "TEMPORARILY_UNAVAILABLE": ErrorClass.SOURCE_UNAVAILABLE,
    "REQUEST_LIMIT_EXCEEDED": ErrorClass.RESOURCE_EXHAUSTED,
    "RESOURCE_EXHAUSTED": ErrorClass.RESOURCE_EXHAUSTED,
    "DEADLINE_EXCEEDED": ErrorClass.TIMEOUT,
    # ADF pipeline run states (``ADF_<status>``) and management API codes
    "ADF_CANCELLED": ErrorClass.CANCELED,
    "ADF_FAILED": ErrorClass.UNKNOWN,
    "PipelineNotFound": ErrorClass.CONFIGURATION,
    "FactoryNotFound": ErrorClass.CONFIGURATION,
    "ResourceNotFound": ErrorClass.CONFIGURATION,
    "ResourceGroupNotFound": ErrorClass.CONFIGURATION,
    "AuthorizationFailed": ErrorClass.PERMISSION,
    "InvalidAuthenticationToken": ErrorClass.PERMISSION,
    "HTTP_401": ErrorClass.PERMISSION,
    "HTTP_403": ErrorClass.PERMISSION,
    "HTTP_404": ErrorClass.CONFIGURATION,
    "HTTP_408": ErrorClass.TIMEOUT,
    "HTTP_429": ErrorClass.RESOURCE_EXHAUSTED,
    "HTTP_500": ErrorClass.SOURCE_UNAVAILABLE,
    "HTTP_502": ErrorClass.SOURCE_UNAVAILABLE,
    "HTTP_503": ErrorClass.SOURCE_UNAVAILABLE,
    "HTTP_504": ErrorClass.TIMEOUT,
    # ADF mapping data flow executor codes
    "DF-Executor-OutOfMemoryError": ErrorClass.RESOURCE_EXHAUSTED,
    "DF-Executor-BroadcastTimeout": ErrorClass.TIMEOUT,
    # Spark error conditions SQLSTATE alone would put elsewhere (or that have none)
    "TABLE_OR_VIEW_NOT_FOUND": ErrorClass.SCHEMA_CHANGE,
    "SCHEMA_NOT_FOUND": ErrorClass.SCHEMA_CHANGE,
    "UNRESOLVED_COLUMN": ErrorClass.SCHEMA_CHANGE,
    "FIELD_NOT_FOUND": ErrorClass.SCHEMA_CHANGE,
    "INCOMPATIBLE_DATA_FOR_TABLE": ErrorClass.SCHEMA_CHANGE,
    "INSUFFICIENT_PERMISSIONS": ErrorClass.PERMISSION,
    "NOT_NULL_ASSERT_VIOLATION": ErrorClass.DATA_QUALITY,
    "DELTA_VIOLATE_CONSTRAINT_WITH_VALUES": ErrorClass.DATA_QUALITY,
    "OPERATION_CANCELED": ErrorClass.CANCELED,
    "SPARK_JOB_CANCELLED": ErrorClass.CANCELED,
    # Delta's concurrent-modification conflicts (SQLSTATE 2D521, which two commit-invariant errors share too):
    # the commit did not happen and the same statement can succeed once the other writer is done. Named
    # here so a LogCode read alone (a receipt, a notebook's error text) is classified like the exception.
    "DELTA_CONCURRENT_APPEND": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_CONCURRENT_DELETE_READ": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_CONCURRENT_DELETE_DELETE": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_CONCURRENT_WRITE": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_CONCURRENT_TRANSACTION": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_METADATA_CHANGED": ErrorClass.RESOURCE_EXHAUSTED,
    "DELTA_PROTOCOL_CHANGED": ErrorClass.RESOURCE_EXHAUSTED,
}

# ADF activity errors name who failed: the user's side (settings, data, credentials) or the service.
_ADF_FAILURE_TYPES: dict[str, ErrorClass] = {
    "UserError": ErrorClass.CONFIGURATION,
    "SystemError": ErrorClass.SOURCE_UNAVAILABLE,
}

# SQLSTATEs, most specific first: a full state, else its two-character class.
_SQLSTATES: dict[str, ErrorClass] = {
    "42P01": ErrorClass.SCHEMA_CHANGE,  # undefined table
    "42S02": ErrorClass.SCHEMA_CHANGE,  # table not found (ODBC)
    "42703": ErrorClass.SCHEMA_CHANGE,  # undefined column
    "42S22": ErrorClass.SCHEMA_CHANGE,  # column not found (ODBC)
    "42704": ErrorClass.SCHEMA_CHANGE,  # undefined object: a schema, a struct field
    "42501": ErrorClass.PERMISSION,  # insufficient privilege
    "2D521": ErrorClass.RESOURCE_EXHAUSTED,  # Delta concurrent-write conflict the engine's retries did not clear
    "57014": ErrorClass.CANCELED,  # query canceled
    "HY008": ErrorClass.CANCELED,  # operation canceled
    "08": ErrorClass.SOURCE_UNAVAILABLE,  # connection exception
    "21": ErrorClass.DATA_QUALITY,  # cardinality violation (a MERGE source row matching twice)
    "22": ErrorClass.DATA_QUALITY,  # data exception: division by zero, invalid cast, overflow
    "23": ErrorClass.DATA_QUALITY,  # integrity constraint violation
    "28": ErrorClass.PERMISSION,  # invalid authorization
    "40": ErrorClass.RESOURCE_EXHAUSTED,  # transaction rollback: serialization failure, deadlock
    "42": ErrorClass.CODE_ERROR,  # syntax error or access rule violation: the SQL itself (parse, 42601)
    "0A": ErrorClass.CODE_ERROR,  # feature not supported
    "53": ErrorClass.RESOURCE_EXHAUSTED,  # insufficient resources
}

# Python exception types, most specific first (TimeoutError and PermissionError are OSErrors).
_TYPES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorClass], ...] = (
    ((ValidationError, NotFoundError), ErrorClass.CONFIGURATION),  # before ValueError and LookupError
    (EngineError, ErrorClass.SOURCE_UNAVAILABLE),
    (ConcurrencyError, ErrorClass.RESOURCE_EXHAUSTED),
    (TimeoutError, ErrorClass.TIMEOUT),
    (PermissionError, ErrorClass.PERMISSION),
    ((ConnectionError, OSError), ErrorClass.SOURCE_UNAVAILABLE),  # network and file I/O: the source may come back
    (MemoryError, ErrorClass.RESOURCE_EXHAUSTED),
    ((KeyboardInterrupt, SystemExit), ErrorClass.CANCELED),
    ((ImportError, NameError, TypeError, AttributeError, SyntaxError, NotImplementedError, RecursionError),
     ErrorClass.CODE_ERROR),
    # A PYTHON task's KeyError or ValueError is almost always a record it read (a missing field, a value
    # that does not parse): the same data fails the next try the same way, so it is not retried.
    ((KeyError, ValueError, ArithmeticError), ErrorClass.DATA_QUALITY),
)

_CONDITION = re.compile(r"\[([A-Z][A-Z0-9_]*)(?:\.[A-Z0-9_]+)*\]")  # Spark's "[TABLE_OR_VIEW_NOT_FOUND] ..."
_SQLSTATE = re.compile(r"SQLSTATE:\s*([0-9A-Z]{5})")
_PYTHON_ERROR = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Interrupt|Exit))\b")


def classify(exc: BaseException) -> ErrorClass:
    """The class of a task's failure (see the module's docstring for the order of the rules)."""
    own = getattr(exc, "error_class", None)
    if isinstance(own, ErrorClass):
        return own
    code = getattr(exc, "code", None) if isinstance(exc, ETLMonitorError) else None
    if isinstance(code, str) and (known := classify_code(code)) is not ErrorClass.UNKNOWN:
        return known
    if is_connection_loss(exc):
        return ErrorClass.SOURCE_UNAVAILABLE
    if is_conflict(exc):
        return ErrorClass.RESOURCE_EXHAUSTED
    spark = _spark_class(exc)
    if spark is not None:
        return spark
    for types, error_class in _TYPES:
        if isinstance(exc, types):
            return error_class
    if isinstance(exc, ETLMonitorError) and exc.__cause__ is not None:  # a TaskFailed wrapping what happened
        return classify(exc.__cause__)
    return ErrorClass.UNKNOWN


def classify_code(code: str | None, sqlstate: str | None = None) -> ErrorClass:
    """The class of a LogCode (a runner's code, a Databricks state, an ADF code, a Spark condition)
    and, when known, its SQLSTATE; UNKNOWN when neither says."""
    if code:
        known = _CODES.get(code) or _CODES.get(code.split(".")[0])  # a Spark sub-condition: its parent's
        if known is not None:
            return known
    if sqlstate:
        for key in (sqlstate, sqlstate[:2]):
            if key in _SQLSTATES:
                return _SQLSTATES[key]
    return ErrorClass.UNKNOWN


def classify_adf(code: str | None, failure_type: str | None) -> ErrorClass:
    """An ADF activity error: its code when known, else who ADF says failed (user or system)."""
    known = classify_code(code)
    if known is ErrorClass.UNKNOWN and failure_type:
        return _ADF_FAILURE_TYPES.get(failure_type, ErrorClass.UNKNOWN)
    return known


def classify_text(text: str) -> ErrorClass:
    """The class of an error known only as text (a remote notebook's error): a Spark error condition
    or SQLSTATE in it, else the first Python builtin exception it names; UNKNOWN otherwise."""
    condition = _CONDITION.search(text)
    state = _SQLSTATE.search(text)
    found = classify_code(condition.group(1) if condition else None, state.group(1) if state else None)
    if found is not ErrorClass.UNKNOWN:
        return found
    for name in _PYTHON_ERROR.findall(text):  # a bare "Exception" says nothing: look further
        kind = getattr(builtins, name, None)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            found = next((c for types, c in _TYPES if issubclass(kind, types)), ErrorClass.UNKNOWN)
            if found is not ErrorClass.UNKNOWN:
                return found
    return ErrorClass.UNKNOWN


def _spark_class(exc: BaseException) -> ErrorClass | None:
    """A pyspark error's class from its error condition, else its SQLSTATE; None for other errors."""
    condition = _call(exc, "getCondition") or _call(exc, "getErrorClass")
    state = _call(exc, "getSqlState")
    if condition is None and state is None:
        return None
    found = classify_code(condition, state)
    return None if found is ErrorClass.UNKNOWN else found  # e.g. a PySparkTypeError: its Python type says


def _call(exc: BaseException, method: str) -> str | None:
    getter = getattr(exc, method, None)
    if not callable(getter):
        return None
    try:
        value = getter()
    except Exception:  # a py4j-backed error whose JVM side is gone
        return None
    return value if isinstance(value, str) and value else None
