"""The Dagster resource: the SPEC API from typed config, used by a job on a real Dagster instance."""


import inspect

import pytest
from dagster import Config, DagsterInstance, EnvVar, OpExecutionContext, job, op

from etl_monitor_dagster import ETLMonitorFramework, ETLMonitorResource, ValidationError
from tests.conftest import DAY


class TaskConfig(Config):
    project: str
    load: str
    task_id: int
    explode: bool = False


@op
def guarded_load(context: OpExecutionContext, config: TaskConfig, monitor: ETLMonitorResource) -> None:
    with monitor.task(context.run_id, config.project, config.load, task_id=config.task_id, sequence_id=2,
                      workflow_id=1, processing_date=DAY, source_run_id=context.run_id) as guard:
        if guard.active and config.explode:
            raise RuntimeError("the load broke")


@job
def guarded_job():
    guarded_load()


@pytest.fixture
def resource(spark_server, monitor) -> ETLMonitorResource:
    return ETLMonitorResource(engine="embedded", home=str(spark_server.home), port=spark_server.port,
                              schema_name=monitor.schema)


def _run(resource, process, explode=False):
    config = {"ops": {"guarded_load": {"config": {"project": process.project, "load": process.load,
                                                  "task_id": 1, "explode": explode}}}}
    with DagsterInstance.ephemeral() as instance:
        return guarded_job.execute_in_process(run_config=config, resources={"monitor": resource},
                                              instance=instance, raise_on_error=False)


def test_every_public_method_of_the_monitor_is_written_out_on_the_resource_with_its_signature():
    public = [n for n, f in vars(ETLMonitorFramework).items() if not n.startswith("_") and not isinstance(f, property)]
    assert len(public) > 30  # the seed's API and ours
    for name in public:
        method = vars(ETLMonitorResource).get(name)  # defined on the class itself, so editors see it
        assert method is not None, name
        assert inspect.signature(getattr(ETLMonitorResource, name)) == inspect.signature(
            getattr(ETLMonitorFramework, name)), name


@pytest.mark.dagster_run
def test_a_dagster_job_reports_done_through_the_resource_with_the_run_id_as_execution(resource, process):
    process.task(1)
    result = _run(resource, process)
    assert result.success
    row = process.steps(result.run_id)[(1, 1)]
    assert (row["Status"], row["ExecutionID"], row["SourceRunID"]) == ("DONE", result.run_id, result.run_id)


@pytest.mark.dagster_run
def test_a_failing_dagster_op_is_recorded_as_fail_and_still_fails_the_run(resource, process):
    process.task(1)
    result = _run(resource, process, explode=True)
    assert not result.success
    row = process.steps(result.run_id)[(1, 1)]
    assert (row["Status"], row["LogMessage"]) == ("FAIL", "RuntimeError: the load broke")


def test_the_embedded_engine_reuses_a_running_server_instead_of_starting_another(resource, spark_server):
    pid = spark_server.pid_file.read_text()
    resource.get_monitor().get_status("NOBODY", "NOTHING")
    assert spark_server.pid_file.read_text() == pid


def test_connect_without_a_url_is_a_clear_config_error():
    with pytest.raises(ValidationError, match="spark_remote"):
        ETLMonitorResource(engine="connect").get_monitor()


CLUSTER = "x-databricks-cluster-id=0123-456789-abcdefgh"


@pytest.mark.parametrize(("remote", "url"), [
    ("sc://dbc.example:443/;use_ssl=true", "sc://dbc.example:443/;use_ssl=true;token=s3cret"),
    (f"sc://adb-1.azuredatabricks.net:443/;{CLUSTER}", f"sc://adb-1.azuredatabricks.net:443/;{CLUSTER};token=s3cret"),
    ("sc://adb-1.azuredatabricks.net:443/", "sc://adb-1.azuredatabricks.net:443/;token=s3cret"),
    ("sc://adb-1.azuredatabricks.net:443", "sc://adb-1.azuredatabricks.net:443/;token=s3cret"),
])
def test_the_token_comes_from_the_environment_and_joins_the_databricks_connect_url(monkeypatch, remote, url):
    monkeypatch.setenv("ETL_TEST_TOKEN", "s3cret")
    resource = ETLMonitorResource(engine="connect", spark_remote=remote, spark_token=EnvVar("ETL_TEST_TOKEN"))
    assert resource.process_config_and_initialize()._remote_url() == url


def test_three_level_names_address_the_tables_through_the_catalog(spark_server, monitor, process):
    process.task(1)
    resource = ETLMonitorResource(engine="connect", spark_remote=spark_server.url, catalog="spark_catalog",
                                  schema_name=monitor.schema)
    uc = resource.get_monitor()
    assert uc.table_name("ETLProcessingSteps") == f"`spark_catalog`.`{monitor.schema}`.`ETLProcessingSteps`"
    execution = process.new_run()
    rows = uc.status_rows(process.project, process.load, execution_id=execution)
    assert rows == process.monitor.status_rows(process.project, process.load, execution_id=execution)
    assert len(rows) == 2


def test_the_connect_engine_reaches_any_spark_connect_url(spark_server, monitor):
    resource = ETLMonitorResource(engine="connect", spark_remote=spark_server.url, schema_name=monitor.schema)
    assert resource.get_monitor().status_rows("NOBODY", "NOTHING") == []


def test_the_active_session_engine_uses_the_session_this_process_already_has(spark, monitor):
    resource = ETLMonitorResource(engine="active_session", schema_name=monitor.schema)
    assert resource.get_monitor().spark is spark
