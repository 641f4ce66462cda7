"""The YAML catalogue: a bad file fails the load naming the file, the entry and the problem."""

from __future__ import annotations

from datetime import date
from hashlib import sha1
from pathlib import Path

import pytest
import yaml
from databricks.sdk.service import compute

from etl_monitor_dagster.core.catalogue import (
    CatalogueError,
    CatalogueErrors,
    ProcessSpec,
    TaskSpec,
    dagster_name,
    load_catalogue,
    sql_file,
)
from etl_monitor_dagster.core.error_class import ErrorClass
from etl_monitor_dagster.core.runs import TaskFailed, TaskRun
from etl_monitor_dagster.tasks.python import run_python
from etl_monitor_dagster.tasks.spark_sql import run_spark_sql

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
        (_process(parameters=[{"name": "LastEmp", "type": "DELTA_DATE"}, {"name": "X", "type": "DELTA_TIME"}]),
         "parameters[1] (X).type", "Input should be"),
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
    with pytest.raises(CatalogueErrors) as error:
        load_catalogue(tmp_path)
    (only,) = error.value.problems
    assert (only.path, only.entry) == (str(path), entry)
    assert problem in only.problem
    assert isinstance(error.value, CatalogueError) and error.value.entry == entry  # caught as one problem too


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


# ------------------------------------------------------------------------------------- secrets

NO_SECRETS = ("a catalogue is versioned and shared, so it never holds a credential: give a Databricks secret "
              "reference {{secrets/<scope>/<key>}} in its place, or an environment variable the resource reads "
              "(EnvVar)")
ACCOUNT_KEY = "Zm9vYmFy" * 10 + "cXV4+/=="  # made up, shaped as Azure gives a storage account key
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkVUTCJ9"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SAS_URL = "https://acct.blob.core.windows.net/raw?sv=2022-11-02&sr=c&sig=Xy3%2Bq0AbCdEfGh%3D"
CONF = "tasks[3] (Score).compute.new_cluster"


def _notebook(spark_conf=None, spark_env_vars=None, **fields):
    cluster = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1,
               "spark_conf": spark_conf or {}, "spark_env_vars": spark_env_vars or {}}
    return _task(name="Score", source_type="DBX_NOTEBOOK", source="/Repos/hr/score",
                 compute={"new_cluster": cluster}, **fields)


