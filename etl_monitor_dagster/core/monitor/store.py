"""What every rule of the monitor shares: the engine, the qualified table names, binding and receipts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import schema as S
from ..engine import Engine, collect, query_frame
from ..live_views import ALL_VIEWS, LOG_ROWS
from ..local_delta import LocalDeltaTable, Unsupported
from ..sql import date_literal, fill, quote_identifier
from . import statements as Q
from .events import from_receipt

log = logging.getLogger(__name__)
T = TypeVar("T")

# The most rows of the log a reader binds in place of the engine's read of it: a log folded at each run's end
# holds a few hundred. Beyond this the engine reads the log, as it does for every reader off the embedded engine.
BOUND_LOG_ROWS = 5000
_LOG_SCHEMA = [*((c, S.EVENTS.base_type(c)) for c in S.EVENTS.column_names), ("RowID", "BIGINT")]
_READS_LOG = ("log_rows", *ALL_VIEWS)  # the fields of a statement that read the log's rows


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Store:
    """One monitor schema on one engine; ``updated_by`` stamps CreatedBy/LastUpdatedBy. ``folder``: the
    schema's folder when its tables are local folders of the embedded engine (the log is appended there)."""

    engine: Engine
    prefix: str
    updated_by: str
    folder: Path | None = None

    def __post_init__(self) -> None:
        names = [t.name for t in S.ALL_TABLES] + list(ALL_VIEWS)
        self.names = {name: f"{self.prefix}.{quote_identifier(name)}" for name in names}
        # A managed table's folder is its name in lower case (the metastore's).
        self._log = (None if self.folder is None else
                     LocalDeltaTable(self.folder / S.EVENTS.name.lower(), S.EVENTS.columns, *S.EVENTS.partitioned_by))
        self._refused: tuple[int | None] | None = None  # the log's version when the folder was last refused
        self._tables = {name: quoted for name, quoted in self.names.items() if name not in ALL_VIEWS}
        # Each view written out as a subquery over ``{log}``, the log's rows bound by the reader (``table``).
        self._inline: dict[str, str] = {}
        for view, body in ALL_VIEWS.items():  # in creation order: a view reads only earlier ones
            self._inline[view] = f"(\n{fill(body, log_rows='{log}', **self._tables, **self._inline)}\n)"

    @property
    def spark(self) -> Any:
        return self.engine.spark

    def render(self, statement: str, **dates: date) -> str:
        """The statement with table names and the given validated dates as literals; ``{src}`` stays."""
        return fill(fill(statement, log_rows=LOG_ROWS), **self.names, **{k: date_literal(d) for k, d in dates.items()})

    def bind(self, table: S.Table, rows: list[dict[str, Any]], columns: Sequence[str] | None = None,
             extra: Sequence[tuple[str, str]] = ()) -> Any:
        """A DataFrame of ``rows`` typed as ``table``'s columns (all but ``_ID`` unless named), then the
        ``extra`` (column, SQL type) pairs a statement's source carries beyond the table's."""
        names = columns or [c for c in table.column_names if c != "_ID"]
        return self.engine.bind(rows, [*((c, table.base_type(c)) for c in names), *extra])

    def write(self, statement: str, table: S.Table, rows: list[dict[str, Any]], *,
              columns: Sequence[str] | None = None, extra: Sequence[tuple[str, str]] = (), **dates: date) -> int:
        """Run one write whose ``{src}`` is ``rows`` bound as ``bind`` does; returns the rows it changed."""
        return self.engine.execute(self.render(statement, **dates), src=self.bind(table, rows, columns, extra))

    def collect(self, frame: Any, where: dict[str, Any] | None = None,
                order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows of a DataFrame whose columns equal the non-None values of ``where`` (bound, never pasted)."""
        return collect(self.engine, frame, where, order_by)

    def table(self, name: str, log: Any = None) -> Any:
        """The DataFrame of a table or view. On the embedded engine a view reads the log's rows this process
        reads from its folder (``log``, a ``bound_log``, if given), bound in place of the engine's read of the log."""
        if name in ALL_VIEWS:
            return self.frame(f"SELECT * FROM {{{name}}}", log=log)
        return self.spark.table(self.names[name])

    def rows(self, name: str, where: dict[str, Any] | None = None,
             order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows of a table or view, filtered like ``collect``."""
        return self.collect(self.table(name), where, order_by)

    def rows_in(self, name: str, column: str, values: set[Any]) -> list[dict[str, Any]]:
        """Rows of a table whose ``column`` is one of ``values`` (one read for a whole batch)."""
        frame = self.table(name)
        return self.collect(frame.where(frame[column].isin(sorted(values))))

    def log_version(self) -> int | None:
        """The log's latest version in its folder; None when this process reads the log through the engine."""
        return None if self._log is None else self._log.version()

    def logged(self, where: dict[str, Any], columns: Sequence[str],
               since: int | None = None) -> list[dict[str, Any]] | None:
        """The log's rows whose columns equal the non-None values of ``where`` (its ProcessingDate among them),
        with ``RowID``, in log order, read from the log's folder by this process; None when it cannot (read
        through the engine then). ``since``: also None when a commit after that version removed rows (a fold),
        so that every row logged after it is in the answer or the answer is None."""
        equals = {c: v for c, v in where.items() if v is not None and c != "ProcessingDate"}

        def scan(table: LocalDeltaTable) -> list[dict[str, Any]] | None:
            rows = table.scan(where["ProcessingDate"], equals, columns)
            return None if since is not None and table.removed_after(since) else rows

        return self._in_folder(scan)

    def query(self, statement: str, where: dict[str, Any] | None = None,
              order_by: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows of one of the read statements, filtered like ``rows``."""
        return self.collect(self.frame(statement), where, order_by)

    def frame(self, statement: str, dates: Mapping[str, date] | None = None, *, log: Any = None,
              **frames: Any) -> Any:
        """The DataFrame of a read statement (analysed when it runs), with the given validated ``dates`` as
        literals and ``frames`` in its ``{name}`` fields. The log's rows it reads, through the views or
        ``{log_rows}``, are ``log`` (a ``bound_log``) if given, else read as ``table`` does."""
        dates = dates or {}
        if any(f"{{{name}}}" in statement for name in _READS_LOG):
            log = self.bound_log() if log is None else log
            if log is not None:
                text = fill(statement, log_rows="{log}", **self._tables, **self._inline,
                            **{name: date_literal(day) for name, day in dates.items()})
                return query_frame(self.spark, text, log=log, **frames)
        return query_frame(self.spark, self.render(statement, **dates), **frames)

    def bound_log(self) -> Any:
        """The log's rows with their row ids, read from its folder by this process and bound; None when this
        process reads the log through the engine (off the embedded engine, or more than ``BOUND_LOG_ROWS``).

        The rows are read before the engine reads any table, so a fold (its step rows written, then its events
        deleted) is seen whole, in part (both: the views count each transition once) or not at all."""
        rows = self._in_folder(lambda table: table.rows(BOUND_LOG_ROWS))
        return None if rows is None else self.engine.bind(rows, _LOG_SCHEMA)

    def audit(self) -> dict[str, Any]:
        moment = now()
        return {"CreatedOn": moment, "CreatedBy": self.updated_by,
                "LastUpdatedOn": moment, "LastUpdatedBy": self.updated_by}

    def stamp(self, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """``row`` with ``changes`` and a fresh LastUpdatedOn/By."""
        return {**row, **changes, "LastUpdatedOn": now(), "LastUpdatedBy": self.updated_by}

    def append(self, events: list[dict[str, Any]]) -> None:
        """One transition (its events, in order) in one blind append: it never conflicts with another writer.

        On the embedded engine this process commits it to the log's folder; elsewhere, or when that table
        cannot take it (``local_delta``), the engine runs the append."""
        if not events:
            return
        rows = [{**e, "LastUpdatedBy": e.get("LastUpdatedBy") or self.updated_by} for e in events]
        if self._in_folder(lambda table: table.append(rows)) is not None:
            self.engine.stats.add(commits=1)
            return
        self.write(Q.APPEND_EVENTS, S.EVENTS, rows)

    def _in_folder(self, work: Callable[[LocalDeltaTable], T]) -> T | None:
        """``work`` on the log's folder; None when this process cannot use it (the engine then). A refusal
        holds until the log's version changes: a table missing or being recreated is not refused for good."""
        if self._log is None or (self._refused is not None and self._refused == (self._log.version(),)):
            return None
        try:
            done = work(self._log)
        except Unsupported as why:
            log.info("using %s through the engine: %s", self.names[S.EVENTS.name], why)
            self._refused = (self._log.version(),)
            return None
        self._refused = None
        return done

    def append_receipts(self, receipts: list[dict[str, Any]]) -> None:
        """Receipts about no step (alerts, modes) as events of the log."""
        self.append([from_receipt(r) for r in receipts])
