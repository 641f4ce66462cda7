"""Appends committed by this process to a table of the embedded engine, beside the engine's own commits.

Every check reads the table back through the engine: what Spark and Delta see is what counts.
"""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from etl_monitor_dagster import ETLMonitorFramework
from etl_monitor_dagster.core import schema as S
from etl_monitor_dagster.core.enums import EventType
from etl_monitor_dagster.core.local_delta import LocalDeltaTable, Unsupported
from etl_monitor_dagster.core.receipts import receipt

COLUMNS = [("EventID", "STRING NOT NULL"), ("ProcessingDate", "DATE"), ("Writer", "STRING"), ("Seq", "INT"),
           ("At", "TIMESTAMP"), ("Text", "STRING")]
DAY = date(2026, 3, 1)
HOSTILE = "it's \"quoted\"\nnew line; DROP TABLE x; -- ünïcødé ✓ " + "x" * 80


def _create(spark, properties="'delta.enableRowTracking' = 'true'") -> tuple[str, LocalDeltaTable]:
    name = f"local_delta_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE TABLE default.{name} (EventID STRING NOT NULL, ProcessingDate DATE, Writer STRING, "
              f"Seq INT, At TIMESTAMP, Text STRING) USING DELTA PARTITIONED BY (ProcessingDate) "
              f"TBLPROPERTIES ({properties})")
    location = spark.sql(f"DESCRIBE DETAIL default.{name}").collect()[0]["location"]
    return f"default.{name}", LocalDeltaTable(Path(location.removeprefix("file:")), COLUMNS, "ProcessingDate")


def _rows(spark, name):
    frame = spark.sql(f"SELECT *, _metadata.row_id AS RowID FROM {name} ORDER BY RowID")
    return [r.asDict() for r in frame.collect()]


def test_rows_appended_here_and_by_the_engine_read_back_whole_in_commit_order(spark):
    name, table = _create(spark)
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Writer) VALUES ('e1', DATE'2026-03-01', 'engine')")
    table.append([{"EventID": "h1", "ProcessingDate": DAY, "Writer": "here", "Seq": 1, "At": moment,
                   "Text": HOSTILE},
                  {"EventID": "h2", "ProcessingDate": None, "Writer": "here", "Seq": 2}])
    spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Writer) VALUES ('e2', DATE'2026-03-02', 'engine')")
    table.append([{"EventID": "h3", "ProcessingDate": DAY, "Writer": "here", "Seq": 3}])

    rows = _rows(spark, name)
    assert [r["EventID"] for r in rows] == ["e1", "h1", "h2", "e2", "h3"]  # row ids follow the commits
    assert [r["RowID"] for r in rows] == [0, 1, 2, 3, 4]
    h1 = rows[1]
    assert (h1["Text"], h1["Seq"], h1["ProcessingDate"]) == (HOSTILE, 1, DAY)
    assert h1["At"].replace(tzinfo=UTC) == moment  # the engine's session time zone is UTC
    assert rows[2]["ProcessingDate"] is None
    # The stats written let the engine skip files: a filter on a column with stats still finds its row.
    assert spark.sql(f"SELECT EventID FROM {name} WHERE Seq = 3").collect()[0]["EventID"] == "h3"


def test_row_ids_stay_fresh_after_the_engine_rewrote_and_deleted_rows(spark):
    name, table = _create(spark)
    table.append([{"EventID": f"a{i}", "ProcessingDate": DAY, "Seq": i} for i in range(3)])
    # The engine rewrites the file: the row kept keeps its id 2, the new file takes id 3 and raises the mark.
    spark.sql(f"DELETE FROM {name} WHERE Seq < 2")
    table.append([{"EventID": "b", "ProcessingDate": DAY}])
    assert [(r["EventID"], r["RowID"]) for r in _rows(spark, name)] == [("a2", 2), ("b", 4)]


