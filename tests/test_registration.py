"""register_process / register_task / register_parameter: keyed upserts with validation at the edge."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from etl_monitor_dagster import NotFoundError, ValidationError
from etl_monitor_dagster.core.catalogue import ProcessSpec
from etl_monitor_dagster.core.policy import initiate


def _process_row(process):
    frame = process.monitor.spark.table(process.monitor.table_name("ETLconfigProcess"))
    return frame.where(frame["ProjectCode"] == process.project).collect()[0]


def test_re_registering_a_process_updates_descriptions_but_never_created_on(process):
    first = _process_row(process)
    assert process.monitor.register_process(process.project, process.load, description="new words") is process.monitor
    second = _process_row(process)
    assert second.ProcessDescription == "new words"
    assert second.ProcessOwner == "QA"  # not given: kept
    assert (second.CreatedOn, second.CreatedBy) == (first.CreatedOn, first.CreatedBy)
    assert process.count("ETLconfigProcess") == 1


def test_re_registering_a_parameter_changes_its_description_never_its_value(process):
    process.parameter("Wm", "DELTA_ID", description="old", value_int=41)
    process.parameter("Wm", "DELTA_ID", description="new", value_int=999)
    rows = process.rows("ETLconfigParameters")
    assert [(r["ParameterDescription"], r["ValueINT"]) for r in rows] == [("new", 41)]


def test_a_task_upsert_keeps_one_row_per_key(process):
    process.task(1, task_name="first name")
    process.task(1, task_name="second name", sla_seconds=30)
    frame = process.monitor.spark.table(process.monitor.table_name("ETLconfigTasks"))
    rows = frame.where((frame["ProjectCode"] == process.project) & (frame["TaskID"] == 1)).collect()
    assert [(r.TaskName, r.SlaSeconds) for r in rows] == [("second name", 30)]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.parameter("X", "DELTA_TIME"), "parameter_type"),
        (lambda p: p.monitor.register_process(p.project, "OTHER", load_frequency="Q"), "load_frequency"),
        (lambda p: p.task(5, source_type="FTP"), "source_type"),
        (lambda p: p.task("five"), "task_id"),
        (lambda p: p.task(5, workflow_id=0, sequence_id=0), "workflow_id"),
        (lambda p: p.task(5, sequence_id=0), "sequence_id"),
        (lambda p: p.parameter("SYSDT", "DELTA_DATE"), "parameter_type"),
        (lambda p: p.parameter("Wm", "DELTA_ID", value_datetime="2026-01-01"), "ValueDateTime"),
        (lambda p: p.task(5, sla_seconds=0), "sla_seconds"),
    ],
)
def test_bad_registration_input_is_refused_naming_the_field_and_writes_nothing(process, call, field):
    before = (process.count("ETLconfigTasks"), process.count("ETLconfigParameters"), process.count("ETLconfigProcess"))
    with pytest.raises(ValidationError) as error:
        call(process)
    assert error.value.field == field
    after = (process.count("ETLconfigTasks"), process.count("ETLconfigParameters"), process.count("ETLconfigProcess"))
    assert after == before


def test_an_unknown_stage_is_refused_with_a_hint(process):
    with pytest.raises(NotFoundError, match="stage"):
        process.task(5, sequence_id=9999)  # a stage no test creates
    assert process.count("ETLconfigTasks") == 1


def test_a_task_of_an_unregistered_process_is_refused(monitor):
    with pytest.raises(NotFoundError, match="register_process"):
        monitor.register_task("NOPE", "NOPE", 1, 1, 2, "t", "PYTHON")


def test_entries_naming_what_is_not_registered_are_refused_and_nothing_is_written(process):
    """A project's organisation and a parameter's process must be registered; the refusal names its key."""
    m, tasks = process.monitor, process.count("ETLconfigTasks")
    with pytest.raises(NotFoundError, match="register_organisation") as error:
        m.register_many(projects=[{"project_code": "P_NEW", "project_name": "p", "organisation_code": "NO_ORG"}],
                        tasks=[{"project_code": process.project, "process_load": process.load, "task_id": 7,
                                "workflow_id": 1, "sequence_id": 2, "task_name": "t", "source_type": "PYTHON"}])
    assert error.value.key == {"organisation_code": "NO_ORG"}
    with pytest.raises(NotFoundError, match="register_process") as error:  # its project has other processes
        m.register_parameter(process.project, "NO_SUCH_LOAD", "Wm", "DELTA_ID")
    assert error.value.key == {"project_code": process.project, "process_load": "NO_SUCH_LOAD"}
    projects = m.spark.table(m.table_name("ETLconfigProject"))
    assert projects.where(projects["ProjectCode"] == "P_NEW").count() == 0
    assert process.count("ETLconfigTasks") == tasks


def test_changing_a_parameters_type_is_refused(process):
    process.parameter("Wm", "DELTA_ID")
    with pytest.raises(ValidationError, match="already registered as DELTA_ID"):
        process.parameter("Wm", "DELTA_DATE")


def test_a_batch_with_one_bad_entry_writes_nothing(process):
    good = {"task_id": 1}
    bad = {"task_id": 2, "source_type": "TELEX"}
    with pytest.raises(ValidationError, match="TELEX"):
        process.register(tasks=[good, bad])
    assert process.count("ETLconfigTasks") == 1  # only the initiation task of the fixture


def test_a_batch_naming_one_key_twice_is_refused(process):
    with pytest.raises(ValidationError, match="appears twice"):
        process.register(tasks=[{"task_id": 1}, {"task_id": 1, "task_name": "again"}])


def test_a_batch_entry_with_an_unknown_field_names_its_position(process):
    with pytest.raises(ValidationError, match=r"tasks\[0\]"):
        process.register(tasks=[{"task_id": 1, "colour": "blue"}])


def test_a_batch_registers_a_new_process_with_its_tasks_and_parameters_together(monitor):
    monitor.register_many(
        processes=[{"project_code": "BATCH", "process_load": "ALL_AT_ONCE", "load_frequency": "M"}],
        tasks=[{"project_code": "BATCH", "process_load": "ALL_AT_ONCE", "task_id": t, "workflow_id": 1,
                "sequence_id": 3, "task_name": f"t{t}", "source_type": "SPARK_SQL"} for t in range(1, 6)],
        parameters=[{"project_code": "BATCH", "process_load": "ALL_AT_ONCE", "parameter_name": "SYSDT",
                     "parameter_type": "SYSTEM"}],
    )
    tasks = monitor.spark.table(monitor.table_name("ETLconfigTasks"))
    assert tasks.where(tasks["ProjectCode"] == "BATCH").count() == 5
    assert monitor.get_active_watermark("BATCH", "ALL_AT_ONCE", "SYSDT") is None


def test_re_registering_what_is_registered_writes_nothing_and_a_change_writes_only_its_table(process):
    monitor = process.monitor
    batch = {
        "processes": [{"project_code": process.project, "process_load": process.load, "name": "Same",
                       "owner": "QA", "load_frequency": "D"}],
        "tasks": [{"project_code": process.project, "process_load": process.load, "task_id": t, "workflow_id": 1,
                   "sequence_id": 2, "task_name": f"t{t}", "source_type": "PYTHON", "sla_seconds": 60}
                  for t in (1, 2)],
        "parameters": [{"project_code": process.project, "process_load": process.load,
                        "parameter_name": "Wm", "parameter_type": "DELTA_DATE", "description": "d"}],
    }
    monitor.register_many(**batch)
    before = monitor.engine.stats.snapshot()
    monitor.register_many(**batch)
    assert (monitor.engine.stats - before).commits == 0

    batch["tasks"][1]["sla_seconds"] = 90
    before = monitor.engine.stats.snapshot()
    monitor.register_many(**batch)
    assert (monitor.engine.stats - before).commits == 1
    slas = {r["TaskID"]: r["SlaSeconds"] for r in process.rows("ETLconfigTasks") if r["TaskID"]}
    assert slas == {1: 60, 2: 90}


# ------------------------------------------------ IsActive: the operator's word (docs/OWNERSHIP.md)

def _spec(project: str, active: bool = True, **task_active: bool) -> ProcessSpec:
    """A catalogue process with tasks 1 and 2; ``t1=False`` sets ``active: false`` on task 1."""
    return ProcessSpec.model_validate({
        "project": project, "process": "OWNED", "owner": "QA", "active": active,
        "tasks": [
            {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True},
            *({"id": t, "workflow": 1, "stage": 2, "name": f"Load {t}", "source_type": "PYTHON",
               "source": "tests.tasks:succeed", "active": task_active.get(f"t{t}", True)} for t in (1, 2)),
        ]})


def _initiate(monitor, spec: ProcessSpec, day: str) -> set[int]:
    """A run's initiation (registration of the catalogue process, then its steps); the tasks it queued."""
    execution = monitor.generate_execution_id()
    initiate(monitor, spec, execution, date.fromisoformat(day))
    return {r["TaskID"] for r in monitor.status_rows(spec.project, spec.process, execution_id=execution)}


