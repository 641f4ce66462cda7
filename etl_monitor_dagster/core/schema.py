"""The eight Delta tables and six views of SPEC.md (and ours: ETLEventLog, the archive, v_taskHealth): one
definition per table and per view. The folds of the event log the views read are in ``live_views``.

Column lists are data, so ``setup()`` can both create a table and add the columns an older
layout (ours, or the seed package's) lacks. Column types and NOT NULL follow the seed package's
DDL, so a schema it created and one we create are alike. View bodies are SQL text with ``{Name}``
placeholders (``sql.fill``) for qualified table names.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sql import fill

AUDIT = (
    ("CreatedOn", "TIMESTAMP"),
    ("CreatedBy", "STRING"),
    ("LastUpdatedOn", "TIMESTAMP"),
    ("LastUpdatedBy", "STRING"),
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    comment: str
    partitioned_by: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def base_type(self, column: str) -> str:
        """The column's SQL type without constraints (``STRING NOT NULL`` -> ``STRING``)."""
        return dict(self.columns)[column].split(" ")[0]

    @property
    def insert_defaults(self) -> dict[str, str]:
        """SQL defaults for a new row's columns given as NULL: '' in NOT NULL text columns outside the
        key (what the seed writes there), TRUE for IsActive (registration leaves NULL to mean "as is")."""
        defaults = {c: "''" for c, t in self.columns if t == "STRING NOT NULL" and c not in self.key}
        return defaults | ({"IsActive": "true"} if "IsActive" in self.column_names else {})


ORGANISATION = Table(
    "ETLOrganisation",
    (
        ("OrganisationCode", "STRING NOT NULL"),
        ("OrganisationName", "STRING NOT NULL"),
        ("OrganisationDescription", "STRING NOT NULL"),
        ("IsActive", "BOOLEAN"),
        *AUDIT,
    ),
    key=("OrganisationCode",),
    comment="Organisation registry: the top-level grouping of projects.",
)

PROJECT = Table(
    "ETLconfigProject",
    (
        ("ProjectCode", "STRING NOT NULL"),
        ("OrganisationCode", "STRING"),
        ("ProjectName", "STRING NOT NULL"),
        ("ProjectDescription", "STRING NOT NULL"),
        ("IsActive", "BOOLEAN"),
        *AUDIT,
    ),
    key=("ProjectCode",),
    comment="Project registry: groups the processes of one ProjectCode under an organisation.",
)


SEQUENCE = Table(
    "ETLconfigSequence",
    (
        ("SequenceID", "INT NOT NULL"),
        ("SequenceCode", "STRING NOT NULL"),
        ("SequenceName", "STRING"),
        ("SequenceDescription", "STRING"),
        ("SortOrder", "INT"),
        ("IsActive", "BOOLEAN"),
        *AUDIT,
    ),
    key=("SequenceID",),
    comment="Framework-managed workflow stages; custom stages use SequenceID >= 10.",
)

PROCESS = Table(
    "ETLconfigProcess",
    (
        ("ProjectCode", "STRING NOT NULL"),
        ("ProcessLoad", "STRING NOT NULL"),
        ("ProcessName", "STRING"),
        ("ProcessDescription", "STRING"),
        ("ProcessOwner", "STRING"),
        ("LoadFrequency", "STRING"),
        ("IsActive", "BOOLEAN"),
        # Ours: the active flag the catalogue registered last (NULL: never registered from a catalogue).
        ("CatalogueActive", "BOOLEAN"),
        *AUDIT,
    ),
    key=("ProjectCode", "ProcessLoad"),
    comment="Domain process registry: one row per (ProjectCode, ProcessLoad).",
)

