"""The tracking semantics of SPEC.md on Delta tables through Spark SQL. Knows nothing of Dagster.

``ETLMonitorFramework`` (facade.py) is the public API; each rule has one home:

| module | rule |
|---|---|
| registration.py | organisations, projects, processes, tasks, parameters: upserts and their checks |
| steps.py | a run's steps: generation, what is pending, start / end / retry / skip transitions |
| watermarks.py | parameter values: watermarks, SYSDT, processing modes |
| status.py | get_status and status_reset |
| layout.py | creating and migrating the tables and views |
| maintenance.py | retention: archiving old receipts, OPTIMIZE and VACUUM |
| statements.py | the SQL text of every statement |
| store.py | what they share: engine, table names, binding, receipts |
"""

from .facade import ETLMonitorFramework
from .steps import StepFacts, TaskGuard

__all__ = ["ETLMonitorFramework", "StepFacts", "TaskGuard"]
