"""The embedded default engine: one local Spark Connect server with Delta, shared by every process.

Every statement goes through this single driver (its Derby metastore takes one JVM). Its Delta log store
for local files commits put if absent, so the monitor's processes can commit the event log's appends
themselves beside it (``local_delta``) and no writer ever replaces another's commit.
Its warehouse, Derby metastore and logs live under one folder (``home``) that survives restarts.
A server that died is started again by the next ``session()``, in whichever process gets there first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .engine import DEFAULT_UNREACHABLE_TIMEOUT, EngineInfo
from .errors import EngineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOME = Path(os.environ.get("ETL_MONITOR_HOME", PROJECT_ROOT / ".etl_monitor"))
DEFAULT_JARS = Path(os.environ.get("ETL_MONITOR_JARS", PROJECT_ROOT / "jars" / "lib"))
DEFAULT_PORT = int(os.environ.get("ETL_MONITOR_SPARK_PORT", "15002"))

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# Tasks per job on the embedded engine: its statements touch a few rows and a few files each.
PARALLELISM = "2"

# Delta lists a table's _delta_log from its last checkpoint on, for every read and commit. Its own store for
# local files takes a status of every file in the folder before filtering, so each statement slowed with
# every commit the table ever had; ours (jars/src, built by `make install`) looks at the names first and
# takes the status of the files it returns (benchmarks/delta_log.py; README, Speed), and commits with a hard
# link, which fails if the version exists whoever wrote it. Those files are one per commit, not four: no Delta
# .crc checksum (readers do not need it), no Hadoop .crc side files. And a checkpoint every 100 commits, not 10
# (the event log's own setting aside, schema.EVENTS), for tables created here: a
# checkpoint rewrites the table's whole file list in the commit that makes it, while a running server
# updates its snapshots from the new commits alone (checkpoints only shorten the first read after a restart).
LOG_STORE_JAR = "etl-monitor-logstore.jar"
DELTA_LOG_SETTINGS = {
    "spark.delta.logStore.file.impl": "etlmonitor.LocalLogStore",
    "spark.databricks.delta.writeChecksumFile.enabled": "false",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
    "spark.databricks.delta.properties.defaults.checkpointInterval": "100",
}


@dataclass(frozen=True)
class LocalSparkServer:
    """A Spark Connect server on 127.0.0.1:``port`` with Delta, warehouse and metastore in ``home``.

    >>> server = LocalSparkServer(home=Path(".etl_monitor"), port=15002)  # doctest: +SKIP
    >>> spark = server.session()  # starts the server on first use  # doctest: +SKIP
    """

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    jars_dir: Path = DEFAULT_JARS
    start_timeout_seconds: float = 180.0
    unreachable_timeout_seconds: float = DEFAULT_UNREACHABLE_TIMEOUT

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "spark-connect.log"

    def is_up(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def ensure_running(self) -> None:
        """Start the server unless it already listens; safe to call from many processes at once."""
        if self.is_up():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.home / "server.lock"):
            if self.is_up():
                return
            stale = self._server_pid()
            if stale is not None:  # alive but not listening (hung, half dead): it holds the metastore
                _kill_group(stale)
            process = subprocess.Popen(
                self.command(),
                cwd=self.home,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._open_log(),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the process that started it
            )
            self.pid_file.write_text(str(process.pid))
            deadline = time.monotonic() + self.start_timeout_seconds
            while not self.is_up():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_file.read_text(errors="replace")[-3000:]
                    self.stop()
                    raise EngineError(
                        f"the local Spark Connect server did not start on port {self.port} "
                        f"(log: {self.log_file}):\n{tail}"
                    )
                time.sleep(0.5)

    @classmethod
    @contextmanager
    def temporary(cls) -> Iterator[LocalSparkServer]:
        """A throwaway server (benchmarks, tests): its own temporary folder and a free port, stopped on exit."""
        with tempfile.TemporaryDirectory() as home, socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            sock.close()
            server = cls(home=Path(home), port=port)
            try:
                server.ensure_running()
                yield server
            finally:
                server.stop()

    def stop(self) -> None:
        """Stop the server this home started (by its process id), if it runs; close this process's session to it."""
        from .connect import forget

        forget(self.url)
        pid = self._server_pid()
        if pid is not None:
            _kill_group(pid)
        self.pid_file.unlink(missing_ok=True)

    def session(self) -> SparkSession:
        """A Spark Connect session to this server, starting the server if it is not running.

        The process shares one session per server; after the server restarted (a new pid) or the
        session was closed, a new one replaces it. Calls give up after ``unreachable_timeout_seconds``
        of an unreachable server with EngineError.
        """
        from .connect import shared_session

        self.ensure_running()
        return shared_session(self.url, self.engine_info(), generation=self._pid())

    def engine_info(self) -> EngineInfo:
        """How EngineErrors name this server."""
        return EngineInfo("the embedded Spark engine (local Spark Connect server)", self.url, str(self.log_file),
                          self.unreachable_timeout_seconds,
                          "Its next use starts it again if it is down, on a new session.",
                          str(self.home.resolve() / "warehouse"))

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _server_pid(self) -> int | None:
        """The pid file's process if it is alive and, where /proc shows it, this home's server.

        A pid file left by a killed server may name a process that reused the pid; that one must not be killed.
        """
        pid = self._pid()
        if pid is None:
            return None
        proc = Path("/proc")
        if proc.is_dir():
            try:
                args = (proc / str(pid) / "cmdline").read_bytes()  # empty for a zombie
            except OSError:
                return None
            return pid if SERVER_CLASS.encode() in args and str(self.home.resolve()).encode() in args else None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):  # gone, or another user's process: not our server
            return None
        return pid

    def command(self) -> list[str]:
        jars = sorted(self.jars_dir.glob("*.jar")) if self.jars_dir.is_dir() else []
        names = {j.name for j in jars}
        if LOG_STORE_JAR not in names or not any(name.startswith("delta-spark") for name in names):
            raise EngineError(
                f"the Delta Lake jars or {LOG_STORE_JAR} are missing from {self.jars_dir}: run `make install` "
                "(it fetches the jars with Maven and builds the log store with the JDK)"
            )
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise EngineError("Java is not installed: install a Java 17 JDK (e.g. openjdk-17-jdk)")
        home = self.home.resolve()
        conf = {
            "spark.master": "local[*]",
            "spark.app.name": "etl-monitor",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(home / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
            ),
            # The throughput collector: a server that has run for a while holds about 0.9 GB of live plans
            # and caches, and G1 then marked that old generation about once a second; over a whole test
            # suite its collector took 258 s of the server's CPU, this one 84 s (README, Speed).
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={home} -XX:+UseParallelGC",
            # The metastore is one Derby database behind Spark's one catalog lock, so a write Derby refuses
            # fails alike on every retry. One it refuses: a view over a column whose comment is longer than
            # 256 characters, as the seed's ForceSkip is (Spark then stores the view its own way). Hive's 10
            # retries 2 s apart held the lock for 20 s per view, stalling every session's table lookups.
            "spark.hadoop.hive.hmshandler.retry.attempts": "1",
            "spark.hadoop.hive.hmshandler.retry.interval": "0ms",
            # Small statements: fewer tasks per query is what makes them fast.
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": PARALLELISM,
            # VACUUM lists a table's files in a job of this many tasks (Spark's default: 10,000). On this
            # engine that was 17 s per VACUUM of a small table and 59 s per maintenance run (README, Speed).
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": PARALLELISM,
            "spark.databricks.delta.snapshotPartitions": "1",
            **DELTA_LOG_SETTINGS,
            "spark.ui.enabled": "false",
            # Tuned for the monitor's statements, a few rows each (figures: README, Speed). Adaptive
            # execution only adds jobs on rows this few (a MERGE runs 6 instead of 10-12). Generating and
            # compiling Java for each projection and stage was 43 % of the server's samples in a round
            # trip (benchmarks/engine_profile.py), and its classes kept the JIT busy: interpreted
            # expressions made a round trip 0.61 times as long. Big data on this engine runs slower for it.
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.driver.memory": "4g",
            # Spark keeps every job, stage, task and SQL plan for its UI even with the UI off: a MERGE is six
            # jobs, and the heap they filled made garbage collection a third of the server's CPU after 40
            # round trips. Keeping the last 20 cut its CPU per round trip by 31 % (README, Speed).
            "spark.sql.ui.retainedExecutions": "20",
            "spark.ui.retainedJobs": "20",
            "spark.ui.retainedStages": "20",
            "spark.ui.retainedTasks": "200",
            "spark.connect.ui.retainedStatements": "20",
            "spark.connect.ui.retainedSessions": "20",
        }
        args = [str(_spark_home() / "bin" / "spark-submit"), "--class", SERVER_CLASS]
        args += ["--jars", ",".join(str(j) for j in jars)]
        for key, value in conf.items():
            args += ["--conf", f"{key}={value}"]
        return [*args, "spark-internal"]

    def _environment(self) -> dict[str, str]:
        conf_dir = self.home / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        # Spark logs every gRPC call at INFO: hundreds of thousands of lines that cost real time.
        (conf_dir / "log4j2.properties").write_text(_LOG4J2)
        env = dict(os.environ)
        env["SPARK_CONF_DIR"] = str(conf_dir)
        env["SPARK_HOME"] = str(_spark_home())
        env["PYSPARK_PYTHON"] = sys.executable
        env.setdefault("SPARK_LOG_DIR", str(self.home / "logs"))
        return env

    def _open_log(self) -> BinaryIO:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        return self.log_file.open("ab")


_LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _kill_group(pid: int) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL after 10 s."""
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            with suppress(ChildProcessError):  # reap it if this process started it: a zombie keeps the group
                os.waitpid(pid, os.WNOHANG)
            os.killpg(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    """``python -m etl_monitor_dagster.core.local_spark start|stop|status`` for the embedded server."""
    argv = sys.argv[1:] if argv is None else argv
    action = argv[0] if argv else "status"
    server = LocalSparkServer()
    if action == "start":
        server.ensure_running()
        print(f"Spark Connect with Delta at {server.url} (home {server.home})")
    elif action == "stop":
        server.stop()
        print("stopped")
    else:
        print(f"{server.url}: {'up' if server.is_up() else 'down'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