TASKS = Table(
    "ETLconfigTasks",
    (
        ("TaskID", "INT NOT NULL"),
        ("ProjectCode", "STRING NOT NULL"),
        ("ProcessLoad", "STRING NOT NULL"),
        ("WorkFlowID", "INT NOT NULL"),
        ("SequenceID", "INT NOT NULL"),
        ("TaskName", "STRING NOT NULL"),
        ("TaskDescription", "STRING"),
        ("SourceType", "STRING"),
        ("SourceIdentifier", "STRING"),
        ("SourceSystemCode", "STRING"),
        ("FileNameMask", "STRING"),
        ("FileExtension", "STRING"),
        ("InFilePath", "STRING"),
        ("OutFilePath", "STRING"),
        ("LoadFrequency", "STRING"),
        ("TaskMandatory", "BOOLEAN"),
        ("IsActive", "BOOLEAN"),
        ("SlaSeconds", "INT"),
        # Ours: the active flag the catalogue registered last (NULL: never registered from a catalogue).
        ("CatalogueActive", "BOOLEAN"),
        *AUDIT,
    ),
    key=("ProjectCode", "ProcessLoad", "WorkFlowID", "TaskID"),
    comment="Task catalogue: what runs, in which stage, how often.",
)

PARAMETERS = Table(
    "ETLconfigParameters",
    (
        ("ProjectCode", "STRING NOT NULL"),
        ("ProcessLoad", "STRING NOT NULL"),
        ("ParameterName", "STRING NOT NULL"),
        ("ParameterDescription", "STRING"),
        ("ParameterType", "STRING NOT NULL"),
        ("ValueINT", "BIGINT"),
        ("ValueDateTime", "TIMESTAMP"),
        ("ValueBIT", "BOOLEAN"),
        *AUDIT,
        # Ours: the last ETLEventLog row (its row id) whose move is folded into the values above.
        ("FoldedThrough", "BIGINT"),
    ),
    key=("ProjectCode", "ProcessLoad", "ParameterName"),
    comment="Watermarks (DELTA_DATE, DELTA_ID), flags and SYSDT per process.",
)

STEPS = Table(
    "ETLProcessingSteps",
    (
        ("ProcessingDate", "DATE NOT NULL"),
        ("ProjectCode", "STRING NOT NULL"),
        ("ProcessLoad", "STRING NOT NULL"),
        ("ExecutionID", "STRING NOT NULL"),
        ("WorkFlowID", "INT NOT NULL"),
        ("TaskID", "INT NOT NULL"),
        ("SequenceID", "INT NOT NULL"),
        ("Attempts", "INT NOT NULL"),
        ("Status", "STRING NOT NULL"),
        ("TaskName", "STRING"),
        ("SequenceCode", "STRING"),
        ("TaskMandatory", "BOOLEAN"),
        ("SourceSystemCode", "STRING"),
        ("FullFileName", "STRING"),
        ("InFilePath", "STRING"),
        ("OutFilePath", "STRING"),
        ("ForceSkip", "BOOLEAN"),
        ("StartTime", "TIMESTAMP"),
        ("EndTime", "TIMESTAMP"),
        ("DurationSeconds", "INT"),
        ("LogMessage", "STRING"),
        ("LogType", "STRING"),
        ("LogCode", "STRING"),
        ("SourceType", "STRING"),
        ("SourceRunID", "STRING"),
        ("ClusterID", "STRING"),
        ("LastUpdatedOn", "TIMESTAMP"),
        ("LastUpdatedBy", "STRING"),
        # Ours: the ETLEventLog transition whose state this row holds (NULL: the row as generated).
        ("LastEventID", "STRING"),
    ),
    key=(
        "ProcessingDate",
        "ProjectCode",
        "ProcessLoad",
        "ExecutionID",
        "WorkFlowID",
        "SequenceID",
        "TaskID",
        "Attempts",
    ),
    comment="Per-task execution log, one row per (date, process, execution, task, attempt).",
    partitioned_by=("ProcessingDate",),
)

