"""The Databricks notebooks, run as the Python files they are (ADF write-back, the example DBX_NOTEBOOK
task); the ADF Lookup query is in test_adf_lookup.py."""

from __future__ import annotations

import json
import runpy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etl_monitor_dagster import ValidationError
from tests.conftest import DAY

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "databricks" / "notebooks"


class NotebookExit(Exception):
    """What ``dbutils.notebook.exit`` does on Databricks: stop the notebook with a value."""


class Dbutils:
    """The two parts of Databricks' dbutils the notebooks use, holding the widget values ADF passes."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values = {k: str(v) for k, v in values.items()}
        self.widgets, self.notebook = self, self

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.values.setdefault(name, default)

    def get(self, name: str) -> str:
        return self.values[name]

    def exit(self, value: str) -> None:
        raise NotebookExit(value)


@pytest.fixture
def run_notebook(spark, process):
    process.task(1, task_mandatory=True)
    execution = process.new_run()

    def run(action: str, **widgets) -> dict:
        values = {"schema": process.monitor.schema, "execution_id": execution, "project_code": process.project,
                  "process_load": process.load, "task_id": 1, "sequence_id": 2, "workflow_id": 1,
                  "processing_date": DAY, **widgets}
        with pytest.raises(NotebookExit) as exited:
            runpy.run_path(str(NOTEBOOKS / f"etl_{action}_task.py"), {"spark": spark, "dbutils": Dbutils(values)})
        return json.loads(str(exited.value))

    return run, process, execution


def test_the_start_and_end_notebooks_move_a_task_to_done_from_widget_values(run_notebook):
    run, process, execution = run_notebook
    assert run("start", source_run_id="adf-run-7", timestamp="2026-04-09T06:00:00") == {
        "action": "start", "changed": True, "status": "NQUE"}
    assert run("start", source_run_id="adf-run-7") == {"action": "start", "changed": False, "status": "NQUE"}
    assert run("end", log_message="copied 12 files", timestamp="2026-04-09T06:01:30") == {
        "action": "end", "changed": True, "status": "DONE"}
    assert run("end", log_message="copied 12 files") == {"action": "end", "changed": False, "status": "DONE"}
    row = process.steps(execution)[(1, 1)]
    assert (row["SourceRunID"], row["LogMessage"]) == ("adf-run-7", "copied 12 files")
    assert (row["StartTime"].isoformat(), row["DurationSeconds"]) == ("2026-04-09T06:00:00", 90)


def test_the_fail_notebook_records_fail_and_reopens_the_run(run_notebook):
    run, process, execution = run_notebook
    run("start")
    assert run("fail", log_message="copy activity failed: 'x'\n", log_code="ADF-2200")["status"] == "FAIL"
    steps = process.steps(execution)
    assert (steps[(1, 1)]["LogCode"], steps[(0, 0)]["Status"]) == ("ADF-2200", "NQUE")


def test_a_bad_widget_value_is_refused_and_writes_nothing(run_notebook, spark):
    _, process, execution = run_notebook
    receipts = len(process.receipts(execution))
    with pytest.raises(Exception, match="task_id"):
        runpy.run_path(str(NOTEBOOKS / "etl_start_task.py"), {"spark": spark, "dbutils": Dbutils(
            {"schema": process.monitor.schema, "execution_id": execution, "project_code": process.project,
             "process_load": process.load, "task_id": "one", "sequence_id": 2, "workflow_id": 1,
             "processing_date": DAY})})
    assert len(process.receipts(execution)) == receipts
    assert process.steps(execution)[(1, 1)]["StartTime"] is None


def test_the_example_task_notebook_scores_above_its_watermark_and_exits_with_its_figures(spark, tmp_path):
    orders, scores = str(tmp_path / "orders"), str(tmp_path / "scores")
    spark.createDataFrame([(7, "c1", 100.0), (8, "c2", 250.0), (9, "c1", 40.0)],
                          "order_id INT, customer_id STRING, amount_eur DOUBLE").write.format("delta").save(orders)
    widgets = {"execution_id": "run-1", "processing_date": DAY, "watermark_value": "7", "in_file_path": orders,
               "out_file_path": scores}
    with pytest.raises(NotebookExit) as exited:
        runpy.run_path(str(NOTEBOOKS / "example_score_customers.py"), {"spark": spark, "dbutils": Dbutils(widgets)})
    assert json.loads(str(exited.value)) == {"rows_read": 2, "rows_written": 2, "new_watermark": 9}
    written = spark.read.format("delta").load(scores).orderBy("order_id").collect()
    assert [(r.order_id, r.score, str(r.scored_for), r.execution_id) for r in written] == [
        (8, 2.5, DAY, "run-1"), (9, 0.4, DAY, "run-1")]


def test_the_start_notebook_refuses_a_widget_time_an_hour_ahead_and_writes_nothing(run_notebook):
    run, process, execution = run_notebook
    ahead = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    before = process.rows("ETLProcessingSteps")
    with pytest.raises(ValidationError, match="more than 5 minutes in the future"):
        run("start", timestamp=ahead)
    assert process.rows("ETLProcessingSteps") == before
    assert process.receipts(execution) == []
