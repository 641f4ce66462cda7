"""A local fake of the Databricks Jobs API 2.2 (and the OIDC token endpoint) over real HTTP on loopback.

The real databricks-sdk talks to it. What a run does is scripted per notebook path or job id:
each new run takes the next ``Script`` (the last one repeats). A run is PENDING on its first
runs/get, RUNNING for ``polls`` more, then TERMINATED with the script's result; a ``hang`` run stays
RUNNING until it is canceled or its ``timeout_seconds`` pass (then TIMEDOUT, as Databricks does).
Every request is kept in ``requests`` for the tests to inspect.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "/api/2.2/jobs"


@dataclass(frozen=True)
class Script:
    result: str = "SUCCESS"  # SUCCESS or FAILED
    polls: int = 1  # runs/get calls that answer RUNNING
    message: str = ""  # state_message
    error: str | None = None  # get-output's error (with a two-line error_trace)
    output: Any = None  # the notebook's exit value (dumped as JSON unless a str)
    hang: bool = False


@dataclass
class FakeRun:
    run_id: int
    task_run_id: int
    script: Script
    body: dict[str, Any]
    job_id: int | None = None
    cluster_id: str | None = None
    created: float = field(default_factory=time.monotonic)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    gets: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"life_cycle_state": "PENDING", "state_message": ""})
    ended_ms: int | None = None

    @property
    def terminated(self) -> bool:
        return self.state["life_cycle_state"] == "TERMINATED"

    def end(self, result: str, message: str) -> None:
        self.state = {"life_cycle_state": "TERMINATED", "result_state": result, "state_message": message}
        self.ended_ms = int(time.time() * 1000)


class FakeDatabricks:
    """``with FakeDatabricks(token=...) as api: api.host`` is a workspace URL for the SDK."""

    def __init__(self, token: str, oauth_client: tuple[str, str] | None = None) -> None:
        self.token, self.oauth_client = token, oauth_client
        self.jobs: dict[int, list[str]] = {}  # job id -> declared job parameter names
        self.scripts: dict[str | int, list[Script]] = {}
        self.runs: dict[int, FakeRun] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeDatabricks:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ----------------------------------------------------------------------------- scripting

    def script(self, key: str | int, *scripts: Script) -> None:
        """What the next runs of a notebook path (or job id) do."""
        self.scripts[key] = list(scripts)

    def job(self, job_id: int, *scripts: Script, parameters: tuple[str, ...] = ()) -> None:
        """An existing job, the job parameters it declares, and what its runs do."""
        self.jobs[job_id] = list(parameters)
        self.script(job_id, *scripts)

    def runs_of(self, key: str | int) -> list[FakeRun]:
        return [r for r in self.runs.values() if key in (r.job_id, _notebook_path(r.body))]

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    # ------------------------------------------------------------------------------- the API

    def _start(self, key: str | int, body: dict[str, Any], job_id: int | None) -> dict[str, Any]:
        token = body.get("idempotency_token")
        with self._lock:
            for run in self.runs.values():
                if token and run.body.get("idempotency_token") == token:
                    return {"run_id": run.run_id}
            queue = self.scripts.get(key) or [Script()]
            script = queue.pop(0) if len(queue) > 1 else queue[0]
            run = FakeRun(next(self._ids), next(self._ids), script, body, job_id)
            task = (body.get("tasks") or [{}])[0]
            run.cluster_id = task.get("existing_cluster_id") or (f"job-cluster-{job_id}" if job_id else None)
            self.runs[run.run_id] = run
        return {"run_id": run.run_id, **({"number_in_job": run.run_id} if job_id else {})}

    def _advance(self, run: FakeRun) -> None:
        """One runs/get: the run moves on by the script (time matters only for timeouts)."""
        run.gets += 1
        if run.terminated:
            return
        timeout = run.body.get("timeout_seconds")
        if timeout and time.monotonic() - run.created > timeout:
            run.end("TIMEDOUT", f"Run timed out after {timeout} seconds.")
        elif run.gets >= 2 and (run.script.hang or run.gets <= 1 + run.script.polls):
            run.state = {"life_cycle_state": "RUNNING", "state_message": "In run"}
            if run.cluster_id is None and (run.body.get("tasks") or [{}])[0].get("new_cluster"):
                run.cluster_id = f"0000-fake-{run.run_id}"
        elif run.gets >= 2:
            run.end(run.script.result, run.script.message)

    def _run_json(self, run: FakeRun) -> dict[str, Any]:
        cluster = {"cluster_instance": {"cluster_id": run.cluster_id}} if run.cluster_id else {}
        timings = {}
        if run.terminated:
            timings = {"start_time": run.started_ms, "end_time": run.ended_ms, "queue_duration": 0,
                       "run_duration": run.ended_ms - run.started_ms}
        task = {"run_id": run.task_run_id, "task_key": "etl_task", "state": run.state, **cluster}
        return {
            "run_id": run.run_id, "job_id": run.job_id, "run_name": run.body.get("run_name"),
            "run_type": "JOB_RUN" if run.job_id else "SUBMIT_RUN", "state": run.state,
            "run_page_url": f"{self.host}/#job/{run.job_id or 0}/run/{run.run_id}",
            "tasks": [task], **timings,
        }

    def _output(self, task_run_id: int) -> tuple[int, dict[str, Any]]:
        run = next((r for r in self.runs.values() if r.task_run_id == task_run_id), None)
        if run is None:
            if task_run_id in self.runs:
                return 400, _error("INVALID_PARAMETER_VALUE", "Retrieving the output of runs with multiple tasks "
                                   "is not supported. Please retrieve the output of each individual task run.")
            return 404, _error("RESOURCE_DOES_NOT_EXIST", f"Run {task_run_id} does not exist.")
        out: dict[str, Any] = {"metadata": {"run_id": task_run_id}}
        if run.script.error and run.state.get("result_state") == "FAILED":
            out |= {"error": run.script.error,
                    "error_trace": f"Traceback (most recent call last):\n  cell 3\n{run.script.error}"}
        if run.script.output is not None:
            value = run.script.output
            out["notebook_output"] = {"result": value if isinstance(value, str) else json.dumps(value)}
        return 200, out

    def _route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if (method, path) == ("GET", "/oidc/.well-known/oauth-authorization-server"):
            return 200, {"authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                         "token_endpoint": f"{self.host}/oidc/v1/token"}
        if (method, path) == ("POST", f"{API}/runs/submit"):
            return 200, self._start(_notebook_path(body), body, None)
        if (method, path) == ("POST", f"{API}/run-now"):
            job_id = int(body["job_id"])
            if job_id not in self.jobs:
                return 400, _error("INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
            undeclared = set(body.get("job_parameters") or {}) - set(self.jobs[job_id])
            if undeclared:
                return 400, _error("INVALID_PARAMETER_VALUE", f"Job parameters {sorted(undeclared)} are not defined")
            return 200, self._start(job_id, body, job_id)
        if (method, path) == ("GET", f"{API}/get"):
            job_id = int(query["job_id"])
            if job_id not in self.jobs:
                return 400, _error("INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
            return 200, {"job_id": job_id, "settings": {
                "name": f"job {job_id}", "parameters": [{"name": n, "default": ""} for n in self.jobs[job_id]]}}
        if (method, path) == ("GET", f"{API}/runs/get"):
            run = self.runs.get(int(query["run_id"]))
            if run is None:
                return 400, _error("INVALID_PARAMETER_VALUE", f"Run {query['run_id']} does not exist.")
            with self._lock:
                self._advance(run)
                return 200, self._run_json(run)
        if (method, path) == ("GET", f"{API}/runs/get-output"):
            return self._output(int(query["run_id"]))
        if (method, path) == ("POST", f"{API}/runs/cancel"):
            run = self.runs[int(body["run_id"])]
            with self._lock:
                if not run.terminated:
                    run.end("CANCELED", "Run was cancelled by the user.")
            return 200, {}
        return 404, _error("ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _authorized(self, handler: BaseHTTPRequestHandler, path: str) -> bool:
        return path.startswith("/oidc/") or handler.headers.get("Authorization") == f"Bearer {self.token}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if url.path == "/oidc/v1/token":
                    status, payload = fake._token(self.headers.get("Authorization"), raw)
                elif not fake._authorized(self, url.path):
                    status, payload = 401, _error("UNAUTHENTICATED", "Invalid access token.")
                else:
                    body = json.loads(raw) if raw else {}
                    fake.requests.append((method, url.path, body or query))
                    status, payload = fake._route(method, url.path, query, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *_: object) -> None:
                pass

        return Handler

    def _token(self, authorization: str | None, form: str) -> tuple[int, dict[str, Any]]:
        """Client credentials grant: the client id and secret in a Basic header, as the SDK sends them."""
        if self.oauth_client is None or "grant_type=client_credentials" not in form:
            return 400, {"error": "invalid_request"}
        expected = base64.b64encode(":".join(self.oauth_client).encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        return 200, {"access_token": self.token, "token_type": "Bearer", "expires_in": 3600}


def _notebook_path(body: dict[str, Any]) -> str | None:
    task = (body.get("tasks") or [{}])[0]
    return (task.get("notebook_task") or {}).get("notebook_path")


def _error(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "message": message}