def test_a_scan_finds_the_rows_the_engine_finds_with_the_same_row_ids(spark):
    name, table = _create(spark)
    table.append([{"EventID": f"a{i}", "ProcessingDate": DAY, "Writer": "here", "Seq": i} for i in range(3)])
    spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Writer, Seq) VALUES "
              f"('e1', DATE'2026-03-01', 'engine', 7), ('e2', DATE'2026-03-02', 'engine', 7)")
    spark.sql(f"DELETE FROM {name} WHERE Seq = 0")  # the rewritten file keeps its rows' ids in a column
    table.append([{"EventID": "b", "ProcessingDate": DAY, "Writer": HOSTILE, "Seq": 7}])

    def engine(where):
        return [(r["EventID"], r["RowID"]) for r in _rows(spark, name) if where(r)]

    assert [(r["EventID"], r["RowID"]) for r in table.scan(DAY, {}, ["EventID"])] == engine(
        lambda r: r["ProcessingDate"] == DAY)
    assert [(r["EventID"], r["RowID"]) for r in table.scan(DAY, {"Seq": 7}, ["EventID"])] == engine(
        lambda r: r["ProcessingDate"] == DAY and r["Seq"] == 7)
    (hostile,) = table.scan(DAY, {"Writer": HOSTILE}, ["EventID", "ProcessingDate", "Writer"])
    assert (hostile["EventID"], hostile["ProcessingDate"], hostile["Writer"]) == ("b", DAY, HOSTILE)
    assert table.scan(date(2026, 3, 2), {"Writer": "here"}, ["EventID"]) == []



def test_every_row_read_here_is_the_engines_row_with_its_row_id_and_none_past_the_limit(spark):
    name, table = _create(spark)
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    table.append([{"EventID": f"a{i}", "ProcessingDate": DAY, "Writer": HOSTILE, "Seq": i, "At": moment}
                  for i in range(3)])
    spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Seq, At) VALUES ('e1', NULL, 7, TIMESTAMP'2026-03-01 "
              f"12:30:15.123456'), ('e2', DATE'2026-03-02', 8, NULL)")
    assert len(table.rows(limit=5)) == 5  # read once: the DELETE below must drop the rewritten file's rows
    spark.sql(f"DELETE FROM {name} WHERE Seq = 0")  # the rewritten file keeps its rows' ids in a column
    table.append([{"EventID": "b", "ProcessingDate": DAY, "Seq": 9}])

    rows = table.rows(limit=5)
    assert rows == [{**r, "At": r["At"] and r["At"].replace(tzinfo=UTC)} for r in _rows(spark, name)]
    assert [r["RowID"] for r in rows] == [1, 2, 3, 4, 7]  # the rewritten file's base took 5 and 6
    assert (rows[0]["Writer"], rows[2]["ProcessingDate"]) == (HOSTILE, None)
    assert [r["At"] for r in rows[:3]] == [moment] * 3  # an instant in UTC, from our files and the engine's
    assert table.rows(limit=4) is None  # five rows by the files' stats

def test_a_scan_tells_whether_a_commit_since_a_version_removed_rows(spark):
    name, table = _create(spark)
    table.append([{"EventID": f"a{i}", "ProcessingDate": DAY, "Seq": i} for i in range(2)])
    before = table.version()
    spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Seq) VALUES ('e1', DATE'2026-03-01', 7)")
    table.scan(DAY, {}, ["EventID"])
    assert not table.removed_after(before)  # appends only, by the engine too
    spark.sql(f"DELETE FROM {name} WHERE Seq = 0")
    table.scan(DAY, {}, ["EventID"])
    assert table.removed_after(before) and not table.removed_after(table.version())


def test_a_row_without_a_not_null_value_is_refused_and_nothing_is_written(spark):
    name, table = _create(spark)
    with pytest.raises(ValueError, match="EventID is NOT NULL"):
        table.append([{"EventID": "ok", "ProcessingDate": DAY}, {"EventID": None, "ProcessingDate": DAY}])
    assert _rows(spark, name) == []
    assert not list(table.path.glob("ProcessingDate=*"))


def test_a_table_asking_for_more_than_a_blind_append_is_refused_before_anything_is_written(spark):
    name, table = _create(spark, "'delta.enableRowTracking' = 'true', 'delta.enableDeletionVectors' = 'true'")
    with pytest.raises(Unsupported, match="deletionVectors"):
        table.append([{"EventID": "x", "ProcessingDate": DAY}])
    without_row_ids, plain = _create(spark, "'delta.appendOnly' = 'true'")
    with pytest.raises(Unsupported, match="row tracking"):
        plain.append([{"EventID": "x", "ProcessingDate": DAY}])
    fitting, table = _create(spark)
    other = LocalDeltaTable(table.path, [*COLUMNS, ("Extra", "STRING")], "ProcessingDate")
    with pytest.raises(Unsupported, match="columns differ"):
        other.append([{"EventID": "x", "ProcessingDate": DAY}])
    assert [spark.table(n).count() for n in (name, without_row_ids, fitting)] == [0, 0, 0]


