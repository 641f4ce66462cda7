"""A process's ``end_date``: checked at the catalogue, the last partition of its job, and the demo's dates in
the UI's default views (the launch dialog, the health plots), asked of a real webserver."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, AssetMaterialization, DagsterInstance, build_schedule_context

from etl_monitor_dagster.core.catalogue import CatalogueError, CatalogueErrors, load_catalogue
from etl_monitor_dagster.core.enums import LoadFrequency
from etl_monitor_dagster.core.periods import first_period, next_period, period_of
from etl_monitor_dagster.dagster.definitions import build_definitions
from etl_monitor_dagster.dagster.partitions import partitions_for
from etl_monitor_dagster.dagster.task_health import health_observation
from etl_monitor_dagster.dagster.views import task_health_figures
from tests.conftest import free_port
from tests.webserver import Webserver

REPO = Path(__file__).resolve().parents[1]
APRIL = [(date(2026, 4, 1) + timedelta(days=i)).isoformat() for i in range(30)]  # the demo's sample data
HEALTH = AssetKey(["retail", "sales_daily", "v_taskHealth"])
HISTORY = AssetKey(["retail", "sales_daily", "taskHealth_history"])  # its non-partitioned companion
# v_taskHealth's rows after one run (the columns its figures read), and the numbers the UI plots from them
ROWS = [{"TaskName": "Stage orders", "LastStatus": "DONE", "FailureStreak": 0, "LastDoneSeconds": 2.5,
         "P90Seconds": 3.0, "AnomalySeconds": 4.0, "SlowerThanP90": False, "DurationAnomaly": False},
        {"TaskName": "Load fx rates", "LastStatus": "FAIL", "FailureStreak": 2, "LastDoneSeconds": None,
         "P90Seconds": None, "AnomalySeconds": None, "SlowerThanP90": False, "DurationAnomaly": False}]
PLOTTED = {"FailingTasks": 1, "MaxFailureStreak": 2, "SlowerThanP90": 0, "DurationAnomalies": 0, "rows": 2,
           "Stage orders seconds": 2.5, "Stage orders p90_seconds": 3.0, "Stage orders failure_streak": 0.0,
           "Load fx rates failure_streak": 2.0}
# The queries of Dagster 1.13's asset page plots (AssetEventMetadataPlots). A partitioned asset's default view,
# "Partitions": the last 120 partition keys newest first, then each one's latest materialization. "Events", the
# only view of a non-partitioned asset (the default is "Partitions" only when the node has a partitionDefinition):
# the latest 100 materializations and observations.
LATEST_PARTITIONS = """query($assetKey: AssetKeyInput!, $limit: Int!) { assetNodeOrError(assetKey: $assetKey) {
  ... on AssetNode { partitionKeyConnection(limit: $limit, ascending: false) { results } } } }"""
RECENT_EVENTS = """query($assetKey: AssetKeyInput!, $limit: Int!,
    $eventTypeSelectors: [AssetEventHistoryEventTypeSelector!]!) {
  assetOrError(assetKey: $assetKey) { ... on Asset { assetEventHistory(limit: $limit,
    eventTypeSelectors: $eventTypeSelectors) { results {
      ... on MaterializationEvent { __typename partition metadataEntries { ...Numbers } }
      ... on ObservationEvent { __typename partition metadataEntries { ...Numbers } } } } } } }
  fragment Numbers on MetadataEntry { label ... on FloatMetadataEntry { floatValue }
    ... on IntMetadataEntry { intValue } }"""
PARTITIONED = """query($assetKey: AssetKeyInput!) { assetNodeOrError(assetKey: $assetKey) {
  ... on AssetNode { partitionDefinition { description } } } }"""
EVENTS_PLOTTED = ["MATERIALIZATION", "OBSERVATION"]  # what the Events view asks for
# What the launch dialog lists: the time dimension's partition keys of the job's assets
DIALOG_KEYS = """query($assetKey: AssetKeyInput!) { assetNodeOrError(assetKey: $assetKey) {
  ... on AssetNode { partitionKeysByDimension { partitionKeys } } } }"""


def _process(directory: Path, frequency: str = "D", **keys) -> Path:
    doc = {"project": "GEN", "process": "ENDING", "frequency": frequency, "schedule_at": "05:30", **keys,
           "tasks": [{"id": 0, "workflow": 0, "stage": 0, "name": "Initiation", "source_type": "NONE",
                      "mandatory": True},
                     {"id": 1, "workflow": 1, "stage": 2, "name": "Load", "source_type": "PYTHON",
                      "source": "tests.tasks:succeed", "mandatory": True}]}
    path = directory / "ending.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _problems(directory: Path) -> list[CatalogueError]:
    with pytest.raises(CatalogueErrors) as raised:
        load_catalogue(directory)
    return list(raised.value.problems)


# ----------------------------------------------------------------------------------- the catalogue


def test_an_end_date_before_start_date_is_refused_naming_file_entry_and_value(tmp_path):
    path = _process(tmp_path, start_date="2026-04-01", end_date="2026-03-31")
    (problem,) = _problems(tmp_path)
    assert (problem.path, problem.entry) == (str(path), "end_date")
    assert "2026-03-31 is before start_date 2026-04-01" in problem.problem


@pytest.mark.parametrize(("frequency", "start", "end", "first"), [
    ("W", "2026-04-07", "2026-04-12", "2026-04-13"),  # a Tuesday start: the first whole week is the next Monday's
    ("M", "2026-04-02", "2026-04-30", "2026-05-01"),
])
def test_an_end_date_that_leaves_no_whole_period_is_refused(tmp_path, frequency, start, end, first):
    _process(tmp_path, frequency, start_date=start, end_date=end)
    (problem,) = _problems(tmp_path)
    assert problem.entry == "end_date"
    assert f"{end} is before the first whole" in problem.problem and first in problem.problem


def test_an_end_date_that_is_no_date_is_refused_and_a_bad_start_date_raises_no_second_problem(tmp_path):
    _process(tmp_path, start_date="2026-04-01", end_date="end of April")
    assert [p.entry for p in _problems(tmp_path)] == ["end_date"]
    _process(tmp_path, start_date="someday", end_date="2025-01-01")  # before the default start: not judged
    assert [p.entry for p in _problems(tmp_path)] == ["start_date"]


def test_end_date_is_optional_and_may_be_start_date_itself(tmp_path):
    _process(tmp_path, start_date="2026-04-01")
    assert load_catalogue(tmp_path)[0].end_date is None
    _process(tmp_path, start_date="2026-04-01", end_date="2026-04-01")
    assert load_catalogue(tmp_path)[0].end_date == date(2026, 4, 1)


# ----------------------------------------------------------------------------------- the partitions


@pytest.mark.parametrize(("frequency", "start", "end", "first", "last", "count"), [
    ("D", "2025-03-01", "2025-03-31", "2025-03-01", "2025-03-31", 31),
    ("A", "2025-03-01", "2025-03-01", "2025-03-01", "2025-03-01", 1),
    ("W", "2025-03-05", "2025-04-02", "2025-03-10", "2025-03-31", 4),  # ends on a Wednesday: its week is the last
    ("M", "2025-01-15", "2025-06-01", "2025-02-01", "2025-06-01", 5),
    ("Y", "2020-06-01", "2023-02-01", "2020", "2023", 4),
])
def test_the_last_partition_is_the_period_that_holds_end_date(tmp_path, frequency, start, end, first, last, count):
    _process(tmp_path, frequency, start_date=start, end_date=end)
    (spec,) = load_catalogue(tmp_path)
    keys = partitions_for(spec).get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == (first, last, count)
    # the core's periods name the same dates as Dagster's partitions
    kind = LoadFrequency(frequency)
    assert period_of(kind, spec.end_date).isoformat().startswith(last)  # type: ignore[arg-type]
    assert first_period(kind, spec.start_date).isoformat().startswith(first)
    assert next_period(kind, date(2025, 12, 31)) == {"D": date(2026, 1, 1), "A": date(2026, 1, 1),
                                                     "W": date(2026, 1, 5), "M": date(2026, 1, 1),
                                                     "Y": date(2026, 1, 1)}[frequency]


def test_without_end_date_the_partitions_keep_coming(tmp_path):
    _process(tmp_path, start_date="2026-04-01")
    (spec,) = load_catalogue(tmp_path)
    assert partitions_for(spec).get_last_partition_key() == (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def demo_job():
    return build_definitions(REPO / "catalogue").get_repository_def().get_job("sales_daily")


def test_the_demo_job_offers_exactly_its_sample_data_dates_so_the_last_90_and_120_keys_are_them(demo_job):
    keys = demo_job.partitions_def.get_partition_keys()
    assert keys == APRIL
    assert keys[-90:] == keys[-120:] == APRIL


def test_the_schedule_of_a_job_with_an_end_date_builds_and_after_the_end_asks_for_the_last_date_once():
    """Dagster's partitioned schedule asks for the last partition with it as the run key; the scheduler launches
    one run per run key, so after the end the last date runs once, then the ticks launch nothing."""
    schedule = build_definitions(REPO / "catalogue").get_repository_def().get_schedule_def("sales_daily_schedule")
    ticks = {datetime(2026, 4, 10, 6, tzinfo=UTC): "2026-04-09", datetime(2026, 5, 1, 6, tzinfo=UTC): "2026-04-30",
             datetime(2026, 6, 1, 6, tzinfo=UTC): "2026-04-30"}
    for tick, day in ticks.items():
        (request,) = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests
        assert (request.partition_key, request.run_key) == (day, day)


# ----------------------------------------------------------------------------------- the UI's default views


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[Webserver]:
    """The repo's code location in a real webserver (loading it reads YAML only), with one run's health figures
    for 2026-04-02 in its instance: on v_taskHealth as the views asset puts them, on its history as the run
    sensors observe them."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "instance" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(AssetMaterialization(HEALTH, partition="2026-04-02",
                                                                 metadata=task_health_figures(ROWS)))
        instance.report_runless_asset_event(health_observation(HISTORY, ROWS, "an-april-run", "2026-04-02"))
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=(home / "webserver.log").open("w"), start_new_session=True)
    server = Webserver(port)
    try:
        server.wait_until_loaded(process, home / "webserver.log")
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.webserver
def test_the_launch_dialog_lists_the_demo_dates(webserver):
    """Dagster 1.13's "Materialize" dialog filters the keys to the last 90 days, unless none of them falls there:
    then it lists them all. Either way every demo date is listed."""
    node = webserver.graphql(DIALOG_KEYS, assetKey={"path": ["retail", "sales_daily", "initiation"]})
    (dimension,) = node["assetNodeOrError"]["partitionKeysByDimension"]
    keys = dimension["partitionKeys"]
    assert keys == APRIL
    today = datetime.now(UTC).date()
    recent = [k for k in keys if today - timedelta(days=90) <= date.fromisoformat(k) <= today]
    assert recent in ([], keys)


