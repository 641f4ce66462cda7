"""Retention for a monitor schema: old receipts archived, the busy tables compacted and vacuumed.

``Maintenance.run`` does, in order:

0. **Fold.** The event log is folded into the tables (``fold.fold``), so what is archived and compacted
   is complete and the log stays as short as the runs still open.
1. **Archive.** Receipts older than ``archive_after_days`` move from ETLsysLogs to ETLsysLogsArchive,
   except those of an execution that may still write (a step running, or its initiation row not
   ended). The move is a MERGE into the archive keyed on ``_ID`` (a repeat inserts nothing), then a
   delete from ETLsysLogs of every receipt the archive holds; a crash between the two leaves rows in
   both tables, and the next run only finishes the delete. ETLsysLogs is ``delta.appendOnly``, which
   refuses deletes: the property is lifted for the delete alone and set back in a ``finally`` (a crash
   inside leaves a mark that the next run and ``setup()`` clear, see ``layout.restore_append_only``).
   Receipts appended meanwhile may meet a metadata-change conflict on the property change; the
   engine retries those (``engine.is_conflict`` covers DELTA_METADATA_CHANGED), so none is lost.
2. **OPTIMIZE** ETLProcessingSteps, ETLsysLogs and the archive, counting live files before and after.
3. **VACUUM** the same tables with ``RETAIN vacuum_retain_hours HOURS`` (unless ``vacuum`` is off).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import schema as S
from ..engine import is_connection_loss, lost_engine
from ..errors import ValidationError
from ..sql import fill
from . import layout
from . import statements as Q
from .fold import fold
from .store import Store

MAINTAINED = (S.STEPS, S.SYSLOGS, S.EVENTS, S.ARCHIVE)  # the tables that grow with every run

# Delta's minimum safe retention (its default delta.deletedFileRetentionDuration, 7 days): VACUUM refuses
# a shorter one while this session setting is true.
SAFE_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# Delta 4 ignores a VACUUM RETAIN other than 0 hours while this (internal) setting is true and applies the
# table's delta.deletedFileRetentionDuration instead (default 168 h); older engines do not know it.
RETENTION_WINDOW_IGNORE = "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled"


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, value, "must be a whole number")
    if value < minimum:
        raise ValidationError(name, value, f"must be at least {minimum}")
    return value


@dataclass(frozen=True)
class MaintenanceSettings:
    """What a maintenance run does: receipts older than ``archive_after_days`` are archived; with
    ``optimize`` the tables are compacted; with ``vacuum`` VACUUM keeps the files of the last
    ``vacuum_retain_hours`` (off, every old file version stays for time travel)."""

    archive_after_days: int = 90
    vacuum_retain_hours: int = SAFE_RETENTION_HOURS
    optimize: bool = True
    vacuum: bool = True

    def __post_init__(self) -> None:
        _whole("archive_after_days", self.archive_after_days, 1)
        _whole("vacuum_retain_hours", self.vacuum_retain_hours, 0)
        for name in ("optimize", "vacuum"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(name, getattr(self, name), "must be true or false")


@dataclass
class MaintenanceReport:
    """What a maintenance run did. Files are live data files (DESCRIBE DETAIL numFiles) per table name;
    ``files_vacuumed`` the files VACUUM deleted, per table whose VACUUM END commit records them."""

    events_folded: int = 0  # events folded into the tables and removed from ETLEventLog
    rows_archived: int = 0  # receipts removed from ETLsysLogs (now only in the archive)
    rows_copied: int = 0  # receipts this run inserted into the archive (less than archived after a crash)
    receipts_kept: int = 0  # receipts left in ETLsysLogs
    archive_rows: int = 0  # receipts in the archive after the run
    append_only_restored: bool = False  # a previous run died with appendOnly lifted; re-asserted
    files_before: dict[str, int] = field(default_factory=dict)
    files_after: dict[str, int] = field(default_factory=dict)
    files_vacuumed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def figures(self) -> dict[str, float | int]:
        """Flat numeric figures (``files_before_ETLsysLogs``, ...), e.g. for run metadata."""
        flat: dict[str, float | int] = {
            "events_folded": self.events_folded, "rows_archived": self.rows_archived,
            "rows_copied": self.rows_copied,
            "receipts_kept": self.receipts_kept, "archive_rows": self.archive_rows,
            "append_only_restored": int(self.append_only_restored), "seconds": round(self.seconds, 3)}
        for prefix, counts in (("files_before", self.files_before), ("files_after", self.files_after),
                               ("files_vacuumed", self.files_vacuumed)):
            flat |= {f"{prefix}_{table}": n for table, n in counts.items()}
        return flat


class Maintenance:
    """Retention of one monitor schema (``monitor.maintenance``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def run(self, settings: MaintenanceSettings | None = None) -> MaintenanceReport:
        """Archive old receipts of finished executions, OPTIMIZE and VACUUM; returns the figures.

        Settings the engine would refuse (a retention below its safety check) are refused with
        ValidationError before anything is written.
        """
        settings = settings or MaintenanceSettings()
        if not isinstance(settings, MaintenanceSettings):
            raise ValidationError("settings", settings, "must be MaintenanceSettings")
        started = time.monotonic()
        if settings.vacuum:
            self._check_retention(settings.vacuum_retain_hours)
        report = MaintenanceReport()
        layout.create_or_migrate_table(self.store, S.ARCHIVE)  # a schema set up before the archive existed
        report.events_folded = fold(self.store).events_removed
        report.append_only_restored = layout.restore_append_only(self.store)
        report.rows_copied = self._copy(datetime.now(UTC) - timedelta(days=settings.archive_after_days))
        report.rows_archived = self._delete_archived()
        report.receipts_kept = self.store.spark.table(self.store.names[S.SYSLOGS.name]).count()
        report.archive_rows = self.store.spark.table(self.store.names[S.ARCHIVE.name]).count()
        report.files_before = {t.name: self._files(t) for t in MAINTAINED}
        if settings.optimize:
            for table in MAINTAINED:
                self.store.engine.execute(fill(Q.OPTIMIZE, table=self.store.names[table.name]))
        report.files_after = {t.name: self._files(t) for t in MAINTAINED}
        for table in MAINTAINED if settings.vacuum else ():
            deleted = self._vacuum(table, settings.vacuum_retain_hours)
            if deleted is not None:
                report.files_vacuumed[table.name] = deleted
        report.seconds = time.monotonic() - started
        return report

    # ------------------------------------------------------------------------------------------ steps

    def _copy(self, cutoff: datetime) -> int:
        """Copy the receipts to archive into ETLsysLogsArchive (never twice); returns the rows inserted.

        Alone, this is the first half of a move: what a crash between copy and delete leaves behind."""
        src = self.store.engine.bind([{"Cutoff": cutoff, "ArchivedOn": datetime.now(UTC)}],
                                     [("Cutoff", "TIMESTAMP"), ("ArchivedOn", "TIMESTAMP")])
        return self.store.engine.execute(self.store.render(Q.COPY_TO_ARCHIVE), src=src)

    def _delete_archived(self) -> int:
        """Delete from ETLsysLogs every receipt the archive holds, appendOnly lifted for that delete only."""
        (count,) = self.store.engine.query(self.store.render(Q.COUNT_ARCHIVED))
        if not count["n"]:
            return 0  # nothing to delete: leave the table's properties (and concurrent appends) alone
        properties = layout.table_properties(self.store, S.SYSLOGS)
        lift = properties.get("delta.appendOnly", "false").lower() == "true"  # an adopted seed table may lack it
        try:
            if lift:
                layout.set_append_only(self.store, False)
            return self.store.engine.execute(self.store.render(Q.DELETE_ARCHIVED))
        finally:
            if lift:
                layout.set_append_only(self.store, True)

    def _files(self, table: S.Table) -> int:
        (detail,) = self.store.engine.query(fill(Q.DESCRIBE_DETAIL, table=self.store.names[table.name]))
        return int(detail["numFiles"] or 0)

    def _vacuum(self, table: S.Table, hours: int) -> int | None:
        """VACUUM the table; returns the files it deleted, as its VACUUM END commit records them (None
        when the engine logs no vacuum commits)."""
        name = self.store.names[table.name]
        (latest,) = self._history(name)[:1]
        # ``hours`` is an int validated by MaintenanceSettings (>= 0), so it may be formatted into the text.
        try:
            self.store.engine.execute(fill(Q.VACUUM, table=name, hours=str(int(hours))))
        except Exception as exc:
            if "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT" in str(exc):  # the table keeps its files longer
                raise ValidationError("vacuum_retain_hours", hours,
                                      f"is shorter than {table.name}'s delta.deletedFileRetentionDuration and "
                                      f"{RETENTION_CHECK} is true on this engine") from exc
            raise
        ends = [h for h in self._history(name) if h["version"] > latest["version"] and h["operation"] == "VACUUM END"]
        metrics = (ends[0]["operationMetrics"] or {}) if ends else {}
        return int(metrics["numDeletedFiles"]) if "numDeletedFiles" in metrics else None

    def _history(self, name: str) -> list[dict[str, Any]]:
        """The table's latest commits, newest first."""
        return self.store.engine.query(fill(Q.RECENT_HISTORY, table=name))

    def _check_retention(self, hours: int) -> None:
        """Refuse, before any write, a retention the engine would refuse or silently replace.

        Lowering Delta's safety check is a decision for whoever runs the engine (server config, or
        ``spark.conf.set`` on the session), not something a maintenance run does behind their back.
        """
        if hours < SAFE_RETENTION_HOURS and self._conf(RETENTION_CHECK, "true") == "true":
            raise ValidationError(
                "vacuum_retain_hours", hours,
                f"is below Delta's safe retention of {SAFE_RETENTION_HOURS} h while {RETENTION_CHECK}=true "
                "on this engine: set it to false on the engine to allow it, or retain longer")
        if hours not in (0, SAFE_RETENTION_HOURS) and self._conf(RETENTION_WINDOW_IGNORE, "false") == "true":
            raise ValidationError(
                "vacuum_retain_hours", hours,
                f"would be ignored: with {RETENTION_WINDOW_IGNORE}=true Delta applies each table's "
                f"delta.deletedFileRetentionDuration (default {SAFE_RETENTION_HOURS} h) to any VACUUM RETAIN "
                "other than 0; set it to false on the engine, or use 0 or 168")

    def _conf(self, key: str, default: str) -> str:
        """A session setting's value, lower-case; ``default`` when the engine does not know or show it."""
        try:
            return str(self.store.spark.conf.get(key, default)).strip().lower()
        except Exception as exc:
            if is_connection_loss(exc):
                raise lost_engine(self.store.spark, exc) from exc
            return default  # an engine that does not expose the setting (e.g. a locked-down cluster)
