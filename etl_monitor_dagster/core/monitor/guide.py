"""What ``ETLMonitorFramework.guide()`` prints: the steps of a run, then every public method."""

from __future__ import annotations

import inspect

_GUIDE = """\
etl_monitor_dagster - ETL process monitoring on Delta tables (drop-in for databricks-etl-monitor 1.0.0)

Tables: ETLOrganisation, ETLconfigProject, ETLconfigSequence, ETLconfigProcess, ETLconfigTasks,
ETLconfigParameters, ETLProcessingSteps, ETLsysLogs. Views: v_processStatus, v_runSummary,
v_taskDetail, v_mandatoryBlockers, v_currentFailures, v_watermarks.

A run, step by step:
  1. monitor.setup()                                   once per deployment; idempotent, migrates in place
  2. register_organisation / register_project / register_process / register_task / register_parameter
                                                       (each returns the monitor, so calls chain)
  3. run = ETLMonitorFramework.generate_execution_id()
     monitor.generate_execution_steps(run, PROJECT, PROCESS, "2026-04-09")
  4. with monitor.task(run, PROJECT, PROCESS, task_id=1, sequence_id=2, workflow_id=1,
                       processing_date="2026-04-09") as t:
         if t.active:
             ...   # your work; t.watermark_value holds the task's watermark
     or, from ADF: start_task(...) then end_task(...) / fail_task(...)
  5. get_status(PROJECT, PROCESS, execution_id=run).display()

Values are always bound, never pasted into SQL; bad arguments raise ValidationError naming the argument.
Dagster: the same methods are on ETLMonitorResource; a catalogue of YAML files becomes assets.

Methods (name, arguments, purpose):
"""


def guide_text(monitor: type) -> str:
    """The guide text: how a run goes, then each public method of ``monitor`` with its arguments."""
    lines = [_GUIDE]
    for name, member in inspect.getmembers(monitor):
        if name.startswith("_") or not callable(member):
            continue
        arguments = [p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                     for p in inspect.signature(member).parameters.values() if p.name != "self"]
        summary = " ".join((inspect.getdoc(member) or "").split("\n\n")[0].split())
        lines.append(f"  {name}({', '.join(arguments)})\n      {summary}")
    return "\n".join(lines)

