"""Runs the monitor's SQL on a SparkSession: values bound as DataFrames, Delta conflicts retried.

Spark 4.1+'s named parameter markers are dropped by Delta's SQL parser (delta-io/delta#7640), so
values travel instead as a one-off DataFrame (an Arrow local relation) that the SQL text names as
``{src}``; the text itself only ever holds our own identifiers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConcurrencyError

log = logging.getLogger(__name__)

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
        ddl = ", ".join(f"`{name}` {sql_type}" for name, sql_type in schema)
        return self.spark.createDataFrame(
            [tuple(row.get(name) for name, _ in schema) for row in rows], ddl
        )

    def query(self, text: str, **frames: Any) -> list[dict[str, Any]]:
        """Run a read; returns rows as dicts."""
        self.stats.statements += 1
        rows = (self.spark.sql(text, **frames) if frames else self.spark.sql(text)).collect()
        return [row.asDict(recursive=True) for row in rows]

    def execute(self, text: str, **frames: Any) -> int:
        """Run DDL or one Delta write, retrying conflicts; returns the affected row count (or 0)."""
        for attempt in range(self.retry.max_attempts):
            self.stats.statements += 1
            try:
                rows = (self.spark.sql(text, **frames) if frames else self.spark.sql(text)).collect()
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                self.stats.conflicts_retried += 1
                log.debug("Delta conflict on attempt %d, retrying: %s", attempt + 1, exc)
                time.sleep(self.retry.delay(attempt))
                continue
            self.stats.commits += 1
            return _affected(rows)
        raise ConcurrencyError(
            f"gave up after {self.retry.max_attempts} conflicting attempts: {text.strip()[:200]}"
        )

    def columns(self, table: str) -> list[str]:
        """Column names of an existing table."""
        self.stats.statements += 1
        return list(self.spark.table(table).columns)

    def table_exists(self, table: str) -> bool:
        self.stats.statements += 1
        return bool(self.spark.catalog.tableExists(table))


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
    for column, value in (where or {}).items():
        if value is not None:
            frame = frame.where(frame[column] == value)
    if order_by:
        frame = frame.orderBy(*order_by)
    engine.stats.statements += 1
    return [row.asDict(recursive=True) for row in frame.collect()]
