"""ETL process monitoring on Delta tables, as a Dagster code location.

The tracking semantics (``ETLMonitorFramework``) need only a SparkSession; the Dagster resource
(``ETLMonitorResource``) is imported lazily so notebooks do not pay for Dagster.
"""

from .enums import LoadFrequency, LogType, ParameterType, SourceType, Status
from .errors import ConcurrencyError, EngineError, ETLMonitorError, NotFoundError, ValidationError
from .monitor import ETLMonitorFramework, TaskGuard

__all__ = [
    "ConcurrencyError",
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
]


def __getattr__(name: str):
    if name in ("ETLMonitorResource", "SparkEngine"):
        from . import resource

        return getattr(resource, name)
    raise AttributeError(name)