def _active(monitor, table: str, spec: ProcessSpec) -> dict:
    """IsActive by TaskID (ETLconfigTasks) or of the process (ETLconfigProcess)."""
    frame = monitor.spark.table(monitor.table_name(table))
    rows = frame.where(frame["ProjectCode"] == spec.project).collect()
    return {r.TaskID: r.IsActive for r in rows} if table == "ETLconfigTasks" else rows[0].IsActive


def _operator_sets(monitor, table: str, spec: ProcessSpec, task_id: int | None = None, **columns) -> None:
    """An operator's hand edit of one task's (or the process's) row, values bound: ``IsActive=False``."""
    key = {"ProjectCode": spec.project, "ProcessLoad": spec.process} | ({} if task_id is None else {"TaskID": task_id})
    row = key | columns
    types = dict(monitor.spark.table(monitor.table_name(table)).dtypes)
    frame = monitor.spark.createDataFrame([tuple(row.values())], ", ".join(f"`{c}` {types[c]}" for c in row))
    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in key)
    sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
    monitor.spark.sql(f"MERGE INTO {monitor.table_name(table)} t USING {{src}} s ON {on} "
                      f"WHEN MATCHED THEN UPDATE SET {sets}", src=frame).collect()


def test_a_task_an_operator_stopped_stays_stopped_until_the_catalogue_changes_its_active(monitor):
    project = f"OWN{uuid.uuid4().hex[:8]}"
    assert _initiate(monitor, _spec(project), "2026-04-01") == {0, 1, 2}
    _operator_sets(monitor, "ETLconfigTasks", _spec(project), task_id=2, IsActive=False)

    assert _initiate(monitor, _spec(project), "2026-04-02") == {0, 1}  # the same catalogue: stopped
    assert _active(monitor, "ETLconfigTasks", _spec(project)) == {0: True, 1: True, 2: False}

    # the catalogue's own active changes: it switches the task (1 off; 2 was off already)
    assert _initiate(monitor, _spec(project, t1=False, t2=False), "2026-04-03") == {0}
    _operator_sets(monitor, "ETLconfigTasks", _spec(project), task_id=1, IsActive=True)  # the operator's word again
    assert _initiate(monitor, _spec(project, t1=False, t2=False), "2026-04-04") == {0, 1}
    assert _initiate(monitor, _spec(project), "2026-04-05") == {0, 1, 2}  # both back on in the catalogue


