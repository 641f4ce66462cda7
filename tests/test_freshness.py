"""Freshness policies from the catalogue: each task of a scheduled process is late at schedule_at plus the
largest SLA of each stage up to its own; a translator option or subclass changes or removes them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, FreshnessPolicy
from dagster._core.definitions.freshness import CronFreshnessPolicy

from etl_monitor_dagster import DagsterETLMonitorTranslator, ETLMonitorComponent, build_definitions
from etl_monitor_dagster.core.catalogue import ProcessSpec, Stage, TaskSpec, load_catalogue

REPO = Path(__file__).resolve().parents[1]
DEMO = ("retail", "sales_daily")

# The demo: daily at 06:00 UTC, every task 120 s; stage by stage the deadline moves two minutes on.
DEMO_DEADLINES = {
    "load_fx_rates": "2 6 * * *",
    "stage_customers": "4 6 * * *", "stage_orders": "4 6 * * *", "stage_web_sessions": "4 6 * * *",
    "validate_customers": "6 6 * * *",
    "validate_orders": "8 6 * * *",
    "convert_amounts_to_eur": "10 6 * * *",
    "build_daily_sales_mart": "12 6 * * *", "customer_360_snapshot": "12 6 * * *",
}


def policies(defs) -> dict[str, FreshnessPolicy | None]:
    return {s.key.path[-1]: s.freshness_policy for a in defs.assets for s in a.specs
            if s.key.path[:2] == list(DEMO)}


def test_the_demo_tasks_are_late_at_six_plus_the_slas_of_their_stages_so_far():
    found = policies(build_definitions(REPO / "catalogue"))
    deadlines = {task: (p.deadline_cron, p.lower_bound_delta, p.timezone) for task, p in found.items()
                 if isinstance(p, CronFreshnessPolicy)}
    assert deadlines == {task: (cron, timedelta(minutes=int(cron.split()[0])), "UTC")
                         for task, cron in DEMO_DEADLINES.items()}
    # the initiation's stage has no SLA: nothing says when it is late; gates and views are not tasks
    assert found["initiation"] is None
    assert all(found[k] is None for k in found if k.endswith("_gate") or k.startswith("v_"))


def test_freshness_is_turned_off_or_given_a_grace_by_translator_option():
    off = policies(build_definitions(REPO / "catalogue", translator=DagsterETLMonitorTranslator(freshness=False)))
    assert set(off.values()) == {None}
    grace = policies(build_definitions(REPO / "catalogue",
                                       translator=DagsterETLMonitorTranslator(freshness_grace=timedelta(minutes=15))))
    mart = grace["build_daily_sales_mart"]
    assert isinstance(mart, CronFreshnessPolicy)
    assert (mart.deadline_cron, mart.lower_bound_delta) == ("27 6 * * *", timedelta(minutes=27))


def test_a_subclass_sets_its_own_policy():
    class Hourly(DagsterETLMonitorTranslator):
        def get_freshness_policy(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> FreshnessPolicy | None:
            return FreshnessPolicy.time_window(fail_window=timedelta(hours=1))

    found = policies(build_definitions(REPO / "catalogue", translator=Hourly()))
    assert found["initiation"] == FreshnessPolicy.time_window(fail_window=timedelta(hours=1))


def test_the_component_turns_freshness_off_in_its_translator_options():
    from dagster.components.testing.utils import component_defs

    component = ETLMonitorComponent(catalogue=str(REPO / "catalogue"),
                                    translator={"freshness": False})  # type: ignore[arg-type]
    assert set(policies(component_defs(component=component)).values()) == {None}


def process(frequency: str, schedule_at: str = "06:00", slas: tuple[int | None, ...] = (120,),
            max_runtime_minutes: int | None = None) -> ProcessSpec:
    tasks = [TaskSpec(id=0, workflow=0, stage=0, name="Initiation", source_type="NONE", mandatory=True)]
    tasks += [TaskSpec(id=i, workflow=1, stage=i, name=f"T{i}", source_type="PYTHON", source="m:f", sla_seconds=sla)
              for i, sla in enumerate(slas, start=1)]
    return ProcessSpec(project="QA", process="P", frequency=frequency, schedule_at=schedule_at, tasks=tuple(tasks),
                       max_runtime_minutes=max_runtime_minutes)


def deadline(spec: ProcessSpec) -> tuple[str, timedelta] | None:
    """The last task's deadline cron and window."""
    stage = spec.stage_groups()[-1]
    policy = DagsterETLMonitorTranslator().get_freshness_policy(spec, stage, stage.tasks[0])
    assert policy is None or isinstance(policy, CronFreshnessPolicy)
    return (policy.deadline_cron, policy.lower_bound_delta) if policy else None


@pytest.mark.parametrize(("spec", "expected"), [
    # weekly on Monday, monthly on the 1st, yearly on 1 January: the days the schedules launch
    (process("W", "23:50", (600, 900)), ("15 0 * * 2", timedelta(minutes=25))),
    (process("M", "02:30", (45,)), ("31 2 1 * *", timedelta(minutes=1))),  # 45 s: a whole minute
    (process("Y", "00:00", (3600,)), ("0 1 1 1 *", timedelta(hours=1))),
    (process("D", "22:00", (3 * 3600,)), ("0 1 * * *", timedelta(hours=3))),  # past midnight
    # a stage without SLA (the initiation's too) counts max_runtime_minutes; without either, nothing bounds it
    (process("D", "06:00", (None, 120), max_runtime_minutes=30), ("2 7 * * *", timedelta(minutes=62))),
    (process("D", "06:00", (None,)), None),
    (process("A", "06:00", (120,)), None),  # ad hoc: no schedule to be late against
])
def test_deadlines_follow_the_frequency_schedule_at_and_budgets(spec, expected):
    assert deadline(spec) == expected


def test_the_demo_catalogue_declares_what_the_expected_deadlines_assume():
    (demo,) = load_catalogue(REPO / "catalogue")
    assert (demo.frequency.value, demo.schedule_at) == ("D", "06:00")
    assert {t.sla_seconds for t in demo.tasks if t.workflow} == {120}
    assert AssetKey([*DEMO, "load_fx_rates"])  # named as DEMO_DEADLINES names it
