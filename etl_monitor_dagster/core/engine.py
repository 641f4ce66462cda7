"""Runs the monitor's SQL on a SparkSession: values bound as DataFrames, Delta conflicts retried.

Spark 4.1+'s named parameter markers are dropped by Delta's SQL parser (delta-io/delta#7640), so
values travel instead as a one-off DataFrame (an Arrow local relation) that the SQL text names as
``{src}``; the text itself only ever holds our own identifiers.

A lost connection to the engine (server down, restarted, session closed) is raised as EngineError
naming the engine; SQL errors and Delta conflicts are not.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConcurrencyError, EngineError, ValidationError

K = TypeVar("K")
T = TypeVar("T")

log = logging.getLogger(__name__)

# Seconds a call keeps retrying an unreachable Spark Connect server the project connected to (see
# connect.py): a local server silent this long is dead, and a step must fail well within a minute.
DEFAULT_UNREACHABLE_TIMEOUT = float(os.environ.get("ETL_MONITOR_UNREACHABLE_TIMEOUT", "20"))

# Delta's concurrent-modification errors share SQLSTATE 2D521; the names cover engines that only
# report an exception class (classic py4j) or an error class (Spark Connect).
_CONFLICT_MARKERS = (
    "2D521",
    "DELTA_CONCURRENT",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentWriteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
)


def is_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a Delta concurrent-write conflict: the commit did not happen."""
    state = getattr(exc, "getSqlState", None)
    if callable(state):
        try:
            if state() == "2D521":
                return True
        except Exception:  # a py4j-backed error whose JVM side is gone: fall back to text
            pass
    text = f"{type(exc).__name__} {exc}"
    return any(marker in text for marker in _CONFLICT_MARKERS)


# Spark Connect gives these when the session outlived its server: pyspark closes such a session.
_SESSION_GONE = ("NO_ACTIVE_SESSION", "INVALID_HANDLE.SESSION_CHANGED", "INVALID_HANDLE.SESSION_CLOSED",
                 "server side session identifier")


def is_connection_loss(exc: BaseException) -> bool:
    """True when ``exc`` says the engine cannot be reached or no longer knows the session (not a SQL error)."""
    status = getattr(exc, "getGrpcStatusCode", None)  # pyspark's wrapper of a gRPC error
    code = status() if callable(status) else None
    if code is None and type(exc).__module__.startswith("grpc"):  # a raw grpc.RpcError
        code = getattr(exc, "code", lambda: None)()
    if getattr(code, "name", None) == "UNAVAILABLE":
        return True
    state = getattr(exc, "getSqlState", None)
    try:
        if callable(state) and str(state() or "").startswith("08"):  # SQLSTATE class 08: connection exception
            return True
    except Exception:  # a py4j-backed error whose JVM side is gone: fall back to text
        pass
    if type(exc).__name__ == "Py4JNetworkError":  # a classic session whose JVM died
        return True
    text = str(exc)
    return any(marker in text for marker in _SESSION_GONE)


@dataclass(frozen=True)
class EngineInfo:
    """What an EngineError says about a session's engine: its name, address, log and the retry bound."""

    name: str  # "the embedded Spark engine (local Spark Connect server)"
    address: str  # never with a token
    log: str = ""
    timeout_seconds: float | None = None
    remedy: str = ""
    warehouse: str = ""  # the embedded engine's warehouse folder, which holds its managed tables


# Sessions the project opened, with their description; weak, so a dropped session is not kept alive.
_ENGINES: weakref.WeakKeyDictionary[Any, EngineInfo] = weakref.WeakKeyDictionary()


def describe(spark: Any, info: EngineInfo) -> None:
    """Make EngineErrors about ``spark`` name its engine as ``info`` says."""
    _ENGINES[spark] = info


def engine_info(spark: Any) -> EngineInfo:
    """How ``spark``'s engine is named in errors: as described, else from the session itself."""
    try:
        known = _ENGINES.get(spark)
    except TypeError:  # not weak-referenceable
        known = None
    if known is not None:
        return known
    host = getattr(getattr(spark, "client", None), "host", None)
    if host:
        return EngineInfo("the Spark Connect engine", f"sc://{host}", remedy="Check that its server is up.")
    return EngineInfo("the Spark engine", "this process's SparkSession")


