"""Hostile strings (quotes, backslashes, newlines, ``${x}``, ``--``, backticks, braces, unicode) go through
every seed-shaped call, passed positionally in the seed's order, and come back intact from the tables
and views. The seed pastes them into SQL; we must not."""

from __future__ import annotations

import inspect
import uuid
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from tests.conftest import DAY
from tests.test_safety import HOSTILE


def rows(monitor, table, **equals) -> list:
    frame = monitor.spark.table(monitor.table_name(table))
    for column, value in equals.items():
        frame = frame.where(F.col(column) == value)
    return frame.collect()


def by_task(frame) -> dict:
    return {r.TaskID: r for r in frame.collect()}


BATCHES = {"register_organisation": "organisations", "register_project": "projects",
           "register_process": "processes", "register_task": "tasks", "register_parameter": "parameters"}


def _names() -> SimpleNamespace:
    """A fresh organisation, project and process, named and described with hostile values."""
    tag = uuid.uuid4().hex[:8]
    return SimpleNamespace(
        org=f"{HOSTILE[0]} {tag}", project=f"{HOSTILE[6]} {tag}", load=HOSTILE[7],
        org_name=HOSTILE[1], org_description=HOSTILE[3],
        project_name=HOSTILE[4], project_description=HOSTILE[5],
        process_name=HOSTILE[8], process_description=HOSTILE[9], owner=HOSTILE[2],
        task_name=HOSTILE[3] + HOSTILE[8], source_identifier=HOSTILE[2], task_description=HOSTILE[4] + HOSTILE[9],
        mask=HOSTILE[0] + HOSTILE[5], extension=".c`s'v", in_path=HOSTILE[6], out_path=HOSTILE[7] + HOSTILE[1],
        date_param=HOSTILE[5], id_param=HOSTILE[4], flag_param=HOSTILE[8],
        date_description=HOSTILE[1] + HOSTILE[2], id_description=HOSTILE[3], flag_description=HOSTILE[9],
    )


def _registrations(h: SimpleNamespace) -> list[tuple[str, tuple]]:
    """The seed's registration calls for ``h``, each as (method, positional arguments)."""
    return [
        ("register_organisation", (h.org, h.org_name, h.org_description)),
        ("register_project", (h.project, h.project_name, h.project_description, h.org)),
        ("register_process", (h.project, h.load, h.process_name, h.process_description, h.owner, "D")),
        ("register_task", (h.project, h.load, 0, 0, 0, HOSTILE[0], "DBX_NOTEBOOK")),
        ("register_task", (h.project, h.load, 1, 1, 2, h.task_name, "DBX_NOTEBOOK", h.source_identifier,
                           h.date_param, h.task_description, "D", True, h.mask, h.extension, h.in_path,
                           h.out_path)),
        ("register_parameter", (h.project, h.load, h.date_param, "DELTA_DATE", h.date_description,
                                "2026-01-01T00:00:00")),
        ("register_parameter", (h.project, h.load, h.id_param, "DELTA_ID", h.id_description, None, 7)),
        ("register_parameter", (h.project, h.load, h.flag_param, "FLAG", h.flag_description, None, None, False)),
        ("register_parameter", (h.project, h.load, "SYSDT", "SYSTEM", HOSTILE[6])),
    ]


@pytest.fixture
def hostile(monitor):
    """A fresh hostile process, registered in one batch with exactly the values of the seed's calls (the
    first test makes those calls one by one, positionally)."""
    h = _names()
    batches: dict[str, list[dict]] = {}
    for method, args in _registrations(h):
        bound = inspect.signature(getattr(monitor, method)).bind(*args)
        bound.apply_defaults()
        batches.setdefault(BATCHES[method], []).append(dict(bound.arguments))
    monitor.register_many(**batches)
    return h


def test_registrations_round_trip_through_the_config_tables(monitor):
    h = _names()
    for method, args in _registrations(h):
        getattr(monitor, method)(*args)
    (org,) = rows(monitor, "ETLOrganisation", OrganisationCode=h.org)
    assert (org.OrganisationName, org.OrganisationDescription) == (h.org_name, h.org_description)
    (project,) = rows(monitor, "ETLconfigProject", ProjectCode=h.project)
    assert (project.ProjectName, project.ProjectDescription, project.OrganisationCode) == (
        h.project_name, h.project_description, h.org)
    (process,) = rows(monitor, "ETLconfigProcess", ProjectCode=h.project, ProcessLoad=h.load)
    assert (process.ProcessName, process.ProcessDescription, process.ProcessOwner) == (
        h.process_name, h.process_description, h.owner)
    (task,) = rows(monitor, "ETLconfigTasks", ProjectCode=h.project, ProcessLoad=h.load, TaskID=1)
    assert (task.TaskName, task.SourceIdentifier, task.SourceSystemCode, task.TaskDescription) == (
        h.task_name, h.source_identifier, h.date_param, h.task_description)
    assert (task.FileNameMask, task.FileExtension, task.InFilePath, task.OutFilePath) == (
        h.mask, h.extension, h.in_path, h.out_path)
    parameters = {r.ParameterName: r.ParameterDescription
                  for r in rows(monitor, "ETLconfigParameters", ProjectCode=h.project, ProcessLoad=h.load)}
    assert parameters == {h.date_param: h.date_description, h.id_param: h.id_description,
                          h.flag_param: h.flag_description, "SYSDT": HOSTILE[6]}


