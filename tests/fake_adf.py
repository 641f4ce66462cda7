"""A local fake of the Azure Data Factory REST API and the Entra ID token endpoint, over HTTPS on loopback.

The real azure-identity and azure-mgmt-datafactory clients talk to it (bearer tokens are only sent
over TLS, so it serves a self-signed certificate that ``ca_bundle`` trusts). What a pipeline run does
is scripted per pipeline name: each new run takes the next ``Script`` (the last one repeats). A run
is Queued on its first get, InProgress for ``polls`` more, then ends with the script's status; a
``hang`` run stays InProgress until it is cancelled. ``during`` is called once while the run is in
progress (a pipeline whose own activities write back into the monitor). Every request is kept in
``requests``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FACTORY = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                     r"Microsoft\.DataFactory/factories/(?P<factory>[^/]+)(?P<rest>/.*)$")


@dataclass(frozen=True)
class Script:
    status: str = "Succeeded"  # Succeeded, Failed or Cancelled
    polls: int = 2  # gets that answer InProgress
    message: str = ""
    activity_error: dict[str, Any] | None = None  # the failed activity's error {errorCode, message, ...}
    dataflow_metrics: dict[str, Any] | None = None  # an ExecuteDataFlow activity's runStatus.metrics
    hang: bool = False
    during: Callable[[dict[str, Any]], None] | None = None  # called with the run's parameters


@dataclass
class FakePipelineRun:
    run_id: str
    pipeline: str
    factory: str
    parameters: dict[str, Any]
    script: Script
    gets: int = 0
    status: str = "Queued"
    message: str = ""
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended: dt.datetime | None = None
    cancelled: bool = False

    def end(self, status: str, message: str) -> None:
        self.status, self.message, self.ended = status, message, dt.datetime.now(dt.UTC)

    def body(self) -> dict[str, Any]:
        end = self.ended
        return {"runId": self.run_id, "pipelineName": self.pipeline, "parameters": self.parameters,
                "status": self.status, "message": self.message, "runStart": self.started.isoformat(),
                "runEnd": end.isoformat() if end else None,
                "durationInMs": int((end - self.started).total_seconds() * 1000) if end else None}


class FakeDataFactory:
    """``with FakeDataFactory(tmp_path) as adf: adf.url`` serves one tenant and any factory."""

    def __init__(self, folder: Path, tenant: str = "tenant-1", client_id: str = "client-1",
                 client_secret: str = "adf-s3cret") -> None:
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.pipelines: dict[str, dict[str, Any]] = {}  # name -> declared parameters {name: {type}}
        self.scripts: dict[str, list[Script]] = {}
        self.runs: dict[str, FakePipelineRun] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        self.ca_bundle = folder / "fake-adf-ca.pem"
        self._key = folder / "fake-adf-key.pem"
        _self_signed(self.ca_bundle, self._key)

    def pipeline(self, name: str, parameters: tuple[str, ...] = (), *scripts: Script) -> None:
        """Declare a pipeline, its parameters (all String) and what its runs do."""
        self.pipelines[name] = {p: {"type": "String"} for p in parameters}
        self.scripts[name] = list(scripts) or [Script()]

    def runs_of(self, pipeline: str) -> list[FakePipelineRun]:
        return [r for r in self.runs.values() if r.pipeline == pipeline]

    def __enter__(self) -> FakeDataFactory:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, self._key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --------------------------------------------------------------------------------- requests

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        if handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            body: dict[str, Any] = {k: v[0] for k, v in parse_qs(raw).items()}
        else:
            body = json.loads(raw) if raw else {}
        with self._lock:
            self.requests.append((method, url.path, body))
        try:
            status, answer = self._route(method, url.path, parse_qs(url.query), body, handler)
        except KeyError as exc:
            status, answer = 404, {"error": {"code": "NotFound", "message": f"{exc} not found"}}
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any],
               handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        if path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            base = f"{self.url}/{self.tenant}"
            return 200, {"token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                         "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                         "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode"}
        if path == f"/{self.tenant}/oauth2/v2.0/token":
            if (body.get("client_id"), body.get("client_secret")) != (self.client_id, self.client_secret):
                return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
            token = uuid.uuid4().hex
            self.tokens.append(token)
            return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}
        if handler.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "no valid bearer token"}}
        match = FACTORY.match(path)
        if not match:
            raise KeyError(path)
        factory, rest = match["factory"], match["rest"]
        if method == "GET" and (m := re.fullmatch(r"/pipelines/([^/]+)", rest)):
            name = m[1]
            return 200, {"name": name, "id": path, "properties": {"activities": [],
                                                                   "parameters": self.pipelines[name]}}
        if method == "POST" and (m := re.fullmatch(r"/pipelines/([^/]+)/createRun", rest)):
            name = m[1]
            if name not in self.pipelines:
                return 404, {"error": {"code": "PipelineNotFound", "message": f"Pipeline {name} not found"}}
            with self._lock:
                scripts = self.scripts[name]
                script = scripts.pop(0) if len(scripts) > 1 else scripts[0]
                run = FakePipelineRun(str(uuid.uuid4()), name, factory, body, script)
                self.runs[run.run_id] = run
            return 200, {"runId": run.run_id}
        if method == "GET" and (m := re.fullmatch(r"/pipelineruns/([^/]+)", rest)):
            return 200, self._advance(self.runs[m[1]]).body()
        if method == "POST" and (m := re.fullmatch(r"/pipelineruns/([^/]+)/cancel", rest)):
            run = self.runs[m[1]]
            run.cancelled = True
            if run.status in ("Queued", "InProgress"):
                run.end("Cancelled", "Pipeline run cancelled by the user")
            return 200, {}
        if method == "POST" and (m := re.fullmatch(r"/pipelineruns/([^/]+)/queryActivityruns", rest)):
            return 200, {"value": self._activities(self.runs[m[1]])}
        raise KeyError(path)

    def _advance(self, run: FakePipelineRun) -> FakePipelineRun:
        with self._lock:
            run.gets += 1
            if run.status not in ("Queued", "InProgress"):
                return run
            if run.gets == 1:
                return run
            run.status = "InProgress"
            call = run.script.during if run.gets == 2 else None
        if call:
            call(run.parameters)
        with self._lock:
            if not run.script.hang and run.gets > run.script.polls + 1 and run.status == "InProgress":
                script = run.script
                run.end(script.status, script.message or ("" if script.status == "Succeeded" else "Operation failed"))
        return run

    def _activities(self, run: FakePipelineRun) -> list[dict[str, Any]]:
        script, done = run.script, run.ended is not None
        activity = {"activityRunId": f"{run.run_id}-1", "pipelineName": run.pipeline, "pipelineRunId": run.run_id,
                    "activityName": "Main", "activityType": "ExecuteDataFlow" if script.dataflow_metrics else "Copy",
                    "status": run.status if done else "InProgress", "activityRunStart": run.started.isoformat(),
                    "input": {}, "output": {}, "error": {}}
        if script.dataflow_metrics:
            activity["output"] = {"runStatus": {"metrics": script.dataflow_metrics}}
        if done and script.activity_error:
            activity["error"] = script.activity_error
        return [activity]


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

