"""Shared fixtures: one real local Spark Connect server with Delta and one monitor per test run.

Tests isolate themselves by registering their own process (a fresh ProjectCode), not by
creating schemas, so the suite pays for ``setup()`` once. Under pytest-xdist (``make test``) the
workers share the one server, started by the first worker that needs it and stopped by the
controller; each worker has its own monitor schema (``SCHEMA``), so no worker sees another's rows.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.catalogue import load_catalogue, registration
from etl_monitor_dagster.core.local_spark import LocalSparkServer
from tests.dagster_location import CATALOGUE, REMOTE_ENV, SCHEMA

DAY = "2026-04-09"
# The tables that trail the event log until a fold, and the views that read them with every logged transition.
LIVE = {"ETLProcessingSteps": "v_liveSteps", "ETLconfigParameters": "v_liveParameters", "ETLsysLogs": "v_liveLogs"}
SHARED_ENGINE_ENV = "ETL_TEST_SHARED_ENGINE"  # "home|port" of the server all xdist workers use
TIERS = {  # marker -> the fixtures that put a test in that tier
    "spark": {"spark_server", "spark", "monitor", "instance", "make_process", "process"},
    "dagster_run": {"instance", "dagster_dev"},
    "webserver": {"dagster_dev"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers come from the fixtures a test asks for, so the Java-free tier (``make test-fast``)
    cannot include a test that needs the engine by mistake."""
    for item in items:
        for marker, fixtures in TIERS.items():
            if fixtures & set(getattr(item, "fixturenames", ())):
                item.add_marker(marker)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shared_engine() -> LocalSparkServer | None:
    value = os.environ.get(SHARED_ENGINE_ENV)
    if not value:
        return None
    home, port = value.rsplit("|", 1)
    return LocalSparkServer(home=Path(home), port=int(port))


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller names the one server its workers share (they inherit the variable)."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    os.environ[SHARED_ENGINE_ENV] = f"{tempfile.mkdtemp(prefix='etl_test_engine_')}|{free_port()}"


def pytest_unconfigure(config: pytest.Config) -> None:
    server = None if hasattr(config, "workerinput") else _shared_engine()
    if server is not None:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSparkServer]:
    shared = _shared_engine()
    server = shared or LocalSparkServer(home=tmp_path_factory.mktemp("engine"), port=free_port())
    server.ensure_running()  # safe when two workers start the shared server at once
    yield server
    if shared is None:
        server.stop()


@pytest.fixture(scope="session")
def spark(spark_server: LocalSparkServer):
    session = spark_server.session()
    yield session
    session.stop()  # before the server goes: a client left open retries a dead server at exit


@pytest.fixture(scope="session")
def monitor(spark) -> ETLMonitorFramework:
    m = ETLMonitorFramework(spark, schema=SCHEMA, updated_by="pytest")
    m.setup()
    return m


@pytest.fixture(scope="module")
def instance(spark_server: LocalSparkServer, monitor: ETLMonitorFramework) -> Iterator[DagsterInstance]:
    """A real Dagster instance (temporary DAGSTER_HOME) for tests/catalogue, registered in the monitor."""
    os.environ[REMOTE_ENV] = spark_server.url
    monitor.register_many(**registration(load_catalogue(CATALOGUE)))
    with instance_for_test() as dagster_instance:
        yield dagster_instance
    del os.environ[REMOTE_ENV]


@dataclass
class Process:
    """A registered process of one test: its codes and a monitor bound to them."""

    monitor: ETLMonitorFramework
    project: str
    load: str

    def task(self, task_id: int, workflow_id: int = 1, sequence_id: int = 2, **kwargs) -> None:
        self.register(tasks=[{"task_id": task_id, "workflow_id": workflow_id, "sequence_id": sequence_id, **kwargs}])

    def parameter(self, name: str, ptype: str, **kwargs) -> None:
        self.register(parameters=[{"parameter_name": name, "parameter_type": ptype, **kwargs}])

    def register(self, tasks: list[dict] = (), parameters: list[dict] = ()) -> None:
        """Register tasks (workflow 1, stage 2, PYTHON, optional, the process's frequency unless given)
        and parameters in one batch."""
        self.monitor.register_many(**self.entries(tasks, parameters))

    def entries(self, tasks: list[dict] = (), parameters: list[dict] = ()) -> dict[str, list[dict]]:
        """``register_many``'s tasks and parameters of this process, with ``register``'s defaults."""
        owner = {"project_code": self.project, "process_load": self.load}
        return {
            "tasks": [{"workflow_id": 1, "sequence_id": 2, "source_type": "PYTHON", "task_mandatory": False,
                       "load_frequency": None, "task_name": f"task {t.get('workflow_id', 1)}.{t['task_id']}",
                       **owner, **t} for t in tasks],
            "parameters": [{**owner, **p} for p in parameters],
        }

    def new_run(self, day: str = DAY) -> str:
        execution = self.monitor.generate_execution_id()
        self.monitor.generate_execution_steps(execution, self.project, self.load, day)
        return execution

    def steps(self, execution: str) -> dict[tuple[int, int], dict]:
        """The execution's rows keyed by (WorkFlowID, TaskID)."""
        rows = self.monitor.status_rows(self.project, self.load, execution_id=execution)
        return {(r["WorkFlowID"], r["TaskID"]): r for r in rows}

    def receipts(self, execution: str | None = None) -> list[dict]:
        """The process's receipts in the order they were logged (folded into ETLsysLogs or not yet)."""
        logs = self.monitor.spark.table(self.monitor.table_name("v_liveLogs"))
        logs = logs.where((logs["ProjectCode"] == self.project) & (logs["ProcessLoad"] == self.load))
        if execution:
            logs = logs.where(logs["ExecutionID"] == execution)
        return [r.asDict() for r in logs.orderBy("LogOrder").collect()]

    def rows(self, table: str) -> list[dict]:
        """The process's rows of one table as every reader of the monitor sees them (LastUpdatedOn included),
        in a stable order: the tables the event log folds into are read through their live views."""
        frame = self.monitor.spark.table(self.monitor.table_name(LIVE.get(table, table)))
        frame = frame.where((frame["ProjectCode"] == self.project) & (frame["ProcessLoad"] == self.load))
        return sorted((r.asDict() for r in frame.collect()), key=repr)

    def count(self, table: str) -> int:
        frame = self.monitor.spark.table(self.monitor.table_name(LIVE.get(table, table)))
        return frame.where((frame["ProjectCode"] == self.project) & (frame["ProcessLoad"] == self.load)).count()


@pytest.fixture
def make_process(monitor: ETLMonitorFramework):
    """Register a fresh process with an initiation task, and the ``tasks`` and ``parameters`` given as
    ``Process.register`` takes them, in one batch; returns a ``Process``."""

    def make(frequency: str = "D", project: str | None = None, load: str = "LOAD",
             tasks: list[dict] = (), parameters: list[dict] = ()) -> Process:
        process = Process(monitor, project or f"P{uuid.uuid4().hex[:10]}", load)
        initiation = {"task_id": 0, "workflow_id": 0, "sequence_id": 0, "task_name": "Initiation",
                      "source_type": "NONE", "task_mandatory": True, "load_frequency": "D"}
        monitor.register_many(
            processes=[{"project_code": process.project, "process_load": load, "name": "Test load",
                        "owner": "QA", "load_frequency": frequency}],
            **process.entries([initiation, *tasks], parameters),
        )
        return process

    return make


@pytest.fixture
def process(make_process) -> Process:
    return make_process()

