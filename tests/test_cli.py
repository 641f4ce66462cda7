"""The command line keeps the engine's token off the command line: it comes from the environment only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from etl_monitor_dagster.__main__ import main
from etl_monitor_dagster.core.connect import TOKEN_ENV
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN = "dapi-cli-SECRETVALUE-0123"


class _Gate(grpc.GenericRpcHandler):
    """A Spark Connect endpoint that only looks at who calls: records each call's metadata, runs nothing."""

    STREAMS = ("/ExecutePlan", "/ReattachExecute")  # the service's server-streaming methods

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        self.calls.append(dict(handler_call_details.invocation_metadata))

        def refuse(request: bytes, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "the test endpoint runs no plans")

        if handler_call_details.method.endswith(self.STREAMS):
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def gate() -> Iterator[Callable[[str], tuple[_Gate, int]]]:
    """Start a gate: on ``localhost`` with gRPC's local credentials (how pyspark sends a token to localhost),
    or in plaintext on ``127.0.0.1`` (how the embedded server listens)."""
    servers: list[grpc.Server] = []

    def start(host: str) -> tuple[_Gate, int]:
        handler, port = _Gate(), free_port()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
        if host == "localhost":
            server.add_secure_port(f"{host}:{port}", grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP))
        else:
            server.add_insecure_port(f"{host}:{port}")
        server.start()
        servers.append(server)
        return handler, port

    yield start
    for server in servers:
        server.stop(grace=None)


def _cli(*arguments: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl_monitor_dagster", *arguments], cwd=REPO,
                          env={**os.environ, "ETL_MONITOR_UNREACHABLE_TIMEOUT": "5", **env},
                          capture_output=True, text=True, timeout=120)


def test_a_token_inside_spark_remote_is_refused_naming_the_variable_and_hiding_the_token(tmp_path, capsys):
    remote = f"sc://adb-1.azuredatabricks.net:443/;use_ssl=true;token={TOKEN};x-databricks-cluster-id=0123"

    code = main(["export-catalogue", str(tmp_path / "out"), "--spark-remote", remote])

    error = capsys.readouterr().err
    assert code == 2
    assert "--spark-remote=" in error and TOKEN_ENV in error
    assert TOKEN not in error and "token=***" in error and "x-databricks-cluster-id=0123" in error
    assert not (tmp_path / "out").exists()


def test_the_help_names_the_token_variable(capsys):
    with pytest.raises(SystemExit) as done:
        main(["setup", "--help"])
    assert done.value.code == 0
    assert TOKEN_ENV in " ".join(capsys.readouterr().out.split())


def test_the_token_in_the_environment_reaches_the_engine_as_its_bearer_token(gate, tmp_path):
    handler, port = gate("localhost")

    done = _cli("export-catalogue", str(tmp_path / "out"), "--spark-remote", f"sc://localhost:{port}",
                **{TOKEN_ENV: TOKEN})

    assert done.returncode != 0  # the gate runs nothing
    assert handler.calls, done.stderr
    assert all(call.get("authorization") == f"Bearer {TOKEN}" for call in handler.calls)


def test_the_embedded_engine_gets_no_token_even_when_the_variable_is_set(gate, tmp_path):
    # pyspark would send the variable's token to 127.0.0.1 over TLS, which the embedded server does not
    # speak: no call would arrive. The gate stands where the embedded server listens.
    handler, port = gate("127.0.0.1")

    done = _cli("export-catalogue", str(tmp_path / "out"),
                **{TOKEN_ENV: TOKEN, "ETL_MONITOR_SPARK_PORT": str(port), "ETL_MONITOR_HOME": str(tmp_path)})

    assert done.returncode != 0  # the gate runs nothing
    assert handler.calls, done.stderr
    assert not any("authorization" in call for call in handler.calls)
