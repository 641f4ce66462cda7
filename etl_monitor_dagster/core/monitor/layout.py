"""Creating the schema's eight tables (and our receipts archive) and the views, and migrating an older
layout in place.

An existing table (ours from an earlier version, or one the seed package created) keeps every
row: missing columns are added, nothing is dropped or retyped. Views are replaced by ours.
"""

from __future__ import annotations

from .. import schema as S
from ..live_views import ALL_VIEWS
from ..sql import quote_identifier, quote_string
from . import statements as Q
from .store import Store


def create_or_migrate(store: Store) -> None:
    store.engine.execute(f"CREATE SCHEMA IF NOT EXISTS {store.prefix}")
    for table in S.ALL_TABLES:
        create_or_migrate_table(store, table)
    restore_append_only(store)
    create_views(store)


def create_views(store: Store) -> None:
    """(Re)create the six monitoring views from their current definitions."""
    for view, body in ALL_VIEWS.items():
        store.engine.execute(f"CREATE OR REPLACE VIEW {store.names[view]} AS {store.render(body)}")


def seed_stages(store: Store) -> None:
    """Insert the seven seeded stages that are missing; an existing row is never overwritten."""
    rows = [{"SequenceID": sid, "SequenceCode": code, "SequenceName": name, "SequenceDescription": description,
             "SortOrder": sid, "IsActive": True, **store.audit()} for sid, code, name, description in S.SEEDED_STAGES]
    store.write(Q.SEED_STAGES, S.SEQUENCE, rows)


def create_or_migrate_table(store: Store, table: S.Table) -> None:
    """Create the table, or add the columns an existing one lacks."""
    name = store.names[table.name]
    if not store.engine.table_exists(name):
        columns = ",\n  ".join(f"{quote_identifier(c)} {t}" for c, t in table.columns)
        ddl = f"CREATE TABLE IF NOT EXISTS {name} (\n  {columns}\n) USING DELTA"
        if table.partitioned_by:
            ddl += f" PARTITIONED BY ({', '.join(table.partitioned_by)})"
        ddl += f" COMMENT {quote_string(table.comment)}"
        if table.properties:
            properties = ", ".join(f"{quote_string(k)} = {quote_string(v)}" for k, v in table.properties)
            ddl += f" TBLPROPERTIES ({properties})"
        store.engine.execute(ddl)
        return
    existing = {c.lower() for c in store.engine.columns(name)}
    missing = [c for c in table.column_names if c.lower() not in existing]
    if missing:
        # Added columns are nullable: rows already there have no value for them.
        added = ", ".join(f"{quote_identifier(c)} {table.base_type(c)}" for c in missing)
        store.engine.execute(f"ALTER TABLE {name} ADD COLUMNS ({added})")


# The maintenance job lifts ETLsysLogs' appendOnly to delete the receipts it archived, marking the table
# with this property in the same commit; a crash before it set both back leaves the mark, and the next
# setup() or maintenance run re-asserts appendOnly. An adopted seed table that never had appendOnly
# carries no mark and is left as it is.
MAINTENANCE_MARK = "etl_monitor.maintenance"
DELETING, IDLE = "deleting", "idle"


def table_properties(store: Store, table: S.Table) -> dict[str, str]:
    """The table's Delta properties (SHOW TBLPROPERTIES)."""
    rows = store.engine.query(f"SHOW TBLPROPERTIES {store.names[table.name]}")
    return {r["key"]: r["value"] for r in rows}


def set_append_only(store: Store, append_only: bool) -> None:
    """Set ETLsysLogs' appendOnly and the maintenance mark in one commit (lifted: marked deleting)."""
    properties = {"delta.appendOnly": "true" if append_only else "false",
                  MAINTENANCE_MARK: IDLE if append_only else DELETING}
    listed = ", ".join(f"{quote_string(k)} = {quote_string(v)}" for k, v in properties.items())
    store.engine.execute(f"ALTER TABLE {store.names[S.SYSLOGS.name]} SET TBLPROPERTIES ({listed})")


def restore_append_only(store: Store) -> bool:
    """Re-assert ETLsysLogs' appendOnly if a maintenance run died with it lifted; True when it did."""
    if table_properties(store, S.SYSLOGS).get(MAINTENANCE_MARK) != DELETING:
        return False
    set_append_only(store, True)
    return True