def test_re_registration_updates_with_hostile_values(monitor, hostile):
    h = hostile
    monitor.register_task(h.project, h.load, 1, 1, 2, HOSTILE[9], "DBX_NOTEBOOK", HOSTILE[4], h.date_param,
                          HOSTILE[2])
    monitor.register_organisation(h.org, HOSTILE[5], HOSTILE[0])
    (task,) = rows(monitor, "ETLconfigTasks", ProjectCode=h.project, ProcessLoad=h.load, TaskID=1)
    assert (task.TaskName, task.SourceIdentifier, task.TaskDescription) == (HOSTILE[9], HOSTILE[4], HOSTILE[2])
    (org,) = rows(monitor, "ETLOrganisation", OrganisationCode=h.org)
    assert (org.OrganisationName, org.OrganisationDescription) == (HOSTILE[5], HOSTILE[0])


def test_v_watermarks_shows_hostile_names_descriptions_and_linked_task(monitor, hostile):
    h = hostile
    marks = {r.ParameterName: r for r in rows(monitor, "v_watermarks", ProjectCode=h.project, ProcessLoad=h.load)}
    assert set(marks) == {h.date_param, h.id_param, h.flag_param, "SYSDT"}
    assert (marks[h.date_param].ParameterDescription, marks[h.date_param].LinkedTaskName) == (
        h.date_description, h.task_name)
    assert marks[h.date_param].ActiveValue.startswith("2026-01-01")
    assert (marks[h.id_param].ValueINT, marks[h.flag_param].ValueBIT) == (7, False)


def test_a_run_round_trips_hostile_values_through_steps_status_and_views(monitor, hostile):
    h, m = hostile, monitor
    run = m.generate_execution_id()
    m.generate_execution_steps(run, h.project, h.load, DAY)

    pending = by_task(m.get_pending_tasks(run, h.project, h.load, DAY))
    step = pending[1]
    assert (step.ProjectCode, step.ProcessLoad, step.TaskName, step.SourceSystemCode) == (
        h.project, h.load, h.task_name, h.date_param)
    assert (step.FullFileName, step.InFilePath, step.OutFilePath) == (
        f"{h.mask}_20260409{h.extension}", h.in_path, h.out_path)
    assert (step.WatermarkType, step.WatermarkValue[:10]) == ("DELTA_DATE", "2026-01-01")
    (one,) = m.get_pending_tasks(run, h.project, h.load, DAY, 2, 1, 1).collect()  # sequence, workflow, task
    assert (one.Status, one.TaskName) == ("NQUE", h.task_name)

    assert m.task_status(run, h.project, h.load, DAY, 1, 2, 1) == "NQUE"  # workflow, sequence, task
    m.skip_task(run, h.project, h.load, 1, 1, 2, DAY)  # task, workflow, sequence
    assert m.task_status(run, h.project, h.load, DAY, 1, 2, 1) == "NULL"
    m.unskip_task(run, h.project, h.load, 1, 1, 2, DAY)
    assert m.task_status(run, h.project, h.load, DAY, 1, 2, 1) == "NQUE"

    with m.task(run, h.project, h.load, 0, 0, 0, DAY, "DBX_NOTEBOOK", HOSTILE[9], "INFO", HOSTILE[8]) as guard:
        assert guard.active
    assert m.start_task(run, h.project, h.load, 1, 2, 1, DAY, None, "ADF_PIPELINE", HOSTILE[0]) == 0
    m.fail_task(run, h.project, h.load, 1, 2, 1, DAY, None, HOSTILE[3] + HOSTILE[6], HOSTILE[1])

    steps = by_task(m.get_status(h.project, h.load, DAY, run))
    assert (steps[0].Status, steps[0].LogMessage, steps[0].LogCode) == ("NQUE", HOSTILE[9], HOSTILE[8])
    assert (steps[1].Status, steps[1].TaskName, steps[1].LogMessage, steps[1].LogCode, steps[1].LogType) == (
        "FAIL", h.task_name, HOSTILE[3] + HOSTILE[6], HOSTILE[1], "ERROR")
    (detail,) = rows(m, "v_taskDetail", ExecutionID=run, TaskID=1)
    assert (detail.ProjectCode, detail.ProcessLoad, detail.SourceRunID, detail.FullFileName) == (
        h.project, h.load, HOSTILE[0], f"{h.mask}_20260409{h.extension}")
    (failure,) = rows(m, "v_currentFailures", ExecutionID=run)
    assert (failure.TaskName, failure.LogMessage, failure.SourceRunID) == (
        h.task_name, HOSTILE[3] + HOSTILE[6], HOSTILE[0])
    blockers = {r.TaskID: r for r in rows(m, "v_mandatoryBlockers", ExecutionID=run)}
    assert (blockers[1].SourceSystemCode, blockers[1].LogMessage) == (h.date_param, HOSTILE[3] + HOSTILE[6])
    (process,) = rows(m, "v_processStatus", ProjectCode=h.project, ProcessLoad=h.load)
    assert (process.ProcessName, process.ProcessOwner) == (h.process_name, h.owner)


