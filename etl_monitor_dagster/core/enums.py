"""Closed vocabularies of the tracking tables, as ``str`` enums (their values are what the tables hold)."""

from __future__ import annotations

from enum import Enum, StrEnum


class Status(StrEnum):
    """ETLProcessingSteps.Status."""

    NQUE = "NQUE"  # queued, first attempt
    RQUE = "RQUE"  # re-queued for a retry
    DONE = "DONE"
    FAIL = "FAIL"


SKIP = "NULL"
"""What ``task_status`` returns for a task that must not run (done, inactive, skipped, not generated)."""


class ParameterType(StrEnum):
    """ETLconfigParameters.ParameterType, each with one active value column."""

    DELTA_DATE = "DELTA_DATE"  # ValueDateTime, advanced on DONE
    DELTA_ID = "DELTA_ID"  # ValueINT, advanced by advance_watermark
    FLAG = "FLAG"  # ValueBIT
    SYSTEM = "SYSTEM"  # SYSDT: ValueDateTime, NULL = live


class LoadFrequency(StrEnum):
    DAILY = "D"
    WEEKLY = "W"
    MONTHLY = "M"
    YEARLY = "Y"
    AD_HOC = "A"


class SourceType(StrEnum):
    """ETLconfigTasks.SourceType: the seed's remote kinds plus this project's local ones."""

    ADF_PIPELINE = "ADF_PIPELINE"
    DBX_JOB = "DBX_JOB"
    DBX_NOTEBOOK = "DBX_NOTEBOOK"
    DATAFLOW = "DATAFLOW"
    SPARK_SQL = "SPARK_SQL"
    PYTHON = "PYTHON"
    NONE = "NONE"  # a marker task that runs nothing (e.g. the initiation task)


class LogType(StrEnum):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class LogLevel(int, Enum):
    """ETLsysLogs.Level."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class EventType(StrEnum):
    """ETLEventLog.EventType, and ETLsysLogs.OperationName of its receipt: one per transition."""

    STEP_GENERATE = "STEP_GENERATE"  # a step row queued by a generation (no receipt)
    TASK_START = "TASK_START"
    TASK_DONE = "TASK_DONE"
    TASK_FAIL = "TASK_FAIL"
    TASK_RETRY = "TASK_RETRY"  # a failed try that the orchestrator retries in the same execution
    TASK_SOURCE_RUN = "TASK_SOURCE_RUN"  # the remote run (Databricks run id, cluster) of a running task
    TASK_SKIP = "TASK_SKIP"
    TASK_UNSKIP = "TASK_UNSKIP"
    RUN_REOPEN = "RUN_REOPEN"  # a mandatory failure put the initiation row back to NQUE
    RUN_END = "RUN_END"  # a run ended unfinished (failed, cancelled, lost): its initiation row is FAIL
    STATUS_RESET = "STATUS_RESET"
    MODE_CHANGE = "MODE_CHANGE"
    WATERMARK_MOVE = "WATERMARK_MOVE"
    ALERT_SENT = "ALERT_SENT"  # a failure alert went out for a run (the process is alerting until it recovers)
    ALERT_RECOVERED = "ALERT_RECOVERED"  # the "recovered" message went out on the first complete run after it
    ALERT_SUPPRESSED = "ALERT_SUPPRESSED"  # a failure alert was held back: within the suppression window
    SLA_AT_RISK = "SLA_AT_RISK"  # a running task passed its SLA's warning share (once per start; no state change)
    ALERT_AT_RISK = "ALERT_AT_RISK"  # the "at risk" message of an SLA_AT_RISK went out (once per start)
    HEARTBEAT = "HEARTBEAT"  # a remote task's poller is alive, with the remote state (no state change)


class LogCode(StrEnum):
    """LogCode values the monitor writes itself when a run or a writer dies."""

    RUN_LOST = "RUN_LOST"  # the run ended while the task's row was running: its step never reported an end
    RUN_FAILED = "RUN_FAILED"  # the initiation row of a run that ended in failure
    RUN_CANCELED = "RUN_CANCELED"  # the run was terminated
    STALE = "STALE"  # running past its limit, and its execution is not a live Dagster run
