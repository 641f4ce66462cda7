"""Views are created again only when their text changed: each carries its text's hash as a table property.

Proved on the embedded engine's catalog: a property an operator set on a view survives every unchanged
create_views (CREATE OR REPLACE would drop it) and is gone once the view's text changed.
"""

from __future__ import annotations

import os

import pytest

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core.live_views import ALL_VIEWS
from etl_monitor_dagster.core.monitor import layout

SCHEMA = "_".join(filter(None, ("etl_view_hash", os.environ.get("PYTEST_XDIST_WORKER"))))
MARK = "qa.marker"


@pytest.fixture(scope="module")
def fresh(spark) -> ETLMonitorFramework:
    """A schema of its own: this module changes a view's text."""
    m = ETLMonitorFramework(spark, schema=SCHEMA, updated_by="pytest")
    m.setup()
    return m


def properties(monitor: ETLMonitorFramework, view: str) -> dict[str, str]:
    rows = monitor.spark.sql(f"SHOW TBLPROPERTIES {monitor.table_name(view)}").collect()
    return {r["key"]: r["value"] for r in rows}


def mark(monitor: ETLMonitorFramework, view: str) -> None:
    monitor.spark.sql(f"ALTER VIEW {monitor.table_name(view)} SET TBLPROPERTIES ('{MARK}' = 'kept')")


def test_setup_leaves_unchanged_views_alone(fresh):
    store = fresh._store
    hashes = layout.view_hashes(store)
    for view in ALL_VIEWS:
        assert properties(fresh, view)[layout.VIEW_HASH_PROPERTY] == hashes[view][1]
        mark(fresh, view)
    assert layout.create_views(store) == []
    fresh.setup()  # what `make start` and an upgrade run
    fresh.create_views()  # what every run's view asset does
    assert all(properties(fresh, view).get(MARK) == "kept" for view in ALL_VIEWS)


def test_a_view_whose_text_changed_is_replaced_with_the_views_that_read_it(fresh, monkeypatch):
    store = fresh._store
    first = next(iter(ALL_VIEWS))
    readers = [v for v in ALL_VIEWS if v != first and store.names[first] in store.render(ALL_VIEWS[v])]
    for view in ALL_VIEWS:
        mark(fresh, view)
    try:
        monkeypatch.setitem(ALL_VIEWS, first, ALL_VIEWS[first] + "\n-- a changed text")
        changed = layout.create_views(store)
        assert changed[0] == first and set(readers) <= set(changed)
        for view in ALL_VIEWS:
            assert (MARK in properties(fresh, view)) is (view not in changed), view
        assert layout.create_views(store) == []  # and then it is unchanged again
    finally:
        monkeypatch.undo()
        assert first in layout.create_views(store)  # back to the shipped text


def test_a_dropped_view_or_one_created_without_the_hash_is_created_again(fresh):
    store = fresh._store
    # a view no other view reads, so it alone is created again
    last = next(v for v in reversed(ALL_VIEWS) if not any(store.names[v] in store.render(ALL_VIEWS[w])
                                                          for w in ALL_VIEWS if w != v))
    fresh.spark.sql(f"DROP VIEW {fresh.table_name(last)}")
    assert layout.create_views(store) == [last]
    fresh.spark.sql(f"ALTER VIEW {fresh.table_name(last)} UNSET TBLPROPERTIES ('{layout.VIEW_HASH_PROPERTY}')")
    assert layout.create_views(store) == [last]
    assert layout.create_views(store) == []