def lost_engine(spark: Any, exc: BaseException) -> EngineError:
    """The EngineError for ``exc``, a lost connection to ``spark``'s engine."""
    info = engine_info(spark)
    text = str(exc)
    details = re.search(r'details = "([^"]*)"', text)  # a gRPC error's one useful line
    reason = details.group(1) if details else (text.strip().splitlines() or [type(exc).__name__])[0][:300]
    where = f"{info.name} at {info.address}" + (f", log {info.log}" if info.log else "")
    if any(marker in text for marker in _SESSION_GONE):
        what = "no longer has this session (its server stopped or restarted)"
    elif info.timeout_seconds is not None:
        what = f"did not answer for {info.timeout_seconds:g} s"
    else:
        what = "cannot be reached"
    return EngineError(f"{where}: {what}: {reason.rstrip('.')}." + (f" {info.remedy}" if info.remedy else ""))


@contextmanager
def reaching(spark: Any) -> Iterator[None]:
    """Raise a lost connection to ``spark``'s engine as EngineError; every other error passes unchanged."""
    try:
        yield
    except Exception as exc:
        if is_connection_loss(exc):
            raise lost_engine(spark, exc) from exc
        raise


def _struct(schema: Sequence[tuple[str, str]]) -> Any:
    """The Spark schema of ``(column, SQL type)`` pairs; its DDL text when a type is not a simple one."""
    from pyspark.sql import types as spark_types

    simple = {"STRING": spark_types.StringType, "BIGINT": spark_types.LongType, "INT": spark_types.IntegerType,
              "BOOLEAN": spark_types.BooleanType, "TIMESTAMP": spark_types.TimestampType,
              "DATE": spark_types.DateType, "DOUBLE": spark_types.DoubleType}
    if all(sql_type.upper() in simple for _, sql_type in schema):
        return spark_types.StructType([spark_types.StructField(name, simple[sql_type.upper()]())
                                       for name, sql_type in schema])
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in schema)


def query_frame(spark: Any, text: str, **frames: Any) -> Any:
    """The DataFrame of a query whose ``{name}`` fields are ``frames`` (as ``spark.sql`` takes them),
    analysed when it runs.

    Spark Connect's ``spark.sql`` sends the text (and every bound frame's rows) at once to learn whether
    it is a command, and the query is analysed again when it runs: one round trip per read for nothing.
    A query's relation travels as the plan of the read itself instead. Other sessions analyse in
    process: their ``spark.sql`` is kept.
    """
    try:
        from pyspark.sql.connect.dataframe import DataFrame
        from pyspark.sql.connect.plan import SQL, SubqueryAlias
        from pyspark.sql.connect.session import SparkSession
    except ImportError:  # pyspark without Spark Connect's extras
        return spark.sql(text, **frames)
    if not isinstance(spark, SparkSession):
        return spark.sql(text, **frames)
    aliases = {name: f"_bound_{name}_{uuid.uuid4().hex}" for name in frames}
    views = [SubqueryAlias(frame._plan, aliases[name]) for name, frame in frames.items()]
    return DataFrame(SQL(text.format(**aliases) if frames else text, views=views or None), spark)


@dataclass
class RetryPolicy:
    """Bounded retries with full jitter: attempt k sleeps uniform(0, min(cap, base * 2**k))."""

    max_attempts: int = 40
    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


@dataclass
class EngineStats:
    """What the engine did: statements sent, Delta commits made, conflicts retried."""

    statements: int = 0
    commits: int = 0
    conflicts_retried: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, statements: int = 0, commits: int = 0, conflicts_retried: int = 0) -> None:
        """Count under a lock: ``concurrently`` sends reads from several threads."""
        with self._lock:
            self.statements += statements
            self.commits += commits
            self.conflicts_retried += conflicts_retried

    def snapshot(self) -> EngineStats:
        return EngineStats(self.statements, self.commits, self.conflicts_retried)

    def __sub__(self, other: EngineStats) -> EngineStats:
        return EngineStats(
            self.statements - other.statements,
            self.commits - other.commits,
            self.conflicts_retried - other.conflicts_retried,
        )


