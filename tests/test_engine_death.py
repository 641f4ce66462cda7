"""A dead engine is an error, quickly, and heals: real servers killed with SIGKILL, no mocks.

The Spark tests share one throwaway embedded server; each kills it and the next use starts it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, materialize
from pyspark.sql import SparkSession

from etl_monitor_dagster import EngineError, ETLMonitorFramework, ETLMonitorResource, tasks
from etl_monitor_dagster.core.catalogue import ProcessSpec, TaskSpec
from etl_monitor_dagster.core.local_spark import SERVER_CLASS, LocalSparkServer
from etl_monitor_dagster.tasks import TaskRun
from tests.conftest import free_port

SCHEMA = "engine_death"
HANG = 60  # a call that takes longer than this is a hang, whatever the bound
BOUND = 5.0  # the server's unreachable_timeout_seconds here: the default's 20 s only make the tests wait longer
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSparkServer]:
    server = LocalSparkServer(home=tmp_path_factory.mktemp("dying_engine"), port=free_port(),
                              unreachable_timeout_seconds=BOUND)
    try:
        ETLMonitorFramework(server.session(), schema=SCHEMA, updated_by="pytest").setup()
        yield server
    finally:
        server.stop()


def _monitor(server: LocalSparkServer) -> ETLMonitorFramework:
    return ETLMonitorFramework(server.session(), schema=SCHEMA, updated_by="pytest")


def _kill(server: LocalSparkServer) -> int:
    """SIGKILL the server's process group; returns its pid once the port is closed."""
    pid = int(server.pid_file.read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while server.is_up():
        assert time.monotonic() < deadline, "the killed server still listens"
        time.sleep(0.1)
    with suppress(ChildProcessError):  # reap it when this process started it
        os.waitpid(pid, 0)
    return pid


def _servers(home: Path) -> set[int]:
    """Process groups of the live servers of ``home``: one per start (spark-submit's launcher shares it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                args = (entry / "cmdline").read_bytes()
                if SERVER_CLASS.encode() in args and str(home.resolve()).encode() in args:
                    found.add(os.getpgid(int(entry.name)))
    return found


def _state(server: LocalSparkServer) -> str:
    """The server as a failing heal left it: listening or not, its processes, its log's end."""
    log = server.log_file.read_text(errors="replace") if server.log_file.exists() else ""
    return (f"port {server.port} {'listens' if server.is_up() else 'is closed'}; pid file "
            f"{server.pid_file.read_text() if server.pid_file.exists() else 'missing'}; live servers "
            f"{sorted(_servers(server.home))}; log's end:\n{log[-3000:]}")


def _names_the_engine(message: str, server: LocalSparkServer) -> None:
    assert "embedded" in message
    assert server.url in message
    assert str(server.log_file) in message


@pytest.mark.spark
def test_a_monitor_call_on_a_killed_engine_fails_within_the_bound_and_the_next_session_restarts_it_with_its_rows(
        server):
    monitor = _monitor(server)
    project = f"P{uuid.uuid4().hex[:10]}"
    monitor.register_process(project, "LOAD", "Survives a restart", owner="QA")
    killed = _kill(server)

    started = time.monotonic()
    with pytest.raises(EngineError) as lost:
        monitor.status_rows(project, "LOAD")
    waited = time.monotonic() - started
    print(f"kill -> EngineError: {waited:.1f} s (bound {BOUND:g} s)")
    assert BOUND - 1 < waited < BOUND + 15
    _names_the_engine(str(lost.value), server)
    assert "did not answer" in str(lost.value)

    started = time.monotonic()  # the outage is known: the next call does not wait it out again
    with pytest.raises(EngineError):
        monitor.register_process(project, "LOAD", "Never written", owner="QA")
    assert time.monotonic() - started < BOUND / 2

    started = time.monotonic()
    healed = _monitor(server)
    print(f"restart on next use: {time.monotonic() - started:.1f} s")
    restarted = int(server.pid_file.read_text())
    assert restarted != killed and _servers(server.home) == {restarted}
    assert healed.spark is not monitor.spark
    processes = healed.spark.table(healed.table_name("ETLconfigProcess"))
    (row,) = processes.where(processes["ProjectCode"] == project).collect()
    assert row["ProcessName"] == "Survives a restart"
    assert _monitor(server).spark is healed.spark  # later uses share the session: no second restart
    assert int(server.pid_file.read_text()) == restarted

    with pytest.raises(EngineError) as stale:  # the old monitor's session belonged to the dead server
        monitor.status_rows(project, "LOAD")
    _names_the_engine(str(stale.value), server)


@pytest.mark.spark
def test_a_spark_sql_task_running_when_the_engine_dies_fails_within_the_bound(server, tmp_path):
    monitor = _monitor(server)
    (tmp_path / "long.sql").write_text("SELECT sum(id % 7) AS rows_read FROM range(0, 1000000000000)")
    task = TaskSpec(id=1, workflow=1, stage=2, name="Long", source_type="SPARK_SQL", source="long.sql")
    spec = ProcessSpec(project="QA", process="LOAD", tasks=(task,), path=tmp_path / "p.yaml")
    run = TaskRun("exec-1", spec, task, date(2026, 4, 9), {"Attempts": 0}, monitor)
    killed_at: list[float] = []
    killer = threading.Timer(5, lambda: (_kill(server), killed_at.append(time.monotonic())))
    killer.start()
    try:
        with pytest.raises(EngineError) as lost:
            tasks.run(run)
    finally:
        killer.join()
    waited = time.monotonic() - killed_at[0]
    print(f"kill -> EngineError in a running SPARK_SQL statement: {waited:.1f} s")
    assert waited < HANG
    _names_the_engine(str(lost.value), server)


CHILD = """
import sys
from pathlib import Path
from etl_monitor_dagster.core.local_spark import LocalSparkServer

server = LocalSparkServer(home=Path(sys.argv[1]), port=int(sys.argv[2]))
answer = server.session().sql("SELECT 41 + 1 AS x").collect()[0].x
print(answer, server.pid_file.read_text())
"""


@pytest.mark.spark
def test_two_processes_using_a_killed_engine_start_exactly_one_server(server):
    # Dead already when the previous test killed it (no start just to kill it again), else killed here.
    killed = _kill(server) if server.is_up() else int(server.pid_file.read_text())
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(server.home), str(server.port)],
                                 cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    while any(child.poll() is None for child in children) and time.monotonic() < deadline:
        seen |= _servers(server.home)  # a second server would live for seconds before failing to bind
        time.sleep(0.2)
    outputs = [child.communicate(timeout=30) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err[-2000:] for _, err in outputs]
    answers = [out.split()[-2:] for out, _ in outputs]  # "42 <pid file>" from each
    pids = {int(pid) for _, pid in answers}
    assert [answer for answer, _ in answers] == ["42", "42"]
    assert len(pids) == 1 and killed not in pids
    assert seen == pids == _servers(server.home)


