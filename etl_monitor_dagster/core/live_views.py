"""The folds of ETLEventLog that every reader sees: the tables' rows with the transitions logged since
their last fold, each view headed by its question and grain (``schema`` defines the tables).

One rule decides every race: of the step transitions with one basis, the first logged (lowest
``_metadata.row_id``) that is not refused happened; the others changed nothing.
"""

from __future__ import annotations

from .enums import EventType, LogCode
from .schema import STEPS, VIEWS
from .sql import fill

_KEY = ", ".join(STEPS.key)


# Events that move a step's status and timings, in a chain of bases.
TRANSITIONS = tuple(e.value for e in (EventType.TASK_START, EventType.TASK_DONE, EventType.TASK_FAIL,
                                      EventType.TASK_RETRY, EventType.STATUS_RESET, EventType.RUN_END))
_STEP_COLUMNS = ", ".join(STEPS.column_names)

_STEP_EVENTS = """
-- What happened to each step: its folded row (EventType 'FOLDED'), then its logged events, each transition
-- with whether it happened. Grain: one ETLProcessingSteps row or one ETLEventLog row about a step.
-- A generation counts when its execution is the first to hold that Attempts of the date (a folded row
-- before any). A transition happened (Accepted) when it is the first not refused with its basis, and its
-- basis is the row's state as folded or generated, or a transition that came first with its own basis
-- (or when it is the folded state itself, or the basis of one that happened: what a fold leaves behind).
WITH events AS (
  SELECT {step_columns}, 'FOLDED' AS EventType, CAST(NULL AS STRING) AS EventID, CAST(NULL AS STRING) AS Basis,
         false AS Refused, CAST(NULL AS STRING) AS ParameterName, CAST(NULL AS BIGINT) AS ValueINT,
         CAST(NULL AS TIMESTAMP) AS ValueDateTime, CAST(NULL AS BOOLEAN) AS ValueBIT,
         CAST(NULL AS STRING) AS ValueColumns, CAST(-1 AS BIGINT) AS RowID
    FROM {ETLProcessingSteps}
  UNION ALL
  SELECT {logged_columns}, EventType, EventID, Basis, coalesce(Refused, false), ParameterName, ValueINT,
         ValueDateTime, ValueBIT, ValueColumns, _metadata.row_id
    FROM {ETLEventLog} WHERE TaskID IS NOT NULL),
claimed AS (
  SELECT *,
         min_by(IF(EventType IN ('FOLDED', 'STEP_GENERATE'), ExecutionID, NULL),
                IF(EventType IN ('FOLDED', 'STEP_GENERATE'), RowID, NULL))
           OVER (PARTITION BY ProcessingDate, ProjectCode, ProcessLoad, Attempts) AS FirstExecution,
         row_number() OVER (PARTITION BY {key}, EventType IN ({transitions}) AND NOT Refused, Basis
                            ORDER BY RowID) AS BasisOrder
    FROM events),
ranked AS (
  SELECT *,
         IF(EventType IN ({transitions}) AND NOT Refused, BasisOrder, NULL) AS BasisRank,
         max(EventType = 'FOLDED' OR (EventType = 'STEP_GENERATE' AND ExecutionID = FirstExecution)) OVER k AS HasRow,
         -- the row's state before its logged transitions: as folded, else as generated
         coalesce(max(IF(EventType = 'FOLDED', coalesce(LastEventID, ''), NULL)) OVER k,
                  min_by(IF(EventType = 'STEP_GENERATE' AND ExecutionID = FirstExecution, EventID, NULL),
                         IF(EventType = 'STEP_GENERATE' AND ExecutionID = FirstExecution, RowID, NULL)) OVER k)
           AS BaseEventID,
         collect_set(IF(EventType IN ({transitions}) AND NOT Refused AND BasisOrder = 1, EventID, NULL))
           OVER k AS Firsts
    FROM claimed WINDOW k AS (PARTITION BY {key})),
chained AS (
  SELECT *, coalesce(BasisRank = 1 AND HasRow
                     AND (coalesce(Basis, '') = BaseEventID OR array_contains(Firsts, Basis) OR EventID = BaseEventID),
                     false) AS Chained
    FROM ranked)
SELECT * EXCEPT (BasisOrder, Firsts, Chained),
       Chained OR coalesce(BasisRank = 1 AND array_contains(collect_set(IF(Chained, Basis, NULL)) OVER k, EventID),
                           false) AS Accepted
  FROM chained WINDOW k AS (PARTITION BY {key})"""

