"""The Dagster code location `dagster dev` loads (workspace.yaml, [tool.dagster] in pyproject.toml).

Every process in catalogue/ becomes assets, a job and a schedule; examples/ shows a team's own job
reporting into the same monitor tables.
"""

from pathlib import Path

from etl_monitor_dagster.location import build_definitions
from examples.reuse_job import gl_export

defs = build_definitions(Path(__file__).parent / "catalogue", jobs=[gl_export])
