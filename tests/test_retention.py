"""Retention: old receipts archived (never a running execution's), OPTIMIZE, VACUUM, the Dagster job.

The tests share one schema of their own (not ``etl_test``), so its counts are exactly theirs. Every
maintenance run archives everything then eligible, so each test that needs old receipts appends its
own and finds exactly those archived.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DefaultScheduleStatus

from etl_monitor_dagster import ETLMonitorFramework, ETLMonitorResource, ValidationError
from etl_monitor_dagster.core import schema as S
from etl_monitor_dagster.core.enums import EventType
from etl_monitor_dagster.core.monitor import layout
from etl_monitor_dagster.core.monitor.maintenance import RETENTION_CHECK, MaintenanceReport, MaintenanceSettings
from etl_monitor_dagster.core.receipts import receipt
from etl_monitor_dagster.dagster.definitions import build_definitions
from etl_monitor_dagster.dagster.maintenance import JOB_NAME, SCHEDULE_NAME, MaintenanceSchedule
from tests.dagster_location import CATALOGUE

DAY = "2026-04-09"
PROJECT, LOAD = "RETAIN", "LOAD"


def old_receipts(execution_id: str | None, n: int, days: int = 200) -> list[dict]:
    """``n`` receipts logged ``days`` ago (written directly: ETLsysLogs refuses to be backdated)."""
    at = datetime.now(UTC) - timedelta(days=days)
    return [receipt(EventType.TASK_DONE, project_code=PROJECT, process_load=LOAD, execution_id=execution_id)
            | {"LogTimeUTC": at - timedelta(minutes=i), "Message": f'{{"old": {i}, "run": "{execution_id}"}}'}
            for i in range(n)]


def logs(m: ETLMonitorFramework) -> dict[int, dict]:
    return {r["_ID"]: r.asDict() for r in m.spark.table(m.table_name("ETLsysLogs")).collect()}


def archive(m: ETLMonitorFramework) -> list[dict]:
    return [r.asDict() for r in m.spark.table(m.table_name("ETLsysLogsArchive")).collect()]


def version(m: ETLMonitorFramework, table: str) -> int:
    return m.spark.sql(f"DESCRIBE HISTORY {m.table_name(table)} LIMIT 1").collect()[0]["version"]


def delete_refused(m: ETLMonitorFramework) -> bool:
    try:
        m.spark.sql(f"DELETE FROM {m.table_name('ETLsysLogs')} WHERE _ID < 0").collect()
    except Exception as exc:
        return "DELTA_CANNOT_MODIFY_APPEND_ONLY" in str(exc)
    return False


@dataclass
class Scenario:
    monitor: ETLMonitorFramework
    ended: str  # an execution whose steps all ended
    running: str  # an execution with a running step
    before: dict[int, dict]  # ETLsysLogs before the first maintenance run
    old_ended: set[int]  # _IDs of the ended execution's (and no execution's) old receipts
    report: MaintenanceReport
    after: dict[int, dict]


@pytest.fixture(scope="module")
def scenario(spark) -> Scenario:
    """A schema of our own with old and recent receipts of an ended execution, old receipts of no
    execution, and old and recent receipts of a running one; then one maintenance run."""
    m = ETLMonitorFramework(spark, schema=f"etl_retention_{uuid.uuid4().hex[:8]}", updated_by="pytest")
    m.setup()
    m.register_many(
        processes=[{"project_code": PROJECT, "process_load": LOAD, "name": "Retention", "load_frequency": "D"}],
        tasks=[{"project_code": PROJECT, "process_load": LOAD, "task_id": 0, "workflow_id": 0, "sequence_id": 0,
                "task_name": "Initiation", "source_type": "NONE"},
               {"project_code": PROJECT, "process_load": LOAD, "task_id": 1, "workflow_id": 1, "sequence_id": 2,
                "task_name": "Load", "source_type": "PYTHON"}])
    ended, running = m.generate_execution_id(), m.generate_execution_id()
    m.generate_execution_steps(ended, PROJECT, LOAD, DAY)
    for task_id, workflow_id, sequence_id in ((0, 0, 0), (1, 1, 2)):
        m.start_task(ended, PROJECT, LOAD, task_id, sequence_id, workflow_id, DAY)
        m.end_task(ended, PROJECT, LOAD, task_id, sequence_id, workflow_id, DAY)
    m.generate_execution_steps(running, PROJECT, LOAD, "2026-04-10")
    m.start_task(running, PROJECT, LOAD, 0, 0, 0, "2026-04-10")
    m.start_task(running, PROJECT, LOAD, 1, 2, 1, "2026-04-10")
    store = m._store
    store.append_receipts(old_receipts(ended, 4) + old_receipts(None, 2) + old_receipts(running, 3))
    for _ in range(6):  # many small files for OPTIMIZE to compact: each fold appends one to ETLsysLogs
        store.append_receipts(old_receipts(ended, 1, days=1))
        m.fold()
    before = logs(m)
    old_ended = {i for i, r in before.items() if r["ExecutionID"] in (ended, None) and '"old"' in r["Message"]
                 and r["LogTimeUTC"] < datetime.now() - timedelta(days=100)}
    report = m.maintenance.run(MaintenanceSettings(archive_after_days=90))
    return Scenario(m, ended, running, before, old_ended, report, logs(m))


def test_setup_creates_the_archive_table_next_to_the_eight(scenario):
    m = scenario.monitor
    columns = m.spark.table(m.table_name("ETLsysLogsArchive")).columns
    assert columns == [*m.spark.table(m.table_name("ETLsysLogs")).columns, "ArchivedOn"]


def test_old_receipts_of_ended_executions_move_to_the_archive_and_the_rest_stay(scenario):
    s = scenario
    assert len(s.old_ended) == 6
    archived = {r["_ID"]: r for r in archive(s.monitor)}
    assert set(archived) == s.old_ended  # same ids
    assert all(archived[i]["Message"] == s.before[i]["Message"] for i in s.old_ended)
    assert all(archived[i]["ArchivedOn"] is not None for i in s.old_ended)
    assert set(s.after) == set(s.before) - s.old_ended  # recent and running-execution receipts kept
    running_old = {i for i, r in s.before.items() if r["ExecutionID"] == s.running and '"old"' in r["Message"]}
    assert len(running_old) == 3 and running_old <= set(s.after)
    assert len(s.before) == len(s.after) + len(archived)  # nothing lost
    assert (s.report.rows_archived, s.report.rows_copied, s.report.receipts_kept) == (6, 6, len(s.after))


def test_append_only_is_back_after_the_run(scenario):
    assert layout.table_properties(scenario.monitor._store, S.SYSLOGS)["delta.appendOnly"] == "true"
    assert delete_refused(scenario.monitor)


def test_optimize_compacts_the_small_receipt_files_and_the_report_has_the_figures(scenario):
    r = scenario.report
    assert set(r.files_before) == set(r.files_after) == {"ETLProcessingSteps", "ETLsysLogs", "ETLEventLog",
                                                         "ETLsysLogsArchive"}
    assert r.files_before["ETLsysLogs"] > 5
    assert r.files_after["ETLsysLogs"] == 1
    assert r.files_after["ETLProcessingSteps"] <= r.files_before["ETLProcessingSteps"]
    assert set(r.files_vacuumed) == set(r.files_before)  # VACUUM ran on each, RETAIN 168 HOURS
    assert r.seconds > 0
    figures = r.figures()
    assert figures["files_before_ETLsysLogs"] == r.files_before["ETLsysLogs"]
    assert figures["rows_archived"] == 6


def test_a_second_run_archives_nothing_and_doubles_nothing(scenario):
    m = scenario.monitor
    again = m.maintenance.run(MaintenanceSettings(optimize=False, vacuum=False))
    assert (again.rows_archived, again.rows_copied) == (0, 0)
    ids = [r["_ID"] for r in archive(m)]
    assert len(ids) == len(set(ids)) == again.archive_rows
    assert set(logs(m)) == set(scenario.after)


def test_a_crash_between_copy_and_delete_ends_with_each_receipt_once_in_the_archive(scenario):
    m = scenario.monitor
    m._store.append_receipts(old_receipts(scenario.ended, 3, days=120))
    m.fold()
    new = {i for i, r in logs(m).items() if r["LogTimeUTC"] < datetime.now() - timedelta(days=100)
           and r["ExecutionID"] == scenario.ended}
    assert len(new) == 3
    copied = m.maintenance._copy(datetime.now(UTC) - timedelta(days=90))  # the first half, then "crash"
    assert copied == 3
    assert new <= set(logs(m)) and new <= {r["_ID"] for r in archive(m)}  # in both tables
    report = m.maintenance.run(MaintenanceSettings(optimize=False, vacuum=False))
    assert report.files_vacuumed == {}  # VACUUM switched off
    assert (report.rows_copied, report.rows_archived) == (0, 3)  # the delete finished, nothing copied twice
    ids = [r["_ID"] for r in archive(m)]
    assert len(ids) == len(set(ids)) and new <= set(ids)
    assert not new & set(logs(m))


def test_append_only_left_lifted_by_a_crash_is_restored_by_setup(scenario):
    m = scenario.monitor
    layout.set_append_only(m._store, False)  # what a run that died inside its delete leaves
    assert not delete_refused(m)
    m.setup()
    assert delete_refused(m)


def test_a_retention_below_the_safety_check_is_refused_naming_the_setting_and_writes_nothing(scenario):
    m = scenario.monitor
    m._store.append_receipts(old_receipts(scenario.ended, 1))
    versions = {t: version(m, t) for t in ("ETLsysLogs", "ETLsysLogsArchive", "ETLProcessingSteps")}
    with pytest.raises(ValidationError) as refused:
        m.maintenance.run(MaintenanceSettings(vacuum_retain_hours=0))
    assert refused.value.field == "vacuum_retain_hours" and refused.value.value == 0
    assert RETENTION_CHECK in str(refused.value)
    assert {t: version(m, t) for t in versions} == versions


def test_vacuum_with_the_check_lifted_on_the_session_deletes_the_compacted_files(scenario, spark_server):
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(spark_server.url).create()  # its own session: the setting stays here
    try:
        session.conf.set(RETENTION_CHECK, "false")
        m = ETLMonitorFramework(session, schema=scenario.monitor.schema, updated_by="pytest")
        for _ in range(3):
            m._store.append_receipts(old_receipts(None, 1, days=1))
            m.fold()
        report = m.maintenance.run(MaintenanceSettings(vacuum_retain_hours=0))
        assert report.files_before["ETLsysLogs"] > report.files_after["ETLsysLogs"] == 1
        assert report.files_vacuumed["ETLsysLogs"] >= report.files_before["ETLsysLogs"]  # compacted ones gone
        assert m.spark.table(m.table_name("ETLsysLogs")).count() == report.receipts_kept
    finally:
        session.stop()


def test_bad_settings_are_refused_naming_the_field():
    for kwargs, name in (({"archive_after_days": -1}, "archive_after_days"),
                         ({"archive_after_days": 0}, "archive_after_days"),
                         ({"vacuum_retain_hours": "24"}, "vacuum_retain_hours"),
                         ({"vacuum_retain_hours": -5}, "vacuum_retain_hours"),
                         ({"vacuum_retain_hours": 2.5}, "vacuum_retain_hours"),
                         ({"optimize": "yes"}, "optimize"),
                         ({"vacuum": 1}, "vacuum")):
        with pytest.raises(ValidationError) as refused:
            MaintenanceSettings(**kwargs)
        assert refused.value.field == name


def test_a_run_with_bad_settings_writes_nothing(scenario):
    m = scenario.monitor
    versions = {t: version(m, t) for t in ("ETLsysLogs", "ETLsysLogsArchive")}
    with pytest.raises(ValidationError) as refused:
        m.maintenance.run({"archive_after_days": -1})  # type: ignore[arg-type]
    assert refused.value.field == "settings"
    assert {t: version(m, t) for t in versions} == versions


def test_the_schedule_is_in_the_definitions_weekly_and_stopped_with_its_cron_configurable():
    monitor = ETLMonitorResource(engine="connect", spark_remote="sc://127.0.0.1:1", schema_name="etl")
    defs = build_definitions(CATALOGUE, monitor=monitor)
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * 0", "UTC")
    assert schedule.default_status is DefaultScheduleStatus.STOPPED
    assert schedule.job_name == JOB_NAME
    custom = build_definitions(CATALOGUE, monitor=monitor,
                               maintenance=MaintenanceSchedule(MaintenanceSettings(30), cron="30 2 * * 6"))
    assert custom.resolve_schedule_def(SCHEDULE_NAME).cron_schedule == "30 2 * * 6"
    job = custom.resolve_job_def(JOB_NAME)
    assert job.run_config["ops"]["maintain_monitor_tables"]["config"]["archive_after_days"] == 30  # type: ignore[index]


def test_the_dagster_job_runs_and_its_output_metadata_carries_the_figures(scenario, spark_server):
    m = scenario.monitor
    m._store.append_receipts(old_receipts(scenario.ended, 2, days=40))
    m.fold()
    due = sum(1 for r in logs(m).values() if r["ExecutionID"] != scenario.running
              and r["LogTimeUTC"] < datetime.now() - timedelta(days=31))
    assert due >= 2
    resource = ETLMonitorResource(engine="connect", spark_remote=spark_server.url, schema_name=m.schema,
                                  updated_by="pytest")
    defs = build_definitions(CATALOGUE, monitor=resource,
                             maintenance=MaintenanceSettings(archive_after_days=30, vacuum=False))
    result = defs.resolve_job_def(JOB_NAME).execute_in_process()
    assert result.success
    (output,) = [e for e in result.all_events if e.is_successful_output]
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert metadata["rows_archived"] == due
    assert metadata["files_after_ETLsysLogs"] == 1
    assert {"files_before_ETLsysLogs", "files_before_ETLProcessingSteps", "files_before_ETLsysLogsArchive",
            "receipts_kept", "seconds"} <= set(metadata)
    assert not any(k.startswith("files_vacuumed") for k in metadata)  # the job's vacuum=False reached the run
    assert result.output_for_node("maintain_monitor_tables")["rows_archived"] == due
