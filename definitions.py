"""The Dagster code location `dagster dev` loads (workspace.yaml, [tool.dagster] in pyproject.toml).

Every process in catalogue/ becomes assets, a job and a schedule; examples/ shows a team's own job
reporting into the same monitor tables. ETL_MONITOR_CATALOGUE points it at another catalogue folder.
"""

import os
from pathlib import Path

from etl_monitor_dagster.dagster.definitions import build_definitions
from examples.reuse_job import gl_export

CATALOGUE = Path(os.environ.get("ETL_MONITOR_CATALOGUE", Path(__file__).parent / "catalogue"))

defs = build_definitions(CATALOGUE, jobs=[gl_export])
