"""The YAML catalogue: a bad file fails the load naming the file, the entry and the problem."""

from __future__ import annotations

from hashlib import sha1
from pathlib import Path

import pytest
import yaml

from etl_monitor_dagster.core.catalogue import CatalogueError, dagster_name, load_catalogue

INITIATION = {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE", "mandatory": True}


def _process(**overrides):
    doc = {
        "project": "DEMO", "process": "HR_DAILY", "frequency": "D",
        "parameters": [{"name": "SYSDT", "type": "SYSTEM"}, {"name": "LastEmp", "type": "DELTA_DATE"}],
        "tasks": [INITIATION,
                  {"id": 1, "workflow": 1, "stage": 2, "name": "Load employees", "source_type": "SPARK_SQL",
                   "source": "load.sql", "watermark": "LastEmp", "mandatory": True},
                  {"id": 2, "workflow": 1, "stage": 6, "name": "Publish", "source_type": "PYTHON",
                   "source": "pkg.mod:publish"}],
    }
    doc.update(overrides)
    return doc


def _write(directory: Path, name: str, doc) -> Path:
    (directory / "load.sql").write_text("SELECT 1")
    path = directory / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_a_valid_catalogue_loads_into_register_many_arguments(tmp_path):
    _write(tmp_path, "hr_daily.yaml", _process())
    (spec,) = load_catalogue(tmp_path)
    registration = spec.registration()
    assert [t["task_id"] for t in registration["tasks"]] == [0, 1, 2]
    assert registration["tasks"][1]["source_system_code"] == "LastEmp"
    assert registration["processes"][0]["load_frequency"].value == "D"
    assert [p["parameter_name"] for p in registration["parameters"]] == ["SYSDT", "LastEmp"]


def _task(**fields):
    return {"id": 3, "workflow": 1, "stage": 3, "name": "Extra", "source_type": "PYTHON",
            "source": "pkg.mod:extra", **fields}


@pytest.mark.parametrize(
    ("doc", "entry", "problem"),
    [
        (_process(tasks=_process()["tasks"] + [_task(id=1, name="Again")]), "tasks[3] (Again)",
         "duplicate (WorkFlowID, TaskID) = (1, 1)"),
        (_process(tasks=_process()["tasks"][1:]), "tasks", "initiation task"),
        (_process(tasks=_process()["tasks"] + [_task(stage=8)]), "tasks[3] (Extra)", "unknown stage 8"),
        (_process(frequency="Q"), "frequency", "Input should be"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="FTP")]), "tasks[3] (Extra).source_type",
         "Input should be"),
        (_process(parameters=[{"name": "X", "type": "DELTA_TIME"}]), "parameters[0] (X).type", "Input should be"),
        (_process(tasks=_process()["tasks"] + [_task(watermark="Nope")]), "tasks[3] (Extra)",
         "watermark 'Nope' names no declared parameter"),
        (_process(tasks=_process()["tasks"] + [_task(name="load-employees")]), "tasks[3] (load-employees)",
         "collides with task 'Load employees'"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="SPARK_SQL", source="missing.sql")]),
         "tasks[3] (Extra)", "SPARK_SQL needs source"),
        (_process(tasks=_process()["tasks"] + [_task(source="not a path")]), "tasks[3] (Extra)",
         "PYTHON needs source"),
        (_process(tasks=_process()["tasks"] + [_task(colour="blue")]), "tasks[3] (Extra).colour",
         "Extra inputs are not permitted"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="DBX_NOTEBOOK", source="/Repos/x")]),
         "tasks[3] (Extra)", "DBX_NOTEBOOK needs compute"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="DBX_NOTEBOOK", source="score",
                                                     compute={"serverless": True})]),
         "tasks[3] (Extra)", "absolute workspace path"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="DBX_NOTEBOOK", source="/Repos/x",
                                                     compute={"serverless": True, "existing_cluster_id": "c1"})]),
         "tasks[3] (Extra).compute", "exactly one of existing_cluster_id, new_cluster or serverless"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="DBX_JOB", source="nightly")]),
         "tasks[3] (Extra)", "DBX_JOB needs source: the numeric job id"),
        (_process(tasks=_process()["tasks"] + [_task(source_type="DBX_JOB", source="12",
                                                     compute={"existing_cluster_id": "c1"})]),
         "tasks[3] (Extra)", "runs on its job's own compute"),
        (_process(tasks=_process()["tasks"] + [_task(timeout_minutes=5)]), "tasks[3] (Extra)",
         "apply to DBX_NOTEBOOK, DBX_JOB and ADF tasks, not PYTHON"),
        (_process(tasks=_process()["tasks"] + [_task(maximum_retries=-1)]), "tasks[3] (Extra).maximum_retries",
         "greater than or equal to 0"),
        (_process(max_runtime_minutes=0), "max_runtime_minutes", "greater than 0"),
        ("project: [unclosed", "file", "not valid YAML"),
    ],
)
def test_a_bad_file_fails_the_load_naming_file_entry_and_problem(tmp_path, doc, entry, problem):
    path = _write(tmp_path, "bad.yaml", doc)
    with pytest.raises(CatalogueError) as error:
        load_catalogue(tmp_path)
    assert (error.value.path, error.value.entry) == (str(path), entry)
    assert problem in error.value.problem


def test_custom_stages_of_ten_and_up_are_accepted_when_declared(tmp_path):
    doc = _process(stages=[{"id": 10, "code": "EXPORT"}], tasks=_process()["tasks"] + [_task(stage=10)])
    _write(tmp_path, "hr.yaml", doc)
    assert load_catalogue(tmp_path)[0].tasks[-1].stage == 10


def test_two_files_declaring_processes_with_the_same_dagster_name_fail_the_load(tmp_path):
    _write(tmp_path, "a.yaml", _process())
    _write(tmp_path, "b.yaml", _process(process="hr-daily"))
    with pytest.raises(CatalogueError, match="collides with the process declared in"):
        load_catalogue(tmp_path)


@pytest.mark.parametrize(("name", "safe"), [("Load Employees", "load_employees"), ("2nd pass", "n_2nd_pass"),
                                             ("Ünï ✓ café", "uni_cafe"), ("a--b__c", "a_b_c"),
                                             ("日本語", "n_" + sha1("日本語".encode()).hexdigest()[:8])])
def test_dagster_names_are_identifiers(name, safe):
    assert dagster_name(name) == safe


def test_databricks_tasks_take_compute_from_their_process_and_retries_from_the_task(tmp_path):
    notebook = _task(source_type="DBX_NOTEBOOK", source="/Repos/hr/score", timeout_minutes=30, maximum_retries=2,
                     retry_delay_seconds=60)
    _write(tmp_path, "hr.yaml", _process(compute={"existing_cluster_id": "0123-456789-abcdefgh"},
                                         tasks=_process()["tasks"] + [notebook]))
    (spec,) = load_catalogue(tmp_path)
    task = spec.tasks[-1]
    assert (spec.compute.existing_cluster_id, task.timeout_minutes, task.maximum_retries) == (
        "0123-456789-abcdefgh", 30, 2)


def test_a_catalogue_holding_a_databricks_token_is_refused_naming_the_line(tmp_path):
    doc = yaml.safe_dump(_process(description="token dapi0123456789abcdef0123456789abcdef for the job"))
    path = _write(tmp_path, "leaky.yaml", doc)
    line = 1 + doc[:doc.index("dapi")].count("\n")
    with pytest.raises(CatalogueError) as error:
        load_catalogue(tmp_path)
    assert (error.value.path, error.value.entry) == (str(path), f"line {line}")
    assert "credentials belong in environment variables" in error.value.problem
