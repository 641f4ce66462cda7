"""A job outside the catalogue that reports into the same monitor tables through ``task()``.

Any Dagster job in a team's repo can do this: register the process once (idempotent), queue the
run's steps with the run id as ExecutionID, and wrap each op's work in the guard.
"""

from datetime import date

from dagster import Config, In, Nothing, OpExecutionContext, job, op
from pydantic import Field

from etl_monitor_dagster import ETLMonitorResource

PROJECT, PROCESS = "FINANCE", "GL_EXPORT"
TASKS = (  # (task id, workflow, stage, name, mandatory)
    (0, 0, 0, "Initiation", True),
    (1, 1, 2, "Extract general ledger", True),
    (2, 1, 6, "Export to the data hub", True),
)


class ExportConfig(Config):
    processing_date: str = Field(default_factory=lambda: date.today().isoformat(),
                                 description="Processing date (YYYY-MM-DD).")


@op
def initiate(context: OpExecutionContext, config: ExportConfig, monitor: ETLMonitorResource) -> None:
    """Register the process (a no-op when unchanged) and queue this run's steps."""
    owner = {"project_code": PROJECT, "process_load": PROCESS}
    monitor.register_many(
        processes=[{**owner, "name": "GL export", "owner": "Finance data team", "load_frequency": "D"}],
        tasks=[
            {**owner, "task_id": t, "workflow_id": w, "sequence_id": s, "task_name": name, "source_type": "PYTHON",
             "task_mandatory": mandatory} for t, w, s, name, mandatory in TASKS])
    monitor.generate_execution_steps(context.run_id, PROJECT, PROCESS, config.processing_date)
    with monitor.task(context.run_id, PROJECT, PROCESS, task_id=0, sequence_id=0, workflow_id=0,
                      processing_date=config.processing_date):
        pass


def _guarded(task_id: int, stage: int, name: str):
    @op(name=name, ins={"after": In(Nothing)})
    def run(context: OpExecutionContext, config: ExportConfig, monitor: ETLMonitorResource) -> None:
        with monitor.task(context.run_id, PROJECT, PROCESS, task_id=task_id, sequence_id=stage, workflow_id=1,
                          processing_date=config.processing_date, source_run_id=context.run_id) as guard:
            if not guard.active:
                context.log.info(f"{name}: not run (DONE earlier, inactive or force-skipped)")
                return
            guard.log_message = f"{name} done"  # the team's own work goes here

    return run


extract_general_ledger = _guarded(1, 2, "extract_general_ledger")
export_to_data_hub = _guarded(2, 6, "export_to_data_hub")


@job(description="FINANCE/GL_EXPORT: a team's own job reporting through the monitor's task() guard.")
def gl_export():
    export_to_data_hub(after=[extract_general_ledger(after=initiate())])
