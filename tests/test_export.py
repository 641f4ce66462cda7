"""export_catalogue / ``export-catalogue``: registered processes written out as catalogue files that
load, and that register back to the same rows."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from etl_monitor_dagster import ValidationError
from etl_monitor_dagster.core.catalogue import CatalogueErrors, dagster_name, load_catalogue, registration
from etl_monitor_dagster.core.export import _file_names, export_catalogue

REPO = Path(__file__).resolve().parents[1]
# Set aside when rows are compared: the audit stamps, and CatalogueActive (what the last catalogue
# registration said of IsActive: a registration of the exported files records it, IsActive is compared).
SET_ASIDE = {"CreatedOn", "CreatedBy", "LastUpdatedOn", "LastUpdatedBy", "CatalogueActive"}
REGISTRY = ("ETLconfigProcess", "ETLconfigTasks", "ETLconfigParameters")
CUSTOM_STAGE = 77  # no other test uses it: tests share one schema
# Quotes, YAML syntax, newlines, a tab, NEL (which PyYAML's single quotes lose), non-Latin text.
HOSTILE = "O'Brien's \"quoted\" — naïve café ✓ 日本語\nline 2: # not a comment\n- not a list\ttab \\ back\x85nel"

FACTORY = {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg-hr", "name": "adf-hr"}

def _project() -> str:
    return f"X{uuid.uuid4().hex[:10]}"


def _rows(monitor, table: str, project: str) -> list[dict]:
    """The project's rows of one registry table, SET_ASIDE columns aside, in key order."""
    frame = monitor.spark.table(monitor.table_name(table))
    rows = [{k: v for k, v in r.asDict().items() if k not in SET_ASIDE}
            for r in frame.where(frame["ProjectCode"] == project).collect()]
    return sorted(rows, key=lambda r: (r["ProcessLoad"], r.get("WorkFlowID", 0), r.get("TaskID", 0),
                                       r.get("ParameterName", "")))


def _snapshot(monitor, project: str) -> dict[str, list[dict]]:
    return {table: _rows(monitor, table, project) for table in REGISTRY}


def _merge(monitor, table: str, row: dict, when: str) -> None:
    """MERGE one row into a table as another writer (the seed, a user's SQL) would; values bound."""
    types = dict(monitor.spark.table(monitor.table_name(table)).dtypes)
    frame = monitor.spark.createDataFrame([tuple(row.values())], ", ".join(f"`{c}` {types[c]}" for c in row))
    monitor.spark.sql(f"MERGE INTO {monitor.table_name(table)} t USING {{src}} s ON {when}", src=frame).collect()


def _overwrite(monitor, table: str, key: dict, **columns) -> None:
    """Set columns of one registry row directly, e.g. the seed's '' SourceType."""
    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in key)
    sets = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
    _merge(monitor, table, {**key, **columns}, f"{on} WHEN MATCHED THEN UPDATE SET {sets}")


def _task_key(project: str, load: str, workflow: int, task: int) -> dict:
    return {"ProjectCode": project, "ProcessLoad": load, "WorkFlowID": workflow, "TaskID": task}


@pytest.fixture(scope="module")
def custom_stage(monitor) -> int:
    """A custom stage (>= 10) in ETLconfigSequence, as a team adds one before registering its tasks."""
    row = {"SequenceID": CUSTOM_STAGE, "SequenceCode": "EXPORT_FILES", "SequenceName": "Export files",
           "SequenceDescription": "Custom stage of the export tests", "SortOrder": CUSTOM_STAGE, "IsActive": True}
    columns = ", ".join(f"`{c}`" for c in row)
    _merge(monitor, "ETLconfigSequence", row, "t.SequenceID = s.SequenceID WHEN NOT MATCHED THEN INSERT "
           f"({columns}) VALUES ({', '.join(f's.`{c}`' for c in row)})")
    return CUSTOM_STAGE