def test_a_retry_ends_done_advances_the_hostile_watermark_and_replays_with_a_hostile_remark(monitor, hostile):
    h, m = hostile, monitor
    first = m.generate_execution_id()
    m.generate_execution_steps(first, h.project, h.load, DAY)
    m.start_task(first, h.project, h.load, 1, 2, 1, DAY)
    m.end_task(first, h.project, h.load, 1, 2, 1, DAY, None, "FAIL", HOSTILE[2], "ERROR", HOSTILE[4])
    retry = m.generate_execution_id()
    m.generate_execution_steps(retry, h.project, h.load, DAY)

    assert m.start_task(retry, h.project, h.load, 1, 2, 1, DAY, None, "DBX_NOTEBOOK", HOSTILE[5]) == 1
    m.end_task(retry, h.project, h.load, 1, 2, 1, DAY, None, "DONE", HOSTILE[7] + HOSTILE[3], "INFO", HOSTILE[6])
    (row,) = m.get_status(h.project, h.load, DAY, retry, 1, 2, 1).collect()  # workflow, sequence, task
    assert (row.Status, row.Attempts, row.LogMessage, row.LogCode) == ("DONE", 1, HOSTILE[7] + HOSTILE[3], HOSTILE[6])
    assert m.get_active_watermark(h.project, h.load, h.date_param) == row.StartTime

    m.status_reset(h.project, h.load, DAY, retry, 1, 2, 1, None, HOSTILE[9] + HOSTILE[4])
    (row,) = m.get_status(h.project, h.load, DAY, retry, 1, 2, 1).collect()
    assert (row.Status, row.LogMessage) == ("RQUE", HOSTILE[9] + HOSTILE[4])
    summary = m.get_status(h.project, h.load, DAY, None, None, None, None, None, True)  # summary_mode
    summary = {r.Attempts: r for r in summary.collect()}
    assert sorted(summary) == [0, 1]
    assert (summary[1].ProjectCode, summary[1].ProcessLoad) == (h.project, h.load)
    runs = rows(m, "v_runSummary", ProjectCode=h.project, ProcessLoad=h.load)
    assert {r.ExecutionID for r in runs} == {first, retry}


def test_advance_and_read_watermarks_by_hostile_parameter_names(monitor, hostile):
    h, m = hostile, monitor
    m.advance_watermark(h.project, h.load, h.id_param, None, 42)
    assert m.get_active_watermark(h.project, h.load, h.id_param) == 42
    m.advance_watermark(h.project, h.load, h.date_param, "2026-02-03T04:05:06")
    moved = m.get_active_watermark(h.project, h.load, h.date_param)
    assert (moved.year, moved.month, moved.day) == (2026, 2, 3)
    assert m.get_active_watermark(h.project, h.load, h.flag_param) is False


def test_historic_live_and_bulk_modes_on_a_hostile_process(monitor, hostile):
    h, m = hostile, monitor
    m.set_processing_mode(h.project, h.load, False, True, "2026-01-05")  # historic
    marks = {r.ParameterName: r for r in rows(m, "v_watermarks", ProjectCode=h.project, ProcessLoad=h.load)}
    assert marks["SYSDT"].WatermarkState.startswith("HISTORIC: 2026-01-05")
    assert marks["SYSDT"].ParameterDescription == HOSTILE[6]

    m.set_processing_mode(h.project, h.load, True)  # bulk, and live again
    marks = {r.ParameterName: r for r in rows(m, "v_watermarks", ProjectCode=h.project, ProcessLoad=h.load)}
    assert marks["SYSDT"].WatermarkState == "LIVE DATE"
    assert (marks[h.date_param].WatermarkState, marks[h.id_param].WatermarkState) == ("BULK MODE", "BULK MODE")
    assert (marks[h.date_param].ParameterDescription, marks[h.id_param].ParameterDescription) == (
        h.date_description, h.id_description)


def test_set_processing_mode_sets_one_hostile_named_parameter(monitor, hostile):
    h, m = hostile, monitor
    m.set_processing_mode(h.project, h.load, False, False, None, h.flag_param, None, None, True)
    assert m.get_active_watermark(h.project, h.load, h.flag_param) is True
    m.set_processing_mode(h.project, h.load, False, False, None, h.id_param, None, 9)
    assert m.get_active_watermark(h.project, h.load, h.id_param) == 9
    (flag,) = rows(m, "v_watermarks", ProjectCode=h.project, ProcessLoad=h.load, ParameterName=h.flag_param)
    assert (flag.ValueBIT, flag.ParameterDescription) == (True, h.flag_description)
