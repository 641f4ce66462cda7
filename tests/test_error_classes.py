"""Error classes: every failure gets one (from its own class, its code, Spark's condition and SQLSTATE,
or its Python type), it is recorded beside the LogCode, and only a retryable class is retried, by the
run policy and by a real Dagster run."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import date

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, JobDefinition

from etl_monitor_dagster import (
    ConcurrencyError,
    EngineError,
    ErrorClass,
    ETLMonitorFramework,
    NotFoundError,
    ValidationError,
    classify,
    tasks,
)
from etl_monitor_dagster.core.catalogue import ProcessSpec, TaskSpec
from etl_monitor_dagster.core.enums import LogCode
from etl_monitor_dagster.core.error_class import classify_adf, classify_code, classify_text
from etl_monitor_dagster.core.outcome import Key, Outcome, TaskOutcome
from etl_monitor_dagster.core.policy import failure_of, run_task
from etl_monitor_dagster.core.runs import task_error
from etl_monitor_dagster.dagster.sensors import run_outcomes
from etl_monitor_dagster.tasks import TaskFailed, TaskResult, TaskRun
from tests import dagster_location
from tests.dagster_location import RecordedRun, launch_and_record

DAY = date(2026, 4, 9)


# ---------------------------------------------------------------- PYTHON tasks of tests/catalogue/classes.yaml


def reject_bad_rows(run: TaskRun) -> TaskResult:
    """A data-quality failure: trying again reads the same rows."""
    raise TaskFailed("3 rows have no customer id", "BAD_ROWS", error_class=ErrorClass.DATA_QUALITY)


def flaky_source(run: TaskRun) -> TaskResult:
    """The source is down on the first try and back on the next."""
    if run.try_number == 0:
        raise ConnectionError("orders API unreachable")
    return TaskResult(rows_written=4)


def missing_key(run: TaskRun) -> TaskResult:
    return {"id": 1}["customer"]  # KeyError: a record without the field


# ------------------------------------------------------------------------------ the vocabulary itself


def test_exactly_the_transient_classes_and_unknown_are_retryable():
    assert {c for c in ErrorClass if c.retryable} == {
        ErrorClass.SOURCE_UNAVAILABLE, ErrorClass.TIMEOUT, ErrorClass.RESOURCE_EXHAUSTED, ErrorClass.UNKNOWN}
    assert {c.value for c in ErrorClass if not c.retryable} == {
        "DATA_QUALITY", "SCHEMA_CHANGE", "PERMISSION", "CODE_ERROR", "CONFIGURATION", "CANCELED"}


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError("read timed out"), ErrorClass.TIMEOUT),
    (ConnectionError("reset by peer"), ErrorClass.SOURCE_UNAVAILABLE),
    (socket.gaierror("name does not resolve"), ErrorClass.SOURCE_UNAVAILABLE),
    (FileNotFoundError("landing/orders.csv"), ErrorClass.SOURCE_UNAVAILABLE),
    (PermissionError("landing/orders.csv"), ErrorClass.PERMISSION),
    (MemoryError(), ErrorClass.RESOURCE_EXHAUSTED),
    (ImportError("no module named x"), ErrorClass.CODE_ERROR),
    (NameError("name 'df' is not defined"), ErrorClass.CODE_ERROR),
    (TypeError("unsupported operand"), ErrorClass.CODE_ERROR),
    (AttributeError("'NoneType' has no attribute 'id'"), ErrorClass.CODE_ERROR),
    (SyntaxError("invalid syntax"), ErrorClass.CODE_ERROR),
    (KeyError("customer"), ErrorClass.DATA_QUALITY),
    (ValueError("invalid literal for int(): 'n/a'"), ErrorClass.DATA_QUALITY),
    (ZeroDivisionError("division by zero"), ErrorClass.DATA_QUALITY),
    (KeyboardInterrupt(), ErrorClass.CANCELED),
    (RuntimeError("something odd"), ErrorClass.UNKNOWN),
    (ValidationError("log_type", "LOUD", "must be one of INFO, WARN, ERROR"), ErrorClass.CONFIGURATION),
    (NotFoundError("process", {"project_code": "HR"}), ErrorClass.CONFIGURATION),
    (EngineError("the Spark engine cannot be reached"), ErrorClass.SOURCE_UNAVAILABLE),
    (ConcurrencyError("commit kept conflicting"), ErrorClass.RESOURCE_EXHAUSTED),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v))
def test_a_python_exception_is_classified_by_its_type(exc, expected):
    assert classify(exc) is expected


@pytest.mark.parametrize(("code", "expected"), [
    ("TIMEDOUT", ErrorClass.TIMEOUT),
    ("CANCELED", ErrorClass.CANCELED),
    ("UPSTREAM_CANCELED", ErrorClass.CANCELED),
    ("INTERNAL_ERROR", ErrorClass.SOURCE_UNAVAILABLE),
    ("MAXIMUM_CONCURRENT_RUNS_REACHED", ErrorClass.RESOURCE_EXHAUSTED),
    ("FAILED", ErrorClass.UNKNOWN),
    ("RESOURCE_DOES_NOT_EXIST", ErrorClass.CONFIGURATION),  # the job id names no job
    ("PERMISSION_DENIED", ErrorClass.PERMISSION),
    ("TEMPORARILY_UNAVAILABLE", ErrorClass.SOURCE_UNAVAILABLE),
])
def test_a_databricks_state_or_api_code_is_classified(code, expected):
    assert classify(TaskFailed(f"Databricks run 7 {code}", code)) is expected


@pytest.mark.parametrize(("code", "failure_type", "expected"), [
    ("TIMEDOUT", None, ErrorClass.TIMEOUT),  # our own deadline; the run is cancelled
    ("ADF_CANCELLED", None, ErrorClass.CANCELED),  # a pipeline run that ended Cancelled
    ("ADF_FAILED", None, ErrorClass.UNKNOWN),
    ("2200", "UserError", ErrorClass.CONFIGURATION),  # a copy that failed on the user's side
    ("2011", "SystemError", ErrorClass.SOURCE_UNAVAILABLE),  # the service failed
    ("DF-Executor-OutOfMemoryError", "SystemError", ErrorClass.RESOURCE_EXHAUSTED),  # the code wins
    ("AuthorizationFailed", None, ErrorClass.PERMISSION),
    ("HTTP_429", None, ErrorClass.RESOURCE_EXHAUSTED),
])
def test_an_adf_state_or_activity_error_is_classified(code, failure_type, expected):
    assert classify_adf(code, failure_type) is expected
    if failure_type is None:
        assert classify(TaskFailed(f"ADF pipeline run r1: {code}", code)) is expected


@pytest.mark.parametrize(("code", "expected"), [
    (LogCode.STALE, ErrorClass.TIMEOUT),  # ran past its limit, its writer gone
    (LogCode.RUN_CANCELED, ErrorClass.CANCELED),
    (LogCode.RUN_LOST, ErrorClass.UNKNOWN),  # its run ended while it ran: nothing says why
])
def test_the_monitors_own_codes_for_a_task_whose_run_or_writer_died_are_classified(code, expected):
    assert classify_code(code.value) is expected


def test_a_task_failed_with_its_own_class_keeps_it_whatever_its_code():
    failed = TaskFailed("3 rows have no customer id", "TIMEDOUT", error_class=ErrorClass.DATA_QUALITY)
    assert classify(failed) is ErrorClass.DATA_QUALITY
    error = task_error(failed)
    assert (error.code, error.error_class, error.retryable) == ("TIMEDOUT", ErrorClass.DATA_QUALITY, False)


def test_any_exception_carrying_an_error_class_attribute_is_that_class():
    class StaleExtract(Exception):
        error_class = ErrorClass.SOURCE_UNAVAILABLE

    assert classify(StaleExtract("extract of 2026-04-08 not there yet")) is ErrorClass.SOURCE_UNAVAILABLE


def test_a_task_failed_with_an_unknown_code_is_classified_by_its_cause():
    try:
        try:
            {}["customer"]
        except KeyError as exc:
            raise TaskFailed("row 3", "ROW_CHECK") from exc
    except TaskFailed as failed:
        assert classify(failed) is ErrorClass.DATA_QUALITY


@pytest.mark.parametrize(("text", "expected"), [
    ("ConnectionError: feature store unreachable", ErrorClass.SOURCE_UNAVAILABLE),
    ("[TABLE_OR_VIEW_NOT_FOUND] The table or view `x` cannot be found. SQLSTATE: 42P01", ErrorClass.SCHEMA_CHANGE),
    ("[DIVIDE_BY_ZERO] Division by zero. SQLSTATE: 22012", ErrorClass.DATA_QUALITY),
    ("Notebook exited with an error nobody named", ErrorClass.UNKNOWN),
])
def test_a_remote_error_known_only_as_text_is_classified(text, expected):
    assert classify_text(text) is expected


# --------------------------------------------------------------------------- real Spark errors


def _spark_error(spark, statement: str) -> Exception:
    with pytest.raises(Exception) as caught:
        spark.sql(statement).collect()
    return caught.value


def test_a_missing_table_is_a_schema_change(spark):
    exc = _spark_error(spark, f"SELECT * FROM etl_test.no_such_table_{uuid.uuid4().hex[:8]}")
    assert (exc.getCondition(), exc.getSqlState()) == ("TABLE_OR_VIEW_NOT_FOUND", "42P01")
    assert classify(exc) is ErrorClass.SCHEMA_CHANGE


def test_a_missing_column_is_a_schema_change(spark):
    exc = _spark_error(spark, "SELECT customer_id FROM VALUES (1) AS t(order_id)")
    assert (exc.getCondition(), exc.getSqlState()) == ("UNRESOLVED_COLUMN.WITH_SUGGESTION", "42703")
    assert classify(exc) is ErrorClass.SCHEMA_CHANGE


def test_a_division_by_zero_and_a_bad_cast_under_ansi_are_data_quality(spark):
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        division = _spark_error(spark, "SELECT 1 / 0")
        cast = _spark_error(spark, "SELECT CAST('n/a' AS INT)")
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)
    assert (division.getCondition(), division.getSqlState()) == ("DIVIDE_BY_ZERO", "22012")
    assert (cast.getCondition(), cast.getSqlState()) == ("CAST_INVALID_INPUT", "22018")
    assert classify(division) is classify(cast) is ErrorClass.DATA_QUALITY


def test_sql_that_does_not_parse_is_a_code_error(spark):
    exc = _spark_error(spark, "SELEC 1")
    assert (exc.getCondition(), exc.getSqlState()) == ("PARSE_SYNTAX_ERROR", "42601")
    assert classify(exc) is ErrorClass.CODE_ERROR


def test_two_merges_racing_into_one_partition_conflict_and_the_conflict_is_retried(monitor):
    """The error Spark Connect raises when two MERGEs commit into one partition of a Delta table: a class
    the policy retries, whether read from the exception, from its condition alone or from its text."""
    spark = monitor.spark
    table = f"{monitor.schema}.conflict_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE TABLE {table} (p INT, k INT, v INT) USING DELTA PARTITIONED BY (p)")
    try:
        spark.sql(f"INSERT INTO {table} VALUES (1, 1, 0), (1, 2, 0)")
        errors: list[Exception] = []

        def merge(key: int, barrier: threading.Barrier) -> None:
            source = spark.createDataFrame([(1, key, key)], "p INT, k INT, v INT")
            barrier.wait(timeout=60)
            try:
                spark.sql(f"MERGE INTO {table} t USING {{source}} s ON t.p = s.p AND t.k = s.k "
                          "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *", source=source)
            except Exception as exc:
                errors.append(exc)

        for _ in range(8):  # both read the partition before either commits: usually the first round
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=merge, args=(key, barrier)) for key in (1, 2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=180)
            if errors:
                break
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    assert errors, "eight rounds of two racing MERGEs never conflicted"
    exc = errors[0]
    condition = exc.getCondition()
    assert condition.split(".")[0] in {"DELTA_CONCURRENT_APPEND", "DELTA_CONCURRENT_DELETE_READ",
                                       "DELTA_CONCURRENT_DELETE_DELETE", "DELTA_CONCURRENT_WRITE"}
    assert exc.getSqlState() == "2D521"
    assert classify(exc) is ErrorClass.RESOURCE_EXHAUSTED and ErrorClass.RESOURCE_EXHAUSTED.retryable
    assert classify_code(condition) is ErrorClass.RESOURCE_EXHAUSTED  # the LogCode a SPARK_SQL task records
    assert classify_text(str(exc)) is ErrorClass.RESOURCE_EXHAUSTED
    # as the SPARK_SQL runner reports it: the condition as LogCode, retried while the task has retries left
    failed = TaskFailed(f"statement 1: {exc}", condition, error_class=classify(exc))
    task = TaskSpec(id=1, workflow=1, stage=2, name="Merge", source_type="SPARK_SQL", source="x.sql",
                    maximum_retries=2)
    assert failure_of(failed, task, 0)[1] is True
    assert failure_of(failed, task, 2)[1] is False  # the last try fails the task


@pytest.mark.parametrize("condition", ["DELTA_CONCURRENT_APPEND", "DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT",
                                       "DELTA_CONCURRENT_DELETE_READ", "DELTA_CONCURRENT_DELETE_DELETE",
                                       "DELTA_CONCURRENT_WRITE", "DELTA_CONCURRENT_TRANSACTION",
                                       "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED"])
def test_every_delta_concurrent_modification_condition_is_retryable_by_its_name_alone(condition):
    assert classify_code(condition) is ErrorClass.RESOURCE_EXHAUSTED
    assert classify_code(condition).retryable


# --------------------------------------------------------------------------------- the run policy


@pytest.fixture
def spec(monitor: ETLMonitorFramework) -> ProcessSpec:
    return ProcessSpec.model_validate({
        "project": f"ERR{uuid.uuid4().hex[:8]}", "process": "CLASSES", "owner": "QA",
        "tasks": [
            {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
            {"id": 1, "workflow": 1, "stage": 2, "name": "Reject bad rows", "source_type": "PYTHON",
             "source": "tests.test_error_classes:reject_bad_rows", "mandatory": True, "maximum_retries": 2},
            {"id": 2, "workflow": 1, "stage": 2, "name": "Flaky source", "source_type": "PYTHON",
             "source": "tests.test_error_classes:flaky_source", "mandatory": True, "maximum_retries": 2},
            {"id": 3, "workflow": 1, "stage": 2, "name": "Missing key", "source_type": "PYTHON",
             "source": "tests.test_error_classes:missing_key", "maximum_retries": 2},
        ]})


def _receipts(monitor: ETLMonitorFramework, spec: ProcessSpec, execution: str, task_id: int) -> list[dict]:
    logs = monitor.spark.table(monitor.table_name("v_liveLogs"))
    rows = logs.where((logs["ExecutionID"] == execution) & (logs["ProjectCode"] == spec.project))
    rows = rows.orderBy("LogOrder")
    return [m for m in (json.loads(r["Message"]) for r in rows.select("Message").collect())
            if m.get("task_id") == task_id]


def _row(monitor: ETLMonitorFramework, spec: ProcessSpec, execution: str, task_id: int) -> dict:
    (row,) = monitor.status_rows(spec.project, spec.process, execution_id=execution, task_id=task_id)
    return row


def test_the_policy_fails_a_non_retryable_failure_at_once_with_retries_left(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, bad_rows, _, missing = spec.tasks
    run_task(monitor, spec, initiation, execution, DAY, tasks.run)
    with pytest.raises(TaskFailed):  # mandatory: raised, so the run stops
        run_task(monitor, spec, bad_rows, execution, DAY, tasks.run, try_number=0)
    row = _row(monitor, spec, execution, 1)
    assert (row["Status"], row["LogCode"]) == ("FAIL", "BAD_ROWS")
    assert row["LogMessage"].startswith("not retried: DATA_QUALITY is not retryable: TaskFailed: 3 rows")
    events = [(r["event_type"], r.get("error_class")) for r in _receipts(monitor, spec, execution, 1)]
    assert events == [("TASK_START", None), ("TASK_FAIL", "DATA_QUALITY")]

    optional = run_task(monitor, spec, missing, execution, DAY, tasks.run, try_number=0)  # returned, not raised
    assert (optional.outcome, optional.error_code, optional.error_class) == (
        Outcome.FAIL, "KeyError", ErrorClass.DATA_QUALITY)
    assert _row(monitor, spec, execution, 3)["Status"] == "FAIL"


def test_the_policy_queues_a_retryable_failure_as_rque_and_raises_it(monitor, spec):
    execution = monitor.generate_execution_id()
    initiation, _, flaky, _ = spec.tasks
    run_task(monitor, spec, initiation, execution, DAY, tasks.run)
    with pytest.raises(ConnectionError):
        run_task(monitor, spec, flaky, execution, DAY, tasks.run, try_number=0)
    row = _row(monitor, spec, execution, 2)
    assert (row["Status"], row["LogCode"]) == ("RQUE", "ConnectionError")
    (retry,) = [r for r in _receipts(monitor, spec, execution, 2) if r["event_type"] == "TASK_RETRY"]
    assert retry["error_class"] == "SOURCE_UNAVAILABLE"
    done = run_task(monitor, spec, flaky, execution, DAY, tasks.run, try_number=1)
    assert done.outcome is Outcome.DONE and _row(monitor, spec, execution, 2)["Status"] == "DONE"


def test_an_outcome_carries_its_error_class_through_its_metadata():
    outcome = TaskOutcome(Outcome.FAIL, error="E: x", error_code="BAD_ROWS", error_class=ErrorClass.DATA_QUALITY)
    assert outcome.metadata()[Key.ERROR_CLASS] == "DATA_QUALITY"
    assert TaskOutcome.from_metadata(outcome.metadata()) == outcome


# ------------------------------------------------------------------------------ a real Dagster run


def classes_job() -> JobDefinition:
    return dagster_location.definitions().resolve_job_def("classes")


def _step(name: str) -> str:
    return dagster_location.definitions().get_assets_def(AssetKey(["qa", "classes", name])).op.name


@pytest.fixture(scope="module")
def classes(instance: DagsterInstance, monitor: ETLMonitorFramework) -> RecordedRun:
    return launch_and_record(classes_job, instance, monitor, "CLASSES", "2026-04-09")


def _step_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType, step: str) -> list:
    return [e for e in instance.all_logs(run_id, of_type=kind) if e.dagster_event.step_key == step]


def test_a_non_retryable_failure_has_one_try_in_dagster_and_fails_with_its_own_code(classes, instance):
    step = _step("reject_bad_rows")
    assert not classes.success
    assert len(_step_events(instance, classes.run_id, DagsterEventType.STEP_START, step)) == 1
    assert _step_events(instance, classes.run_id, DagsterEventType.STEP_UP_FOR_RETRY, step) == []
    row = classes.rows["Reject bad rows"]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "BAD_ROWS")
    assert row["LogMessage"].startswith("not retried: DATA_QUALITY is not retryable: TaskFailed: 3 rows")
    events = [(r["event_type"], r.get("error_class")) for r in classes.receipts_of(1)]
    assert events == [("TASK_START", None), ("TASK_FAIL", "DATA_QUALITY")]  # no TASK_RETRY


def test_the_reconciliation_reads_the_specific_code_and_class_of_a_failure_not_retried(classes, instance):
    step = _step("reject_bad_rows")
    (outcome, _) = run_outcomes(instance, classes.run_id, {step})[step]
    assert (outcome.outcome, outcome.error_code, outcome.error_class) == (
        Outcome.FAIL, "BAD_ROWS", ErrorClass.DATA_QUALITY)


def test_a_retryable_failure_is_queued_rque_then_done_by_dagsters_retry(classes, instance):
    step = _step("flaky_source")
    assert len(_step_events(instance, classes.run_id, DagsterEventType.STEP_UP_FOR_RETRY, step)) == 1
    row = classes.rows["Flaky source"]
    assert row["Status"] == "DONE"
    events = [(r["event_type"], r.get("status"), r.get("error_class")) for r in classes.receipts_of(2)]
    assert events == [("TASK_START", "NQUE", None), ("TASK_RETRY", "RQUE", "SOURCE_UNAVAILABLE"),
                      ("TASK_START", "RQUE", None), ("TASK_DONE", "DONE", None)]


def test_an_optional_non_retryable_failure_is_not_retried_and_the_run_goes_on(classes, instance):
    step = _step("missing_key")
    assert _step_events(instance, classes.run_id, DagsterEventType.STEP_UP_FOR_RETRY, step) == []
    row = classes.rows["Missing key"]
    assert (row["Status"], row["LogCode"]) == ("FAIL", "KeyError")
    assert [(r["event_type"], r.get("error_class")) for r in classes.receipts_of(3)] == [
        ("TASK_START", None), ("TASK_FAIL", "DATA_QUALITY")]