_STEP_TRANSITIONS = """
-- Which step transitions happened, and which were refused or came second? Grain: one logged transition.
SELECT * FROM {v_stepEvents} WHERE EventType IN ({transitions})"""

_LIVE_STEPS = """
-- What does every step row hold now, with every transition logged so far? Grain: one step row.
WITH e AS (
  SELECT *,
         -- a mandatory task's FAIL puts its run's initiation row back to NQUE (not the monitor's own ends of
         -- a dead run or writer: those end the run, or leave it to the orchestrator)
         max(IF(Accepted AND EventType = 'TASK_FAIL' AND TaskMandatory AND NOT (WorkFlowID = 0 AND TaskID = 0)
                AND coalesce(LogCode, '') NOT IN ({monitor_codes}), RowID, NULL))
           OVER (PARTITION BY ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts) AS ReopenRowID,
         max_by(IF(Accepted AND EventType = 'TASK_START', EventID, NULL),
                IF(Accepted AND EventType = 'TASK_START', RowID, NULL)) OVER (PARTITION BY {key}) AS StartID
    FROM {v_stepEvents}),
folded AS (
  SELECT {key},
         min_by(struct({base_columns}),
                IF(EventType = 'FOLDED' OR (EventType = 'STEP_GENERATE' AND ExecutionID = FirstExecution),
                   RowID, NULL)) AS b,
         max_by(struct({chain_columns}, EventID, LastUpdatedOn, LastUpdatedBy, RowID), IF(Accepted, RowID, NULL)) AS l,
         max_by(struct(ForceSkip, LastUpdatedOn, LastUpdatedBy, RowID),
                IF(EventType IN ('TASK_SKIP', 'TASK_UNSKIP') OR (Accepted AND EventType = 'STATUS_RESET'),
                   RowID, NULL)) AS k,
         max_by(struct(SourceRunID, ClusterID, LastUpdatedOn, LastUpdatedBy, RowID),
                IF(EventType = 'TASK_SOURCE_RUN' AND Basis = StartID, RowID, NULL)) AS src,
         max(ReopenRowID) AS ReopenRowID
    FROM e GROUP BY {key}
  HAVING b IS NOT NULL)
SELECT {key_out},
       CASE WHEN WorkFlowID = 0 AND TaskID = 0 AND ReopenRowID > coalesce(l.RowID, -1) THEN 'NQUE'
            ELSE coalesce(l.Status, b.Status) END AS Status,
       b.TaskName, b.SequenceCode, b.TaskMandatory, b.SourceSystemCode, b.FullFileName, b.InFilePath, b.OutFilePath,
       IF(k.RowID IS NULL, b.ForceSkip, k.ForceSkip) AS ForceSkip,
       {chain_out},
       CASE WHEN src.RowID IS NOT NULL THEN src.SourceRunID
            WHEN l.RowID IS NOT NULL THEN l.SourceRunID ELSE b.SourceRunID END AS SourceRunID,
       CASE WHEN src.RowID IS NOT NULL THEN src.ClusterID
            WHEN l.RowID IS NOT NULL THEN l.ClusterID ELSE b.ClusterID END AS ClusterID,
       CASE greatest(l.RowID, k.RowID, src.RowID)
            WHEN src.RowID THEN src.LastUpdatedOn WHEN k.RowID THEN k.LastUpdatedOn
            WHEN l.RowID THEN l.LastUpdatedOn ELSE b.LastUpdatedOn END AS LastUpdatedOn,
       CASE greatest(l.RowID, k.RowID, src.RowID)
            WHEN src.RowID THEN src.LastUpdatedBy WHEN k.RowID THEN k.LastUpdatedBy
            WHEN l.RowID THEN l.LastUpdatedBy ELSE b.LastUpdatedBy END AS LastUpdatedBy,
       coalesce(l.EventID, b.LastEventID) AS LastEventID
  FROM folded"""

