"""Blind appends to a Delta table in a local folder, committed by this process instead of the engine, and
reads of its rows.

A transition of the monitor is one appended row. Sent through Spark, that row costs the embedded server a
statement: 0.3-0.5 s of its CPU under load, for every START and every DONE. Written here it is a Parquet
file and a commit file, a few milliseconds of this process. The commit is put if absent (a hard link
that fails when the version exists), as the engine's own log store for local files does (jars/src), so
neither writer can ever replace the other's commit: the loser of a version reads what won and tries the
next one.

Only the protocol a blind append needs is written: the data files, ``add`` actions with stats, and the
row ids of row tracking (``baseRowId`` from the table's high-water mark, which the commit raises). A table
whose protocol asks for anything else, or whose columns are not the expected ones, is refused with
``Unsupported``; its caller then writes through the engine.

A read takes the table's live files (the last checkpoint's, then every commit after it, then forward from
what it read); a scan keeps a partition's files whose stats do not rule the asked values out. Each row gets
its row-tracking id: ``baseRowId`` plus its index, or the id the engine kept in the file when it rewrote it.
A file is read once: committed files never change.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConcurrencyError

# The writer features this appender honours: appendOnly (it only adds), invariants (NOT NULL, checked
# here), domainMetadata and rowTracking (row ids assigned and the high-water mark raised in the commit).
SUPPORTED_WRITER_FEATURES = frozenset({"appendOnly", "invariants", "domainMetadata", "rowTracking"})
_ROW_TRACKING = "delta.rowTracking"
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Delta's type names for the SQL types of our tables' columns.
_DELTA_TYPES = {"STRING": "string", "BIGINT": "long", "INT": "integer", "BOOLEAN": "boolean",
                "TIMESTAMP": "timestamp", "DATE": "date", "DOUBLE": "double"}
# Stats go to the columns readers filter on: short text and whole numbers (exact bounds, never truncated).
_STATS_TYPES = {"string", "long", "integer"}
_STATS_TEXT_LIMIT = 64
# A version lost to another writer is retried at once with the next: appends never conflict otherwise.
_COMMIT_DEADLINE_SECONDS = 60.0


class Unsupported(Exception):
    """This table cannot take a blind append from here; the message says why."""


@dataclass
class _State:
    """What a commit needs to know of the table, as of ``version``."""

    version: int
    protocol: dict[str, Any]
    metadata: dict[str, Any]
    high_water_mark: int  # the highest row id assigned; -1 before the first
    files: dict[str, dict[str, Any]] | None = None  # the live files' add actions by path, once a scan asked
    # The last version that removed a file, as far as this state knows: one built from a checkpoint (or from
    # the newest commits only) cannot tell what came before, so its first version counts as one.
    removed_at: int = -1


class LocalDeltaTable:
    """A Delta table in the folder ``path`` whose rows this process appends and scans; ``columns`` are the
    (name, SQL type) pairs its schema must have, ``partition_by`` its partition column (or None)."""

    def __init__(self, path: Path, columns: Sequence[tuple[str, str]], partition_by: str | None = None) -> None:
        self.path = path
        self.log = path / "_delta_log"
        self.columns = [(c, t.split(" ")[0]) for c, t in columns]
        self.required = {c for c, t in columns if t.endswith("NOT NULL")}
        self.partition_by = partition_by
        self._state: _State | None = None
        # A data file never changes once committed: its rows (with their row ids) are read once, and forgotten
        # when a commit removes the file. The lock keeps threads of one process from refreshing at once.
        self._file_rows: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ reading

    def _versions(self) -> list[int]:
        try:
            names = os.listdir(self.log)
        except FileNotFoundError:
            raise Unsupported(f"no Delta table at {self.path}") from None
        return sorted(int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit())

    def version(self) -> int | None:
        """The table's latest commit version; None when there is no table (one listing of its log)."""
        try:
            versions = self._versions()
        except Unsupported:
            return None
        return versions[-1] if versions else None

    def _actions(self, version: int) -> list[dict[str, Any]]:
        with open(self.log / f"{version:020d}.json", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def _checkpoint(self, files: dict[str, dict[str, Any]] | None = None) -> tuple[int, dict[str, Any]]:
        """The last checkpoint's version (-1: none) and the protocol, metadata and row id mark it holds; its
        live files go into ``files`` when given."""
        try:
            pointer = json.loads((self.log / "_last_checkpoint").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return -1, {}
        if "v2Checkpoint" in pointer:
            raise Unsupported("the table has a V2 checkpoint")
        version = int(pointer["version"])
        found: dict[str, Any] = {}
        wanted = ("protocol", "metaData", "domainMetadata", *(("add",) if files is not None else ()))
        for part in sorted(self.log.glob(f"{version:020d}.checkpoint*.parquet")):
            present = set(pq.read_schema(part).names)
            for row in pq.read_table(part, columns=[c for c in wanted if c in present]).to_pylist():
                action = {k: v for k, v in row.items() if v is not None}
                _take(found, action, checkpoint=True)
                if files is not None and "add" in action:
                    add = dict(action["add"])
                    add["partitionValues"] = dict(add.get("partitionValues") or ())
                    files[add["path"]] = add
        return version, found

    def _refresh(self, files: bool = False) -> _State:
        """The table's state at its latest version: read forward from the last state, else from the last
        checkpoint and the commits after it. ``files``: with the live files, which takes every commit since
        the checkpoint the first time; without, the commits are read newest first, as far as needed."""
        versions = self._versions()
        if not versions:
            raise Unsupported(f"no Delta commit in {self.log}")
        latest = versions[-1]
        state = self._state
        if state is None or state.version > latest or (files and state.files is None):
            live: dict[str, dict[str, Any]] | None = {} if files else None
            checkpoint, found = self._checkpoint(live)
            version = checkpoint
            if live is None:
                newer: dict[str, Any] = {}
                for v in reversed([v for v in versions if v > checkpoint]):
                    for action in self._actions(v):
                        _take(newer, action)
                    if {"protocol", "metaData", "hwm"} <= newer.keys():
                        break
                found, version = {**found, **newer}, latest
            state = _State(version, found.get("protocol", {}), found.get("metaData", {}), found.get("hwm", -1), live,
                           version)
        for v in range(state.version + 1, latest + 1):
            found = {}
            removed_at = state.removed_at
            for action in self._actions(v):
                _take(found, action)
                if state.files is not None:
                    _apply(state.files, action)
                if "remove" in action:
                    removed_at = v
            state = _State(v, found.get("protocol", state.protocol), found.get("metaData", state.metadata),
                           found.get("hwm", state.high_water_mark), state.files, removed_at)
        if not state.protocol or not state.metadata:
            raise Unsupported(f"no protocol or metadata found in {self.log}")
        self._check(state)
        self._state = state
        return state

    def _check(self, state: _State) -> None:
        writer = set(state.protocol.get("writerFeatures") or ())
        if "rowTracking" not in writer:
            raise Unsupported("row tracking is not enabled: the rows' order would be lost")
        if not writer <= SUPPORTED_WRITER_FEATURES or state.protocol.get("readerFeatures"):
            raise Unsupported(f"the protocol {state.protocol} asks for more than a blind append")
        schema = json.loads(state.metadata["schemaString"])
        have = [(f["name"], f["type"]) for f in schema["fields"]]
        want = [(c, _DELTA_TYPES.get(t)) for c, t in self.columns]
        if sorted(have) != sorted(want):
            raise Unsupported(f"the table's columns differ from {[c for c, _ in self.columns]}")
        partitions = state.metadata.get("partitionColumns") or []
        if partitions != ([self.partition_by] if self.partition_by else []):
            raise Unsupported(f"the table is partitioned by {partitions}")
        configuration = state.metadata.get("configuration") or {}
        if configuration.get("delta.enableRowTracking") != "true":
            raise Unsupported("delta.enableRowTracking is not true")

    def scan(self, partition: date | None, equals: Mapping[str, Any], columns: Sequence[str]) -> list[dict[str, Any]]:
        """The ``columns`` of the rows in ``partition`` whose values equal ``equals``, with ``RowID`` (row
        tracking's id: the order of the commits), in that order. Files whose stats rule them out are not read."""
        def wanted(add: Mapping[str, Any]) -> bool:
            return (not self.partition_by or (add.get("partitionValues") or {}).get(self.partition_by)
                    == (None if partition is None else partition.isoformat())) and _may_hold(add, equals)

        with self._lock:
            found = self._live_rows(self._refresh(files=True), wanted)
        return [{**{c: row[c] for c in columns}, "RowID": row["RowID"]} for row in found
                if all(row[c] == v for c, v in equals.items())]

    def rows(self, limit: int) -> list[dict[str, Any]] | None:
        """Every row, all columns and ``RowID``, in log order (the rows this table keeps: read them, never change
        them); None when the live files hold more than ``limit`` (by their stats)."""
        with self._lock:
            state = self._refresh(files=True)
            assert state.files is not None
            if sum(json.loads(add.get("stats") or "{}").get("numRecords", limit + 1)
                   for add in state.files.values()) > limit:
                return None
            return self._live_rows(state, lambda add: True)

    def _live_rows(self, state: _State, wanted: Callable[[Mapping[str, Any]], bool]) -> list[dict[str, Any]]:
        """The rows of the live files ``wanted`` keeps, each with every column and ``RowID``, in log order."""
        assert state.files is not None
        for path in self._file_rows.keys() - state.files.keys():
            del self._file_rows[path]
        found = [row for add in state.files.values() if wanted(add) for row in self._read(add, state)]
        return sorted(found, key=lambda r: r["RowID"])

    def _read(self, add: Mapping[str, Any], state: _State) -> list[dict[str, Any]]:
        """A live file's rows with their partition value and row id (row tracking's: ``baseRowId`` plus the
        row's index, or the id the engine kept in the file when it rewrote it)."""
        rows = self._file_rows.get(add["path"])
        if rows is not None:
            return rows
        materialized = (state.metadata.get("configuration") or {}).get("delta.rowTracking.materializedRowIdColumnName")
        table = pq.ParquetFile(self.path / unquote(add["path"]), coerce_int96_timestamp_unit="us").read()
        names = set(table.column_names)
        partition = (add.get("partitionValues") or {}).get(self.partition_by) if self.partition_by else None
        # A timestamp in Parquet is an instant in UTC; the engine writes INT96, which leaves the zone unsaid.
        instants = [c for c, t in self.columns if t == "TIMESTAMP" and c in names]
        rows = []
        for index, row in enumerate(table.to_pylist()):
            row_id = row.get(materialized) if materialized in names else None
            for c in instants:
                if row[c] is not None and row[c].tzinfo is None:
                    row[c] = row[c].replace(tzinfo=UTC)
            rows.append({**{c: row.get(c) for c, _ in self.columns},
                         **({self.partition_by: _partition_value(partition, dict(self.columns)[self.partition_by])}
                            if self.partition_by else {}),
                         "RowID": row_id if row_id is not None else add["baseRowId"] + index})
        self._file_rows[add["path"]] = rows
        return rows

    def removed_after(self, version: int) -> bool:
        """Whether a commit after ``version``, up to the state the last scan read, may have removed a file: rows
        logged after ``version`` may then be missing from that scan. Read from that state, not the commits again."""
        return self._state is None or self._state.removed_at > version

    # ------------------------------------------------------------------------------------------ writing

    def append(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append ``rows`` (in this order, one file per partition) in one commit; returns its version.

        Raises ``Unsupported`` before writing anything when the table cannot take the append, a
        ``ValueError`` naming the column when a NOT NULL column is empty, and ``ConcurrencyError`` when no
        version could be won within a minute."""
        for row in rows:
            for column in self.required:
                if row.get(column) is None:
                    raise ValueError(f"{column} is NOT NULL in {self.path.name} and was given no value")
        with self._lock:  # the state is this process's, shared by its threads
            state = self._refresh()
            files = [self._write_file(value, part) for value, part in _partitions(rows, self.partition_by)]
            deadline = time.monotonic() + _COMMIT_DEADLINE_SECONDS
            while True:
                version = state.version + 1
                actions = self._commit(version, state, files)
                if actions is not None:
                    if state.files is not None:
                        for action in actions:
                            _apply(state.files, action)
                    self._state = _State(version, state.protocol, state.metadata,
                                         state.high_water_mark + sum(f["rows"] for f in files), state.files,
                                         state.removed_at)
                    return version
                if time.monotonic() > deadline:
                    raise ConcurrencyError(f"no Delta version of {self.path} won within {_COMMIT_DEADLINE_SECONDS} s")
                state = self._refresh()  # another writer took the version: its commit may change the mark

    def _write_file(self, value: date | None, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        folder = (f"{self.partition_by}={_NULL_PARTITION if value is None else value.isoformat()}/"
                  if self.partition_by else "")
        relative = f"{folder}part-00000-{uuid.uuid4()}.c000.snappy.parquet"
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = [(c, t) for c, t in self.columns if c != self.partition_by]
        arrays = [pa.array([_value(r.get(c), t) for r in rows], _ARROW_TYPES[t]) for c, t in data]
        pq.write_table(pa.table(arrays, names=[c for c, _ in data]), target, compression="snappy")
        stat = target.stat()
        return {"path": relative, "partition": None if value is None else value.isoformat(),
                "size": stat.st_size, "modificationTime": int(stat.st_mtime * 1000), "rows": len(rows),
                "stats": _stats(rows, data)}

    def _commit(self, version: int, state: _State, files: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Put the commit file of ``version`` if no writer has: its actions, or None when one has."""
        mark = state.high_water_mark
        actions: list[dict[str, Any]] = [{"commitInfo": {
            "timestamp": int(time.time() * 1000), "operation": "WRITE",
            "operationParameters": {"mode": "Append", "partitionBy": "[]"}, "readVersion": state.version,
            "isolationLevel": "Serializable", "isBlindAppend": True,
            "operationMetrics": {"numFiles": str(len(files)), "numOutputRows": str(sum(f["rows"] for f in files))},
            "engineInfo": "etl-monitor-dagster", "txnId": str(uuid.uuid4())}}]
        for f in files:
            actions.append({"add": {
                "path": f["path"],
                "partitionValues": {self.partition_by: f["partition"]} if self.partition_by else {},
                "size": f["size"], "modificationTime": f["modificationTime"], "dataChange": True,
                "stats": f["stats"], "baseRowId": mark + 1, "defaultRowCommitVersion": version}})
            mark += f["rows"]
        actions.append({"domainMetadata": {"domain": _ROW_TRACKING, "removed": False, "configuration": json.dumps(
            {"rowIdHighWaterMark": mark, "domainName": _ROW_TRACKING}, separators=(",", ":"))}})
        temporary = self.log / f".{version:020d}.json.{uuid.uuid4()}.tmp"
        temporary.write_text("".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions), encoding="utf-8")
        try:
            os.link(temporary, self.log / f"{version:020d}.json")  # atomic, and fails if the version exists
        except FileExistsError:
            return None
        finally:
            temporary.unlink()
        return actions


def _apply(files: dict[str, dict[str, Any]], action: Mapping[str, Any]) -> None:
    if "add" in action:
        files[action["add"]["path"]] = action["add"]
    elif "remove" in action:
        files.pop(action["remove"]["path"], None)


def _may_hold(add: Mapping[str, Any], equals: Mapping[str, Any]) -> bool:
    """False when the file's stats show that no row has all the ``equals`` values (missing stats: it may)."""
    stats = json.loads(add.get("stats") or "{}")
    lows, highs = stats.get("minValues") or {}, stats.get("maxValues") or {}
    for column, value in equals.items():
        low, high = lows.get(column), highs.get(column)
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


def _take(found: dict[str, Any], action: Mapping[str, Any], checkpoint: bool = False) -> None:
    """Note the protocol, metadata and row id high-water mark an action sets (the first seen wins)."""
    if "protocol" in action:
        found.setdefault("protocol", action["protocol"])
    if "metaData" in action:
        metadata = dict(action["metaData"])
        if checkpoint and isinstance(metadata.get("configuration"), list):  # a Parquet map: key-value pairs
            metadata["configuration"] = dict(metadata["configuration"])
        found.setdefault("metaData", metadata)
    domain = action.get("domainMetadata")
    if domain and domain.get("domain") == _ROW_TRACKING and not domain.get("removed"):
        found.setdefault("hwm", int(json.loads(domain["configuration"])["rowIdHighWaterMark"]))


def _partitions(rows: Sequence[Mapping[str, Any]], column: str | None) -> list[tuple[date | None, list[Any]]]:
    """The rows by partition value, in the order values first appear (row ids follow it)."""
    groups: dict[date | None, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.get(column) if column else None, []).append(row)
    return list(groups.items())


def _partition_value(text: str | None, sql_type: str) -> Any:
    """A partition value as its column's type (Delta keeps them as text; None: the null partition)."""
    if text is None or text == _NULL_PARTITION:
        return None
    return date.fromisoformat(text) if sql_type == "DATE" else text


def _value(value: Any, sql_type: str) -> Any:
    if sql_type == "TIMESTAMP" and isinstance(value, datetime):
        return value.astimezone(UTC)  # a naive time is local, as Spark's client reads it
    return value


_ARROW_TYPES: dict[str, Any] = {"STRING": pa.string(), "BIGINT": pa.int64(), "INT": pa.int32(), "BOOLEAN": pa.bool_(),
                                 "DATE": pa.date32(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us", tz="UTC")}


def _stats(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for column, sql_type in columns:
        if _DELTA_TYPES[sql_type] not in _STATS_TYPES:
            continue
        values = [r.get(column) for r in rows]
        present = [v for v in values if v is not None]
        if any(isinstance(v, str) and len(v) > _STATS_TEXT_LIMIT for v in present):
            continue
        nulls[column] = len(values) - len(present)
        if present:
            lows[column], highs[column] = min(present), max(present)
    return json.dumps({"numRecords": len(rows), "minValues": lows, "maxValues": highs, "nullCount": nulls},
                      separators=(",", ":"), ensure_ascii=False)
