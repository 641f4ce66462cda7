"""The Dagster layer: resources, the translator, task assets, stage gates, view assets, hooks,
sensors, schedules and the ``Definitions`` builder. It calls the core; it holds no SQL text.

Modules whose functions Dagster decorates do not use ``from __future__ import annotations``:
Dagster reads their parameter types (config, resources) at definition time.
"""
