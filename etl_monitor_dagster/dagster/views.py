"""The monitoring views (SPEC.md's six and v_taskHealth) as downstream assets of each process, with figures.

With ``billing_schema`` set on the monitor resource the asset also keeps ``v_runCost`` and puts the partition's
cost on ``v_runSummary``'s metadata (numbers, so the UI plots them over partitions). Late billing records
change a run's cost until it settles, so each materialisation also reports again, as observations of
``v_runSummary``, the cost of earlier partitions of the process that are not settled yet.
"""

from collections.abc import Collection, Iterator
from datetime import date
from functools import partial
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    multi_asset,
)

from ..core.catalogue import ProcessSpec, dagster_name
from ..core.cost import RunCosts, cost_figures
from ..core.engine import concurrently
from ..core.monitor import ETLMonitorFramework
from ..core.schema import VIEWS
from .hooks import wait_for_hooks
from .metadata import markdown_table
from .partitions import processing_date
from .resource import ETLMonitorResource
from .translator import DagsterETLMonitorTranslator


def view_assets(process: ProcessSpec, translator: DagsterETLMonitorTranslator, after: list[AssetKey],
                steps: Collection[str], partitions: TimeWindowPartitionsDefinition) -> AssetsDefinition:
    """One multi-asset materialising the views after the last stage's tasks (``after``, run by ``steps``) and
    their hooks, with this run's figures."""
    specs = {view: translator.get_view_spec(process, view).replace_attributes(deps=after) for view in VIEWS}

    @multi_asset(name=f"{dagster_name(process.process)}__monitoring_views", specs=list(specs.values()),
                 partitions_def=partitions)
    def monitoring_views(context: AssetExecutionContext,
                         monitor: ETLMonitorResource) -> Iterator[MaterializeResult | AssetObservation]:
        m = monitor.get_monitor()
        wait_for_hooks(context, steps)  # a hook that did not write in time is the run sensors' to repair
        m.create_views()
        billing = monitor.billing_tables()
        costs = RunCosts(m.store, billing) if billing is not None else None
        if costs is not None:
            costs.create_view()
        day = processing_date(partitions, context.partition_key)
        figures = view_figures(m, process.project, process.process, context.run.run_id, day, costs)
        for view, metadata in figures.items():
            yield MaterializeResult(asset_key=specs[view].key, metadata=metadata)
        if costs is not None:
            for earlier, metadata in unsettled_costs(costs, process.project, process.process, day).items():
                # the key of the partition a processing date stands for (the first day of its period)
                yield AssetObservation(asset_key=specs["v_runSummary"].key, partition=earlier.strftime(partitions.fmt),
                                       metadata=metadata)

    return monitoring_views


def unsettled_costs(costs: RunCosts, project: str, process: str, day: date) -> dict[date, dict[str, Any]]:
    """Per earlier processing date of the process whose cost is not settled yet: its cost figures now."""
    rows = costs.rows({"ProjectCode": project, "ProcessLoad": process})
    dates = {r["ProcessingDate"] for r in rows if not r["CostSettled"] and r["ProcessingDate"] != day}
    return {d: cost_figures([r for r in rows if r["ProcessingDate"] == d]) for d in sorted(dates)}


