"""Signature parity with the seed package (databricks-etl-monitor 1.0.0): code written against
``etl_monitor.ETLMonitorFramework`` calls ours, and our Dagster resource, with the same positional
arguments and defaults. Our own additions are keyword-only. No Spark needed."""

from __future__ import annotations

import inspect

import pytest
from etl_monitor import ETLMonitorFramework as Seed

from etl_monitor_dagster import ETLMonitorFramework, ETLMonitorResource

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
SEED_METHODS = sorted(
    name for name, member in vars(Seed).items()
    if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, staticmethod | classmethod))
)
OURS = {"framework": ETLMonitorFramework, "resource": ETLMonitorResource}


def parameters(function) -> list[inspect.Parameter]:
    """The parameters a caller passes (``self`` left out)."""
    found = list(inspect.signature(function).parameters.values())
    return found[1:] if found and found[0].name == "self" else found


def positional(function) -> list[tuple[str, object]]:
    """Names and defaults of the parameters that may be passed by position; defaults typed, so True != 1."""
    return [(p.name, (type(p.default), p.default)) for p in parameters(function) if p.kind in POSITIONAL]


def test_the_seed_public_api_is_the_one_spec_lists():
    """The methods compared below are the seed's whole public API, as SPEC.md lists it."""
    assert sorted([
        "setup", "seed_sequence_data", "register_organisation", "register_project", "register_process",
        "register_task", "register_parameter", "generate_execution_steps", "get_pending_tasks", "start_task",
        "end_task", "fail_task", "task", "task_status", "skip_task", "unskip_task", "advance_watermark",
        "get_active_watermark", "get_status", "status_reset", "set_processing_mode", "generate_execution_id",
        "guide", "sample_usage",
    ]) == SEED_METHODS


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("method", SEED_METHODS)
def test_every_seed_method_exists(kind, method):
    assert callable(getattr(OURS[kind], method, None)), f"{OURS[kind].__name__} has no {method}()"


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("method", SEED_METHODS)
def test_positional_parameters_are_the_seeds_names_order_and_defaults(kind, method):
    ours = getattr(OURS[kind], method, None)
    if ours is None:
        pytest.fail(f"{OURS[kind].__name__} has no {method}()")
    assert positional(ours) == positional(getattr(Seed, method))


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("method", SEED_METHODS)
def test_parameters_beyond_the_seeds_are_keyword_only(kind, method):
    ours = getattr(OURS[kind], method, None)
    if ours is None:
        pytest.fail(f"{OURS[kind].__name__} has no {method}()")
    seed_names = {p.name for p in parameters(getattr(Seed, method))}
    extra = [p for p in parameters(ours) if p.name not in seed_names]
    assert [(p.name, p.kind.name) for p in extra if p.kind is not inspect.Parameter.KEYWORD_ONLY] == []


@pytest.mark.parametrize("kind", OURS)
def test_generate_execution_id_is_a_staticmethod_as_in_the_seed(kind):
    assert isinstance(inspect.getattr_static(Seed, "generate_execution_id"), staticmethod)
    assert isinstance(inspect.getattr_static(OURS[kind], "generate_execution_id"), staticmethod)
    assert isinstance(OURS[kind].generate_execution_id(), str)


def test_the_constructor_takes_spark_catalog_and_schema_as_the_seed_does():
    assert positional(Seed.__init__) == [
        ("spark", (type(inspect.Parameter.empty), inspect.Parameter.empty)),
        ("catalog", (str, "")),
        ("schema", (str, "etl")),
    ]
    assert positional(ETLMonitorFramework.__init__) == positional(Seed.__init__)
    extra = parameters(ETLMonitorFramework.__init__)[3:]
    assert [p.name for p in extra if p.kind is not inspect.Parameter.KEYWORD_ONLY] == []
