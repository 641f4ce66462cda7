"""The starter catalogue ``dg scaffold defs etl_monitor_dagster.ETLMonitorComponent`` writes: one daily
process of one SPARK_SQL task (``{process}`` is named after the scaffolded folder)."""

import textwrap

STARTER_PROCESS = textwrap.dedent("""\
    # A process of the catalogue: docs/CATALOGUE.md lists every key.
    project: STARTER
    process: {process}
    name: Starter daily load
    frequency: D
    start_date: 2026-11-01
    schedule_at: "06:00"
    parameters:
      - {{name: SYSDT, type: SYSTEM}}
    tasks:
      - {{id: 0, workflow: 0, stage: 0, name: Initiation, source_type: NONE, mandatory: true}}
      - {{id: 1, workflow: 1, stage: 2, name: Load starter, source_type: SPARK_SQL, source: sql/starter.sql,
         mandatory: true, sla_seconds: 300}}
    """)

STARTER_SQL = "-- A task's SQL runs on the monitor's engine; replace it with the load.\nSELECT 1 AS loaded\n"
