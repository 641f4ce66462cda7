"""``python -m etl_monitor_dagster setup [catalogue]``: create the monitor tables and register a catalogue.

The code location itself never touches Spark at load time; this is the one step that prepares the
tables so ADF, JDBC and dashboards see the catalogue before the first run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .catalogue import load_catalogue, registration


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m etl_monitor_dagster")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="create/migrate the tables and views, upsert the catalogue")
    setup.add_argument("catalogue", nargs="?", default="catalogue", type=Path, help="catalogue folder")
    arguments = parser.parse_args()
    from .resource import ETLMonitorResource

    processes = load_catalogue(arguments.catalogue)
    monitor = ETLMonitorResource().get_monitor()
    monitor.setup()
    monitor.register_many(**registration(processes))
    print(f"monitor tables ready; {len(processes)} process(es) registered from {arguments.catalogue}")


if __name__ == "__main__":
    main()
