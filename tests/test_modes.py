"""Watermarks and processing modes: DELTA_DATE, DELTA_ID, FLAG, SYSTEM; historic, live and bulk."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from etl_monitor_dagster import NotFoundError, ValidationError


@pytest.fixture
def params(make_process):
    return make_process(parameters=[
        {"parameter_name": "SYSDT", "parameter_type": "SYSTEM"},
        {"parameter_name": "LastEmp", "parameter_type": "DELTA_DATE", "value_datetime": "2026-03-01T10:00:00"},
        {"parameter_name": "LastId", "parameter_type": "DELTA_ID", "value_int": 500},
        {"parameter_name": "WithHeader", "parameter_type": "FLAG", "value_bit": True},
    ])


def _watermark(p, name):
    return p.monitor.get_active_watermark(p.project, p.load, name)


def test_get_active_watermark_returns_each_types_active_column_typed(params):
    assert _watermark(params, "LastEmp") == datetime(2026, 3, 1, 10, 0)
    assert _watermark(params, "LastId") == 500
    assert _watermark(params, "WithHeader") is True
    assert _watermark(params, "SYSDT") is None


def test_advance_watermark_moves_a_delta_id_and_overrides_a_delta_date(params):
    m = params.monitor
    m.advance_watermark(params.project, params.load, "LastId", new_int_value=734)
    m.advance_watermark(params.project, params.load, "LastEmp", new_datetime_value="2026-04-01T00:00:00")
    assert _watermark(params, "LastId") == 734
    assert _watermark(params, "LastEmp") == datetime(2026, 4, 1)
    moves = [json.loads(r["Message"]) for r in params.receipts() if r["OperationName"] == "WATERMARK_MOVE"]
    assert next((e["parameter_name"], e["previous_value"], e["new_value"]) for e in moves) == ("LastId", 500, 734)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"parameter_name": "LastId", "new_datetime_value": "2026-01-01"}, "new_datetime_value"),
        ({"parameter_name": "LastEmp", "new_int_value": 3}, "new_int_value"),
        ({"parameter_name": "LastId"}, "new_datetime_value/new_int_value"),
        ({"parameter_name": "LastEmp", "new_datetime_value": "yesterday"}, "new_datetime_value"),
    ],
)
def test_advance_watermark_refuses_a_value_of_the_wrong_kind(params, kwargs, field):
    with pytest.raises(ValidationError) as error:
        params.monitor.advance_watermark(params.project, params.load, **kwargs)
    assert error.value.field == field
    assert _watermark(params, "LastId") == 500


def test_advance_watermark_of_an_unknown_parameter_names_it(params):
    with pytest.raises(NotFoundError, match="Nope"):
        params.monitor.advance_watermark(params.project, params.load, "Nope", new_int_value=1)


def test_historic_mode_sets_sysdt_which_becomes_the_default_processing_date(params):
    m = params.monitor
    m.set_processing_mode(params.project, params.load, is_historic_mode=True, processing_date="2025-12-31")
    assert _watermark(params, "SYSDT") == datetime(2025, 12, 31)
    run = m.generate_execution_id()
    m.generate_execution_steps(run, params.project, params.load, None)
    assert {r["ProcessingDate"] for r in params.steps(run).values()} == {date(2025, 12, 31)}
    # get_status without a date or an execution reads the same processing date
    assert {r["ProcessingDate"] for r in m.status_rows(params.project, params.load)} == {date(2025, 12, 31)}


def test_live_mode_puts_sysdt_back_to_null_and_runs_today(params):
    m = params.monitor
    m.set_processing_mode(params.project, params.load, is_historic_mode=True, processing_date="2025-12-31")
    m.set_processing_mode(params.project, params.load)
    assert _watermark(params, "SYSDT") is None
    run = m.generate_execution_id()
    m.generate_execution_steps(run, params.project, params.load, None)
    assert {r["ProcessingDate"] for r in params.steps(run).values()} == {date.today()}


def test_historic_mode_without_a_date_is_refused_and_changes_nothing(params):
    with pytest.raises(ValidationError, match="processing_date"):
        params.monitor.set_processing_mode(params.project, params.load, is_historic_mode=True)
    assert _watermark(params, "SYSDT") is None


def test_historic_mode_needs_a_registered_sysdt(process):
    with pytest.raises(NotFoundError, match="SYSDT"):
        process.monitor.set_processing_mode(process.project, process.load, is_historic_mode=True,
                                            processing_date="2025-01-01")


def test_bulk_mode_nulls_every_delta_date_and_zeroes_every_delta_id(params):
    params.monitor.set_processing_mode(params.project, params.load, is_bulk_mode=True)
    assert _watermark(params, "LastEmp") is None
    assert _watermark(params, "LastId") == 0
    assert _watermark(params, "WithHeader") is True
    states = {r.ParameterName: (r.ActiveValue, r.WatermarkState) for r in _watermarks(params)}
    assert states["LastEmp"] == ("1900-01-01 00:00:00.000", "BULK MODE")
    assert states["LastId"] == ("0", "BULK MODE")
    assert states["SYSDT"][1] == "LIVE DATE"


def test_a_named_parameter_gets_exactly_the_values_given(params):
    params.monitor.set_processing_mode(params.project, params.load, parameter_name="WithHeader", value_bit=False)
    assert _watermark(params, "WithHeader") is False
    assert _watermark(params, "LastId") == 500
    params.monitor.set_processing_mode(params.project, params.load, parameter_name="LastId", value_int=7)
    assert _watermark(params, "LastId") == 7
    params.monitor.set_processing_mode(params.project, params.load, parameter_name="LastId")
    assert _watermark(params, "LastId") == 7  # a value not given is left as it is


def test_a_mode_change_leaves_one_receipt(params):
    before = len(params.receipts())
    params.monitor.set_processing_mode(params.project, params.load, is_bulk_mode=True)
    receipts = params.receipts()[before:]
    assert [r["OperationName"] for r in receipts] == ["MODE_CHANGE"]
    assert json.loads(receipts[0]["Message"])["bulk"] is True


def _watermarks(p):
    frame = p.monitor.spark.table(p.monitor.table_name("v_watermarks"))
    return frame.where(frame["ProjectCode"] == p.project).collect()