def _problems(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(CatalogueErrors) as error:
        load_catalogue(directory)
    return [(Path(p.path).name, p.entry, p.problem) for p in error.value.problems]


@pytest.mark.parametrize(("task", "entry", "problem"), [
    (_notebook(spark_conf={"fs.azure.account.key.acct.dfs.core.windows.net": ACCOUNT_KEY}),
     f"{CONF}.spark_conf['fs.azure.account.key.acct.dfs.core.windows.net']",
     f"is named as a secret, so its value must be a secret reference: {NO_SECRETS}"),
    (_notebook(spark_conf={"spark.hadoop.lake.setting": ACCOUNT_KEY}),
     f"{CONF}.spark_conf['spark.hadoop.lake.setting']",
     f"holds what looks like an Azure storage account key: {NO_SECRETS}"),
    (_notebook(spark_env_vars={"DB_PASSWORD": "hunter2"}), f"{CONF}.spark_env_vars.DB_PASSWORD",
     f"is named as a secret, so its value must be a secret reference: {NO_SECRETS}"),
    (_notebook(in_file_path=SAS_URL), "tasks[3] (Score).in_file_path",
     f"holds what looks like a shared access signature (sig=): {NO_SECRETS}"),
    (_notebook(description=f"calls the API with {JWT}"), "tasks[3] (Score).description",
     f"holds what looks like a JSON web token: {NO_SECRETS}"),
    (_notebook(out_file_path="postgresql://etl:hunter2@db.example.com:5432/etl"), "tasks[3] (Score).out_file_path",
     f"holds what looks like a URL with user:password@: {NO_SECRETS}"),
    (_notebook(spark_conf={"spark.etl.jdbc": "Server=tcp:db;Database=etl;User ID=etl;Password=S3cret!;"}),
     f"{CONF}.spark_conf['spark.etl.jdbc']", f"holds what looks like a password assignment: {NO_SECRETS}"),
    (_notebook(description="token dapi0123456789abcdef0123456789abcdef"), "tasks[3] (Score).description",
     f"holds what looks like a Databricks access token: {NO_SECRETS}"),
])
def test_a_credential_anywhere_in_a_process_file_is_refused_naming_its_entry(tmp_path, task, entry, problem):
    _write(tmp_path, "leaky.yaml", _process(tasks=_process()["tasks"] + [task]))
    problems = _problems(tmp_path)
    assert problems == [("leaky.yaml", entry, problem)]
    for secret in (ACCOUNT_KEY, "hunter2", "S3cret", JWT, "Xy3%2B", "dapi0123"):
        assert secret not in str(problems)


def test_a_secret_named_by_key_in_a_factory_is_refused_with_the_unknown_key(tmp_path):
    factory = {"subscription_id": "0-1", "resource_group": "rg", "name": "adf-x", "client_secret": "s3cret"}
    _write(tmp_path, "adf.yaml", _process(factory=factory))
    assert _problems(tmp_path) == [
        ("adf.yaml", "factory.client_secret", f"is named as a secret, so its value must be a secret reference: "
                                              f"{NO_SECRETS}"),
        ("adf.yaml", "factory.client_secret", "Extra inputs are not permitted")]


def test_a_credential_in_a_comment_or_a_file_that_is_no_yaml_is_refused_naming_its_line(tmp_path):
    text = yaml.safe_dump(_process())
    _write(tmp_path, "commented.yaml", f"# deployed with dapi0123456789abcdef0123456789abcdef\n{text}")
    _write(tmp_path, "broken.yaml", "project: [DEMO\npassword_url: postgresql://etl:hunter2@db/etl\n")
    problems = _problems(tmp_path)
    assert problems[0] == ("broken.yaml", "line 2", f"holds what looks like a URL with user:password@: {NO_SECRETS}")
    assert problems[1][:2] == ("broken.yaml", "file") and problems[1][2].startswith("is not valid YAML")
    assert problems[2:] == [("commented.yaml", "line 1", f"holds what looks like a Databricks access token: "
                                                         f"{NO_SECRETS}")]


def test_a_secret_reference_passes_through_untouched_to_the_run_spec(tmp_path):
    conf = {"fs.azure.account.key.acct.dfs.core.windows.net": "{{secrets/lake/acct-key}}",
            "spark.etl.jdbc": "jdbc:sqlserver://db:1433;database=etl;password={{secrets/etl/db}}"}
    env = {"DB_PASSWORD": "{{secrets/etl/db-password}}", "ETL_TOKEN_FILE": "/dbfs/tokens/etl"}
    _write(tmp_path, "referenced.yaml", _process(tasks=_process()["tasks"] + [_notebook(conf, env)]))
    (spec,) = load_catalogue(tmp_path)
    cluster = spec.tasks[-1].compute.new_cluster
    assert (cluster["spark_conf"], cluster["spark_env_vars"]) == (conf, env)
    submitted = compute.ClusterSpec.from_dict(cluster).as_dict()  # as tasks/databricks.py sends it
    assert (submitted["spark_conf"], submitted["spark_env_vars"]) == (conf, env)


# ------------------------------------------------------------------------------------- sources


def test_a_sql_source_outside_the_catalogue_folder_is_refused(tmp_path):
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    (tmp_path / "outside.sql").write_text("SELECT 1")
    (catalogue / "linked.sql").symlink_to(tmp_path / "outside.sql")
    sql = [_task(id=3 + i, name=f"Sql {i}", source_type="SPARK_SQL", source=source)
           for i, source in enumerate(["../outside.sql", "/etc/hostname", "linked.sql", "sql/../../outside.sql"])]
    _write(catalogue, "escape.yaml", _process(tasks=_process()["tasks"] + sql))
    needs = "SPARK_SQL needs source: a SQL file relative to the catalogue file, inside the catalogue folder"
    assert _problems(catalogue) == [
        ("escape.yaml", "tasks[3] (Sql 0)", f"{needs}; '../outside.sql' leads out of the catalogue folder "
                                            f"{catalogue} with '..'"),
        ("escape.yaml", "tasks[4] (Sql 1)", f"{needs}; '/etc/hostname' is an absolute path"),
        ("escape.yaml", "tasks[5] (Sql 2)", f"{needs}; 'linked.sql' is a link to {tmp_path / 'outside.sql'}, "
                                            f"outside the catalogue folder {catalogue}"),
        ("escape.yaml", "tasks[6] (Sql 3)", f"{needs}; 'sql/../../outside.sql' leads out of the catalogue folder "
                                            f"{catalogue} with '..'"),
    ]


def test_a_sql_source_may_climb_to_a_shared_folder_inside_the_catalogue(tmp_path):
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "shared.sql").write_text("SELECT 1")
    (tmp_path / "hr").mkdir()
    shared = _task(source_type="SPARK_SQL", source="../sql/shared.sql")
    _write(tmp_path / "hr", "hr.yaml", _process(tasks=_process()["tasks"] + [shared]))
    (spec,) = load_catalogue(tmp_path)
    assert sql_file(spec, spec.tasks[-1]) == tmp_path / "sql" / "shared.sql"


