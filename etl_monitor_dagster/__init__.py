"""ETL process monitoring on Delta tables, as a Dagster code location.

Three layers: ``core`` (the monitor and its rules; needs only a SparkSession), ``tasks`` (one
runner per source type) and ``dagster`` (resources, translator, assets, sensors, schedules). The
Dagster names here are imported lazily, so notebooks do not pay for Dagster.
"""

from typing import Any

from .core.enums import LoadFrequency, LogCode, LogType, ParameterType, SourceType, Status
from .core.errors import ConcurrencyError, EngineError, ETLMonitorError, NotFoundError, ValidationError
from .core.monitor import ETLMonitorFramework, TaskGuard

_DAGSTER = {
    "AzureDataFactoryResource": "resource",
    "DagsterETLMonitorTranslator": "translator",
    "DatabricksResource": "resource",
    "ETLMonitorResource": "resource",
    "HealthSettings": "sensors",
    "SparkEngine": "resource",
    "build_definitions": "definitions",
    "databricks_from_env": "resource",
}

__all__ = [
    "AzureDataFactoryResource",
    "ConcurrencyError",
    "DagsterETLMonitorTranslator",
    "DatabricksResource",
    "ETLMonitorError",
    "ETLMonitorFramework",
    "ETLMonitorResource",
    "EngineError",
    "HealthSettings",
    "LoadFrequency",
    "LogCode",
    "LogType",
    "NotFoundError",
    "ParameterType",
    "SourceType",
    "SparkEngine",
    "Status",
    "TaskGuard",
    "ValidationError",
    "build_definitions",
    "databricks_from_env",
]


def __getattr__(name: str) -> Any:
    if name in _DAGSTER:
        import importlib

        return getattr(importlib.import_module(f".dagster.{_DAGSTER[name]}", __name__), name)
    raise AttributeError(name)
