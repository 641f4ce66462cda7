"""ETL process monitoring on Delta tables, as a Dagster code location.

Three layers: ``core`` (the monitor and its rules; needs only a SparkSession), ``tasks`` (one
runner per source type) and ``dagster`` (resources, translator, assets, sensors, schedules). The
Dagster names here are imported lazily, so notebooks do not pay for Dagster.
"""

from typing import Any

from .core.enums import LoadFrequency, LogCode, LogType, ParameterType, SourceType, Status
from .core.error_class import ErrorClass, classify
from .core.errors import ConcurrencyError, EngineError, ETLMonitorError, NotFoundError, ValidationError
from .core.monitor import ETLMonitorFramework, TaskGuard
from .core.monitor.maintenance import MaintenanceReport, MaintenanceSettings

_DAGSTER = {
    "AzureDataFactoryResource": "adf",
    "DagsterETLMonitorTranslator": "translator",
    "DatabricksResource": "databricks",
    "ETLMonitorAlerts": "alerts",
    "ETLMonitorComponent": "component",
    "ETLMonitorResource": "resource",
    "HealthSettings": "sensors",
    "MaintenanceSchedule": "maintenance",
    "SparkEngine": "resource",
    "build_definitions": "definitions",
    "databricks_from_env": "databricks",
}

__all__ = [
    "AzureDataFactoryResource",
    "ConcurrencyError",
    "DagsterETLMonitorTranslator",
    "DatabricksResource",
    "ETLMonitorAlerts",
    "ETLMonitorComponent",
    "ETLMonitorError",
    "ETLMonitorFramework",
    "ETLMonitorResource",
    "EngineError",
    "ErrorClass",
    "HealthSettings",
    "LoadFrequency",
    "LogCode",
    "LogType",
    "MaintenanceReport",
    "MaintenanceSchedule",
    "MaintenanceSettings",
    "NotFoundError",
    "ParameterType",
    "SourceType",
    "SparkEngine",
    "Status",
    "TaskGuard",
    "ValidationError",
    "build_definitions",
    "classify",
    "databricks_from_env",
]


def __getattr__(name: str) -> Any:
    if name in _DAGSTER:
        import importlib

        return getattr(importlib.import_module(f".dagster.{_DAGSTER[name]}", __name__), name)
    raise AttributeError(name)


def __dir__() -> list[str]:
    # dg finds components through dir() of the registered module: list the component, not every lazy
    # name, so that listing components does not import the Databricks and Azure SDKs.
    return sorted({*globals(), "ETLMonitorComponent"})