@pytest.mark.parametrize("source", ["/x/y.py:f", "../a:f", "a/b:f", "pkg..mod:f", ".mod:f", "mod.py"])
def test_a_python_source_must_be_a_dotted_module_never_a_file_path(tmp_path, source):
    _write(tmp_path, "py.yaml", _process(tasks=_process()["tasks"] + [_task(source=source)]))
    assert _problems(tmp_path) == [("py.yaml", "tasks[3] (Extra)", "PYTHON needs source: 'package.module:function', "
                                    f"an importable dotted module, never a file path (got {source!r})")]


def _task_run(tmp_path, task: TaskSpec) -> TaskRun:
    spec = ProcessSpec(project="QA", process="LOAD", tasks=(task,), path=tmp_path / "p.yaml")
    return TaskRun("exec-1", spec, task, date(2026, 4, 9), {}, monitor=None)  # refused before any monitor call


def test_the_runners_refuse_a_source_outside_the_catalogue_of_a_process_built_in_code(tmp_path):
    sql = TaskSpec(id=1, workflow=1, stage=2, name="Passwd", source_type="SPARK_SQL", source="/etc/passwd")
    with pytest.raises(TaskFailed) as refused:
        run_spark_sql(_task_run(tmp_path, sql))
    assert (refused.value.code, refused.value.error_class) == ("NO_SQL_FILE", ErrorClass.CONFIGURATION)
    assert str(refused.value).endswith("'/etc/passwd' is an absolute path")
    python = TaskSpec(id=1, workflow=1, stage=2, name="Script", source_type="PYTHON", source="../evil:run")
    with pytest.raises(TaskFailed, match="never a file path") as refused:
        run_python(_task_run(tmp_path, python))
    assert (refused.value.code, refused.value.error_class) == ("IMPORT_ERROR", ErrorClass.CONFIGURATION)


# ---------------------------------------------------------------------------- Dagster's rules


@pytest.mark.parametrize(("owner", "problem"), [
    ("hr-team@", "'hr-team@' is no e-mail address (Dagster takes an owner that is an e-mail address or a team): "
                 "give a whole address (hr-team@example.com) or a team name without '@' (HR data team)"),
    ("hr team@example.com", "'hr team@example.com' is no e-mail address (Dagster takes an owner that is an e-mail "
                            "address or a team): give a whole address (hr-team@example.com) or a team name without "
                            "'@' (HR data team)"),
    ("team:", "'team:' names no team: give a team name (HR data team) or an e-mail address"),
])
def test_an_owner_dagster_would_refuse_is_refused_at_load(tmp_path, owner, problem):
    _write(tmp_path, "owned.yaml", _process(owner=owner))
    assert _problems(tmp_path) == [("owned.yaml", "owner", problem)]


