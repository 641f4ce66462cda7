# Databricks notebook source
# MAGIC %md
# MAGIC # etl_start_task
# MAGIC Mark a task running (NQUE on the first attempt, RQUE on a retry)
# MAGIC in the etl_monitor_dagster tables, from widget values (ADF base parameters).
# MAGIC
# MAGIC Widgets: catalog, schema, execution_id, project_code, process_load, task_id, workflow_id,
# MAGIC processing_date, source_type, source_run_id, cluster_id.
# MAGIC Exits with JSON {"action", "changed", "status"}. Needs the etl-monitor-dagster wheel on the cluster.

# COMMAND ----------

from etl_monitor_dagster.core.notebook import start_task_from_widgets

start_task_from_widgets(spark, dbutils)  # noqa: F821 - spark and dbutils are the notebook's own
