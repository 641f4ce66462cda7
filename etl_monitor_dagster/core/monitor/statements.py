"""Every DML statement and query of the monitor, in one place, in one templating style.

``{ETLProcessingSteps}`` and the other table names, ``{day}`` (a validated partition date) and the
shared fragments below are filled by ``sql.fill``; ``{src}`` is the DataFrame of bound values that
Spark substitutes. No value is ever pasted into this text.
"""

from __future__ import annotations

from .. import schema as S
from ..sql import fill

# -------------------------------------------------------------------------------------- fragments

_STAMP = "t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy"


def insert_clause(table: S.Table) -> str:
    """``INSERT (columns) VALUES (s.columns)`` for a MERGE whose source has every column of ``table``.

    Named columns, not ``INSERT *``, so a target with columns of its own (an adopted seed schema)
    still accepts the row; columns with an insert default get it when no value is given.
    """
    columns = [c for c in table.column_names if c != "_ID"]
    defaults = table.insert_defaults
    values = [f"coalesce(s.{c}, {defaults[c]})" if c in defaults else f"s.{c}" for c in columns]
    return f"INSERT ({', '.join(columns)}) VALUES ({', '.join(values)})"


# ----------------------------------------------------------------------------------- registration

SEED_STAGES = fill("""
MERGE INTO {ETLconfigSequence} t USING {src} s ON t.SequenceID = s.SequenceID
WHEN NOT MATCHED THEN {insert}
""", insert=insert_clause(S.SEQUENCE))


def upsert(table: S.Table, descriptive: list[str]) -> str:
    """MERGE on the table's key: insert, or update the descriptive columns given (non-NULL) that changed."""
    on = " AND ".join(f"t.{c} = s.{c}" for c in table.key)
    changed = " OR ".join(f"NOT (t.{c} <=> coalesce(s.{c}, t.{c}))" for c in descriptive)
    sets = ", ".join(f"t.{c} = coalesce(s.{c}, t.{c})" for c in descriptive)
    return fill("""
MERGE INTO {target} t USING {src} s ON {on}
WHEN MATCHED AND ({changed}) THEN UPDATE SET {sets}, {stamp}
WHEN NOT MATCHED THEN {insert}
""", target="{" + table.name + "}", on=on, changed=changed, sets=sets, stamp=_STAMP,
                insert=insert_clause(table))


# ----------------------------------------------------------------------------------------- reads

# The active value of the joined parameter ``p`` as a string (see schema.ACTIVE_VALUE).
_WATERMARK = "CASE WHEN p.ParameterName IS NOT NULL THEN {active_value} END"

# Step rows with their task's active flag; their watermarks come from WATERMARKS, read at the same time.
STEP_ROWS = """
SELECT s.*, t.IsActive AS TaskIsActive
  FROM {v_liveSteps} s
  LEFT JOIN {ETLconfigTasks} t
    ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
"""

# Which mandatory steps of one execution stop its later stages (a gate's question)? v_mandatoryBlockers' rule
# over the execution's own rows: no fold of every date's latest attempt, and an execution that is no longer
# its date's latest attempt still sees its own blockers.
RUN_BLOCKERS = fill("SELECT {columns} FROM {v_liveSteps} s WHERE {blocking}",
                    columns=S.TASK_DETAIL_COLUMNS, blocking=S.BLOCKING)

# Each parameter's type and active value as a string (a step's WatermarkType and WatermarkValue).
WATERMARKS = fill("""
SELECT p.ProjectCode, p.ProcessLoad, p.ParameterName, p.ParameterType AS WatermarkType,
       {active_value} AS WatermarkValue
  FROM {v_liveParameters} p
""", active_value=S.ACTIVE_VALUE)

# A catalogue task with its stage code, effective frequency and watermark.
CATALOGUE_TASK = fill("""
SELECT t.*, q.SequenceCode, coalesce(t.LoadFrequency, pr.LoadFrequency) AS EffectiveFrequency,
       p.ParameterType AS WatermarkType, {watermark} AS WatermarkValue
  FROM {ETLconfigTasks} t
  JOIN {ETLconfigProcess} pr ON pr.ProjectCode = t.ProjectCode AND pr.ProcessLoad = t.ProcessLoad
  LEFT JOIN {ETLconfigSequence} q ON q.SequenceID = t.SequenceID
  LEFT JOIN {v_liveParameters} p
    ON p.ProjectCode = t.ProjectCode AND p.ProcessLoad = t.ProcessLoad
   AND p.ParameterName = t.SourceSystemCode
""", watermark=fill(_WATERMARK, active_value=S.ACTIVE_VALUE))

# One row per (date, attempts): start, end, duration so far and the initiation row's status.
STATUS_SUMMARY = """
SELECT ProjectCode, ProcessLoad, ProcessingDate, Attempts,
       min(StartTime) AS StartTime, max(EndTime) AS EndTime,
       CAST(unix_timestamp(max(coalesce(EndTime, current_timestamp())))
            - unix_timestamp(min(StartTime)) AS INT) AS DurationSeconds,
       max(CASE WHEN WorkFlowID = 0 AND TaskID = 0 THEN Status END) AS OverallStatus,
       CASE WHEN max(EndTime) IS NULL
            THEN 'Some tasks are not yet complete; run may still be active.' END AS Remark,
       max(ExecutionID) AS ExecutionID
  FROM {v_liveSteps}
 GROUP BY ProjectCode, ProcessLoad, ProcessingDate, Attempts
"""