def _register_everything(monitor, project: str, load: str, stage: int) -> None:
    """A process using every column: custom stage, watermarks, file mask, SLA, an inactive task,
    a task frequency of its own, hostile text."""
    owner = {"project_code": project, "process_load": load}
    monitor.register_many(
        processes=[{**owner, "name": f"Payroll {HOSTILE}", "description": HOSTILE, "owner": "yes",
                    "load_frequency": "M"}],
        parameters=[{**owner, "parameter_name": "SYSDT", "parameter_type": "SYSTEM"},
                    {**owner, "parameter_name": "LastChange", "parameter_type": "DELTA_DATE", "description": HOSTILE,
                     "value_datetime": datetime(2026, 3, 31, 23, 59)},
                    {**owner, "parameter_name": "LastId", "parameter_type": "DELTA_ID", "value_int": 41},
                    {**owner, "parameter_name": "FullReload", "parameter_type": "FLAG", "value_bit": True}],
        tasks=[{**owner, "task_id": 0, "workflow_id": 0, "sequence_id": 0, "task_name": "Initiation",
                "source_type": "NONE", "task_mandatory": True, "load_frequency": "M"},
               {**owner, "task_id": 1, "workflow_id": 1, "sequence_id": 2, "task_name": "Load 'employees' ✓",
                "source_type": "PYTHON", "source_identifier": "tests.tasks:succeed", "source_system_code": "LastChange",
                "task_description": HOSTILE, "task_mandatory": True, "sla_seconds": 300,
                "file_name_mask": "payroll_uk", "file_extension": ".csv", "in_file_path": "abfss://raw@lake/in/",
                "out_file_path": "abfss://cur@lake/out/"},
               {**owner, "task_id": 2, "workflow_id": 1, "sequence_id": stage, "task_name": "Ship files",
                "source_type": "ADF_PIPELINE", "source_identifier": "pl_ship", "load_frequency": "D",
                "is_active": False},
               {**owner, "task_id": 3, "workflow_id": 2, "sequence_id": 6, "task_name": "Score",
                "source_type": "DBX_NOTEBOOK", "source_identifier": "/Repos/hr/score", "load_frequency": "M",
                "source_system_code": "LastId"},
               {**owner, "task_id": 4, "workflow_id": 2, "sequence_id": 5, "task_name": "Nightly job",
                "source_type": "DBX_JOB", "source_identifier": "123"},
               {**owner, "task_id": 5, "workflow_id": 1, "sequence_id": 3, "task_name": "Flow",
                "source_type": "DATAFLOW", "source_identifier": "df_flow", "task_description": "A dataflow"}],
    )


def test_an_exported_process_loads_and_registers_back_to_the_same_rows(monitor, custom_stage, tmp_path):
    project, load = _project(), "Lønn 'Q1'"
    _register_everything(monitor, project, load, custom_stage)
    before = _snapshot(monitor, project)

    (path,) = export_catalogue(monitor, tmp_path, project_code=project, compute={"serverless": True},
                               factory=FACTORY)

    assert path == tmp_path / f"{dagster_name(project)}__{dagster_name(load)}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Exported at ")
    assert f"#   {monitor.table_name('ETLconfigTasks')}\n" in text
    assert "Parameter values are not exported" in text
    document = yaml.safe_load(text)
    assert list(document) == ["project", "process", "name", "description", "owner", "frequency", "compute",
                              "factory", "stages", "parameters", "tasks"]
    assert document["factory"] == FACTORY  # the process has an ADF_PIPELINE task
    assert document["stages"] == [{"id": custom_stage, "code": "EXPORT_FILES", "name": "Export files"}]
    assert document["parameters"][0] == {"name": "FullReload", "type": "FLAG"}  # no value
    tasks = {t["id"]: t for t in document["tasks"]}
    assert [(t["workflow"], t["stage"], t["id"]) for t in document["tasks"]] == [
        (0, 0, 0), (1, 2, 1), (1, 3, 5), (1, custom_stage, 2), (2, 5, 4), (2, 6, 3)]
    assert tasks[0] == {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE",
                        "mandatory": True}
    assert (tasks[2]["frequency"], tasks[2]["active"]) == ("D", False)
    assert "frequency" not in tasks[3]  # the process's: it inherits
    assert tasks[1]["description"] == HOSTILE and document["owner"] == "yes"

    (spec,) = load_catalogue(tmp_path)
    monitor.register_many(**registration([spec]))
    assert _snapshot(monitor, project) == before

    # the file alone carries the process: registered under another code it gives the same rows, a task
    # frequency equal to the process's now inherited (NULL) and the parameters without their values
    other = _project()
    monitor.register_many(**registration([spec.model_copy(update={"project": other})]))
    assert _effective(_snapshot(monitor, other)) == _effective(before)


