"""Pools: a wide stage of Databricks tasks runs no more steps at once than its pool's limit, on a real
instance with the multiprocess executor, against the fake Jobs API (tests/fake_databricks.py). The limit
comes from the instance's `concurrency: pools: default_limit`, as in the one `make start` creates."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, instance_for_test

from etl_monitor_dagster import DagsterETLMonitorTranslator, build_definitions
from etl_monitor_dagster.core.catalogue import load_catalogue, registration
from tests.dagster_location import DATABRICKS_HOST_ENV, DATABRICKS_TOKEN_ENV, REMOTE_ENV, launch, rows
from tests.fake_databricks import FakeDatabricks, FakeRun, Script
from tests.pool_location import CATALOGUE, wide_job

pytestmark = pytest.mark.dagster_run

REPO = Path(__file__).resolve().parents[1]
TOKEN = "dapi" + uuid.uuid4().hex
SPAWN = {"execution": {"config": {"multiprocess": {"start_method": "spawn"}}}}
NOTEBOOKS = [f"/Repos/qa/wide_{i}" for i in range(1, 5)]


@pytest.fixture
def api() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=TOKEN) as fake:
        os.environ[DATABRICKS_HOST_ENV], os.environ[DATABRICKS_TOKEN_ENV] = fake.host, TOKEN
        yield fake
    del os.environ[DATABRICKS_HOST_ENV], os.environ[DATABRICKS_TOKEN_ENV]


def most_at_once(runs: list[FakeRun]) -> int:
    """The most Databricks runs that were going at the same moment (start to end, as Databricks reports)."""
    edges = sorted([(r.started_ms, 1) for r in runs] + [(r.ended_ms or 0, -1) for r in runs],
                   key=lambda edge: (edge[0], edge[1]))  # at a tie an end frees its place first
    going = most = 0
    for _, step in edges:
        going += step
        most = max(most, going)
    return most


def test_a_databricks_pool_of_one_runs_a_wide_stage_one_notebook_at_a_time(api, spark_server, monitor):
    os.environ[REMOTE_ENV] = spark_server.url
    monitor.register_many(**registration(load_catalogue(CATALOGUE)))
    for notebook in NOTEBOOKS:
        api.script(notebook, Script(polls=3))
    try:
        with instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
            # spawned: a forkserver an earlier test of this process started lacks this test's Databricks env
            success, run_id = launch(wide_job, instance, "2026-06-01", run_config=SPAWN)
            assert instance.event_log_storage.get_concurrency_info("databricks").slot_count == 1
    finally:
        del os.environ[REMOTE_ENV]
    assert success
    runs = [r for notebook in NOTEBOOKS for r in api.runs_of(notebook)]
    assert len(runs) == 4 and all(r.terminated for r in runs)
    assert most_at_once(runs) == 1
    assert {name: row["Status"] for name, row in rows(monitor, "WIDE", run_id).items()} == {
        "Initiation": "DONE", "Wide one": "DONE", "Wide two": "DONE", "Wide three": "DONE", "Wide four": "DONE"}


def test_databricks_tasks_share_one_pool_and_adf_tasks_one_per_factory():
    pools = {}
    for folder in (REPO / "examples" / "databricks", REPO / "examples" / "adf"):
        defs = build_definitions(folder)
        steps = [a for a in defs.assets if a.is_executable]  # type: ignore[union-attr]  # not taskHealth_history
        pools.update({key.path[-1]: a.op.pool for a in steps for key in a.keys  # type: ignore[union-attr]
                      if a.op.pool or key.path[-1] == "initiation"})  # type: ignore[union-attr]
    assert pools == {"initiation": None, "score_customers": "databricks", "refresh_feature_tables": "databricks",
                     "publish_scores": "databricks", "refresh_dashboard_extract": "databricks",
                     "ingest_employees_uk": "adf/adf-corp-prod", "cost_centres": "adf/adf-corp-prod",
                     "account_balances": "adf/adf-fin-prod"}  # a task's own factory before its process's


def test_the_translator_names_or_removes_the_pools(tmp_path):
    translator = DagsterETLMonitorTranslator(databricks_pool="dbx-prod-westeurope")
    defs = build_definitions(CATALOGUE, translator=translator)
    steps = [a for a in defs.assets if a.is_executable]  # type: ignore[union-attr]  # not taskHealth_history
    assert {a.op.pool for a in steps if a.op.name.split("__")[-1].startswith("wide_")} == {"dbx-prod-westeurope"}  # type: ignore[union-attr]
    defs = build_definitions(CATALOGUE, translator=DagsterETLMonitorTranslator(pools=False))
    assert {a.op.pool for a in defs.assets if a.is_executable} == {None}  # type: ignore[union-attr]


def test_the_instance_make_start_creates_limits_every_pool(tmp_path):
    config = yaml.safe_load((REPO / "instance" / "dagster.yaml").read_text())
    (tmp_path / "dagster.yaml").write_text((REPO / "instance" / "dagster.yaml").read_text())
    instance = DagsterInstance.from_config(str(tmp_path))
    limit = config["concurrency"]["pools"]["default_limit"]
    assert 1 <= limit <= 16
    assert instance.get_concurrency_config().pool_config.default_pool_limit == limit
