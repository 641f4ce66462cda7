"""ETLMonitorComponent: scaffolded, checked and listed by the real `create-dagster` and `dg` CLIs, with what
definitions.py makes; its get_asset_spec, execute, translation and post_processing.

The CLIs run offline: their PyPI update check is switched off and the project's sources are found through
PYTHONPATH, not an install. Loading reads YAML only, so no Spark is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, Definitions, MaterializeResult, materialize
from dagster.components.testing import create_defs_folder_sandbox
from dagster.components.testing.utils import component_defs

from etl_monitor_dagster import ETLMonitorComponent, ValidationError, build_definitions
from etl_monitor_dagster.core.catalogue import ProcessSpec, Stage, TaskSpec
from etl_monitor_dagster.dagster.assets import TaskRun

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "dg_project"
BIN = Path(sys.executable).parent
COMPONENT = "etl_monitor_dagster.ETLMonitorComponent"


def cli(args: list[str], cwd: Path, home: Path) -> str:
    """Run one of the CLIs of this environment offline; its stdout (stderr in the failure message)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(cwd / "src"),
           "DAGSTER_DG_UPDATE_CHECK_ENABLED": "0", "DAGSTER_HOME": str(home), "NO_COLOR": "1"}
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME that sends nothing anywhere."""
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return folder


def listed(output: str) -> dict[str, Any]:
    """`dg list defs --json` as comparable sets."""
    found = json.loads(output)
    return {"assets": {a["asset_key"] for a in found["assets"]},
            "checks": {c["key"] for c in found["asset_checks"]},
            "jobs": {j["name"] for j in found["jobs"]},
            "schedules": {(s["name"], s["cron_schedule"]) for s in found["schedules"]},
            "sensors": {s["name"] for s in found["sensors"]}}


def defined(defs: Definitions, leave_out_jobs: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The same sets from Definitions built in this process."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    return {"assets": {k.to_user_string() for k in graph.get_all_asset_keys()},
            "checks": {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys},
            "jobs": {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} - leave_out_jobs,
            "schedules": {(s.name, s.cron_schedule) for s in repo.schedule_defs},
            "sensors": {s.name for s in repo.sensor_defs}}


def test_dg_scaffolds_the_component_in_a_new_project_and_checks_and_lists_its_starter_catalogue(tmp_path, home):
    cli(["create-dagster", "project", "--no-uv-sync", "etl_project"], tmp_path, home)
    project = tmp_path / "etl_project"
    cli(["dg", "scaffold", "defs", COMPONENT, "etl"], project, home)
    folder = project / "src" / "etl_project" / "defs" / "etl"
    assert (folder / "defs.yaml").read_text().startswith(f"type: {COMPONENT}\n")
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "defs.yaml", "catalogue/starter.yaml", "catalogue/sql/starter.sql"}
    assert "All definitions loaded successfully" in cli(["dg", "check", "defs"], project, home)
    found = listed(cli(["dg", "list", "defs", "--json"], project, home))
    assert found == defined(build_definitions(folder / "catalogue"))
    assert "starter/etl_daily/load_starter" in found["assets"]
    assert ("etl_daily_schedule", "0 6 * * *") in found["schedules"]


def test_the_dg_example_lists_what_definitions_py_makes_and_post_processing_tags_every_asset(tmp_path, home):
    project = tmp_path / "dg_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".dg", "__pycache__"))
    # the copy sits elsewhere: its catalogue, the repository's demo, is found from the project root
    defs_yaml = project / "src" / "etl_dg_example" / "defs" / "retail" / "defs.yaml"
    defs_yaml.write_text(defs_yaml.read_text().replace("{{ context.project_root }}/../..", str(REPO)))
    assert "All definitions loaded successfully" in cli(["dg", "check", "defs"], project, home)
    output = cli(["dg", "list", "defs", "--json"], project, home)
    sys.path.insert(0, str(REPO))
    try:
        import definitions as code_location  # the repository's definitions.py, as `dagster dev` loads it
    finally:
        sys.path.remove(str(REPO))
    # definitions.py adds a team's own job (examples/reuse_job.py) that no catalogue declares
    assert listed(output) == defined(code_location.defs, leave_out_jobs=frozenset({"gl_export"}))
    for asset in json.loads(output)["assets"]:
        assert {"key": "etl_monitor/location", "value": "dg_example"} in asset["tags"], asset["asset_key"]


def test_the_committed_example_points_at_the_demo_catalogue():
    text = (EXAMPLE / "src" / "etl_dg_example" / "defs" / "retail" / "defs.yaml").read_text()
    assert f"type: {COMPONENT}\n" in text
    assert (EXAMPLE / "../../catalogue/retail_sales_daily.yaml").resolve().is_file()


class Audited(ETLMonitorComponent):
    """A team's subclass: a tag on every task's spec, and its own step in place of the monitor's."""

    def get_asset_spec(self, process: ProcessSpec, stage: Stage, task: TaskSpec) -> AssetSpec:
        return super().get_asset_spec(process, stage, task).merge_attributes(tags={"audited": "yes"})

    def execute(self, context, run: TaskRun) -> MaterializeResult:
        return MaterializeResult(metadata={"executed_by": type(self).__name__, "task": run.task.name})


def test_a_subclass_overrides_get_asset_spec_and_execute():
    # active_session: no engine is started if anything reached the monitor (nothing should here)
    component = Audited(catalogue=str(REPO / "catalogue"), monitor={"engine": "active_session"})  # type: ignore[arg-type]
    defs = component_defs(component=component)
    initiation = AssetKey(["retail", "sales_daily", "initiation"])
    specs = {s.key: s for a in defs.assets for s in a.specs}  # type: ignore[union-attr]
    assert specs[initiation].tags["audited"] == "yes"
    assert "audited" not in specs[AssetKey(["retail", "sales_daily", "s01_gate"])].tags  # gates keep theirs
    step = next(a for a in defs.assets if initiation in a.keys)  # type: ignore[union-attr]
    # this step is Audited.execute alone: no outcome in its metadata, so no hook writes to the monitor
    result = materialize([step], partition_key="2026-04-10", resources=defs.resources,
                         instance=DagsterInstance.ephemeral())
    (event,) = result.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    assert (metadata["executed_by"].value, metadata["task"].value) == ("Audited", "Initiation")


def test_translation_in_defs_yaml_templates_each_task_spec():
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=ETLMonitorComponent, defs_yaml_contents={
            "type": COMPONENT,
            "attributes": {"catalogue": str(REPO / "catalogue"),
                           "translation": {"tags": {"etl/stage": "{{ stage.name }}"},
                                           "metadata": {"catalogue_file": "{{ process.path.name }}"}}}})
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, ETLMonitorComponent)
            specs = {s.key: s for a in defs.assets for s in a.specs}  # type: ignore[union-attr]
    spec = specs[AssetKey(["retail", "sales_daily", "stage_orders"])]
    assert spec.tags["etl/stage"] == "s02_load_db_tran"
    assert spec.metadata["catalogue_file"] == "retail_sales_daily.yaml"
    assert spec.tags["etl_monitor/source_type"] == "SPARK_SQL"  # the translator's own spec underneath


def test_a_translator_class_that_is_not_a_translator_is_refused_naming_the_field():
    component = ETLMonitorComponent(catalogue=str(REPO / "catalogue"),
                                    translator={"translator_class": "pathlib:Path"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"translator\.translator_class='pathlib:Path': is not"):
        component_defs(component=component)
