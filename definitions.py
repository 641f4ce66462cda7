"""The Dagster code location: `dagster dev` loads this file (see [tool.dagster] in pyproject.toml).

For now it holds the demo job, which reports each task into the monitor tables through the
resource's ``task()`` guard - the way any Dagster job in a team's repo can.
"""

from __future__ import annotations

from datetime import date

from dagster import Config, Definitions, In, Nothing, OpExecutionContext, job, op

from etl_monitor_dagster import ETLMonitorResource
from etl_monitor_dagster.demo import PROCESS, PROJECT


class RunConfig(Config):
    processing_date: str = date.today().isoformat()


def _guarded(task_id: int, workflow_id: int, name: str):
    @op(name=name, ins={"after": In(Nothing)})
    def run_task(context: OpExecutionContext, config: RunConfig, monitor: ETLMonitorResource) -> None:
        with monitor.task(context.run_id, PROJECT, PROCESS, task_id=task_id, workflow_id=workflow_id,
                          processing_date=config.processing_date, source_run_id=context.run_id) as guard:
            if guard.active:
                context.log.info(f"{name}: watermark {guard.watermark_type}={guard.watermark_value}")
            else:
                context.log.info(f"{name}: skipped (done earlier, inactive or force-skipped)")

    return run_task


@op
def initiate(context: OpExecutionContext, config: RunConfig, monitor: ETLMonitorResource) -> None:
    """Queue this run's steps; the Dagster run id is the ExecutionID."""
    monitor.generate_execution_steps(context.run_id, PROJECT, PROCESS, config.processing_date)


load_employees = _guarded(1, 1, "load_employees")
load_badge_swipes = _guarded(2, 1, "load_badge_swipes")
build_headcount_mart = _guarded(3, 1, "build_headcount_mart")


@job(description="DEMO/HR_DAILY through the monitor's task() guard.")
def hr_daily_guarded():
    started = initiate()
    build_headcount_mart(after=[load_employees(after=started), load_badge_swipes(after=started)])


defs = Definitions(jobs=[hr_daily_guarded], resources={"monitor": ETLMonitorResource()})