def _append_many(server, location, name, writer, count, barrier, results):
    """One OS process appending ``count`` rows one commit at a time, here or through the engine."""
    try:
        barrier.wait(timeout=120)
        if writer.startswith("engine"):
            spark = server.session()
            for i in range(count):
                spark.sql(f"INSERT INTO {name} (EventID, ProcessingDate, Writer, Seq) "
                          f"VALUES ('{writer}-{i}', DATE'2026-03-01', '{writer}', {i})")
        else:
            table = LocalDeltaTable(Path(location), COLUMNS, "ProcessingDate")
            for i in range(count):
                table.append([{"EventID": f"{writer}-{i}", "ProcessingDate": DAY, "Writer": writer, "Seq": i}])
        results.put((writer, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((writer, repr(exc)))


def test_processes_committing_here_and_through_the_engine_at_once_lose_and_double_nothing(spark, spark_server):
    name, table = _create(spark)
    writers = {"here-1": 25, "here-2": 25, "here-3": 25, "engine-1": 5, "engine-2": 5}
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(writers)), ctx.Queue()
    workers = [ctx.Process(target=_append_many, args=(spark_server, str(table.path), name, w, n, barrier, results))
               for w, n in writers.items()]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [error for _, error in outcomes if error] == []

    rows = _rows(spark, name)
    assert Counter(r["Writer"] for r in rows) == writers  # every commit kept: none replaced another
    assert len({r["EventID"] for r in rows}) == len(rows)
    assert len({r["RowID"] for r in rows}) == len(rows)  # each row its own id
    for writer in writers:  # each writer's rows in the order it committed them
        assert [r["Seq"] for r in rows if r["Writer"] == writer] == list(range(writers[writer]))


def test_a_monitor_whose_log_cannot_take_appends_from_here_writes_through_the_engine(spark):
    schema = f"fallback_{uuid.uuid4().hex[:8]}"
    monitor = ETLMonitorFramework(spark, schema=schema, updated_by="pytest")
    # The log exists before setup() with deletion vectors on: a feature this process does not write.
    spark.sql(f"CREATE SCHEMA {schema}")
    columns = ", ".join(f"`{c}` {t}" for c, t in S.EVENTS.columns)
    spark.sql(f"CREATE TABLE {schema}.ETLEventLog ({columns}) USING DELTA PARTITIONED BY (ProcessingDate) "
              "TBLPROPERTIES ('delta.enableRowTracking' = 'true', 'delta.enableDeletionVectors' = 'true')")
    monitor.setup()
    alert = receipt(EventType.HEARTBEAT, project_code="P", process_load="L", state="through the engine")
    before = monitor.engine.stats.snapshot()
    monitor.store.append_receipts([alert])
    assert (monitor.engine.stats - before).statements == 1  # the append ran on the engine
    (logged,) = spark.table(monitor.table_name("ETLEventLog")).collect()
    assert logged["EventID"] == alert["CorrelationID"] and "through the engine" in logged["Message"]


def test_a_monitor_that_met_no_log_yet_appends_to_the_folder_once_the_log_exists(spark):
    schema = f"late_log_{uuid.uuid4().hex[:8]}"
    monitor = ETLMonitorFramework(spark, schema=schema, updated_by="pytest")
    where = {"ProcessingDate": DAY, "EventID": "none"}
    assert monitor.store.logged(where, ["EventID"]) is None  # no table yet: refused, read through the engine
    monitor.setup()
    alert = receipt(EventType.HEARTBEAT, project_code="P", process_load="L", state="from the folder")
    before = monitor.engine.stats.snapshot()
    monitor.store.append_receipts([alert])
    assert ((monitor.engine.stats - before).statements, (monitor.engine.stats - before).commits) == (0, 1)
    (logged,) = spark.table(monitor.table_name("ETLEventLog")).collect()
    assert logged["EventID"] == alert["CorrelationID"]