def _plotted(event: dict) -> dict:
    """The event's numeric metadata: what the plots draw."""
    return {m["label"]: m.get("floatValue", m.get("intValue")) for m in event["metadataEntries"]
            if "floatValue" in m or "intValue" in m}


@pytest.mark.webserver
def test_v_taskhealths_partition_plots_count_from_today_so_the_demo_shows_under_events(webserver):
    """Dagster 1.13 counts the Partitions view's 120 dates back from today, past the partitions' end, so no
    April date is among them; the Events view plots the April run. When the first assertion fails, Dagster
    counts from the end: the Partitions view then shows the demo, and docs/HEALTH.md should say so."""
    key = {"path": HEALTH.path}
    keys = webserver.graphql(LATEST_PARTITIONS, assetKey=key, limit=120)["assetNodeOrError"]["partitionKeyConnection"]
    assert not set(keys["results"]) & set(APRIL)
    history = webserver.graphql(RECENT_EVENTS, assetKey=key, limit=100, eventTypeSelectors=EVENTS_PLOTTED)
    (event,) = history["assetOrError"]["assetEventHistory"]["results"]
    assert (event["partition"], _plotted(event)) == ("2026-04-02", PLOTTED)


@pytest.mark.webserver
def test_the_health_history_plots_the_demo_run_in_its_default_view(webserver):
    """taskHealth_history has no partitions, so its only plot view is Events: the observation the run sensors
    made after the April run is drawn there with v_taskHealth's figures."""
    key = {"path": HISTORY.path}
    assert webserver.graphql(PARTITIONED, assetKey=key)["assetNodeOrError"] == {"partitionDefinition": None}
    history = webserver.graphql(RECENT_EVENTS, assetKey=key, limit=100, eventTypeSelectors=EVENTS_PLOTTED)
    (event,) = history["assetOrError"]["assetEventHistory"]["results"]
    assert (event["__typename"], event["partition"], _plotted(event)) == ("ObservationEvent", None, PLOTTED)