_LIVE_PARAMETERS = """
-- What value does each parameter hold now, with every logged move? Grain: one ETLconfigParameters row.
-- Per value column: the last deliberate set (a processing mode) after the fold, raised by every later move
-- (a run's DONE, advance_watermark); without a set, the folded value raised by every move. Never lowered.
WITH moves AS (
  SELECT ProjectCode, ProcessLoad, ParameterName, _metadata.row_id AS RowID, ValueINT, ValueDateTime, ValueBIT,
         split(ValueColumns, ',') AS Touched, coalesce(Deliberate, false) AS Deliberate, LastUpdatedOn, LastUpdatedBy
    FROM {ETLEventLog}
   WHERE EventType IN ('WATERMARK_MOVE', 'MODE_CHANGE') AND ParameterName IS NOT NULL
     AND ValueColumns IS NOT NULL AND NOT coalesce(Refused, false)
  UNION ALL
  SELECT ProjectCode, ProcessLoad, ParameterName, RowID, ValueINT, ValueDateTime, ValueBIT,
         split(ValueColumns, ','), false, LastUpdatedOn, LastUpdatedBy
    FROM {v_stepTransitions}
   WHERE Accepted AND EventType = 'TASK_DONE' AND ParameterName IS NOT NULL AND ValueColumns IS NOT NULL),
unfolded AS (
  SELECT m.*,
         {last_sets}
    FROM moves m JOIN {ETLconfigParameters} p
      ON p.ProjectCode = m.ProjectCode AND p.ProcessLoad = m.ProcessLoad AND p.ParameterName = m.ParameterName
   WHERE m.RowID > coalesce(p.FoldedThrough, -1)
  WINDOW k AS (PARTITION BY m.ProjectCode, m.ProcessLoad, m.ParameterName)),
moved AS (
  SELECT ProjectCode, ProcessLoad, ParameterName, max(RowID) AS LastRowID,
         {raises},
         max_by(LastUpdatedOn, RowID) AS LastUpdatedOn, max_by(LastUpdatedBy, RowID) AS LastUpdatedBy
    FROM unfolded GROUP BY ProjectCode, ProcessLoad, ParameterName)
SELECT p.ProjectCode, p.ProcessLoad, p.ParameterName, p.ParameterDescription, p.ParameterType,
       {values}, p.CreatedOn, p.CreatedBy,
       coalesce(m.LastUpdatedOn, p.LastUpdatedOn) AS LastUpdatedOn,
       coalesce(m.LastUpdatedBy, p.LastUpdatedBy) AS LastUpdatedBy,
       greatest(m.LastRowID, p.FoldedThrough) AS FoldedThrough
  FROM {ETLconfigParameters} p
  LEFT JOIN moved m USING (ProjectCode, ProcessLoad, ParameterName)"""

_VALUES = ("ValueINT", "ValueDateTime", "ValueBIT")
_LAST_SETS = ",\n         ".join(  # per value column: the row of the last deliberate set after the fold
    f"max(IF(m.Deliberate AND array_contains(m.Touched, '{c}'), m.RowID, NULL)) OVER k AS Set{c}Row" for c in _VALUES)
_RAISES = ",\n         ".join(  # ... its value, and the highest move logged after it
    f"max(Set{c}Row) AS Set{c}Row, max(IF(RowID = Set{c}Row, {c}, NULL)) AS Set{c},\n         "
    f"max(IF(NOT Deliberate AND array_contains(Touched, '{c}') AND RowID > coalesce(Set{c}Row, -1), {c}, NULL))"
    f" AS Raise{c}" for c in _VALUES)