SYSLOGS = Table(
    "ETLsysLogs",
    (
        ("_ID", "BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY"),
        ("ProcessingDate", "DATE"),
        ("ProjectCode", "STRING"),
        ("ProcessLoad", "STRING"),
        ("SourceType", "STRING"),
        ("RunID", "STRING"),
        ("ExecutionID", "STRING"),
        ("CorrelationID", "STRING"),
        ("PipelineName", "STRING"),
        ("ActivityName", "STRING"),
        ("OperationName", "STRING"),
        ("Level", "INT"),
        ("LogTimeUTC", "TIMESTAMP"),
        ("Message", "STRING"),
    ),
    key=("_ID",),
    comment="Append-only receipts: one JSON event per status transition; CorrelationID is the event id.",
    properties=(("delta.appendOnly", "true"),),
)

TABLES = (ORGANISATION, PROJECT, SEQUENCE, PROCESS, TASKS, PARAMETERS, STEPS, SYSLOGS)

# Ours: every transition is one blind append here (one commit, never a conflict with another writer); the
# tables above are folded from it. Row tracking gives each row ``_metadata.row_id``, assigned in commit
# order: "first" in every rule below means the lowest row id, never a writer's clock.
_STEP_STATE = tuple((c, STEPS.base_type(c)) for c in STEPS.column_names
                    if c not in STEPS.key and c != "LastEventID")
EVENTS = Table(
    "ETLEventLog",
    (
        ("EventID", "STRING NOT NULL"),
        ("EventType", "STRING NOT NULL"),  # EventType: also ETLsysLogs.OperationName of its receipt
        # A step transition names the step's transition it follows (its basis; NULL: the row as generated or
        # folded). Of the transitions with one basis, the first not refused is the one that happened.
        ("Basis", "STRING"),
        ("Refused", "BOOLEAN"),  # its writer found the transition not allowed from the basis (kept, changes nothing)
        ("Receipt", "BOOLEAN"),  # folded into ETLsysLogs
        *((c, STEPS.base_type(c)) for c in STEPS.key),
        *_STEP_STATE,  # a step transition: the whole row after it; a receipt: what it names
        ("ParameterName", "STRING"),  # a watermark or mode move: the parameter, its new values
        ("ValueINT", "BIGINT"),
        ("ValueDateTime", "TIMESTAMP"),
        ("ValueBIT", "BOOLEAN"),
        ("ValueColumns", "STRING"),  # the value columns the move sets, comma-separated
        ("Deliberate", "BOOLEAN"),  # a set (processing mode) replaces; any other move only raises
        ("RunID", "STRING"),
        ("ActivityName", "STRING"),
        ("Level", "INT"),
        ("LogTimeUTC", "TIMESTAMP"),
        ("Message", "STRING"),  # the receipt: the JSON event
    ),
    key=("EventID",),
    comment="Every transition of the monitor, one blind append each; the tables and views are folds of it.",
    partitioned_by=("ProcessingDate",),
    # Checkpoints come from the engine's own commits (the folds): on the embedded engine the monitor's processes
    # commit the appends themselves, so a fold must land on a checkpoint version more often than every 100th.
    properties=(("delta.enableRowTracking", "true"), ("delta.checkpointInterval", "10")),
)

# Ours, beyond the contract's eight: receipts the maintenance job moved out of ETLsysLogs. ``_ID`` is the
# receipt's original id (plain BIGINT: copied, never generated), so a move repeated after a crash is
# recognised and never doubled.
ARCHIVE = Table(
    "ETLsysLogsArchive",
    (
        ("_ID", "BIGINT NOT NULL"),
        *((c, t) for c, t in SYSLOGS.columns if c != "_ID"),
        ("ArchivedOn", "TIMESTAMP"),
    ),
    key=("_ID",),
    comment="Receipts moved out of ETLsysLogs by the maintenance job, with their original _ID.",
)

EXTRA_TABLES = (EVENTS, ARCHIVE)
ALL_TABLES = (*TABLES, *EXTRA_TABLES)  # what setup() creates

