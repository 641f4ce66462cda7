"""Hostile strings round-trip exactly; bad input raises the project's errors and writes nothing."""

from __future__ import annotations

import uuid

import pytest

from etl_monitor_dagster import ETLMonitorFramework, NotFoundError, ValidationError
from etl_monitor_dagster.core.sql import quote_string
from tests.conftest import DAY

HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash \\' \\n",
    "line one\nline two\r\n\ttabbed",
    "${user} ${spark.sql.warehouse.dir} $x",
    "-- not a comment /* nor this */",
    "'; DROP TABLE ETLconfigTasks; --",
    "ünïcödé ✓ 🚀 日本語",
    "`back`ticks`",
    "{curly} {{double}}",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_string_renders_a_literal_that_spark_parses_back_exactly(spark, value):
    assert spark.sql(f"SELECT {quote_string(value)} AS v").collect()[0].v == value


@pytest.mark.parametrize("name", ["etl; DROP", "a`b", "", "1abc", "with space", "ünï"])
def test_a_malformed_schema_or_catalog_name_is_refused(spark, name):
    with pytest.raises(ValidationError):
        ETLMonitorFramework(spark, schema=name)
    if name == "":  # catalog='' is the seed's default: the session catalog
        assert ETLMonitorFramework(spark, catalog=name, schema="etl").table_name("ETLsysLogs") == "`etl`.`ETLsysLogs`"
        return
    with pytest.raises(ValidationError):
        ETLMonitorFramework(spark, catalog=name, schema="etl")


def test_a_catalog_the_engine_lacks_is_refused_saying_what_a_three_level_name_needs(spark):
    schema = f"etl_{uuid.uuid4().hex[:8]}"
    schemas = {d.name for d in spark.catalog.listDatabases()}

    with pytest.raises(ValidationError) as refused:
        ETLMonitorFramework(spark, catalog="main", schema=schema).setup()

    assert (refused.value.field, refused.value.value) == ("catalog", "main")
    assert "Unity Catalog" in refused.value.problem and "catalog=''" in refused.value.problem
    assert {d.name for d in spark.catalog.listDatabases()} == schemas  # neither `main` nor the schema made
    # the engine's own catalog by name is a three-level name it has
    assert ETLMonitorFramework(spark, catalog="spark_catalog", schema=schema).catalog == "spark_catalog"


def test_hostile_names_messages_and_descriptions_round_trip_through_every_table(monitor):
    project, load = HOSTILE[6], HOSTILE[7]
    name, description, message, remark = HOSTILE[4], HOSTILE[3], HOSTILE[2] + HOSTILE[8], HOSTILE[9]
    monitor.register_process(project, load, name=name, description=description, owner=HOSTILE[0])
    monitor.register_task(project, load, 0, 0, 0, "Initiation", "NONE")
    monitor.register_task(project, load, 1, 1, 2, name, "PYTHON", task_description=description,
                          source_system_code=HOSTILE[5], file_name_mask=HOSTILE[1], task_mandatory=False)
    monitor.register_parameter(project, load, HOSTILE[5], "DELTA_ID", description=description, value_int=1)
    run = monitor.generate_execution_id()
    monitor.generate_execution_steps(run, project, load, DAY)
    task_1 = {"task_id": 1, "sequence_id": 2, "workflow_id": 1, "processing_date": DAY}
    monitor.start_task(run, project, load, **task_1, source_run_id=HOSTILE[0])
    monitor.fail_task(run, project, load, **task_1, log_message=message, log_code=HOSTILE[1])
    monitor.status_reset(project, load, execution_id=run, task_id=1, workflow_id=1, remark=remark)

    (row,) = monitor.status_rows(project, load, execution_id=run, task_id=1)
    assert (row["ProjectCode"], row["ProcessLoad"], row["TaskName"]) == (project, load, name)
    assert (row["SourceRunID"], row["LogCode"], row["LogMessage"]) == (HOSTILE[0], HOSTILE[1], remark)
    assert row["FullFileName"] == f"{HOSTILE[1]}_20260409"
    (wm,) = [r for r in monitor.spark.table(monitor.table_name("v_watermarks")).collect()
             if r.ProjectCode == project]
    assert (wm.ParameterName, wm.ParameterDescription, wm.LinkedTaskName) == (HOSTILE[5], description, name)
    logs = monitor.spark.table(monitor.table_name("v_liveLogs"))
    fail = logs.where((logs["ExecutionID"] == run) & (logs["OperationName"] == "TASK_FAIL")).collect()[0]
    import json

    assert json.loads(fail.Message)["error"] == {"message": message, "code": HOSTILE[1]}
    assert fail.ActivityName == name


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"processing_date": "2026-02-30"}, "processing_date"),
        ({"processing_date": "09/04/2026"}, "processing_date"),
        ({"processing_date": 20260409}, "processing_date"),
        ({"execution_id": ""}, "execution_id"),
        ({"project_code": None}, "project_code"),
    ],
)
def test_malformed_run_input_is_refused_naming_the_field_and_writes_nothing(process, kwargs, field):
    args = {"execution_id": "run-x", "project_code": process.project, "process_load": process.load,
            "processing_date": DAY, **kwargs}
    with pytest.raises(ValidationError) as error:
        process.monitor.generate_execution_steps(**args)
    assert error.value.field == field
    assert process.count("ETLProcessingSteps") == 0


@pytest.mark.parametrize("task_id", ["1.5", 1.0, True, None, -3])
def test_a_task_id_that_is_not_a_whole_number_is_refused(process, task_id):
    with pytest.raises(ValidationError, match="task_id"):
        process.monitor.start_task("run-x", process.project, process.load, task_id=task_id, sequence_id=2,
                                   workflow_id=1, processing_date=DAY)
    assert process.count("ETLProcessingSteps") == 0


def test_an_unknown_process_is_named_in_the_error_and_nothing_is_written(monitor):
    with pytest.raises(NotFoundError, match="'GHOST'"):
        monitor.generate_execution_steps("run-y", "GHOST", "LOAD", DAY)


def test_an_unknown_task_is_named_in_the_error_and_nothing_is_written(process):
    with pytest.raises(NotFoundError, match="task_id=99"):
        process.monitor.start_task("run-z", process.project, process.load, task_id=99, sequence_id=2,
                                   workflow_id=1, processing_date=DAY)
    assert process.count("ETLProcessingSteps") == 0
    assert process.receipts() == []
