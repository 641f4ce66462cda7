"""The demo process the quick start registers: ``python -m etl_monitor_dagster.demo``.

HR_DAILY of project DEMO: an initiation task, two parallel loads in stage 2 (one mandatory with a
DELTA_DATE watermark, one optional with a DELTA_ID watermark) and a mandatory transform in stage 6.
"""

from __future__ import annotations

from .monitor import ETLMonitorFramework

PROJECT, PROCESS = "DEMO", "HR_DAILY"

# (task_id, workflow_id, sequence_id, name, mandatory, watermark)
TASKS = (
    (0, 0, 0, "Initiation", True, None),
    (1, 1, 2, "Load employees", True, "LastEmployeeChange"),
    (2, 1, 2, "Load badge swipes", False, "LastSwipeId"),
    (3, 1, 6, "Build headcount mart", True, None),
)
PARAMETERS = (
    ("SYSDT", "SYSTEM", "Processing date: NULL = live"),
    ("LastEmployeeChange", "DELTA_DATE", "Last loaded employee change"),
    ("LastSwipeId", "DELTA_ID", "Highest loaded badge swipe id"),
)


def register(monitor: ETLMonitorFramework) -> None:
    """Create the monitor tables and register the demo process (idempotent)."""
    monitor.setup()
    monitor.register_process(PROJECT, PROCESS, name="HR daily load", owner="HR data team",
                             description="Demo process of etl_monitor_dagster", load_frequency="D")
    for name, ptype, description in PARAMETERS:
        monitor.register_parameter(PROJECT, PROCESS, name, ptype, description=description)
    for task_id, workflow_id, sequence_id, name, mandatory, watermark in TASKS:
        monitor.register_task(PROJECT, PROCESS, task_id, workflow_id, sequence_id, name,
                              "NONE" if task_id == 0 else "PYTHON", source_system_code=watermark,
                              task_mandatory=mandatory, sla_seconds=None if task_id == 0 else 300)


def main() -> None:
    from .resource import ETLMonitorResource

    register(ETLMonitorResource().get_monitor())
    print(f"demo process {PROJECT}/{PROCESS} registered")


if __name__ == "__main__":
    main()
