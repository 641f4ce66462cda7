# Databricks notebook source
# MAGIC %md
# MAGIC # etl_monitor_dagster — quick start
# MAGIC Registers a small process, runs one execution through the `task()` guard and reads its status.
# MAGIC Change `CATALOG` and `SCHEMA` to where the monitor tables live.

# COMMAND ----------

from etl_monitor_dagster import ETLMonitorFramework

CATALOG, SCHEMA = "main", "etl"
monitor = ETLMonitorFramework(spark, catalog=CATALOG, schema=SCHEMA)  # noqa: F821 - the notebook's spark
monitor.setup()

# COMMAND ----------

(monitor
    .register_process("DEMO", "QUICKSTART", name="Quick start", owner="you", load_frequency="D")
    .register_task("DEMO", "QUICKSTART", 0, 0, 0, "Initiation")
    .register_task("DEMO", "QUICKSTART", 1, 1, 2, "Load orders", source_system_code="LastOrder")
    .register_parameter("DEMO", "QUICKSTART", "SYSDT", "SYSTEM")
    .register_parameter("DEMO", "QUICKSTART", "LastOrder", "DELTA_DATE"))

# COMMAND ----------

RUN = ETLMonitorFramework.generate_execution_id()
DAY = "2026-04-09"
monitor.generate_execution_steps(RUN, "DEMO", "QUICKSTART", DAY)
for task_id, stage, workflow in ((0, 0, 0), (1, 2, 1)):
    with monitor.task(RUN, "DEMO", "QUICKSTART", task_id, stage, workflow, DAY) as t:
        if t.active:
            print(f"task {task_id}: running, watermark {t.watermark_value}")

# COMMAND ----------

monitor.get_status("DEMO", "QUICKSTART", execution_id=RUN).display()
