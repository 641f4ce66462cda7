"""The code location's shape, built from catalogues alone: no Spark is started by any test here."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterRun,
    Definitions,
    QueuedRunCoordinator,
    asset,
    build_schedule_context,
    define_asset_job,
    validate_run_config,
)
from dagster._utils.tags import TagConcurrencyLimitsCounter

from etl_monitor_dagster import DatabricksResource
from etl_monitor_dagster.core.catalogue import CatalogueError
from etl_monitor_dagster.dagster.assets import runs_step
from etl_monitor_dagster.dagster.definitions import build_definitions
from etl_monitor_dagster.dagster.metadata import RUN_SLOT_TAG
from etl_monitor_dagster.dagster.schedules import STEP_PRELOAD

REPO = Path(__file__).resolve().parents[1]
DEMO_TASKS = ["initiation", "load_fx_rates", "stage_customers", "stage_orders", "stage_web_sessions",
              "validate_customers", "validate_orders", "convert_amounts_to_eur", "build_daily_sales_mart",
              "customer_360_snapshot"]


def write_process(directory: Path, process: str, frequency: str, tasks: int = 3) -> None:
    """A generated process: initiation, then ``tasks`` PYTHON tasks spread over stages 2 and 6."""
    doc = {"project": "GEN", "process": process, "frequency": frequency, "start_date": "2025-01-01",
           "schedule_at": "05:30",
           "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE",
                      "mandatory": True}]
           + [{"id": i, "workflow": 1, "stage": 2 if i % 2 else 6, "name": f"Task {i}", "source_type": "PYTHON",
               "source": "tests.tasks:succeed", "mandatory": i % 3 != 0} for i in range(1, tasks + 1)]}
    (directory / f"{process.lower()}.yaml").write_text(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def demo() -> Definitions:
    return build_definitions(REPO / "catalogue")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Definitions:
    directory = tmp_path_factory.mktemp("generated")
    for frequency in "DWMYA":
        write_process(directory, f"EVERY_{frequency}", frequency, tasks=6)
    return build_definitions(directory)


def _graph(defs: Definitions):
    return defs.get_repository_def().asset_graph


def test_the_demo_definitions_load_and_validate(demo):
    Definitions.validate_loadable(demo)
    assert {"sales_daily", "gl_export"} <= set(_loaded_location().get_repository_def().job_names)


def _loaded_location() -> Definitions:
    sys.path.insert(0, str(REPO))
    try:
        import definitions
    finally:
        sys.path.remove(str(REPO))
    return definitions.defs


def test_every_demo_task_is_an_asset_keyed_project_process_task_in_its_stage_group(demo):
    graph = _graph(demo)
    for name in DEMO_TASKS:
        assert graph.get(AssetKey(["retail", "sales_daily", name])).is_materializable
    groups = {graph.get(AssetKey(["retail", "sales_daily", n])).group_name for n in DEMO_TASKS}
    assert groups == {"sales_daily/s00_load_go", "sales_daily/s01_load_db_config", "sales_daily/s02_load_db_tran",
                      "sales_daily/s03_load_dim", "sales_daily/s04_load_tran", "sales_daily/w2_s05_pre_process",
                      "sales_daily/w2_s06_process_data"}


def test_stages_follow_workflow_then_sequence_and_a_stage_runs_in_parallel(demo):
    graph = _graph(demo)
    key = lambda name: AssetKey(["retail", "sales_daily", name])  # noqa: E731
    # the three staging tasks share stage 2: each waits only for stage 1's gate
    for task in ("stage_customers", "stage_orders", "stage_web_sessions"):
        assert graph.get(key(task)).parent_keys == {key("s01_gate")}
    assert graph.get(key("s02_gate")).parent_keys == {
        key("stage_customers"), key("stage_orders"), key("stage_web_sessions")}
    # workflow 2 starts after the last stage of workflow 1
    assert graph.get(key("convert_amounts_to_eur")).parent_keys == {key("s04_gate")}
    # the initiation's stage has no gate: its failed step stops the run itself
    assert graph.get(key("load_fx_rates")).parent_keys == {key("initiation")}
    assert not graph.has(key("s00_gate"))
    # the views wait for the last stage's tasks, beside its gate, which has no later stage to stop
    assert graph.get(key("v_runSummary")).parent_keys == {key("build_daily_sales_mart"),
                                                          key("customer_360_snapshot")}


def test_each_gate_carries_a_blocking_check_and_optional_tasks_a_warning_check(demo):
    checks = {(tuple(c.asset_key.path), c.name): c for a in demo.assets for c in a.check_specs}
    gates = {k: c for k, c in checks.items() if k[1] == "no_mandatory_blockers"}
    assert len(gates) == 6 and all(c.blocking for c in gates.values())
    optional = {k[0][-1] for k, c in checks.items() if k[1] == "succeeded"}
    assert optional == {"stage_web_sessions", "customer_360_snapshot"}
    assert not any(c.blocking for k, c in checks.items() if k[1] == "succeeded")


def test_every_task_asset_has_two_warning_health_checks_the_process_job_leaves_to_the_run_sensors(demo):
    repo = demo.get_repository_def()
    health = {(k.asset_key.path[-1], k.name) for k in repo.asset_checks_defs_by_key}
    tasks = {k.path[-1] for k in _graph(demo).get_all_asset_keys() if not k.path[-1].startswith("v_")
             and not k.path[-1].endswith("_gate") and k.path[-1] != "taskHealth_history"}
    assert {(t, c) for t in tasks for c in ("failure_streak", "duration_baseline")} <= health
    specs = [s for d in repo.asset_checks_defs_by_key.values() for s in d.check_specs]
    assert not any(s.blocking for s in specs if s.name in ("failure_streak", "duration_baseline"))
    in_job = {k.name for k in repo.get_job("sales_daily").asset_layer.asset_graph.asset_check_keys}
    assert in_job == {"no_mandatory_blockers", "succeeded"}  # no step per task health check in every run


def test_the_views_are_assets_downstream_of_each_process(demo):
    graph = _graph(demo)
    views = [k for k in graph.get_all_asset_keys() if k.path[-1].startswith("v_")]
    assert sorted(k.path[-1] for k in views) == sorted(
        ["v_processStatus", "v_runSummary", "v_taskDetail", "v_mandatoryBlockers", "v_currentFailures",
         "v_watermarks", "v_taskHealth"])
    assert {graph.get(k).group_name for k in views} == {"sales_daily/views"}


def test_each_process_has_a_non_partitioned_health_history_beside_v_taskhealth_that_no_job_runs(demo):
    """The run sensors observe it after each run (tests/test_task_health.py): the job gains no step."""
    graph, key = _graph(demo), AssetKey(["retail", "sales_daily", "taskHealth_history"])
    history = graph.get(key)
    assert (history.is_external, history.is_executable, history.partitions_def) == (True, False, None)
    assert history.parent_keys == {AssetKey(["retail", "sales_daily", "v_taskHealth"])}
    assert history.group_name == "sales_daily/views" and "history of v_taskHealth" in (history.description or "")
    job = demo.get_repository_def().get_job("sales_daily")
    assert key not in job.asset_layer.asset_graph.get_all_asset_keys()


def test_one_job_per_process_and_a_schedule_for_every_frequency_but_ad_hoc(generated):
    repo = generated.get_repository_def()
    # ... plus the monitor schema's one maintenance job and its weekly schedule (tests/test_retention.py)
    assert {j for j in repo.job_names if not j.startswith("__")} == {f"every_{f}" for f in "dwmya"} | {
        "etl_monitor_maintenance"}
    assert {s.name: s.cron_schedule for s in repo.schedule_defs} == {
        "every_d_schedule": "30 5 * * *", "every_w_schedule": "30 5 * * 1",
        "every_m_schedule": "30 5 1 * *", "every_y_schedule": "30 5 1 1 *",
        "etl_monitor_maintenance_schedule": "0 3 * * 0"}
    assert {s.name: s.default_status.value for s in repo.sensor_defs} == dict.fromkeys(
        ["etl_monitor_reconcile_success", "etl_monitor_reconcile_failure", "etl_monitor_reconcile_canceled",
         "etl_monitor_health"], "RUNNING")
    # a run's end reaches the monitor tables within seconds, not Dagster's default 30 s
    assert {s.name: s.minimum_interval_seconds for s in repo.sensor_defs if "reconcile" in s.name} == dict.fromkeys(
        ["etl_monitor_reconcile_success", "etl_monitor_reconcile_failure", "etl_monitor_reconcile_canceled"], 5)


@pytest.mark.parametrize(("execution", "resolved", "at_once"), [
    (None, {"forkserver": {"preload_modules": STEP_PRELOAD}}, 8),
    ({"multiprocess": {"start_method": "spawn"}}, {"spawn": {}}, 8),
    ({"multiprocess": {"max_concurrent": 3}}, {"forkserver": {"preload_modules": STEP_PRELOAD}}, 3),
])
def test_process_job_steps_fork_from_a_preloaded_server_unless_spawn_is_asked_for(demo, execution, resolved,
                                                                                  at_once):
    """Forked from the preloaded server, 8 at once (not the CPU count) unless the run config says otherwise."""
    job = demo.resolve_job_def("sales_daily")
    config = validate_run_config(job, {"execution": {"config": execution}} if execution else {})
    (executor,) = config["execution"].values()
    assert executor["multiprocess"]["start_method"] == resolved
    assert executor["multiprocess"]["max_concurrent"] == at_once


@pytest.mark.parametrize("module", STEP_PRELOAD)
def test_every_module_the_step_server_preloads_exists(module):
    """The forkserver skips a preload module that fails to import without a word: each must import."""
    assert importlib.import_module(module).__name__ == module


def test_process_job_still_runs_in_process_when_asked_and_refuses_other_start_methods(demo):
    job = demo.resolve_job_def("sales_daily")
    config = validate_run_config(job, {"execution": {"config": {"in_process": {}}}})
    assert "in_process" in next(iter(config["execution"].values()))
    with pytest.raises(DagsterInvalidConfigError, match="start_method"):
        validate_run_config(job, {"execution": {"config": {"multiprocess": {"start_method": "fork"}}}})


@pytest.mark.parametrize(("frequency", "tick", "partition"), [
    ("d", datetime(2026, 4, 10, 5, 30), "2026-04-09"),
    ("w", datetime(2026, 4, 13, 5, 30), "2026-04-06"),
    ("m", datetime(2026, 5, 1, 5, 30), "2026-04-01"),
    ("y", datetime(2027, 1, 1, 5, 30), "2026"),
])
def test_a_schedule_requests_the_last_complete_period(generated, frequency, tick, partition):
    schedule = generated.get_repository_def().get_schedule_def(f"every_{frequency}_schedule")
    context = build_schedule_context(scheduled_execution_time=tick)
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == partition


def validate_location(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`dagster definitions validate` of the repo's code location, in a process of its own."""
    (tmp_path / "dagster_home").mkdir()
    return subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-f", "definitions.py"],
                          cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), **env},
                          capture_output=True, text=True, timeout=120)


