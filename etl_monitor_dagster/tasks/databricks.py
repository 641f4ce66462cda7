"""DBX_NOTEBOOK and DBX_JOB tasks: a Databricks run through the Jobs API, polled to its end.

Knows nothing of Dagster: a ``TaskRun`` carries a ``Databricks`` (an SDK ``WorkspaceClient`` and the
poll interval). A notebook task is a one-time run (``jobs/runs/submit``) of the workspace path in
SourceIdentifier; a job task is ``jobs/run-now`` of the job id in SourceIdentifier.

Either gets the run's context as parameters, named like the fields of SPARK_SQL's ``etl`` variable:
execution_id, project_code, process_load, task_id, workflow_id, processing_date, attempts,
watermark_value, watermark_type, full_file_name, in_file_path, out_file_path (text; NULL is '').
A notebook reads them as widgets; a job gets those of them it declares as job parameters, or all of
them as notebook parameters when it declares none. A notebook may report figures on exit::

    from etl_monitor_dagster.core.notebook import exit_with_result
    exit_with_result(dbutils, rows_written=120, new_watermark=48_213)

As soon as Databricks names the run (and later its cluster) the monitor row gets them as
SourceRunID and ClusterID. While it runs, the row gets a HEARTBEAT with the run's state every
``heartbeat_interval_seconds``: the health sensor finds a row whose heartbeats stopped, however long
it ran. A run that ends other than SUCCESS raises ``TaskFailed`` carrying its
state message and the tasks' errors; an interrupt while waiting (Dagster terminating the run)
cancels the Databricks run first.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service import compute, jobs

from ..core.error_class import ErrorClass, classify_code, classify_text
from ..core.monitor.health import DEFAULT_HEARTBEAT_SECONDS, Heartbeat
from ..core.runs import TaskFailed, TaskResult, TaskRun

_TERMINAL = {jobs.RunLifeCycleState.TERMINATED, jobs.RunLifeCycleState.SKIPPED,
             jobs.RunLifeCycleState.INTERNAL_ERROR}
# Past its own timeout Databricks ends a submitted run as TIMEDOUT; this much later we stop waiting.
_GRACE_SECONDS = 120


@dataclass(frozen=True)
class Databricks:
    """Where DBX tasks run: an SDK client, how often their runs are polled, how often a polled run's row
    gets a HEARTBEAT (its remote state) while it runs."""

    client: WorkspaceClient
    poll_interval_seconds: float = 10.0
    heartbeat_interval_seconds: float = DEFAULT_HEARTBEAT_SECONDS


def run_notebook(run: TaskRun) -> TaskResult:
    """DBX_NOTEBOOK: a one-time run of the notebook on the task's (or process's) compute."""
    target = _target(run)
    spec = run.task.compute or run.process.compute
    task = jobs.SubmitTask(
        task_key="etl_task",
        notebook_task=jobs.NotebookTask(notebook_path=run.task.source or "", base_parameters=run.parameters(),
                                        source=jobs.Source.WORKSPACE),
        existing_cluster_id=spec.existing_cluster_id if spec else None,
        new_cluster=compute.ClusterSpec.from_dict(spec.new_cluster) if spec and spec.new_cluster else None,
    )
    timeout = _timeout_seconds(run)
    waiter = target.client.jobs.submit(run_name=_run_name(run), tasks=[task], timeout_seconds=timeout,
                                       idempotency_token=_idempotency_token(run))
    return _follow(run, target, waiter.run_id, None if timeout is None else timeout + _GRACE_SECONDS)


def run_job(run: TaskRun) -> TaskResult:
    """DBX_JOB: ``run-now`` of the job; past timeout_minutes the run is canceled (run-now has no timeout)."""
    target = _target(run)
    job_id = int(run.task.source or "")
    try:
        settings = target.client.jobs.get(job_id).settings
        declared = {p.name for p in (settings.parameters if settings else None) or []}
    except DatabricksError as exc:  # unknown job, no permission: the API's code says which
        raise TaskFailed(f"Databricks job {job_id} cannot be read: {exc}", exc.error_code or "DBX_JOB") from exc
    parameters = run.parameters()
    token = _idempotency_token(run)
    if declared:
        waiter = target.client.jobs.run_now(job_id, idempotency_token=token,
                                            job_parameters={k: v for k, v in parameters.items() if k in declared})
    else:
        waiter = target.client.jobs.run_now(job_id, idempotency_token=token, notebook_params=parameters)
    return _follow(run, target, waiter.run_id, _timeout_seconds(run))


def _target(run: TaskRun) -> Databricks:
    if not isinstance(run.databricks, Databricks):
        raise TaskFailed(f"{run.task.source_type.value} task {run.task.name!r} needs a Databricks client: "
                         "configure the 'databricks' resource", "NO_DATABRICKS",
                         error_class=ErrorClass.CONFIGURATION)
    return run.databricks


def _timeout_seconds(run: TaskRun) -> int | None:
    return None if run.task.timeout_minutes is None else max(1, round(run.task.timeout_minutes * 60))


def _run_name(run: TaskRun) -> str:
    return f"{run.process.project}/{run.process.process}/{run.task.name} {run.processing_date.isoformat()}"


def _idempotency_token(run: TaskRun) -> str:
    """Stable per try: a request the SDK repeats after a lost response does not start a second run."""
    key = "/".join(map(str, (run.execution_id, run.process.project, run.process.process, run.task.workflow,
                             run.task.id, run.attempts, run.try_number)))
    return hashlib.sha256(key.encode()).hexdigest()[:64]


def _follow(run: TaskRun, target: Databricks, run_id: int, deadline_seconds: int | None) -> TaskResult:
    """Poll the run to its end, recording it in the monitor; cancel it if we stop waiting."""
    client, started = target.client, time.monotonic()
    try:
        info, polls = client.jobs.get_run(run_id), 1
        run.log.info(f"{run.task.name}: Databricks run {run_id} {_state(info)} {info.run_page_url or ''}")
        cluster = _cluster_id(info)
        _record(run, run_id, cluster, info.run_page_url)
        beat = Heartbeat(run.monitor.health, run.key(), target.heartbeat_interval_seconds, run.log)
        beat(_state(info), source_run_id=str(run_id))
        while info.state is None or info.state.life_cycle_state not in _TERMINAL:
            if deadline_seconds is not None and time.monotonic() - started > deadline_seconds:
                raise TaskFailed(f"Databricks run {run_id} did not end within {deadline_seconds} s "
                                 f"(timeout_minutes={run.task.timeout_minutes}); canceled. {info.run_page_url or ''}",
                                 jobs.RunResultState.TIMEDOUT.value, error_class=ErrorClass.TIMEOUT)
            time.sleep(target.poll_interval_seconds)
            run.stop_if_asked()
            previous, info, polls = _state(info), client.jobs.get_run(run_id), polls + 1
            if _state(info) != previous:
                run.log.info(f"{run.task.name}: Databricks run {run_id} {_state(info)}")
            if cluster is None and (cluster := _cluster_id(info)):
                _record(run, run_id, cluster, info.run_page_url)
            if info.state is None or info.state.life_cycle_state not in _TERMINAL:
                beat(_state(info), source_run_id=str(run_id))
    except BaseException:  # past the deadline, an interrupt (Dagster terminating the run), a lost connection
        # bounded by the client's http and retry timeouts
        run.cancel_remote(f"Databricks run {run_id}", lambda: client.jobs.cancel_run(run_id))
        raise
    return _outcome(run, client, info, polls)


def _record(run: TaskRun, run_id: int, cluster: str | None, url: str | None) -> None:
    run.monitor.record_source_run(run.execution_id, run.process.project, run.process.process,
                                  task_id=run.task.id, sequence_id=run.task.stage, workflow_id=run.task.workflow,
                                  processing_date=run.processing_date,
                                  source_run_id=str(run_id), cluster_id=cluster, run_page_url=url)


def _outcome(run: TaskRun, client: WorkspaceClient, info: jobs.Run, polls: int) -> TaskResult:
    state = info.state or jobs.RunState()
    outputs = [(task.task_key, client.jobs.get_run_output(task.run_id)) for task in info.tasks or [] if task.run_id]
    figures = {"databricks_run_id": info.run_id, "databricks_run_page_url": info.run_page_url,
               "databricks_cluster_id": _cluster_id(info), "databricks_state": _state(info),
               "databricks_polls": polls, **_timings(info)}
    # SUCCESS_WITH_FAILURES: Databricks counts a run whose leaf tasks succeeded as successful
    if state.result_state not in (jobs.RunResultState.SUCCESS, jobs.RunResultState.SUCCESS_WITH_FAILURES):
        errors = [f"{key}: {_error(out)}" for key, out in outputs if _error(out)]
        code = (state.result_state or state.life_cycle_state or jobs.RunLifeCycleState.INTERNAL_ERROR).value
        # A FAILED run says no more than that; the notebook's own error may (a Spark condition, a Python error)
        error_class = classify_code(code)
        if error_class is ErrorClass.UNKNOWN:
            error_class = classify_text(" | ".join([state.state_message or "", *errors]))
        raise TaskFailed(" | ".join([f"Databricks run {info.run_id} {code}: {state.state_message or 'no message'}",
                                     *errors, info.run_page_url or ""]).strip(" |"), code, error_class=error_class)
    reported = _reported([out for _, out in outputs])
    return TaskResult(rows_read=_int(reported.get("rows_read")), rows_written=_int(reported.get("rows_written")),
                      new_watermark=reported.get("new_watermark"),
                      metadata={k: v for k, v in figures.items() if v is not None})


def _state(info: jobs.Run) -> str:
    state = info.state or jobs.RunState()
    parts = [s.value for s in (state.life_cycle_state, state.result_state) if s is not None]
    return "/".join(parts) or "UNKNOWN"


def _cluster_id(info: jobs.Run) -> str | None:
    instances = [info.cluster_instance, *(t.cluster_instance for t in info.tasks or [])]
    return next((i.cluster_id for i in instances if i is not None and i.cluster_id), None)


def _timings(info: jobs.Run) -> dict[str, float]:
    """Seconds from the run's millisecond figures: queue, setup, execution, cleanup and the whole run."""
    figures = {"queue_seconds": info.queue_duration, "setup_seconds": info.setup_duration,
               "execution_seconds": info.execution_duration, "cleanup_seconds": info.cleanup_duration,
               "run_seconds": info.run_duration}
    if figures["run_seconds"] is None and info.start_time and info.end_time:
        figures["run_seconds"] = info.end_time - info.start_time
    return {f"databricks_{k}": round(v / 1000, 3) for k, v in figures.items() if v is not None}


def _error(output: jobs.RunOutput) -> str | None:
    if not output.error:
        return None
    trace = (output.error_trace or "").strip().splitlines()
    return output.error + (f" ({trace[-1].strip()})" if trace and trace[-1].strip() != output.error else "")


def _reported(outputs: list[jobs.RunOutput]) -> dict[str, Any]:
    """The figures a notebook exited with (the last JSON object among the tasks' results)."""
    for output in reversed(outputs):
        text = output.notebook_output.result if output.notebook_output else None
        try:
            value = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)