@pytest.mark.spark
def test_a_session_opened_after_a_restart_answers_while_another_session_still_retries_the_dead_server(server):
    # Up again whatever the previous test left. A first read also has pyspark read a process-wide
    # setting from the active session while that one is alive (later, it would be the dead ``other``).
    assert _monitor(server).status_rows("NOBODY", "NOTHING") == []
    other = SparkSession.builder.remote(server.url).create()  # a user's own session: pyspark's channel and retries
    other.sql("SELECT 1").collect()
    _kill(server)

    def retry() -> None:
        with suppress(Exception):  # pyspark's own policy retries for minutes; closing the session ends it
            other.sql("SELECT 2").collect()

    threading.Thread(target=retry, daemon=True).start()
    time.sleep(30)  # gRPC now waits 10 s or more between its attempts to reconnect to the address
    try:
        healed = _monitor(server)
        assert healed.status_rows("NOBODY", "NOTHING") == []  # within its 5 s, not after the other's backoff
    finally:
        other.client.close()


@pytest.mark.spark
@pytest.mark.dagster_run
def test_a_dagster_step_whose_engine_dies_fails_with_the_engine_error_and_the_resource_heals(server):
    resource = ETLMonitorResource(engine="embedded", home=str(server.home), port=server.port, schema_name=SCHEMA,
                                  unreachable_timeout_seconds=BOUND)
    killed: list[tuple[int, float]] = []

    @asset
    def doomed(monitor: ETLMonitorResource) -> None:
        work = monitor.get_monitor()  # as a task asset holds it for its whole step
        work.status_rows("NOBODY", "NOTHING")
        killed.append((_kill(server), time.monotonic()))
        work.status_rows("NOBODY", "NOTHING")

    with DagsterInstance.ephemeral() as instance:
        result = materialize([doomed], resources={"monitor": resource}, instance=instance, raise_on_error=False)
    waited = time.monotonic() - killed[0][1]
    print(f"kill -> STEP_FAILURE with a {BOUND:g} s bound: {waited:.1f} s")
    assert not result.success and waited < HANG
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    text = error.to_string() if error else ""
    assert "EngineError" in text
    _names_the_engine(text, server)

    healed = resource.get_monitor()  # the next use starts the server again and rebuilds the monitor
    restarted = int(server.pid_file.read_text())
    assert restarted != killed[0][0] and _servers(server.home) == {restarted}, _state(server)
    try:
        assert healed.status_rows("NOBODY", "NOTHING") == []
    except EngineError as exc:  # say what the server was doing
        pytest.fail(f"{exc}\n{_state(server)}")


def test_a_stale_pid_file_naming_another_process_is_never_killed(tmp_path):
    server = LocalSparkServer(home=tmp_path, port=free_port())
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # took the dead server's pid, say
    server.pid_file.write_text(str(other.pid))
    try:
        server.stop()
        assert other.poll() is None
        assert not server.pid_file.exists()
    finally:
        other.kill()
        other.wait()