def test_a_bad_catalogue_fails_the_load_naming_file_entry_and_problem(tmp_path):
    write_process(tmp_path, "GOOD", "D")
    doc = yaml.safe_load((tmp_path / "good.yaml").read_text())
    doc["process"], doc["tasks"][1]["stage"] = "BAD", 9
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(doc))
    done = validate_location(tmp_path, ETL_MONITOR_CATALOGUE=str(tmp_path))
    assert done.returncode != 0
    assert f"{tmp_path / 'bad.yaml'}: tasks[1] (Task 1): unknown stage 9" in done.stdout + done.stderr


def test_loading_the_code_location_starts_no_spark(tmp_path):
    done = validate_location(tmp_path, ETL_MONITOR_HOME=str(tmp_path / "home"), ETL_MONITOR_SPARK_PORT="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "home").exists()


def test_databricks_tasks_need_the_databricks_resource_and_carry_their_retry_policy():
    defs = build_definitions(REPO / "examples" / "databricks")
    assert isinstance(defs.resources["databricks"], DatabricksResource)
    assert "databricks" not in build_definitions(REPO / "catalogue").resources  # only catalogues that use it
    score = defs.get_assets_def(AssetKey(["retail", "lakehouse_scoring", "score_customers"]))
    assert "databricks" in score.required_resource_keys
    assert {"databricks", "notebook"} <= score.specs_by_key[score.key].kinds
    policy = score.op.retry_policy
    assert (policy.max_retries, policy.delay) == (2, 300)
    assert defs.get_assets_def(AssetKey(["retail", "lakehouse_scoring", "refresh_feature_tables"])).op.retry_policy \
        is None


def test_the_databricks_example_loads_without_credentials_in_the_environment(tmp_path):
    done = validate_location(tmp_path, ETL_MONITOR_CATALOGUE=str(REPO / "examples" / "databricks"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_task_knows_its_run_executes_the_initiation_step_unless_a_subset_or_re_execution_leaves_it_out():
    """A whole-job run in process records an empty asset selection: that selects every step, so its tasks
    do not open the attempt a second time; a subset or a re-execution without the initiation step does."""
    seen = []

    @asset
    def initiation(context) -> None:
        seen.append(context.run)

    job = Definitions(assets=[initiation], jobs=[define_asset_job("whole", "*")]).resolve_job_def("whole")
    assert job.execute_in_process(instance=DagsterInstance.ephemeral()).success
    (whole,) = seen
    assert runs_step(whole, "initiation")
    assert runs_step(DagsterRun(job_name="p", asset_selection=None), "initiation")
    assert not runs_step(DagsterRun(job_name="p", asset_selection=frozenset({AssetKey("task")})), "initiation")
    assert not runs_step(DagsterRun(job_name="p", step_keys_to_execute=["task"]), "initiation")


def test_the_instance_make_start_creates_dequeues_launched_runs_every_second(tmp_path):
    (tmp_path / "dagster.yaml").write_text((REPO / "instance" / "dagster.yaml").read_text())
    instance = DagsterInstance.from_config(str(tmp_path))
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    assert instance.run_monitoring_enabled


def test_a_code_location_imports_the_databricks_and_azure_sdks_only_when_it_has_their_tasks():
    """Every run worker and step server loads the code location: the SDKs cost it a second of imports."""
    loaded = """import sys; from etl_monitor_dagster.dagster.definitions import build_definitions
build_definitions(sys.argv[1])
print(sorted(m for m in ('databricks.sdk', 'dagster_databricks', 'azure.mgmt.datafactory') if m in sys.modules))"""
    for catalogue, sdks in ((REPO / "catalogue", "[]"),
                            (REPO / "examples" / "databricks", "['dagster_databricks', 'databricks.sdk']")):
        done = subprocess.run([sys.executable, "-c", loaded, str(catalogue)], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == sdks, catalogue


def test_a_step_forked_from_the_step_server_finds_the_preloaded_objects_frozen(tmp_path):
    """Frozen objects are left out of the forked step's garbage collections (and their pages uncopied)."""
    script = tmp_path / "fork.py"
    script.write_text("""import gc, multiprocessing as mp
from etl_monitor_dagster.dagster.schedules import STEP_PRELOAD
def frozen(queue): queue.put(gc.get_freeze_count())
if __name__ == "__main__":
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(STEP_PRELOAD)
    queue = context.Queue()
    child = context.Process(target=frozen, args=(queue,))
    child.start()
    print(gc.get_freeze_count(), queue.get(timeout=60))
    child.join(60)""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    here, in_step = map(int, done.stdout.split())
    assert here == 0  # the launching process froze nothing; the server did
    assert in_step > 100_000


def test_a_step_of_a_run_finds_its_code_location_loaded_by_the_step_server(tmp_path):
    """A code location loaded from a file is loaded once, by the step server, not again by each step: the
    module a step runs from was loaded in another process (the server), and the run succeeds."""
    location = tmp_path / "location.py"
    location.write_text("""import os
from dagster import job, op
from etl_monitor_dagster.dagster.schedules import step_executor

LOADED_IN = os.getpid()

@op
def where_loaded() -> list:
    return [LOADED_IN, os.getpid()]

@job(executor_def=step_executor)
def steps():
    where_loaded()
""")
    script = tmp_path / "run.py"
    script.write_text("""import os, sys
from dagster import DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob
from etl_monitor_dagster.dagster.schedules import STEP_CODE_ENV
if __name__ == "__main__":
    with DagsterInstance.local_temp(sys.argv[2]) as instance, \\
            execute_job(ReconstructableJob.for_file(sys.argv[1], "steps"), instance) as result:
        loaded_in, step = result.output_for_node("where_loaded")
        print(result.success, STEP_CODE_ENV in os.environ, loaded_in not in (step, os.getpid()))""")
    (tmp_path / "home").mkdir()
    done = subprocess.run([sys.executable, str(script), str(location), str(tmp_path / "home")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]


def _queued_behind(instance: DagsterInstance, running: list[dict[str, str]], queued: dict[str, str]) -> bool:
    """Whether Dagster's run queue holds a run tagged ``queued`` while runs tagged ``running`` are in progress
    (its own counter of the instance's tag concurrency limits decides)."""
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    counter = TagConcurrencyLimitsCounter(limits, [DagsterRun("job", tags=tags) for tags in running])
    return counter.is_blocked(DagsterRun("job", tags=queued))


def test_the_instance_make_start_creates_runs_one_run_of_a_process_at_a_time(tmp_path, demo):
    (tmp_path / "dagster.yaml").write_text((REPO / "instance" / "dagster.yaml").read_text())
    instance = DagsterInstance.from_config(str(tmp_path))
    job = demo.resolve_job_def("sales_daily")
    day = {**job.tags, **job.partitioned_config.get_tags_for_partition_key("2026-04-02")}
    other_day = {**job.tags, **job.partitioned_config.get_tags_for_partition_key("2026-04-03")}
    assert day[RUN_SLOT_TAG] == other_day[RUN_SLOT_TAG] == "SALES_DAILY"
    assert _queued_behind(instance, [day], day)  # the same partition launched twice: the second waits
    assert _queued_behind(instance, [day], other_day)  # a backfill's dates share the watermarks: one at a time
    assert not _queued_behind(instance, [{RUN_SLOT_TAG: "OTHER_PROCESS"}], day)


def test_a_process_with_parallel_partitions_runs_its_dates_side_by_side_but_each_date_once(tmp_path):
    doc = {"project": "GEN", "process": "SNAPSHOTS", "frequency": "D", "start_date": "2026-01-01",
           "parallel_partitions": True, "parameters": [{"name": "Ready", "type": "FLAG"}],
           "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"},
                     {"id": 1, "workflow": 1, "stage": 2, "name": "Copy", "source_type": "PYTHON",
                      "source": "tests.tasks:succeed", "watermark": "Ready"}]}
    (tmp_path / "catalogue").mkdir()
    (tmp_path / "catalogue" / "snapshots.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "dagster.yaml").write_text((REPO / "instance" / "dagster.yaml").read_text())
    instance = DagsterInstance.from_config(str(tmp_path))
    job = build_definitions(tmp_path / "catalogue").resolve_job_def("snapshots")
    assert RUN_SLOT_TAG not in job.tags
    day, other_day = (job.partitioned_config.get_tags_for_partition_key(d) for d in ("2026-04-02", "2026-04-03"))
    assert day[RUN_SLOT_TAG] == "SNAPSHOTS/2026-04-02"
    assert _queued_behind(instance, [day], day) and not _queued_behind(instance, [day], other_day)


def test_parallel_partitions_are_refused_for_a_process_whose_tasks_hold_a_watermark(tmp_path):
    doc = {"project": "GEN", "process": "ORDERS", "frequency": "D", "parallel_partitions": True,
           "parameters": [{"name": "LastOrderId", "type": "DELTA_ID"}],
           "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"},
                     {"id": 1, "workflow": 1, "stage": 2, "name": "Load", "source_type": "PYTHON",
                      "source": "tests.tasks:succeed", "watermark": "LastOrderId"}]}
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogueError) as raised:
        build_definitions(tmp_path)
    assert "parallel_partitions" in str(raised.value) and "LastOrderId" in str(raised.value)