# (SequenceID, SequenceCode, SequenceName, SequenceDescription)
SEEDED_STAGES = (
    (0, "LOAD_GO", "Initiation", "Initiating ETL Processing - overall run marker"),
    (1, "LOAD_DB_CONFIG", "Load configuration", "Load Configuration Data from source"),
    (2, "LOAD_DB_TRAN", "Load transactions", "Load Transactional Data from source (staging)"),
    (3, "LOAD_DIM", "Process master data", "Process Master Data - validate staged dimensions"),
    (4, "LOAD_TRAN", "Process transactions", "Process Transactional Data - validate staged transactions"),
    (5, "PRE_PROCESS", "Functional logic", "Functional Logic - business logic and derivations"),
    (6, "PROCESS_DATA", "Core transformation", "Core Data Transformation - output / data mart tables"),
)

# The active value of a parameter as a string: what an ADF Lookup reads and what tasks receive.
# NULL watermarks resolve to values that make a `> watermark` filter load everything.
ACTIVE_VALUE = """CASE p.ParameterType
    WHEN 'DELTA_DATE' THEN date_format(coalesce(p.ValueDateTime, TIMESTAMP'1900-01-01 00:00:00'),
                                       'yyyy-MM-dd HH:mm:ss.SSS')
    WHEN 'DELTA_ID'   THEN CAST(coalesce(p.ValueINT, 0) AS STRING)
    WHEN 'FLAG'       THEN CASE WHEN p.ValueBIT THEN '1' ELSE '0' END
    WHEN 'SYSTEM'     THEN date_format(coalesce(p.ValueDateTime, current_date()), 'yyyy-MM-dd')
  END"""

# Rows of the latest attempt per (ProcessingDate, ProjectCode, ProcessLoad).
_LATEST_ATTEMPT = """SELECT s.* FROM {v_liveSteps} s
  JOIN (SELECT ProcessingDate, ProjectCode, ProcessLoad, max(Attempts) AS LatestAttempt
          FROM {v_liveSteps} GROUP BY ProcessingDate, ProjectCode, ProcessLoad) l
    ON s.ProcessingDate = l.ProcessingDate AND s.ProjectCode = l.ProjectCode
   AND s.ProcessLoad = l.ProcessLoad AND s.Attempts = l.LatestAttempt"""

# A step row that stops later stages: mandatory, not DONE and not force-skipped (v_mandatoryBlockers, a gate).
BLOCKING = "s.TaskMandatory AND s.Status IN ('FAIL', 'NQUE', 'RQUE') AND NOT coalesce(s.ForceSkip, false)"

TASK_DETAIL_COLUMNS = """s.ProcessingDate, s.ProjectCode, s.ProcessLoad, s.ExecutionID, s.Attempts,
  s.WorkFlowID, s.SequenceID, s.SequenceCode, s.TaskID, s.TaskName, s.TaskMandatory,
  s.FullFileName, s.InFilePath, s.OutFilePath, s.Status, s.ForceSkip,
  s.StartTime, s.EndTime, s.DurationSeconds, s.SourceType, s.SourceRunID, s.ClusterID,
  s.LogType, s.LogCode, s.LogMessage, s.LastUpdatedOn, s.LastUpdatedBy, s.SourceSystemCode"""

