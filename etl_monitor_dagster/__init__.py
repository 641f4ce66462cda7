"""ETL process monitoring on Delta tables, as a Dagster code location.

The tracking semantics (``ETLMonitorFramework``) need only a SparkSession; the Dagster resource
(``ETLMonitorResource``) is imported lazily so notebooks do not pay for Dagster.
"""

from .enums import LoadFrequency, LogType, ParameterType, SourceType, Status
from .errors import ConcurrencyError, EngineError, ETLMonitorError, NotFoundError, ValidationError
from .monitor import ETLMonitorFramework, TaskGuard

__all__ = [
    "ConcurrencyError",
    "DatabricksResource",
    "ETLMonitorError",
    "ETLMonitorFramework",
    "ETLMonitorResource",
    "EngineError",
    "LoadFrequency",
    "LogType",
    "NotFoundError",
    "ParameterType",
    "SourceType",
    "Status",
    "TaskGuard",
    "ValidationError",
    "databricks_from_env",
]


def __getattr__(name: str):
    if name in ("ETLMonitorResource", "SparkEngine", "DatabricksResource", "databricks_from_env"):
        from . import resource

        return getattr(resource, name)
    raise AttributeError(name)