_VALUE_COLUMNS = ",\n       ".join(
    f"CASE WHEN m.Set{c}Row IS NOT NULL THEN greatest(m.Set{c}, m.Raise{c})"
    f" ELSE greatest(p.{c}, m.Raise{c}) END AS {c}" for c in _VALUES)

_LIVE_LOGS = """
-- Every receipt: those folded into ETLsysLogs (with their _ID), then those only in the log yet (with their
-- LogRowID), less those of transitions that did not happen. LogOrder sorts them as they were logged.
-- Grain: one receipt.
SELECT _ID, ProcessingDate, ProjectCode, ProcessLoad, SourceType, RunID, ExecutionID, CorrelationID,
       PipelineName, ActivityName, OperationName, Level, LogTimeUTC, Message, CAST(NULL AS BIGINT) AS LogRowID,
       _ID AS LogOrder
  FROM {ETLsysLogs}
UNION ALL
SELECT CAST(NULL AS BIGINT), e.ProcessingDate, e.ProjectCode, e.ProcessLoad, coalesce(e.SourceType, 'ETL_MONITOR'),
       e.RunID, e.ExecutionID, e.EventID, e.ProcessLoad, e.ActivityName, e.EventType, e.Level, e.LogTimeUTC,
       e.Message, e._metadata.row_id, {unfolded} + e._metadata.row_id
  FROM {ETLEventLog} e
 WHERE e.Receipt AND NOT EXISTS (SELECT 1 FROM {ETLsysLogs} l WHERE l.CorrelationID = e.EventID)
   AND NOT EXISTS (  -- a transition that did not happen, or what one caused (its watermark move, reopening)
     SELECT 1 FROM {v_stepTransitions} x
      WHERE NOT x.Accepted
        AND (x.EventID = e.EventID OR (x.EventID = e.Basis AND e.EventType NOT IN ({transitions}))))"""

_CHAIN = ("Status", "StartTime", "EndTime", "DurationSeconds", "LogMessage", "LogType", "LogCode", "SourceType",
          "SourceRunID", "ClusterID")
_TRANSITION_LIST = ", ".join(f"'{t}'" for t in TRANSITIONS)

# Ours, beyond the contract's six: the folds every view reads, in the order they are created.
LIVE_VIEWS: dict[str, str] = {
    "v_stepEvents": fill(_STEP_EVENTS, step_columns=_STEP_COLUMNS, key=_KEY, transitions=_TRANSITION_LIST,
                         logged_columns=", ".join("IF(EventType = 'STEP_GENERATE', EventID, NULL) AS LastEventID"
                                                  if c == "LastEventID" else c
                                                  for c in STEPS.column_names)),
    "v_stepTransitions": fill(_STEP_TRANSITIONS, transitions=_TRANSITION_LIST),
    "v_liveSteps": fill(_LIVE_STEPS, key=_KEY, monitor_codes=", ".join(f"'{c.value}'" for c in LogCode),
                        key_out=", ".join(c for c in STEPS.column_names if c in STEPS.key),
                        base_columns=", ".join(c for c in STEPS.column_names if c not in STEPS.key),
                        chain_columns=", ".join(_CHAIN),
                        chain_out=",\n       ".join(f"IF(l.RowID IS NULL, b.{c}, l.{c}) AS {c}" for c in _CHAIN
                                                    if c not in ("Status", "SourceRunID", "ClusterID"))),
    "v_liveParameters": fill(_LIVE_PARAMETERS, last_sets=_LAST_SETS, raises=_RAISES, values=_VALUE_COLUMNS),
    "v_liveLogs": fill(_LIVE_LOGS, transitions=_TRANSITION_LIST, unfolded=str(2**62)),  # after every _ID
}

ALL_VIEWS: dict[str, str] = {**LIVE_VIEWS, **VIEWS}  # what setup() creates, in order