def _effective(snapshot: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What a registration of the catalogue determines: no codes, values or inherited frequencies."""
    def one(table: str, row: dict) -> dict:
        row = {k: v for k, v in row.items() if k not in ("ProjectCode", "ValueINT", "ValueDateTime", "ValueBIT")}
        if table == "ETLconfigTasks":
            row["LoadFrequency"] = row["LoadFrequency"] or snapshot["ETLconfigProcess"][0]["LoadFrequency"]
        return row
    return {table: [one(table, r) for r in rows] for table, rows in snapshot.items()}


def test_rows_the_seed_wrote_export_without_its_empty_strings_and_register_back_unchanged(monitor, tmp_path):
    seed = pytest.importorskip("etl_monitor").ETLMonitorFramework(monitor.spark, catalog="", schema=monitor.schema)
    project, load = _project(), "EMPLOYEE_MASTER"
    seed.register_process(project_code=project, process_load=load, name="Employee master", load_frequency="D")
    seed.register_task(project_code=project, process_load=load, task_id=0, workflow_id=0, sequence_id=0,
                       task_name="Initiation", source_type="DBX_NOTEBOOK",
                       source_identifier="/Workspace/Repos/hr/00-initiation", task_mandatory=True)
    seed.register_task(project_code=project, process_load=load, task_id=1, workflow_id=1, sequence_id=2,
                       task_name="Load UK", source_type="ADF_PIPELINE", source_identifier="pl_uk",
                       source_system_code="LoadUK", task_mandatory=False)
    seed.register_parameter(project_code=project, process_load=load, parameter_name="LoadUK",
                            parameter_type="DELTA_DATE")
    # an older row: NULL means not mandatory
    _overwrite(monitor, "ETLconfigTasks", _task_key(project, load, 1, 1), TaskMandatory=None)
    before = _snapshot(monitor, project)

    (path,) = export_catalogue(monitor, tmp_path, project_code=project, compute={"existing_cluster_id": "c-1"},
                               factory=FACTORY)

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["compute"] == {"existing_cluster_id": "c-1"}
    assert document["parameters"] == [{"name": "LoadUK", "type": "DELTA_DATE"}]  # '' description left out
    assert document["tasks"][1] == {"id": 1, "workflow": 1, "stage": 2, "name": "Load UK",
                                    "source_type": "ADF_PIPELINE", "source": "pl_uk", "watermark": "LoadUK"}
    monitor.register_many(**registration(load_catalogue(tmp_path)))
    after = _snapshot(monitor, project)
    assert [r["TaskMandatory"] for r in after["ETLconfigTasks"]] == [True, False]  # NULL written as what it meant
    for row in before["ETLconfigTasks"]:
        row["TaskMandatory"] = bool(row["TaskMandatory"])
    assert after == before


def test_an_initiation_task_the_seed_registered_without_a_source_type_exports_as_none(monitor, tmp_path):
    seed = pytest.importorskip("etl_monitor").ETLMonitorFramework(monitor.spark, catalog="", schema=monitor.schema)
    project, load = _project(), "PAYROLL"
    seed.register_process(project_code=project, process_load=load, name="Payroll", load_frequency="D")
    seed.register_task(project_code=project, process_load=load, task_id=0, workflow_id=0, sequence_id=0,
                       task_name="Initiation", task_mandatory=True)

    (path,) = export_catalogue(monitor, tmp_path, project_code=project)

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["tasks"] == [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE",
                                  "mandatory": True}]
    assert load_catalogue(tmp_path)[0].tasks[0].source_type.value == "NONE"


def test_a_process_that_is_no_valid_catalogue_lists_every_problem_and_writes_nothing(make_process, tmp_path):
    process = make_process()
    process.register(tasks=[
        {"task_id": 1, "task_name": "No type", "source_identifier": "tests.tasks:succeed"},
        {"task_id": 2, "task_name": "Relative", "source_type": "DBX_NOTEBOOK", "source_identifier": "nb/score"},
        {"task_id": 3, "task_name": "Fine", "source_identifier": "tests.tasks:succeed"},
    ])
    # no source type, as the seed stores it
    _overwrite(process.monitor, "ETLconfigTasks", _task_key(process.project, process.load, 1, 1), SourceType="")
    # a second, valid process of the project: it is not written either
    second = make_process(project=process.project, load="SECOND")
    second.register(tasks=[{"task_id": 1, "task_name": "Fine", "source_identifier": "tests.tasks:succeed"}])
    target = tmp_path / "out"
    target.mkdir()

    with pytest.raises(CatalogueErrors) as raised:
        export_catalogue(process.monitor, target, project_code=process.project)

    path = str(target / f"{dagster_name(process.project)}__load.yaml")
    problems = [(p.path, p.entry, p.problem) for p in raised.value.problems]
    assert problems == [
        (path, "tasks[1] (No type).source_type", "Field required"),
        (path, "tasks[2] (Relative)", "DBX_NOTEBOOK needs source: the notebook's absolute workspace path "
                                      "(got 'nb/score')"),
    ]
    assert str(raised.value).splitlines() == [f"{p}: {e}: {m}" for p, e, m in problems]
    assert list(target.iterdir()) == []
    with pytest.raises(CatalogueErrors):
        export_catalogue(process.monitor, tmp_path / "never", project_code=process.project)
    assert not (tmp_path / "never").exists()


def test_a_bad_frequency_a_notebook_without_compute_and_a_shared_dagster_name_are_all_problems(
        make_process, tmp_path):
    process = make_process(load="HR-DAILY")
    process.register(tasks=[{"task_id": 1, "task_name": "Score", "source_type": "DBX_NOTEBOOK",
                             "source_identifier": "/Repos/hr/score"}])
    _overwrite(process.monitor, "ETLconfigProcess", {"ProjectCode": process.project, "ProcessLoad": process.load},
               LoadFrequency="Q")  # the seed writes what it is given
    make_process(project=process.project, load="HR_DAILY")

    with pytest.raises(CatalogueErrors) as raised:
        export_catalogue(process.monitor, tmp_path, project_code=process.project)

    problems = [(p.entry, p.problem) for p in raised.value.problems]
    assert len(problems) == 3
    assert problems[0][0] == "frequency" and "Input should be" in problems[0][1]
    assert problems[1] == ("tasks[1] (Score)", "DBX_NOTEBOOK needs compute (existing_cluster_id, new_cluster "
                                               "or serverless: true), on the task or the process")
    assert problems[2][0] == f"process {process.project}/HR_DAILY"
    assert "collides with the process declared in" in problems[2][1]
    assert list(tmp_path.iterdir()) == []


def test_a_bad_compute_or_factory_argument_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(ValidationError, match="exactly one of"):
        export_catalogue(None, tmp_path, compute={"serverless": False})
    with pytest.raises(ValidationError, match="factory"):
        export_catalogue(None, tmp_path, factory={**FACTORY, "client_secret": "x"})


def test_file_names_stay_unique_when_codes_differ_only_in_case_or_script():
    names = _file_names({("HR", "Daily"): {}, ("hr", "daily"): {}, ("HR", "Weekly"): {}})
    assert len(set(names)) == 3
    assert names[2] == "hr__weekly.yaml"
    assert all(n.startswith("hr__daily_") and n.endswith(".yaml") for n in names[:2])


def _cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl_monitor_dagster", *arguments], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_the_export_catalogue_command_writes_files_or_lists_problems_without_a_traceback(
        spark_server, make_process, tmp_path):
    process = make_process()
    process.register(tasks=[{"task_id": 1, "task_name": "Score", "source_type": "DBX_NOTEBOOK",
                             "source_identifier": "/Repos/hr/score"},
                            {"task_id": 2, "task_name": "Ship", "source_type": "ADF_PIPELINE",
                             "source_identifier": "pl_ship"}])
    engine = ["--spark-remote", spark_server.url, "--schema", process.monitor.schema]
    target = tmp_path / "catalogue"

    done = _cli("export-catalogue", str(target), *engine, "--project", process.project, "--process", process.load,
                "--serverless", "--factory", "/".join(FACTORY.values()))

    assert done.returncode == 0, done.stderr
    (spec,) = load_catalogue(target)
    assert spec.compute.serverless and spec.project == process.project
    assert spec.factory is not None and spec.factory.model_dump() == FACTORY
    assert str(spec.path) in done.stdout.splitlines()
    before = _snapshot(process.monitor, process.project)
    registered = _cli("setup", str(target), *engine)  # the way back, on the same engine and schema
    assert registered.returncode == 0, registered.stderr
    assert _snapshot(process.monitor, process.project) == before

    again = _cli("export-catalogue", str(target), *engine, "--project", process.project)
    assert again.returncode == 2
    assert "Traceback" not in again.stderr
    assert f"{spec.path}: file: already exists" in again.stderr
    assert f"{spec.path}: tasks[1] (Score): DBX_NOTEBOOK needs compute" in again.stderr

    unknown = _cli("export-catalogue", str(tmp_path / "none"), *engine, "--project", _project())
    assert (unknown.returncode, "Traceback" in unknown.stderr) == (2, False)
    assert "unknown process" in unknown.stderr