def test_a_process_an_operator_stopped_stays_stopped_until_the_catalogue_changes_its_active(monitor):
    project = f"OWN{uuid.uuid4().hex[:8]}"
    assert _initiate(monitor, _spec(project), "2026-04-01") == {0, 1, 2}
    _operator_sets(monitor, "ETLconfigProcess", _spec(project), IsActive=False)

    with pytest.raises(ValidationError, match="the process is inactive"):  # the same catalogue: stopped
        _initiate(monitor, _spec(project), "2026-04-02")
    assert _active(monitor, "ETLconfigProcess", _spec(project)) is False

    with pytest.raises(ValidationError, match="the process is inactive"):  # the catalogue stops it too
        _initiate(monitor, _spec(project, active=False), "2026-04-03")
    assert _initiate(monitor, _spec(project), "2026-04-04") == {0, 1, 2}  # and starts it: its value changed
    assert _active(monitor, "ETLconfigProcess", _spec(project)) is True


def test_a_row_registered_before_catalogue_active_existed_keeps_its_is_active(monitor):
    """An upgrade: the first catalogue registration of a row with CatalogueActive NULL keeps its IsActive
    and records the catalogue's value, which a later change of the catalogue then moves from."""
    project = f"OWN{uuid.uuid4().hex[:8]}"
    _initiate(monitor, _spec(project), "2026-04-01")
    _operator_sets(monitor, "ETLconfigTasks", _spec(project), task_id=2, IsActive=False, CatalogueActive=None)

    assert _initiate(monitor, _spec(project), "2026-04-02") == {0, 1}
    tasks = monitor.spark.table(monitor.table_name("ETLconfigTasks"))
    (recorded,) = tasks.where((tasks["ProjectCode"] == project) & (tasks["TaskID"] == 2)).collect()
    assert (recorded.IsActive, recorded.CatalogueActive) == (False, True)
    _initiate(monitor, _spec(project, t2=False), "2026-04-03")
    assert _initiate(monitor, _spec(project), "2026-04-04") == {0, 1, 2}


def test_an_explicit_is_active_applies_its_value_whatever_the_catalogue_said(monitor):
    project = f"OWN{uuid.uuid4().hex[:8]}"
    spec = _spec(project, t2=False)
    _initiate(monitor, spec, "2026-04-01")
    monitor.register_task(project, "OWNED", 2, 1, 2, "Load 2", "PYTHON", is_active=True)
    assert _active(monitor, "ETLconfigTasks", spec)[2] is True
    assert _initiate(monitor, spec, "2026-04-02") == {0, 1, 2}  # the catalogue's unchanged false: kept on
    monitor.register_task(project, "OWNED", 2, 1, 2, "Load 2", "PYTHON", is_active=False)
    assert _active(monitor, "ETLconfigTasks", spec)[2] is False