_VIEWS: dict[str, str] = {
    "v_processStatus": """
-- Where does each process stand for each processing date? Grain: (ProcessingDate, ProjectCode, ProcessLoad).
WITH latest_per_task AS (
  SELECT * FROM (
    SELECT s.*, row_number() OVER (PARTITION BY s.ProcessingDate, s.ProjectCode, s.ProcessLoad,
                                                s.WorkFlowID, s.TaskID
                                   ORDER BY s.Attempts DESC) AS rn
      FROM {v_liveSteps} s) WHERE rn = 1),
runs AS (
  SELECT ProcessingDate, ProjectCode, ProcessLoad, max(Attempts) AS LatestAttempt,
         count(DISTINCT ExecutionID) AS TotalRuns, min(StartTime) AS RunStart, max(EndTime) AS RunEnd
    FROM {v_liveSteps} GROUP BY ProcessingDate, ProjectCode, ProcessLoad),
counts AS (
  SELECT ProcessingDate, ProjectCode, ProcessLoad,
         count_if(Status = 'DONE') AS Done, count_if(Status = 'FAIL') AS Failed,
         count_if(Status IN ('NQUE', 'RQUE') AND NOT coalesce(ForceSkip, false)) AS Pending
    FROM latest_per_task GROUP BY ProcessingDate, ProjectCode, ProcessLoad),
overall AS (
  SELECT ProcessingDate, ProjectCode, ProcessLoad, Status AS OverallStatus
    FROM latest_per_task WHERE WorkFlowID = 0 AND TaskID = 0)
SELECT r.ProcessingDate, r.ProjectCode, r.ProcessLoad, p.ProcessName, p.ProcessOwner,
       r.LatestAttempt, r.TotalRuns, c.Done, c.Failed, c.Pending, r.RunStart, r.RunEnd,
       CAST(unix_timestamp(r.RunEnd) - unix_timestamp(r.RunStart) AS INT) AS WallClockSeconds,
       o.OverallStatus
  FROM runs r
  JOIN counts c USING (ProcessingDate, ProjectCode, ProcessLoad)
  LEFT JOIN overall o USING (ProcessingDate, ProjectCode, ProcessLoad)
  LEFT JOIN {ETLconfigProcess} p ON p.ProjectCode = r.ProjectCode AND p.ProcessLoad = r.ProcessLoad
""",
    "v_runSummary": """
-- How did each run go? Grain: (ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts).
SELECT ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts,
       count(*) AS TotalTasks,
       count_if(Status = 'DONE') AS Done,
       count_if(Status = 'FAIL') AS Failed,
       count_if(Status IN ('NQUE', 'RQUE') AND NOT coalesce(ForceSkip, false)) AS Pending,
       min(StartTime) AS RunStart, max(EndTime) AS RunEnd,
       CAST(sum(DurationSeconds) AS INT) AS TotalDurationSeconds,
       CAST(unix_timestamp(max(EndTime)) - unix_timestamp(min(StartTime)) AS INT) AS WallClockSeconds,
       -- A FAIL initiation row marks a run that ended unfinished: FAILED though later tasks stay queued.
       CASE WHEN count_if(WorkFlowID = 0 AND TaskID = 0 AND Status = 'FAIL') > 0 THEN 'FAILED'
            WHEN count_if(Status IN ('NQUE', 'RQUE') AND NOT coalesce(ForceSkip, false)) > 0 THEN 'RUNNING'
            WHEN count_if(Status = 'FAIL') > 0 THEN 'FAILED'
            ELSE 'COMPLETE' END AS OverallStatus,
       max(LastUpdatedOn) AS LastActivity
  FROM {v_liveSteps}
 GROUP BY ProcessingDate, ProjectCode, ProcessLoad, ExecutionID, Attempts
""",
    "v_taskDetail": """
-- What happened to each task in each run, and did it breach its SLA? Grain: one ETLProcessingSteps row.
-- SlaAtRisk: the health sensor found this start of the task past its SLA's warning share (an SLA_AT_RISK
-- event, in the log or folded into ETLsysLogs).
SELECT {task_detail_columns},
       t.SlaSeconds,
       CASE WHEN t.SlaSeconds IS NULL THEN false
            WHEN s.DurationSeconds IS NOT NULL THEN s.DurationSeconds > t.SlaSeconds
            WHEN s.StartTime IS NOT NULL AND s.EndTime IS NULL
              THEN unix_timestamp(current_timestamp()) - unix_timestamp(s.StartTime) > t.SlaSeconds
            ELSE false END AS SlaBreached,
       r.ExecutionID IS NOT NULL AS SlaAtRisk
  FROM {v_liveSteps} s
  LEFT JOIN {ETLconfigTasks} t
    ON t.ProjectCode = s.ProjectCode AND t.ProcessLoad = s.ProcessLoad
   AND t.WorkFlowID = s.WorkFlowID AND t.TaskID = s.TaskID
  LEFT JOIN ({sla_risks}) r
    ON r.ExecutionID = s.ExecutionID AND r.WorkFlowID = s.WorkFlowID AND r.TaskID = s.TaskID
   AND r.Attempts = s.Attempts AND r.StartTime = s.StartTime
""",
    "v_mandatoryBlockers": """
-- Which mandatory tasks of the latest attempt stop later stages? Grain: one step row (FAIL, NQUE or RQUE).
SELECT {task_detail_columns}
  FROM ({latest_attempt}) s
 WHERE {blocking}
""",
    "v_currentFailures": """
-- Which tasks failed in the latest attempt of each date? Grain: one FAIL step row.
SELECT {task_detail_columns}
  FROM ({latest_attempt}) s
 WHERE s.Status = 'FAIL'
""",
    "v_watermarks": """
-- What is each parameter's active value (the ADF Lookup bridge)? Grain: one ETLconfigParameters row.
SELECT p.ProjectCode, p.ProcessLoad, p.ParameterName, p.ParameterType, p.ParameterDescription,
       p.ValueINT, p.ValueDateTime, p.ValueBIT,
       {active_value} AS ActiveValue,
       CASE p.ParameterType
         WHEN 'DELTA_DATE' THEN CASE WHEN p.ValueDateTime IS NULL THEN 'BULK MODE'
                                     ELSE concat('DELTA: ', date_format(p.ValueDateTime, 'yyyy-MM-dd HH:mm:ss.SSS')) END
         WHEN 'DELTA_ID' THEN CASE WHEN coalesce(p.ValueINT, 0) IN (0, -1) THEN 'BULK MODE'
                                   ELSE concat('DELTA: ', CAST(p.ValueINT AS STRING)) END
         WHEN 'SYSTEM' THEN CASE WHEN p.ValueDateTime IS NULL THEN 'LIVE DATE'
                                 ELSE concat('HISTORIC: ', date_format(p.ValueDateTime, 'yyyy-MM-dd')) END
         WHEN 'FLAG' THEN CASE WHEN p.ValueBIT THEN 'TRUE' ELSE 'FALSE' END
       END AS WatermarkState,
       l.LinkedTaskName, p.LastUpdatedOn, p.LastUpdatedBy
  FROM {v_liveParameters} p
  LEFT JOIN (SELECT ProjectCode, ProcessLoad, SourceSystemCode,
                    array_join(array_sort(collect_set(TaskName)), ', ') AS LinkedTaskName
               FROM {ETLconfigTasks} WHERE SourceSystemCode IS NOT NULL
              GROUP BY ProjectCode, ProcessLoad, SourceSystemCode) l
    ON l.ProjectCode = p.ProjectCode AND l.ProcessLoad = p.ProcessLoad
   AND l.SourceSystemCode = p.ParameterName
""",
}