# ------------------------------------------------------------------------------------------ a run

# One NQUE row per active task not DONE in its period, none when the execution already has rows. The
# process's rows of the year are folded once (``history``): the date's attempts so far, whether this
# execution has rows, and the tasks' DONE dates.
NEW_STEPS = """
WITH a AS (SELECT * FROM {src}),
history AS (
  SELECT coalesce(max(CASE WHEN s.ProcessingDate = a.ProcessingDate THEN s.Attempts END) + 1, 0) AS Attempts,
         count_if(s.ExecutionID = a.ExecutionID) AS ExistingRows,
         collect_list(CASE WHEN s.Status = 'DONE'
                           THEN named_struct('WorkFlowID', s.WorkFlowID, 'TaskID', s.TaskID,
                                             'ProcessingDate', s.ProcessingDate) END) AS Done
    FROM a LEFT JOIN {v_liveSteps} s
      ON s.ProjectCode = a.ProjectCode AND s.ProcessLoad = a.ProcessLoad
     AND s.ProcessingDate BETWEEN {year_start} AND {year_end}),
tasks AS (
  SELECT t.*, coalesce(t.LoadFrequency, p.LoadFrequency) AS Frequency,
         CASE coalesce(t.LoadFrequency, p.LoadFrequency)
           WHEN 'D' THEN 'yyyyMMdd' WHEN 'M' THEN 'yyyyMM' WHEN 'Y' THEN 'yyyy' END AS FileDateFormat
    FROM {ETLconfigTasks} t JOIN a ON t.ProjectCode = a.ProjectCode AND t.ProcessLoad = a.ProcessLoad
    JOIN {ETLconfigProcess} p ON p.ProjectCode = t.ProjectCode AND p.ProcessLoad = t.ProcessLoad
   WHERE t.IsActive)
SELECT a.ProcessingDate, a.ProjectCode, a.ProcessLoad, a.ExecutionID, t.WorkFlowID, t.TaskID,
       t.SequenceID, h.Attempts, 'NQUE' AS Status, t.TaskName, q.SequenceCode, t.TaskMandatory,
       t.SourceSystemCode,
       CASE WHEN t.FileNameMask IS NOT NULL AND t.FileDateFormat IS NOT NULL
            THEN concat(t.FileNameMask, '_', date_format(a.ProcessingDate, t.FileDateFormat),
                        coalesce(t.FileExtension, '')) END AS FullFileName,
       t.InFilePath, t.OutFilePath, false AS ForceSkip, t.SourceType,
       a.Now AS LastUpdatedOn, a.By AS LastUpdatedBy
  FROM tasks t CROSS JOIN a CROSS JOIN history h
  LEFT JOIN {ETLconfigSequence} q ON q.SequenceID = t.SequenceID
 WHERE h.ExistingRows = 0
   AND NOT exists(h.Done, d -> d.WorkFlowID = t.WorkFlowID AND d.TaskID = t.TaskID
         AND CASE t.Frequency
               WHEN 'M' THEN trunc(d.ProcessingDate, 'MM') = trunc(a.ProcessingDate, 'MM')
               WHEN 'Y' THEN trunc(d.ProcessingDate, 'YEAR') = trunc(a.ProcessingDate, 'YEAR')
               ELSE d.ProcessingDate = a.ProcessingDate
             END)
"""

# ----------------------------------------------------------------------------------------- receipts

# Every transition and receipt: one blind append, which never conflicts with another writer's.
APPEND_EVENTS = fill("INSERT INTO {ETLEventLog} ({columns}) SELECT {columns} FROM {src}",
                     columns=", ".join(S.EVENTS.column_names))

# -------------------------------------------------------------------------------------------- folds
# Folding writes the log's transitions into the tables readers outside the monitor use, then removes the
# events folded ({src}: Through, the highest log row id that existed before the fold began). Every fold is
# idempotent, so a fold cut short is finished by the next.

LOG_HIGH_MARK = "SELECT max(_metadata.row_id) AS Through FROM {ETLEventLog}"

FOLD_STEPS = fill("""
MERGE INTO {ETLProcessingSteps} t
USING (SELECT l.* FROM {v_liveSteps} l
        WHERE EXISTS (SELECT 1 FROM {ETLEventLog} e CROSS JOIN {src} f
                       WHERE e._metadata.row_id <= f.Through AND {on_le})) s
ON {on_ts}
WHEN MATCHED AND NOT (t.LastEventID <=> s.LastEventID AND t.ForceSkip <=> s.ForceSkip
                      AND t.Status <=> s.Status AND t.SourceRunID <=> s.SourceRunID)
  THEN UPDATE SET {sets}
WHEN NOT MATCHED THEN {insert}
""", on_le=" AND ".join(f"e.{c} = l.{c}" for c in S.STEPS.key),
    on_ts=" AND ".join(f"t.{c} = s.{c}" for c in S.STEPS.key),
    sets=", ".join(f"t.{c} = s.{c}" for c in S.STEPS.column_names if c not in S.STEPS.key),
    insert=insert_clause(S.STEPS))

