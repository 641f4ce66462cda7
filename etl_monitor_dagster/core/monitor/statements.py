"""Every DML statement and query of the monitor, in one place, in one templating style.

``{ETLProcessingSteps}`` and the other table names, ``{day}`` (a validated partition date) and the
shared fragments below are filled by ``sql.fill``; ``{src}`` is the DataFrame of bound values that
Spark substitutes. No value is ever pasted into this text.
"""

from __future__ import annotations

from .. import schema as S
from ..sql import fill

# -------------------------------------------------------------------------------------- fragments

# One step row: the whole key, with the partition date as a literal so Delta prunes to one partition.
_MATCH = """ON t.ProcessingDate = {day} AND t.ProcessingDate = s.ProcessingDate
   AND t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.ExecutionID = s.ExecutionID AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
   AND t.Attempts = s.Attempts"""

# A running step: started, not ended, still queued.
_RUNNING = "(t.StartTime IS NOT NULL AND t.EndTime IS NULL AND t.Status IN ('NQUE', 'RQUE'))"

# Close a step (DONE, FAIL, or a failed try to retry as RQUE): end time, duration, log fields.
_CLOSE = """UPDATE SET
    t.Status = s.Status, t.EndTime = s.EndTime,
    t.DurationSeconds = CAST(unix_timestamp(s.EndTime)
                             - unix_timestamp(coalesce(t.StartTime, s.EndTime)) AS INT),
    t.LogMessage = s.LogMessage, t.LogType = s.LogType, t.LogCode = s.LogCode,
    t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy"""

_STAMP = "t.LastUpdatedOn = s.LastUpdatedOn, t.LastUpdatedBy = s.LastUpdatedBy"


def _step_merge(text: str) -> str:
    return fill(text, match=_MATCH, running=_RUNNING, close=_CLOSE, stamp=_STAMP,
                insert=insert_clause(S.STEPS))


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

# Step rows with their task's active flag and their watermark's type and active value.
STEP_ROWS = fill("""
SELECT s.*, t.IsActive AS TaskIsActive, p.ParameterType AS WatermarkType, {watermark} AS WatermarkValue
  FROM {ETLProcessingSteps} s
  LEFT JOIN {ETLconfigTasks} t
    ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
  LEFT JOIN {ETLconfigParameters} p
    ON p.ProjectCode = s.ProjectCode AND p.ProcessLoad = s.ProcessLoad
   AND p.ParameterName = s.SourceSystemCode
""", watermark=fill(_WATERMARK, active_value=S.ACTIVE_VALUE))

# A catalogue task with its stage code, effective frequency and watermark.
CATALOGUE_TASK = fill("""
SELECT t.*, q.SequenceCode, coalesce(t.LoadFrequency, pr.LoadFrequency) AS EffectiveFrequency,
       p.ParameterType AS WatermarkType, {watermark} AS WatermarkValue
  FROM {ETLconfigTasks} t
  JOIN {ETLconfigProcess} pr ON pr.ProjectCode = t.ProjectCode AND pr.ProcessLoad = t.ProcessLoad
  LEFT JOIN {ETLconfigSequence} q ON q.SequenceID = t.SequenceID
  LEFT JOIN {ETLconfigParameters} p
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
  FROM {ETLProcessingSteps}
 GROUP BY ProjectCode, ProcessLoad, ProcessingDate, Attempts
"""

# ------------------------------------------------------------------------------------------ a run

# One NQUE row per active task not DONE in its period, none when the execution already has rows.
NEW_STEPS = """
WITH a AS (SELECT * FROM {src}),
day_rows AS (
  SELECT s.* FROM {ETLProcessingSteps} s JOIN a
      ON s.ProjectCode = a.ProjectCode AND s.ProcessLoad = a.ProcessLoad
     AND s.ProcessingDate BETWEEN {year_start} AND {year_end}),
run AS (
  SELECT coalesce(max(CASE WHEN d.ProcessingDate = a.ProcessingDate THEN d.Attempts END) + 1, 0) AS Attempts,
         count_if(d.ExecutionID = a.ExecutionID) AS ExistingRows
    FROM a LEFT JOIN day_rows d ON true),
tasks AS (
  SELECT t.*, coalesce(t.LoadFrequency, p.LoadFrequency) AS Frequency,
         CASE coalesce(t.LoadFrequency, p.LoadFrequency)
           WHEN 'D' THEN 'yyyyMMdd' WHEN 'M' THEN 'yyyyMM' WHEN 'Y' THEN 'yyyy' END AS FileDateFormat
    FROM {ETLconfigTasks} t JOIN a ON t.ProjectCode = a.ProjectCode AND t.ProcessLoad = a.ProcessLoad
    JOIN {ETLconfigProcess} p ON p.ProjectCode = t.ProjectCode AND p.ProcessLoad = t.ProcessLoad
   WHERE t.IsActive)
SELECT a.ProcessingDate, a.ProjectCode, a.ProcessLoad, a.ExecutionID, t.WorkFlowID, t.TaskID,
       t.SequenceID, run.Attempts, 'NQUE' AS Status, t.TaskName, q.SequenceCode, t.TaskMandatory,
       t.SourceSystemCode,
       CASE WHEN t.FileNameMask IS NOT NULL AND t.FileDateFormat IS NOT NULL
            THEN concat(t.FileNameMask, '_', date_format(a.ProcessingDate, t.FileDateFormat),
                        coalesce(t.FileExtension, '')) END AS FullFileName,
       t.InFilePath, t.OutFilePath, false AS ForceSkip, t.SourceType,
       a.Now AS LastUpdatedOn, a.By AS LastUpdatedBy
  FROM tasks t CROSS JOIN a CROSS JOIN run
  LEFT JOIN {ETLconfigSequence} q ON q.SequenceID = t.SequenceID
 WHERE run.ExistingRows = 0
   AND NOT EXISTS (
     SELECT 1 FROM day_rows d
      WHERE d.WorkFlowID = t.WorkFlowID AND d.TaskID = t.TaskID AND d.Status = 'DONE'
        AND CASE t.Frequency
              WHEN 'M' THEN trunc(d.ProcessingDate, 'MM') = trunc(a.ProcessingDate, 'MM')
              WHEN 'Y' THEN trunc(d.ProcessingDate, 'YEAR') = trunc(a.ProcessingDate, 'YEAR')
              ELSE d.ProcessingDate = a.ProcessingDate
            END)
"""

# Keyed on the whole row key, so concurrent generations of one execution insert each row once.
INSERT_NEW_STEPS = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
ON t.ProcessingDate = s.ProcessingDate AND t.ProjectCode = s.ProjectCode
   AND t.ProcessLoad = s.ProcessLoad AND t.ExecutionID = s.ExecutionID
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID AND t.Attempts = s.Attempts
WHEN NOT MATCHED THEN {insert}
""")

# Start: a row already running is left alone (idempotent); a missing row is inserted.
START_STEP = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND NOT {running} THEN UPDATE SET
    t.Status = CASE WHEN t.Attempts > 0 OR t.Status IN ('FAIL', 'RQUE') THEN 'RQUE' ELSE 'NQUE' END,
    t.StartTime = s.StartTime, t.EndTime = NULL, t.DurationSeconds = NULL,
    t.LogMessage = NULL, t.LogType = NULL, t.LogCode = NULL,
    t.SourceType = coalesce(s.SourceType, t.SourceType), t.SourceRunID = s.SourceRunID,
    t.ClusterID = s.ClusterID, {stamp}
WHEN NOT MATCHED THEN {insert}
""")

