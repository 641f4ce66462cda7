"""The embedded engine runs with the settings tuned for the monitor's small statements (README, Speed)."""

from __future__ import annotations


def test_the_embedded_server_runs_with_the_tuned_settings_and_keeps_little_ui_history(spark_server, spark):
    """Each SQL and UI setting the server is started with is the one in effect, the UI history limits among
    them (without them garbage collection grew to a third of the server's CPU)."""
    given = dict(arg.split("=", 1) for arg in spark_server.command() if arg.startswith("spark.") and "=" in arg)
    tuned = {k: v for k, v in given.items()
             if k.startswith(("spark.sql.", "spark.ui.", "spark.connect.ui.")) and k != "spark.sql.warehouse.dir"}
    assert tuned["spark.sql.ui.retainedExecutions"] == "20" and tuned["spark.ui.retainedTasks"] == "200"
    assert {k: spark.conf.get(k) for k in tuned} == tuned