@dataclass
class Engine:
    """A SparkSession plus the monitor's execution rules (binding, retries, counting)."""

    spark: Any
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stats: EngineStats = field(default_factory=EngineStats)

    def bind(self, rows: Sequence[Mapping[str, Any]], schema: Sequence[tuple[str, str]]) -> Any:
        """A DataFrame holding ``rows`` with the given ``(column, SQL type)`` schema."""
        with reaching(self.spark):  # a schema string is parsed by the server: one more round trip
            return self.spark.createDataFrame(
                [tuple(row.get(name) for name, _ in schema) for row in rows], _struct(schema)
            )

    def query(self, text: str, **frames: Any) -> list[dict[str, Any]]:
        """Run a read; returns rows as dicts."""
        self.stats.add(statements=1)
        with reaching(self.spark):
            rows = query_frame(self.spark, text, **frames).collect()
        return [row.asDict(recursive=True) for row in rows]

    def execute(self, text: str, **frames: Any) -> int:
        """Run DDL or one Delta write, retrying conflicts; returns the affected row count (or 0)."""
        for attempt in range(self.retry.max_attempts):
            affected = self.execute_once(text, **frames)
            if affected is not None:
                return affected
            self.stats.add(conflicts_retried=1)
            time.sleep(self.retry.delay(attempt))
        raise ConcurrencyError(
            f"gave up after {self.retry.max_attempts} conflicting attempts: {text.strip()[:200]}"
        )

    def execute_once(self, text: str, **frames: Any) -> int | None:
        """``execute`` without retries: None when the write conflicted with another writer's (it wrote nothing)."""
        self.stats.add(statements=1)
        try:
            rows = (self.spark.sql(text, **frames) if frames else self.spark.sql(text)).collect()
        except Exception as exc:
            if is_connection_loss(exc):
                raise lost_engine(self.spark, exc) from exc
            if not is_conflict(exc):
                raise
            log.debug("Delta conflict: %s", exc)
            return None
        self.stats.add(commits=1)
        return _affected(rows)

    def columns(self, table: str) -> list[str]:
        """Column names of an existing table."""
        self.stats.add(statements=1)
        with reaching(self.spark):
            return list(self.spark.table(table).columns)

    def table_exists(self, table: str) -> bool:
        self.stats.add(statements=1)
        with reaching(self.spark):
            return bool(self.spark.catalog.tableExists(table))


def require_catalog(engine: Engine, catalog: str, table: str) -> None:
    """Raise ValidationError on ``catalog`` when ``engine`` has no catalog of that name.

    Such an engine reads ``table`` (a name in ``catalog``) as a table of a two-part schema in its session
    catalog, which Spark refuses with REQUIRES_SINGLE_PART_NAMESPACE at the first statement; asking
    whether ``table`` exists gets that answer before anything is written.
    """
    try:
        engine.table_exists(table)
    except EngineError:
        raise
    except Exception as exc:
        condition = getattr(exc, "getCondition", None)
        if "REQUIRES_SINGLE_PART_NAMESPACE" not in (str(condition()) if callable(condition) else str(exc)):
            raise
        raise ValidationError("catalog", catalog, "is not a catalog of this engine: three-level names "
                              "(catalog.schema.table) need a Unity Catalog engine such as Databricks; for the "
                              "session catalog (the embedded engine, a local Spark) use catalog=''") from None


def concurrently(reads: Mapping[K, Callable[[], T]]) -> dict[K, T]:
    """Each read's result, the reads sent at once: the engine plans one while it runs another. The first
    error is raised once all have ended."""
    if len(reads) < 2:
        return {key: read() for key, read in reads.items()}
    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        futures = {key: pool.submit(read) for key, read in reads.items()}
    return {key: future.result() for key, future in futures.items()}


def _affected(rows: Iterable[Any]) -> int:
    for row in rows:
        values = row.asDict()
        if "num_affected_rows" in values:
            return int(values["num_affected_rows"] or 0)
    return 0


def collect(engine: Engine, frame: Any, where: Mapping[str, Any] | None = None,
            order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of ``frame`` whose columns equal the non-None values of ``where``.

    The values become literals in the query plan (never SQL text), so Spark can prune partitions
    and skip files with them.
    """
    engine.stats.add(statements=1)
    with reaching(engine.spark):
        for column, value in (where or {}).items():
            if value is not None:
                frame = frame.where(frame[column] == value)
        if order_by:
            frame = frame.orderBy(*order_by)
        rows = frame.collect()
    return [row.asDict(recursive=True) for row in rows]