# End: recording the status the row already has is a no-op (idempotent). With s.ReadUpdatedOn (the row
# as its start wrote it), only that version of the row is ended.
END_STEP = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND t.Status <> s.Status AND (s.ReadUpdatedOn IS NULL OR t.LastUpdatedOn <=> s.ReadUpdatedOn)
  THEN {close}
""")

# A failed try to be retried, or a lost or stale row: only a running row is ended, so a repeated
# call (or a hook that got there first) leaves it alone.
END_RUNNING_STEP = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND {running} THEN {close}
""")

# A run that ended unfinished: its running rows and its initiation row (the run's marker) become FAIL.
END_RUN = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND ({running} OR (t.WorkFlowID = 0 AND t.TaskID = 0 AND t.Status <> 'FAIL')) THEN {close}
""")

# A mandatory failure puts the run's initiation row back to NQUE.
REOPEN_RUN = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND t.Status IN ('DONE', 'FAIL', 'RQUE') THEN UPDATE SET t.Status = 'NQUE', {stamp}
""")

SOURCE_RUN_STEP = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND {running} AND NOT (t.SourceRunID <=> s.SourceRunID AND t.ClusterID <=> s.ClusterID)
  THEN UPDATE SET t.SourceRunID = s.SourceRunID, t.ClusterID = s.ClusterID, {stamp}
""")

SET_FORCE_SKIP = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED AND NOT (t.ForceSkip <=> s.ForceSkip) THEN UPDATE SET t.ForceSkip = s.ForceSkip, {stamp}
""")

RESET_STEPS = _step_merge("""
MERGE INTO {ETLProcessingSteps} t USING {src} s
{match}
WHEN MATCHED THEN UPDATE SET t.Status = s.Status, t.ForceSkip = false, t.LogMessage = s.LogMessage, {stamp}
""")

# -------------------------------------------------------------------------------------- parameters

# Set value columns of parameters: each source row names (in Touch) which value columns it sets.
SET_PARAMETERS = fill("""
MERGE INTO {ETLconfigParameters} t USING {src} s
ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad AND t.ParameterName = s.ParameterName
WHEN MATCHED THEN UPDATE SET
    t.ValueINT = if(array_contains(split(s.Touch, ','), 'ValueINT'), s.ValueINT, t.ValueINT),
    t.ValueDateTime = if(array_contains(split(s.Touch, ','), 'ValueDateTime'), s.ValueDateTime, t.ValueDateTime),
    t.ValueBIT = if(array_contains(split(s.Touch, ','), 'ValueBIT'), s.ValueBIT, t.ValueBIT),
    {stamp}
""", stamp=_STAMP)

# ----------------------------------------------------------------------------------------- receipts

APPEND_RECEIPTS = fill("INSERT INTO {ETLsysLogs} ({columns}) SELECT {columns} FROM {src}",
                       columns=", ".join(c for c in S.SYSLOGS.column_names if c != "_ID"))

# -------------------------------------------------------------------------------------- maintenance

# Executions that may still write receipts: a step started and not ended, or an initiation row (the
# run's marker) not ended or back in a queue. Their receipts are never archived, however old.
_UNFINISHED_EXECUTIONS = """
SELECT DISTINCT ExecutionID FROM {ETLProcessingSteps}
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