def view_figures(monitor: ETLMonitorFramework, project: str, process: str, execution_id: str,
                 day: Any, costs: RunCosts | None = None) -> dict[str, dict[str, Any]]:
    """Per view: this run's figures as numbers Dagster can plot, and a small preview table; with ``costs``, the
    cost of the date's runs on ``v_runSummary`` (``cost_figures``, and each task's list cost)."""
    run: dict[str, Any] = {"ExecutionID": execution_id}
    date_scope: dict[str, Any] = {"ProcessingDate": day}
    reads: dict[str, tuple[list[str], dict[str, Any]]] = {
        "v_runSummary": ([], run),
        "v_processStatus": ([], date_scope),
        "v_taskDetail": (["WorkFlowID", "SequenceID", "TaskID"], run),
        "v_mandatoryBlockers": ([], run),
        "v_currentFailures": ([], date_scope),
        "v_watermarks": (["ParameterName"], {}),
        "v_taskHealth": (["WorkFlowID", "TaskID"], {}),
    }
    read: dict[str, Any] = {"views": partial(monitor.read_process_views, project, process, reads)}
    if costs is not None:
        read["v_runCost"] = partial(costs.rows, {"ProjectCode": project, "ProcessLoad": process, **date_scope},
                                    ["WorkFlowID", "TaskID"])
    found = concurrently(read)
    rows = {**found["views"], **({"v_runCost": found["v_runCost"]} if costs is not None else {})}
    summary, status, detail = rows["v_runSummary"], rows["v_processStatus"], rows["v_taskDetail"]
    blockers, failures, watermarks = rows["v_mandatoryBlockers"], rows["v_currentFailures"], rows["v_watermarks"]
    health = rows["v_taskHealth"]

    def numbers(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
        return {c: int(row[c]) for c in columns if row.get(c) is not None}

    marks: dict[str, Any] = {}
    for row in watermarks:
        if row["ParameterType"] == "DELTA_ID" and row["ValueINT"] is not None:
            marks[f"watermark_{row['ParameterName']}"] = int(row["ValueINT"])
        elif row["ParameterType"] in ("DELTA_DATE", "SYSTEM") and row["ValueDateTime"] is not None:
            marks[f"watermark_{row['ParameterName']}"] = MetadataValue.timestamp(row["ValueDateTime"].timestamp())
    durations = [r["DurationSeconds"] for r in detail if r.get("DurationSeconds") is not None]
    cost: dict[str, Any] = {}
    if costs is not None:
        cost = cost_figures(rows["v_runCost"])
        for row in rows["v_runCost"]:
            if row["ListCost"] is not None:
                key = f"{row['TaskName']} list_cost"
                cost[key] = round(cost.get(key, 0.0) + float(row["ListCost"]), 6)
    return {
        "v_runSummary": {**(numbers(summary[0], ["Attempts", "TotalTasks", "Done", "Failed", "Pending",
                                                 "TotalDurationSeconds", "WallClockSeconds"]) if summary else {}),
                         "OverallStatus": summary[0]["OverallStatus"] if summary else "NOT STARTED", **cost},
        "v_processStatus": {**(numbers(status[0], ["LatestAttempt", "TotalRuns", "Done", "Failed", "Pending",
                                                   "WallClockSeconds"]) if status else {}),
                            **_preview(status, ["ProcessingDate", "LatestAttempt", "Done", "Failed", "Pending",
                                                "OverallStatus"])},
        "v_taskDetail": {"SlaBreaches": sum(bool(r["SlaBreached"]) for r in detail),
                         "SlaAtRisk": sum(bool(r["SlaAtRisk"]) for r in detail),
                         "MaxDurationSeconds": max(durations, default=0),
                         **_preview(detail, ["WorkFlowID", "SequenceID", "TaskName", "Status", "DurationSeconds",
                                             "SlaBreached"])},
        "v_mandatoryBlockers": {"Blockers": len(blockers),
                                **_preview(blockers, ["TaskName", "Status", "LogMessage"])},
        "v_currentFailures": {"Failures": len(failures), **_preview(failures, ["TaskName", "LogCode", "LogMessage"])},
        "v_taskHealth": task_health_figures(health),
        "v_watermarks": {**marks, **_preview(watermarks, ["ParameterName", "ParameterType", "ActiveValue",
                                                          "WatermarkState"])},
    }


def task_health_figures(health: list[dict[str, Any]]) -> dict[str, Any]:
    """``v_taskHealth``'s figures from its rows of one process: counts of failing, slow and anomalous tasks, each
    task's seconds, p90 and failure streak (numbers, so the UI plots them), and a preview table."""
    per_task: dict[str, Any] = {}
    for row in health:
        for figure, column in (("seconds", "LastDoneSeconds"), ("p90_seconds", "P90Seconds"),
                               ("failure_streak", "FailureStreak")):
            if row[column] is not None:
                per_task[f"{row['TaskName']} {figure}"] = round(float(row[column]), 3)
    return {"FailingTasks": sum(r["FailureStreak"] > 0 for r in health),
            "MaxFailureStreak": max((int(r["FailureStreak"]) for r in health), default=0),
            "SlowerThanP90": sum(bool(r["SlowerThanP90"]) for r in health),
            "DurationAnomalies": sum(bool(r["DurationAnomaly"]) for r in health), **per_task,
            **_preview(health, ["TaskName", "LastStatus", "FailureStreak", "LastDoneSeconds", "P90Seconds",
                                "AnomalySeconds"])}


def _preview(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    return {"rows": len(rows), "preview": MetadataValue.md(markdown_table(rows, columns))}