FOLD_PARAMETERS = fill("""
MERGE INTO {ETLconfigParameters} t
USING (SELECT * FROM {v_liveParameters}) s
ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad AND t.ParameterName = s.ParameterName
WHEN MATCHED AND NOT (t.FoldedThrough <=> s.FoldedThrough) THEN UPDATE SET
    t.ValueINT = s.ValueINT, t.ValueDateTime = s.ValueDateTime, t.ValueBIT = s.ValueBIT,
    t.FoldedThrough = s.FoldedThrough, {stamp}
""", stamp=_STAMP)

# The receipts folded, in the order they were logged; a receipt ETLsysLogs holds already is skipped by the
# view (a fold cut short between this and the delete).
FOLD_RECEIPTS = fill("""
INSERT INTO {ETLsysLogs} ({columns})
SELECT {columns} FROM {v_liveLogs} l CROSS JOIN {src} f
 WHERE l._ID IS NULL AND l.LogRowID <= f.Through
 ORDER BY l.LogOrder
""", columns=", ".join(c for c in S.SYSLOGS.column_names if c != "_ID"))

DELETE_FOLDED = """
MERGE INTO {ETLEventLog} t
USING (SELECT e.EventID FROM {ETLEventLog} e CROSS JOIN {src} f WHERE e._metadata.row_id <= f.Through) s
ON t.EventID = s.EventID
WHEN MATCHED THEN DELETE
"""

# -------------------------------------------------------------------------------------- maintenance

# Executions that may still write receipts: a step started and not ended, or an initiation row (the
# run's marker) not ended or back in a queue. Their receipts are never archived, however old.
_UNFINISHED_EXECUTIONS = """
SELECT DISTINCT ExecutionID FROM {v_liveSteps}
 WHERE (StartTime IS NOT NULL AND EndTime IS NULL)
    OR (WorkFlowID = 0 AND TaskID = 0 AND (EndTime IS NULL OR Status IN ('NQUE', 'RQUE')))"""

# Receipts older than the bound cutoff ({src}: Cutoff, ArchivedOn) whose execution is finished (or that
# belong to none), copied into the archive with their _ID. Keyed on _ID: a repeat inserts nothing.
COPY_TO_ARCHIVE = fill("""
MERGE INTO {ETLsysLogsArchive} t
USING (SELECT l.*, c.ArchivedOn FROM {ETLsysLogs} l CROSS JOIN {src} c
        WHERE l.LogTimeUTC < c.Cutoff
          AND NOT EXISTS (SELECT 1 FROM ({unfinished}) u WHERE u.ExecutionID = l.ExecutionID)) s
ON t._ID = s._ID
WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})
""", unfinished=_UNFINISHED_EXECUTIONS, columns=", ".join(S.ARCHIVE.column_names),
                       values=", ".join(f"s.{c}" for c in S.ARCHIVE.column_names))

# The same receipt in both tables: its id, time and event id agree (the id alone could meet a new
# receipt's if ETLsysLogs were ever recreated and its identity restarted).
_ARCHIVED = """t._ID = a._ID AND t.LogTimeUTC <=> a.LogTimeUTC AND t.CorrelationID <=> a.CorrelationID"""

# How many receipts of ETLsysLogs are already in the archive: what the delete below will remove.
COUNT_ARCHIVED = fill("""
SELECT count(*) AS n FROM {ETLsysLogs} t WHERE EXISTS (SELECT 1 FROM {ETLsysLogsArchive} a WHERE {archived})
""", archived=_ARCHIVED)

# Remove from ETLsysLogs every receipt the archive holds: this run's copies and those a crash left in
# both tables. (A MERGE, since Delta's DELETE takes no subquery.)
DELETE_ARCHIVED = fill("""
MERGE INTO {ETLsysLogs} t USING {ETLsysLogsArchive} a ON {archived}
WHEN MATCHED THEN DELETE
""", archived=_ARCHIVED)

# Table maintenance: these take identifiers only; {table} is one of our qualified names and {hours} a
# validated int (MaintenanceSettings), so filling them is safe.
DESCRIBE_DETAIL = "DESCRIBE DETAIL {table}"  # numFiles: the table's live data files
OPTIMIZE = "OPTIMIZE {table}"  # compacts small files into larger ones
VACUUM = "VACUUM {table} RETAIN {hours} HOURS"  # deletes files no version within the retention uses
# The latest commits: VACUUM records its VACUUM START / VACUUM END there with numDeletedFiles (on the
# file systems Delta logs vacuums for), which costs nothing, unlike a second listing by a DRY RUN.
RECENT_HISTORY = "DESCRIBE HISTORY {table} LIMIT 5"