@pytest.mark.parametrize("owner", ["hr-team@example.com", "team:hr", "HR data team"])
def test_an_address_or_a_team_is_an_owner(tmp_path, owner):
    _write(tmp_path, "owned.yaml", _process(owner=owner))
    assert load_catalogue(tmp_path)[0].owner == owner


def test_a_process_named_as_dagster_reserves_and_a_task_named_as_a_gate_are_refused(tmp_path):
    _write(tmp_path, "reserved.yaml", _process(process="Class", tasks=_process()["tasks"] + [
        _task(stage=6, name="S06 gate")]))
    assert _problems(tmp_path) == [
        ("reserved.yaml", "process", "'Class' becomes the Dagster job name 'class', a name Dagster reserves (Python "
                                     "keywords, context, config, input, output, type...): rename the process, or "
                                     "name its job with a translator's get_job_name"),
        ("reserved.yaml", "tasks[3] (S06 gate)",
         "its Dagster name 's06_gate' is the asset key of a stage gate: rename the task"),
    ]


# ---------------------------------------------------------------------------- every problem


def test_a_catalogue_with_ten_problems_across_two_files_lists_all_ten(tmp_path):
    _write(tmp_path, "a.yaml", _process(owner="hr-team@", tasks=_process()["tasks"] + [
        _task(id=3, name="Sas", in_file_path=SAS_URL),
        _task(id=4, name="Escape", source_type="SPARK_SQL", source="../../../../etc/hostname"),
        _task(id=5, name="File", source="/x/y.py:f"),
        _task(id=6, name="Stage", stage=8),
    ]))
    _write(tmp_path, "b.yaml", _process(process="OTHER", frequency="Q", tasks=_process()["tasks"] + [
        _task(id=3, name="Colour", colour="blue"),
        _task(id=4, name="Env", source_type="DBX_NOTEBOOK", source="/Repos/x", compute={"new_cluster": {
            "spark_env_vars": {"DB_PASSWORD": "hunter2"}}}),
        _task(id=5, name="Mark", watermark="Nope"),
        _task(id=6, name="Job", source_type="DBX_JOB", source="nightly"),
    ]))
    problems = _problems(tmp_path)
    assert [(file, entry) for file, entry, _ in problems] == [
        ("a.yaml", "tasks[3] (Sas).in_file_path"),
        ("a.yaml", "owner"),
        ("a.yaml", "tasks[4] (Escape)"),
        ("a.yaml", "tasks[5] (File)"),
        ("a.yaml", "tasks[6] (Stage)"),
        ("b.yaml", "tasks[4] (Env).compute.new_cluster.spark_env_vars.DB_PASSWORD"),
        ("b.yaml", "frequency"),
        ("b.yaml", "tasks[3] (Colour).colour"),
        ("b.yaml", "tasks[5] (Mark)"),
        ("b.yaml", "tasks[6] (Job)"),
    ]
    assert [problem.split(":")[0] for *_, problem in problems] == [
        "holds what looks like a shared access signature (sig=)",
        "'hr-team@' is no e-mail address (Dagster takes an owner that is an e-mail address or a team)",
        "SPARK_SQL needs source", "PYTHON needs source", "unknown stage 8",
        "is named as a secret, so its value must be a secret reference", "Input should be 'D', 'W', 'M', 'Y' or 'A'",
        "Extra inputs are not permitted", "watermark 'Nope' names no declared parameter", "DBX_JOB needs source"]


def test_an_entry_set_aside_for_its_problem_causes_no_second_one(tmp_path):
    initiation = {**INITIATION, "mandatory": "perhaps"}
    _write(tmp_path, "aside.yaml", _process(
        parameters=[{"name": "SYSDT", "type": "SYSTEM"}, {"name": "LastEmp", "type": "DELTA_TIME"}],
        tasks=[initiation, *_process()["tasks"][1:]]))
    assert [(entry, problem.split(",")[0]) for _, entry, problem in _problems(tmp_path)] == [
        ("parameters[1] (LastEmp).type", "Input should be 'DELTA_DATE'"),
        ("tasks[0] (Initiation).mandatory", "Input should be a valid boolean")]  # no missing initiation or watermark
