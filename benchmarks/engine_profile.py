"""Where the embedded engine spends a task round trip: Java Flight Recorder samples, by phase.

Starts a throwaway server, warms it with ``--warm`` round trips, records ``--repeat`` more under
JFR (the JDK's ``jcmd`` and ``jfr`` tools) and prints the share of the server's execution samples
whose stack holds each phase (a sample may count in several), then the most sampled leaf frames.
The recording's overhead makes these round trips slower than ``round_trip.py``'s: read the shares,
not the seconds.

    .venv/bin/python benchmarks/engine_profile.py [--warm 12] [--repeat 12]
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from round_trip import SCHEMA, _register, round_trip

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.local_spark import LocalSparkServer

# Phase -> a pattern of the frames that mark it (checked against the whole stack of a sample).
PHASES = {
    "code generation (source and compile)": r"expressions\.codegen\.|janino|codehaus",
    "task execution": r"Executor\$TaskRunner",
    "analysis": r"analysis\.Analyzer\.|CheckAnalysis",
    "optimizer": r"optimizer\.Optimizer|SparkOptimizer",
    "physical planning": r"SparkPlanner|QueryPlanner",
    "Delta commit": r"OptimisticTransactionImpl\.(commit|doCommit)",
    "Delta checkpoint": r"Checkpoints\$?\.(checkpoint|writeCheckpoint)",
    "Delta snapshot update": r"SnapshotManagement\.(update|updateInternal|createSnapshot)",
    "Delta MERGE": r"MergeIntoCommand",
    "Hive metastore": r"HiveExternalCatalog|HiveClientImpl",
    "file listing": r"listFrom|RawLocalFileSystem\.listStatus",
    "closure cleaning and its serialization check (SparkContext.clean)": r"SparkClosureCleaner",
    "task binaries serialized (DAGScheduler)": r"DAGScheduler\.submitMissingTasks",
    "Parquet write": r"ParquetOutputWriter|FileFormatWriter",
    "Parquet read": r"ParquetFileFormat|VectorizedParquet",
    "Arrow (bound values)": r"ArrowConverters",
}


class DeepStacks(LocalSparkServer):
    """The embedded server with JFR keeping whole stacks: at its default 64 frames, a sample inside a
    nested plan or a deep serialization loses the frames that name its phase."""

    def command(self) -> list[str]:
        return [f"{arg} -XX:FlightRecorderOptions:stackdepth=2048"
                if arg.startswith("spark.driver.extraJavaOptions=") else arg for arg in super().command()]


def _report(recording: Path) -> None:
    text = subprocess.run(["jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "2048",
                           str(recording)], capture_output=True, text=True, check=True).stdout
    samples = text.split("jdk.ExecutionSample {")[1:]
    print(f"execution samples: {len(samples)}")
    for phase, pattern in PHASES.items():
        hits = sum(1 for s in samples if re.search(pattern, s))
        print(f"{100 * hits / max(len(samples), 1):5.1f}%  {phase}")
    leaves = collections.Counter(m.group(1) for s in samples if (m := re.search(r"^\s+([\w.$]+)\(", s, re.M)))
    print("most sampled leaf frames:")
    for frame, count in leaves.most_common(10):
        print(f"{count:6d}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=12, help="round trips before recording starts")
    parser.add_argument("--repeat", type=int, default=12, help="round trips recorded")
    args = parser.parse_args()

    with DeepStacks.temporary() as server, tempfile.TemporaryDirectory() as folder:
        spark = server.session()
        monitor = ETLMonitorFramework(spark, schema=SCHEMA)
        _register(monitor, 1)
        for i in range(args.warm):
            round_trip(monitor, f"2026-06-{i % 28 + 1:02d}")
        pid, recording = server.pid_file.read_text().strip(), Path(folder) / "round_trip.jfr"
        subprocess.run(["jcmd", pid, "JFR.start", "name=round_trip", "settings=profile", f"filename={recording}"],
                       capture_output=True, check=True)
        seconds = [round_trip(monitor, f"2026-05-{i % 28 + 1:02d}")[0] for i in range(args.repeat)]
        subprocess.run(["jcmd", pid, "JFR.stop", "name=round_trip"], capture_output=True, check=True)
        print(f"seconds per recorded round trip (median of {args.repeat}): {statistics.median(seconds):.2f}")
        _report(recording)
        spark.stop()


if __name__ == "__main__":
    main()
