"""Monitor figures as Dagster metadata and tags: an outcome's values, small Markdown tables, run tags."""

from __future__ import annotations

from enum import Enum
from typing import Any

from dagster import MetadataValue

# Tags on every process job, its runs and its task steps: which process a run is, which task a step.
PROJECT_TAG = "etl_monitor/project"
PROCESS_TAG = "etl_monitor/process"
TASK_TAG = "etl_monitor/task"
# The instance runs one run per value at a time (instance/dagster.yaml): the process, or with
# ``parallel_partitions`` the process and its processing date.
RUN_SLOT_TAG = "etl_monitor/run_slot"


def process_tags(project: str, process: str) -> dict[str, str]:
    return {PROJECT_TAG: project, PROCESS_TAG: process}


def dagster_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Plain values as Dagster takes them: ``*_url`` as links, lists and dicts as JSON, enums as their value,
    others as text."""
    def value(key: str, v: Any) -> Any:
        if key.endswith("_url") and isinstance(v, str):
            return MetadataValue.url(v)
        if isinstance(v, list | dict):
            return MetadataValue.json(v)
        return v.value if isinstance(v, Enum) else v if isinstance(v, int | float | str | bool) else str(v)

    return {k: value(k, v) for k, v in metadata.items()}


def markdown_table(rows: list[dict[str, Any]], columns: list[str], limit: int = 20) -> str:
    """A small Markdown table; cell text is escaped so names with pipes or newlines stay in their cell."""
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")[:200]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more |" + " |" * (len(columns) - 1))
    return "\n".join(lines)