BASELINE_RUNS = 20
"""DONE runs a task's duration baseline covers in ``v_taskHealth`` (``Health.baselines`` takes others)."""

_TASK_HEALTH = """
-- How does each task stand against its own history: is it failing, is it slow? Grain: one catalogue task.
-- FailureStreak: FAIL ends since its last DONE. Its latest DONE duration is judged against the p90 and the
-- mean + 3 sigma of up to {baseline_runs} DONE runs before it, once there are at least 5 of them.
WITH ended AS (  -- RQUE rows are retries still in progress: only final ends count
  SELECT ProjectCode, ProcessLoad, WorkFlowID, TaskID, TaskName, Status, DurationSeconds, EndTime,
         row_number() OVER (PARTITION BY ProjectCode, ProcessLoad, WorkFlowID, TaskID
                            ORDER BY EndTime DESC, LastUpdatedOn DESC) AS Recency
    FROM {v_liveSteps}
   WHERE Status IN ('DONE', 'FAIL') AND EndTime IS NOT NULL),
done AS (
  SELECT *, row_number() OVER (PARTITION BY ProjectCode, ProcessLoad, WorkFlowID, TaskID
                               ORDER BY Recency) AS DoneRecency
    FROM ended WHERE Status = 'DONE' AND DurationSeconds IS NOT NULL),
streaks AS (  -- FAIL ends since the latest DONE (all of them when the task never succeeded)
  SELECT ProjectCode, ProcessLoad, WorkFlowID, TaskID,
         coalesce(min(CASE WHEN Status = 'DONE' THEN Recency END) - 1, count(*)) AS FailureStreak
    FROM ended GROUP BY ProjectCode, ProcessLoad, WorkFlowID, TaskID),
baseline AS (  -- the DONE runs before the latest one: what usual means for this task
  SELECT ProjectCode, ProcessLoad, WorkFlowID, TaskID, count(*) AS BaselineRuns,
         avg(DurationSeconds) AS MeanSeconds, coalesce(stddev_samp(DurationSeconds), 0) AS StddevSeconds,
         percentile(DurationSeconds, 0.9) AS P90Seconds
    FROM done WHERE DoneRecency BETWEEN 2 AND {baseline_runs} + 1
   GROUP BY ProjectCode, ProcessLoad, WorkFlowID, TaskID)
SELECT l.ProjectCode, l.ProcessLoad, l.WorkFlowID, l.TaskID, l.TaskName,
       l.Status AS LastStatus, l.EndTime AS LastEndTime, s.FailureStreak,
       d.DurationSeconds AS LastDoneSeconds, coalesce(b.BaselineRuns, 0) AS BaselineRuns,
       CAST(b.MeanSeconds AS DOUBLE) AS MeanSeconds, CAST(b.StddevSeconds AS DOUBLE) AS StddevSeconds,
       CAST(b.P90Seconds AS DOUBLE) AS P90Seconds,
       CAST(b.MeanSeconds + 3 * b.StddevSeconds AS DOUBLE) AS AnomalySeconds,
       coalesce(b.BaselineRuns >= 5 AND d.DurationSeconds > b.P90Seconds, false) AS SlowerThanP90,
       coalesce(b.BaselineRuns >= 5 AND d.DurationSeconds > b.MeanSeconds + 3 * b.StddevSeconds,
                false) AS DurationAnomaly
  FROM ended l
  JOIN streaks s USING (ProjectCode, ProcessLoad, WorkFlowID, TaskID)
  LEFT JOIN done d ON d.ProjectCode = l.ProjectCode AND d.ProcessLoad = l.ProcessLoad
                  AND d.WorkFlowID = l.WorkFlowID AND d.TaskID = l.TaskID AND d.DoneRecency = 1
  LEFT JOIN baseline b ON b.ProjectCode = l.ProjectCode AND b.ProcessLoad = l.ProcessLoad
                      AND b.WorkFlowID = l.WorkFlowID AND b.TaskID = l.TaskID
 WHERE l.Recency = 1
"""


