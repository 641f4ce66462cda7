"""The translator: asset specs are a pure function of the catalogue, pinned by a snapshot; a subclass
changes keys and groups everywhere they are used."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, AssetSpec, DagsterInvalidDefinitionError
from dagster._core.definitions.utils import DISALLOWED_NAMES, is_valid_owner

from etl_monitor_dagster import DagsterETLMonitorTranslator, build_definitions
from etl_monitor_dagster.core.catalogue import (
    _DAGSTER_RESERVED,
    CatalogueErrors,
    ProcessSpec,
    Stage,
    TaskSpec,
    load_catalogue,
)

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "demo_asset_specs.json"


def _described(spec: AssetSpec) -> dict:
    return {"key": spec.key.to_user_string(), "group": spec.group_name, "kinds": sorted(spec.kinds),
            "description": spec.description, "metadata": {k: v for k, v in spec.metadata.items()},
            "owners": list(spec.owners), "deps": [d.asset_key.to_user_string() for d in spec.deps],
            "tags": {k: v for k, v in spec.tags.items() if not k.startswith("dagster/kind/")},
            "freshness": _freshness(spec)}


def _freshness(spec: AssetSpec) -> dict | None:
    policy = spec.freshness_policy
    if policy is None:
        return None
    return {"deadline_cron": policy.deadline_cron, "timezone": policy.timezone,  # type: ignore[attr-defined]
            "lower_bound_seconds": policy.lower_bound_delta.total_seconds()}  # type: ignore[attr-defined]


def test_the_demo_asset_specs_match_the_snapshot():
    """Set UPDATE_SNAPSHOTS=1 to rewrite the snapshot after a deliberate change, then review its diff."""
    defs = build_definitions(REPO / "catalogue")
    specs = sorted((_described(s) for a in defs.assets for s in a.specs), key=lambda d: d["key"])
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(specs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert specs == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_specs_are_pure_the_same_catalogue_gives_equal_specs():
    (process,) = load_catalogue(REPO / "catalogue")
    translator = DagsterETLMonitorTranslator()

    def specs() -> list[AssetSpec]:
        return [translator.get_asset_spec(process, stage, task) for stage in process.stage_groups()
                for task in stage.tasks]

    first = specs()
    assert first == specs()
    assert first[0].owners == ["team:Retail data team"]


class ByOwner(DagsterETLMonitorTranslator):
    """A team's own naming: keys under ``etl``, one group per process."""

    def get_process_key_prefix(self, process: ProcessSpec) -> AssetKey:
        return AssetKey(["etl", process.process.lower()])

    def get_group_name(self, process: ProcessSpec, stage: Stage) -> str:
        return f"etl_{process.process.lower()}"

    def get_kinds(self, process: ProcessSpec, task: TaskSpec) -> set[str]:
        return {"delta"}


def test_a_subclass_changes_keys_groups_and_kinds_and_the_stage_order_follows():
    defs = build_definitions(REPO / "catalogue", translator=ByOwner())
    specs = {s.key: s for a in defs.assets for s in a.specs}
    task = specs[AssetKey(["etl", "sales_daily", "load_fx_rates"])]
    assert (task.group_name, set(task.kinds)) == ("etl_sales_daily", {"delta"})
    gate = AssetKey(["etl", "sales_daily", "s01_gate"])
    assert gate in {d.asset_key for d in specs[AssetKey(["etl", "sales_daily", "stage_customers"])].deps}
    assert AssetKey(["etl", "sales_daily", "v_runSummary"]) in specs
    assert not [k for k in specs if k.path[0] != "etl"]
    defs.resolve_all_job_defs()  # the job and schedule still resolve with the new keys


# Dagster's own rules, which the catalogue loader mirrors to name every problem at load
OWNERS = ["hr-team@", "hr team@example.com", "hr-team@example", "@example.com", "team:", "hr-team@example.com",
          "first.last+etl@sub.example.co.uk", "team:hr", "HR data team", "Ünï team", "a@b.c"]


@pytest.mark.parametrize("owner", OWNERS)
def test_the_loader_accepts_an_owner_exactly_when_dagster_does(tmp_path, owner):
    document = {"project": "QA", "process": "OWNED", "owner": owner, "tasks": [
        {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"}]}
    (tmp_path / "owned.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        (process,) = load_catalogue(tmp_path)
    except CatalogueErrors as refused:
        assert [p.entry for p in refused.problems] == ["owner"]
        process = ProcessSpec.model_validate(document)  # the process as it would reach Dagster
        assert not is_valid_owner(DagsterETLMonitorTranslator().get_owners(process)[0])
        with pytest.raises(DagsterInvalidDefinitionError, match="Invalid owner"):
            build_definitions([process])
    else:
        assert all(map(is_valid_owner, DagsterETLMonitorTranslator().get_owners(process)))
        build_definitions([process]).resolve_all_job_defs()


def test_the_loader_reserves_the_job_names_dagster_does():
    assert _DAGSTER_RESERVED == DISALLOWED_NAMES
    assert DagsterETLMonitorTranslator().get_owners(ProcessSpec.model_validate({
        "project": "QA", "process": "P", "owner": "team:hr", "tasks": []})) == ["team:hr"]


def test_an_owner_dagster_refuses_fails_build_definitions_with_the_loaders_message(tmp_path):
    document = {"project": "QA", "process": "OWNED", "owner": "hr-team@", "tasks": [
        {"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE"}]}
    (tmp_path / "owned.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(CatalogueErrors) as refused:
        build_definitions(tmp_path)
    assert str(refused.value) == (f"{tmp_path / 'owned.yaml'}: owner: 'hr-team@' is no e-mail address (Dagster "
                                  "takes an owner that is an e-mail address or a team): give a whole address "
                                  "(hr-team@example.com) or a team name without '@' (HR data team)")
