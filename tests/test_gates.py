"""A stage gate reads v_mandatoryBlockers only when its stage has a mandatory task."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, materialize

from etl_monitor_dagster.core.catalogue import ProcessSpec
from etl_monitor_dagster.core.errors import EngineError
from etl_monitor_dagster.dagster.assets import build_process_assets
from etl_monitor_dagster.dagster.resource import ETLMonitorResource, SparkEngine
from tests.conftest import free_port


def _gate(mandatory: bool) -> dict:
    """What materialises the gate of stage 2 alone, in a job holding the whole process."""
    spec = ProcessSpec.model_validate({
        "project": "GATES", "process": "ONE_STAGE", "owner": "QA", "start_date": "2026-04-01",
        "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE",
                   "mandatory": True},
                  {"id": 1, "workflow": 1, "stage": 2, "name": "Load", "source_type": "PYTHON",
                   "source": "tests.tasks:succeed", "mandatory": mandatory}]})
    built = build_process_assets(spec)
    (gate,) = [k for a in built.assets for k in a.keys if k.path[-1].startswith("s02")]
    return {"assets": built.assets, "selection": [gate], "partition_key": "2026-04-09", "resources": {"monitor": DEAD}}


# No engine listens on this port: a gate that asked it anything would fail with EngineError.
DEAD = ETLMonitorResource(engine=SparkEngine.CONNECT, spark_remote=f"sc://localhost:{free_port()}",
                          unreachable_timeout_seconds=0.5)


def test_the_gate_of_a_stage_without_a_mandatory_task_passes_without_asking_the_engine():
    with DagsterInstance.ephemeral() as instance:
        result = materialize(**_gate(mandatory=False), instance=instance)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["mandatory_blockers"].value == 0


def test_the_gate_of_a_stage_with_a_mandatory_task_reads_its_blockers():
    with DagsterInstance.ephemeral() as instance, pytest.raises(EngineError):
        materialize(**_gate(mandatory=True), instance=instance)