def task_health(baseline_runs: int) -> str:
    """``v_taskHealth``'s body over a baseline of ``baseline_runs`` DONE runs (a validated count)."""
    return fill(_TASK_HEALTH, baseline_runs=str(baseline_runs))


# The task starts an SLA_AT_RISK event names: logged, or folded into ETLsysLogs (the event's JSON).
_SLA_RISKS = """SELECT ExecutionID, WorkFlowID, TaskID, Attempts, StartTime
    FROM {log_rows} WHERE EventType = 'SLA_AT_RISK'
  UNION
  SELECT ExecutionID, CAST(get_json_object(Message, '$.workflow_id') AS INT),
         CAST(get_json_object(Message, '$.task_id') AS INT), CAST(get_json_object(Message, '$.attempt') AS INT),
         CAST(get_json_object(Message, '$.start_time') AS TIMESTAMP)
    FROM {ETLsysLogs} WHERE OperationName = 'SLA_AT_RISK'"""

VIEWS: dict[str, str] = {  # what dashboards, ADF and the Dagster view assets read
    **{name: fill(body, task_detail_columns=TASK_DETAIL_COLUMNS, latest_attempt=_LATEST_ATTEMPT, blocking=BLOCKING,
                  active_value=ACTIVE_VALUE, sla_risks=_SLA_RISKS)
       for name, body in _VIEWS.items()},
    "v_taskHealth": task_health(BASELINE_RUNS),  # ours: seed 003's baselines
}
