"""``python -m etl_monitor_dagster setup [catalogue]``: create the monitor tables and register a catalogue.
``python -m etl_monitor_dagster export-catalogue DIRECTORY``: write registered processes out as a catalogue.

The code location itself never touches Spark at load time; ``setup`` is the one step that prepares the
tables so ADF, JDBC and dashboards see the catalogue before the first run. ``export-catalogue`` is the
way back, for processes registered with the seed framework or the API.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from .core.catalogue import CatalogueErrors, load_catalogue, registration
from .core.connect import TOKEN_ENV, refuse_inline_token
from .core.errors import ETLMonitorError, ValidationError
from .core.scrub import scrub


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit code (2 when the user has something to fix)."""
    arguments = _parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except Exception as error:
        return _report(error)


def _report(error: Exception) -> int:
    """Print why the command failed, scrubbed (an error's text may echo a connection string or a token);
    returns the exit code: 2 for a user's error, 1 for any other."""
    if isinstance(error, CatalogueErrors):
        lines, code = [f"{len(error.problems)} problem(s); nothing was written:", *map(str, error.problems)], 2
    elif isinstance(error, ETLMonitorError):  # a user's error: the message says what to fix, a traceback would not
        lines, code = [str(error)], 2
    else:  # anything else: its traceback, as Python prints it
        lines, code = ["".join(traceback.format_exception(error)).rstrip()], 1
    print(*(scrub(line) for line in lines), sep="\n", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--spark-remote", metavar="URL", help="Spark Connect URL of the monitor's engine, "
                        f"without a token: the token is read from ${TOKEN_ENV} (default: the embedded local "
                        "server, which takes none)")
    engine.add_argument("--schema", metavar="NAME", help="schema holding the monitor tables (default: etl)")
    parser = argparse.ArgumentParser(prog="python -m etl_monitor_dagster")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", parents=[engine],
                                help="create/migrate the tables and views, upsert the catalogue")
    setup.add_argument("catalogue", nargs="?", default="catalogue", type=Path, help="catalogue folder")
    setup.set_defaults(run=_setup)
    export = commands.add_parser("export-catalogue", parents=[engine],
                                 help="write the processes registered in the ETLconfig tables as catalogue files")
    export.add_argument("directory", type=Path, help="folder to write the YAML files to (created if missing)")
    export.add_argument("--project", metavar="P", help="only this ProjectCode")
    export.add_argument("--process", metavar="L", help="only this ProcessLoad")
    compute = export.add_mutually_exclusive_group()
    compute.add_argument("--serverless", action="store_true",
                         help="DBX_NOTEBOOK tasks run on serverless compute")
    compute.add_argument("--existing-cluster-id", metavar="ID", help="DBX_NOTEBOOK tasks run on this cluster")
    export.add_argument("--factory", metavar="SUBSCRIPTION/RESOURCE_GROUP/NAME",
                        help="the Azure Data Factory of ADF_PIPELINE and DATAFLOW tasks")
    export.set_defaults(run=_export)
    return parser


def _monitor(arguments: argparse.Namespace) -> Any:
    """The monitor as the code location builds it, pointed elsewhere only by the options given."""
    from .dagster.resource import ETLMonitorResource

    config: dict[str, Any] = {}
    if arguments.spark_remote:
        # pyspark sends the token from TOKEN_ENV itself; one on the command line would be public
        config.update(engine="connect", spark_remote=refuse_inline_token("--spark-remote", arguments.spark_remote))
    else:
        # pyspark would send it to the embedded server too, over TLS that server does not speak
        os.environ.pop(TOKEN_ENV, None)
    if arguments.schema:
        config["schema_name"] = arguments.schema
    return ETLMonitorResource(**config).get_monitor()


def _setup(arguments: argparse.Namespace) -> int:
    processes = load_catalogue(arguments.catalogue)
    monitor = _monitor(arguments)
    monitor.setup()
    monitor.register_many(**registration(processes))
    print(f"monitor tables ready; {len(processes)} process(es) registered from {arguments.catalogue}")
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from .core.export import export_catalogue

    compute = ({"serverless": True} if arguments.serverless
               else {"existing_cluster_id": arguments.existing_cluster_id} if arguments.existing_cluster_id
               else None)
    factory = None
    if arguments.factory:
        parts = arguments.factory.split("/")
        if len(parts) != 3:
            raise ValidationError("--factory", arguments.factory, "is SUBSCRIPTION/RESOURCE_GROUP/NAME")
        factory = dict(zip(("subscription_id", "resource_group", "name"), parts, strict=True))
    written = export_catalogue(_monitor(arguments), arguments.directory, project_code=arguments.project,
                               process_load=arguments.process, compute=compute, factory=factory)
    for path in written:
        print(path)
    print(f"{len(written)} catalogue file(s) written to {arguments.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
