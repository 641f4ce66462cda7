"""Seconds to load a generated catalogue of 1,000 tasks in 50 processes and to build its Dagster definitions.

    .venv/bin/python benchmarks/catalogue_load.py [--processes 50] [--tasks 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from dagster import Definitions

from etl_monitor_dagster.core.catalogue import load_catalogue
from etl_monitor_dagster.dagster.definitions import build_definitions


def write_catalogue(directory: Path, processes: int, tasks: int) -> None:
    (directory / "step.sql").write_text("SELECT 1")
    for p in range(processes):
        doc = {
            "project": "GEN", "process": f"PROCESS_{p:03d}", "frequency": "DWMY"[p % 4],
            "parameters": [{"name": "SYSDT", "type": "SYSTEM"}]
            + [{"name": f"wm_{t}", "type": "DELTA_DATE"} for t in range(1, tasks)],
            "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"}]
            + [{"id": t, "workflow": 1 + t % 2, "stage": 1 + t % 6, "name": f"Task {t}", "source_type": "SPARK_SQL",
                "source": "step.sql", "watermark": f"wm_{t}", "mandatory": t % 3 == 0} for t in range(1, tasks)],
        }
        (directory / f"process_{p:03d}.yaml").write_text(yaml.safe_dump(doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per process, the initiation task included")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_catalogue(Path(tmp), args.processes, args.tasks)
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            specs = load_catalogue(tmp)
            seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        defs = build_definitions(tmp)
        Definitions.validate_loadable(defs)
        location = time.perf_counter() - started
        assets = len(defs.get_repository_def().asset_graph.get_all_asset_keys())
    total = sum(len(s.tasks) for s in specs)
    print(f"catalogue of {total} tasks in {len(specs)} processes: "
          f"{statistics.median(seconds):.3f} s to load and validate (median of {args.repeat})")
    print(f"code location (no Spark): {location:.3f} s to build and validate {assets} assets and {len(specs)} jobs, "
          f"{location / statistics.median(seconds):.0f}x the catalogue load")


if __name__ == "__main__":
    main()
