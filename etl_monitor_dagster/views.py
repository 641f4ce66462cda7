"""The six monitoring views as downstream assets of each process, with this run's figures."""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from .assets import ProcessAssets, markdown_table
from .monitor import ETLMonitorFramework
from .partitions import processing_date
from .resource import ETLMonitorResource
from .schema import VIEWS


def _question(view: str) -> str:
    """The view's one-line header: the question it answers and its grain."""
    return next(line for line in VIEWS[view].splitlines() if line.startswith("--"))[2:].strip()


def view_assets(built: ProcessAssets, after: AssetKey) -> AssetsDefinition:
    spec = built.spec
    keys = {view: built.key(view) for view in VIEWS}

    @multi_asset(
        name=f"{built.prefix}__monitoring_views",
        specs=[AssetSpec(key, group_name=f"{built.prefix}/views", deps=[after], description=_question(view),
                         kinds={"delta", "etl_monitor"}) for view, key in keys.items()],
        partitions_def=built.partitions,
    )
    def monitoring_views(context: AssetExecutionContext, monitor: ETLMonitorResource):
        m = monitor.get_monitor()
        m.create_views()
        day = processing_date(built.partitions, context.partition_key)
        figures = view_figures(m, spec.project, spec.process, context.run.run_id, day)
        for view, metadata in figures.items():
            yield MaterializeResult(asset_key=keys[view], metadata=metadata)

    return monitoring_views


def view_figures(monitor: ETLMonitorFramework, project: str, process: str, execution_id: str,
                 day: Any) -> dict[str, dict[str, Any]]:
    """Per view: this run's figures as numbers Dagster can plot, and a small preview table."""
    run = {"ExecutionID": execution_id}
    date_scope = {"ProjectCode": project, "ProcessLoad": process, "ProcessingDate": day}
    summary = monitor.read_view("v_runSummary", **run)
    status = monitor.read_view("v_processStatus", **date_scope)
    detail = monitor.read_view("v_taskDetail", order_by=["WorkFlowID", "SequenceID", "TaskID"], **run)
    blockers = monitor.read_view("v_mandatoryBlockers", **run)
    failures = monitor.read_view("v_currentFailures", **date_scope)
    watermarks = monitor.read_view("v_watermarks", order_by=["ParameterName"], ProjectCode=project,
                                   ProcessLoad=process)

    def numbers(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
        return {c: int(row[c]) for c in columns if row.get(c) is not None}

    def preview(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
        return {"rows": len(rows), "preview": MetadataValue.md(markdown_table(rows, columns))}

    marks: dict[str, Any] = {}
    for row in watermarks:
        if row["ParameterType"] == "DELTA_ID" and row["ValueINT"] is not None:
            marks[f"watermark_{row['ParameterName']}"] = int(row["ValueINT"])
        elif row["ParameterType"] in ("DELTA_DATE", "SYSTEM") and row["ValueDateTime"] is not None:
            marks[f"watermark_{row['ParameterName']}"] = MetadataValue.timestamp(row["ValueDateTime"].timestamp())
    durations = [r["DurationSeconds"] for r in detail if r.get("DurationSeconds") is not None]
    return {
        "v_runSummary": {**(numbers(summary[0], ["Attempts", "TotalTasks", "Done", "Failed", "Pending",
                                                 "TotalDurationSeconds", "WallClockSeconds"]) if summary else {}),
                         "OverallStatus": summary[0]["OverallStatus"] if summary else "NOT STARTED"},
        "v_processStatus": {**(numbers(status[0], ["LatestAttempt", "TotalRuns", "Done", "Failed", "Pending",
                                                   "WallClockSeconds"]) if status else {}),
                            **preview(status, ["ProcessingDate", "LatestAttempt", "Done", "Failed", "Pending",
                                               "OverallStatus"])},
        "v_taskDetail": {"SlaBreaches": sum(bool(r["SlaBreached"]) for r in detail),
                         "MaxDurationSeconds": max(durations, default=0),
                         **preview(detail, ["WorkFlowID", "SequenceID", "TaskName", "Status", "DurationSeconds",
                                            "SlaBreached"])},
        "v_mandatoryBlockers": {"Blockers": len(blockers),
                                **preview(blockers, ["TaskName", "Status", "LogMessage"])},
        "v_currentFailures": {"Failures": len(failures), **preview(failures, ["TaskName", "LogCode", "LogMessage"])},
        "v_watermarks": {**marks, **preview(watermarks, ["ParameterName", "ParameterType", "ActiveValue",
                                                         "WatermarkState"])},
    }
