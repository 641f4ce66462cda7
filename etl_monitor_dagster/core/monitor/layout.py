"""Creating the schema's eight tables (and our receipts archive) and the views, and migrating an older
layout in place.

An existing table (ours from an earlier version, or one the seed package created) keeps every
row: missing columns are added, nothing is dropped or retyped. Views are replaced by ours, but only
when their text changed: each carries the hash of its text as a table property (``VIEW_HASH_PROPERTY``).
"""

from __future__ import annotations

import hashlib
import re

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


# The property on each view holding the hash of the text it was created from. On the view, not in a table of
# ours: a view replaced or dropped by anyone else loses it and is created again, and no second write can drift
# from the view it describes. Reading them all is one SHOW TABLE EXTENDED.
VIEW_HASH_PROPERTY = "etl_monitor.view_sha256"
_PROPERTIES_LINE = re.compile(r"^Table Properties: \[(.*)\]$", re.MULTILINE)
_HASH = re.compile(rf"(?:^|, ){re.escape(VIEW_HASH_PROPERTY)}=([0-9a-f]{{64}})(?:,|$)")


def view_hashes(store: Store) -> dict[str, tuple[str, str]]:
    """Each view's rendered text and its hash: of the text and of the hashes of the earlier views it reads,
    so that a view is created again when a view it reads changed (its stored columns may have)."""
    found: dict[str, tuple[str, str]] = {}
    for view, body in ALL_VIEWS.items():
        text = store.render(body)
        reads = "".join(found[other][1] for other in found if store.names[other] in text)
        found[view] = text, hashlib.sha256(f"{text}\n{reads}".encode()).hexdigest()
    return found


def create_views(store: Store) -> list[str]:
    """Create each monitoring view that is missing or whose text changed since it was created; returns
    those views, in creation order. An unchanged view is left as it is: no DDL, no new owner on Unity Catalog."""
    wanted = view_hashes(store)
    current = stored_view_hashes(store, list(wanted))
    changed = [view for view, (_, digest) in wanted.items() if current.get(view) != digest]
    for view in changed:
        text, digest = wanted[view]
        store.engine.execute(f"CREATE OR REPLACE VIEW {store.names[view]} "
                             f"TBLPROPERTIES ({quote_string(VIEW_HASH_PROPERTY)} = {quote_string(digest)}) AS {text}")
    return changed


def stored_view_hashes(store: Store, views: list[str]) -> dict[str, str | None]:
    """Of ``views``, each that exists with the hash it was created with (None: ``create_views`` did not create it).

    One SHOW TABLE EXTENDED lists them with their properties; an engine whose listing shows no properties is
    asked per view."""
    listed = store.engine.query(f"SHOW TABLE EXTENDED IN {store.prefix} LIKE {quote_string('|'.join(views))}")
    info = {str(r["tableName"]).lower(): str(r["information"]) for r in listed if not r["isTemporary"]}
    found: dict[str, str | None] = {}
    for view in views:
        text = info.get(view.lower())
        if text is None:
            continue
        if (line := _PROPERTIES_LINE.search(text)) is None:
            found[view] = stored_view_hash(store, view)
        else:
            found[view] = match.group(1) if (match := _HASH.search(line.group(1))) else None
    return found


def stored_view_hash(store: Store, view: str) -> str | None:
    """The hash an existing view was created with; None when ``create_views`` did not create it."""
    rows = store.engine.query(f"SHOW TBLPROPERTIES {store.names[view]}")
    return next((str(r["value"]) for r in rows if r.get("key") == VIEW_HASH_PROPERTY), None)


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
