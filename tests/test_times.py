"""Times given to start_task, end_task and fail_task: no start or end far in the future, no end before its start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from etl_monitor_dagster import ValidationError
from etl_monitor_dagster.core import validate as v
from tests.conftest import DAY

NOW = datetime(2026, 4, 9, 12, 0, tzinfo=UTC)
TASK_1 = {"task_id": 1, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}


# ------------------------------------------------------------------------------ the checks alone


@pytest.mark.parametrize("value", [NOW + timedelta(minutes=5), NOW - timedelta(days=400), "2026-04-09T12:04:59+00:00",
                                   "2026-04-09T12:05:00"])
def test_a_time_up_to_five_minutes_ahead_of_the_clock_is_accepted(value):
    assert v.past_timestamp("timestamp", value, now=NOW) <= NOW + v.FUTURE_SLACK


@pytest.mark.parametrize("value", [NOW + timedelta(minutes=5, seconds=1), "2026-04-09T13:00:00",
                                   "2026-04-09T14:00:00+01:00", "2027-04-09"])
def test_a_time_more_than_five_minutes_ahead_is_refused_naming_field_value_and_bound(value):
    with pytest.raises(ValidationError) as error:
        v.past_timestamp("timestamp", value, now=NOW)
    assert (error.value.field, error.value.value) == ("timestamp", value)
    assert "2026-04-09T12:05:00+00:00" in error.value.problem and "future" in error.value.problem


def test_a_naive_clock_and_a_naive_time_are_utc():
    naive_now = NOW.replace(tzinfo=None)
    assert v.past_timestamp("t", naive_now + timedelta(minutes=4), now=naive_now) == NOW + timedelta(minutes=4)
    with pytest.raises(ValidationError):
        v.past_timestamp("t", naive_now + timedelta(minutes=6), now=naive_now)


def test_a_malformed_time_is_still_refused_as_malformed():
    with pytest.raises(ValidationError, match="ISO 8601"):
        v.optional_past_timestamp("timestamp", "yesterday", now=NOW)
    assert v.optional_past_timestamp("timestamp", None, now=NOW) is None


def test_an_end_before_its_start_is_refused_and_an_end_at_its_start_accepted():
    start = datetime(2026, 4, 9, 6, 30)  # as the engine returns it: naive UTC
    assert v.not_before("timestamp", NOW.replace(hour=6, minute=30), start, "the start") == NOW.replace(hour=6,
                                                                                                          minute=30)
    assert v.not_before("timestamp", NOW, None, "the start") == NOW
    with pytest.raises(ValidationError) as error:
        v.not_before("timestamp", NOW.replace(hour=6, minute=29), start, "the step's StartTime")
    assert error.value.field == "timestamp"
    assert error.value.problem == "is before the step's StartTime 2026-04-09T06:30:00+00:00"


# ------------------------------------------------------------------------------ through the API


@pytest.fixture
def dated(make_process):
    """A process whose task 1 advances a DELTA_DATE watermark on DONE, with a run generated."""
    process = make_process(parameters=[{"parameter_name": "LastChange", "parameter_type": "DELTA_DATE"}],
                           tasks=[{"task_id": 1, "task_mandatory": True, "source_system_code": "LastChange"}])
    return process, process.new_run()


def test_start_task_refuses_a_start_an_hour_ahead_and_writes_nothing(dated):
    process, run = dated
    ahead = datetime.now(UTC) + timedelta(hours=1)
    before = process.rows("ETLProcessingSteps")
    with pytest.raises(ValidationError) as error:
        process.monitor.start_task(run, process.project, process.load, **TASK_1, timestamp=ahead)
    assert (error.value.field, error.value.value) == ("timestamp", ahead)
    assert process.rows("ETLProcessingSteps") == before
    assert [r["OperationName"] for r in process.receipts(run)] == []


@pytest.mark.parametrize("call", ["end_task", "fail_task"])
def test_an_end_an_hour_ahead_is_refused_and_leaves_the_row_running_and_the_watermark_alone(dated, call):
    process, run = dated
    m = process.monitor
    m.start_task(run, process.project, process.load, **TASK_1, timestamp="2026-04-09T06:00:00")
    before = process.rows("ETLProcessingSteps")
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(ValidationError) as error:
        getattr(m, call)(run, process.project, process.load, **TASK_1, timestamp=ahead)
    assert (error.value.field, error.value.value) == ("timestamp", ahead)
    assert process.rows("ETLProcessingSteps") == before
    assert [r["OperationName"] for r in process.receipts(run)] == ["TASK_START"]
    assert m.get_active_watermark(process.project, process.load, "LastChange") is None


def test_an_end_before_the_steps_start_is_refused_whether_the_row_is_remembered_or_read(dated, monitor):
    process, run = dated
    process.monitor.start_task(run, process.project, process.load, **TASK_1, timestamp="2026-04-09T06:00:00")
    before = process.rows("ETLProcessingSteps")
    # ``monitor`` remembers the start it wrote; a second monitor object (another writer) reads the row.
    other = type(monitor)(monitor.spark, schema=monitor.schema, updated_by="adf")
    for writer in (process.monitor, other):
        with pytest.raises(ValidationError, match="before the step's StartTime 2026-04-09T06:00:00"):
            writer.end_task(run, process.project, process.load, **TASK_1, timestamp="2026-04-09T05:59:59")
    assert process.rows("ETLProcessingSteps") == before
    assert process.monitor.get_active_watermark(process.project, process.load, "LastChange") is None
    process.monitor.end_task(run, process.project, process.load, **TASK_1, timestamp="2026-04-09T06:00:00")
    assert process.steps(run)[(1, 1)]["DurationSeconds"] == 0
