"""The docker/ deployment without Docker: PostgreSQL, the user-code server, the daemon and the
webserver as local processes, configured by docker/dagster.yaml and docker/workspace.yaml used
verbatim (both read every coordinate from the environment, exactly as in compose).

Everything started here is stopped when its context manager exits, on success or failure, and
every process's log is printed (and so shown by pytest) when the body raised.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg2
import pytest
import yaml

from mspo_pipeline.defs.warehouse import MANIFEST_POOL
from mspo_pipeline_tests import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "docker"
VENV_BIN = Path(sys.executable).parent
LOCATION_NAME = "mspo_pipeline"
TERMINAL_RUN_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
_LOG_TAIL_CHARS = 8000


class DeploymentError(RuntimeError):
    """A process of the deployment did not start, died, or did not do what was asked in time."""


def missing_system_tool(message: str) -> NoReturn:
    """Skips on a developer's machine; fails in CI, where a green run must mean the check ran."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A port nothing listens on right now (another process could still take it: rare enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path | None:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _wait_until(
    what: str, ready: Callable[[], bool], timeout: float, check: Callable[[], None]
) -> None:
    """Polls `ready` until it holds, calling `check` first so a dead process fails fast."""
    deadline = time.monotonic() + timeout
    while True:
        check()
        if ready():
            return
        if time.monotonic() > deadline:
            raise DeploymentError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.25)


def _tail(path: Path) -> str:
    if not path.exists():
        return "(no log written)"
    text = path.read_text(errors="replace")
    return text if len(text) <= _LOG_TAIL_CHARS else "[...]\n" + text[-_LOG_TAIL_CHARS:]


@dataclass(frozen=True)
class Postgres:
    """Coordinates of a running PostgreSQL database, as the deployment's environment names them."""

    host: str
    port: int
    user: str
    password: str
    db_name: str

    def env(self) -> dict[str, str]:
        """The variables docker/dagster.yaml reads (compose sets the same ones)."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_DB": self.db_name,
        }

    def connect(self, db_name: str | None = None) -> Any:
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=db_name or self.db_name,
            connect_timeout=5,
        )

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port, removed on exit.

    initdb refuses to run as root, so as root the cluster belongs to Debian's `postgres` user;
    its directory lives under /tmp (not pytest's root-only tmp_path) so that user can reach it.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise DeploymentError(
            "PostgreSQL server binaries not found (initdb): run scripts/ci-system-deps.sh, "
            "or `apt-get install -y --no-upgrade postgresql`"
        )
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else None
    root = Path(tempfile.mkdtemp(prefix="mspo-pg-"))
    data, log = root / "data", root / "postgres.log"
    password = os.urandom(12).hex()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if owner is not None:
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    user = "postgres" if as_root else None
    coords = Postgres("127.0.0.1", free_port(), "dagster", password, "dagster")

    def run(*argv: str) -> None:
        done = subprocess.run(
            argv, user=user, capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise DeploymentError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}\n"
                f"server log:\n{_tail(log)}"
            )

    started = False
    try:
        run(
            str(bin_dir / "initdb"),
            f"--pgdata={data}",
            f"--username={coords.user}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {coords.port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = True
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        conn = coords.connect("postgres")  # initdb made only this database
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {coords.db_name}")
        conn.close()
        yield coords
    except BaseException:
        print(f"===== postgres log ({log}) =====\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        if started:
            subprocess.run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                user=user,
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def deployment_home(home: Path, *, instance_class: bool = False) -> Path:
    """A DAGSTER_HOME with docker/dagster.yaml's storage and telemetry setting, and with
    ``instance_class`` its instance class, nothing else; the storage's coordinates come from the
    environment, as ``Postgres.env`` names them."""
    deployment = yaml.safe_load((DOCKER_DIR / "dagster.yaml").read_text())
    kept = ("storage", "telemetry", *(("instance_class",) if instance_class else ()))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump({key: deployment[key] for key in kept}))
    return home


def sessions_opened(postgres: Postgres) -> int:
    """Connections made to the database so far, by PostgreSQL's own count (this one included)."""
    conn = postgres.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            time.sleep(0.3)  # a closed connection's server process counts itself as it exits
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (postgres.db_name,)
            )
            row = cursor.fetchone()
            assert row is not None, f"no statistics for database {postgres.db_name}"
            return int(row[0])
    finally:
        conn.close()


@dataclass
class Service:
    """One long-running process of the deployment, in its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def assert_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise DeploymentError(
                f"{self.name} exited with code {code}; its log:\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        """SIGTERM to the group (runs launched by the code server die with it), then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        with suppress(ProcessLookupError):  # children outliving their leader keep its group id
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class CodeLocation:
    """What the user-code server loads: `dagster code-server start` target arguments
    (`("-m", "mspo_pipeline.definitions")` or `("-f", "/path/defs.py")`), run from `cwd`,
    with the environment the pipeline's resources read (MSPO_*)."""

    target: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Deployment:
    home: Path
    postgres: Postgres
    webserver_url: str
    env: dict[str, str]
    services: list[Service]

    def assert_running(self) -> None:
        for service in self.services:
            service.assert_running()

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POSTs to the webserver's /graphql, as its UI does; GraphQL errors raise."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.webserver_url}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, Any] = json.load(response)
        if answer.get("errors"):
            raise DeploymentError(f"GraphQL errors: {json.dumps(answer['errors'], indent=1)}")
        data: dict[str, Any] = answer["data"]
        return data

    def dagster(self, *args: str, timeout: float = 120) -> str:
        """Runs the `dagster` CLI against this deployment's instance and workspace."""
        argv = [str(VENV_BIN / "dagster"), *args]
        done = subprocess.run(
            argv,
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise DeploymentError(
                f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def wait_for_runs(
        self, count: int, timeout: float, job: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """Waits until `count` runs (of `job`, if given) exist and all have finished; returns
        (run_id, status, partition) rows from PostgreSQL's run storage.

        Naming the job leaves out the runs the daemon's automation launches on its own (the
        history-healing sensor re-derives a day when an earlier one lands after it)."""
        rows: list[tuple[str, str, str | None]] = []

        def finished() -> bool:
            nonlocal rows
            rows = [
                (str(r[0]), str(r[1]), r[2])
                for r in self.postgres.query(
                    "SELECT run_id, status, partition FROM runs"
                    " WHERE %s IS NULL OR pipeline_name = %s ORDER BY create_timestamp",
                    (job, job),
                )
            ]
            return len(rows) >= count and all(s in TERMINAL_RUN_STATUSES for _, s, _ in rows)

        try:
            _wait_until(f"{count} finished runs", finished, timeout, self.assert_running)
        except DeploymentError as error:
            raise DeploymentError(f"{error}; runs so far: {rows}") from error
        return rows


def _start(
    name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, logs: Path
) -> Service:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name, process, log_path)


def _stop_all(services: list[Service]) -> None:
    """Stops the last started first; one that fails to stop does not keep the others running."""
    errors: list[BaseException] = []
    for service in reversed(services):
        try:
            service.stop()
        except Exception as error:
            errors.append(error)
    if errors:
        raise DeploymentError(f"could not stop every process: {errors}")


def _grpc_serving(port: int) -> bool:
    """The standard gRPC health check the Dockerfile's HEALTHCHECK runs (without a new Python)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message }
      ... on RepositoryLocation { repositories { name } } } } } } }
"""


def location_repositories(deployment: Deployment) -> list[str]:
    """Names of the repositories the webserver loaded from the code location; a load error
    raises with the code server's message."""
    entries = deployment.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    (entry,) = [e for e in entries if e["name"] == LOCATION_NAME]
    loaded = entry["locationOrLoadError"]
    if loaded is None or loaded["__typename"] != "RepositoryLocation":
        raise DeploymentError(f"code location {LOCATION_NAME} did not load: {loaded}")
    return [repo["name"] for repo in loaded["repositories"]]


@contextmanager
def deployment(
    postgres: Postgres, location: CodeLocation, workdir: Path, startup_timeout: float = 120
) -> Iterator[Deployment]:
    """Starts the code server, then the webserver and the daemon, with DAGSTER_HOME holding
    docker/dagster.yaml and docker/workspace.yaml unchanged; stops them all on exit."""
    home = workdir / "dagster_home"
    logs = workdir / "logs"
    home.mkdir(parents=True)
    logs.mkdir(parents=True)
    shutil.copy(DOCKER_DIR / "dagster.yaml", home / "dagster.yaml")
    shutil.copy(DOCKER_DIR / "workspace.yaml", home / "workspace.yaml")
    code_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        **postgres.env(),
        **location.env,
        "DAGSTER_HOME": str(home),
        "MSPO_CODE_SERVER_HOST": "127.0.0.1",
        "MSPO_CODE_SERVER_PORT": str(code_port),
    }
    workspace = str(home / "workspace.yaml")
    result = Deployment(home, postgres, f"http://127.0.0.1:{web_port}", env, [])
    try:
        code_server = _start(
            "code-server",
            [
                str(VENV_BIN / "dagster"),
                "code-server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(code_port),
                "--location-name",
                LOCATION_NAME,
                *location.target,
            ],
            env,
            location.cwd,
            logs,
        )
        result.services.append(code_server)
        _wait_until(
            "code server",
            lambda: _grpc_serving(code_port),
            startup_timeout,
            code_server.assert_running,
        )
        webserver = _start(
            "webserver",
            [
                str(VENV_BIN / "dagster-webserver"),
                "--host",
                "127.0.0.1",
                "--port",
                str(web_port),
                "--workspace",
                workspace,
            ],
            env,
            home,
            logs,
        )
        result.services.append(webserver)
        # As docker/compose.yaml's daemon does before it starts.
        subprocess.run(
            [str(VENV_BIN / "dagster"), "instance", "concurrency", "set", MANIFEST_POOL, "1"],
            env=env,
            cwd=home,
            check=True,
            capture_output=True,
            timeout=120,
        )
        result.services.append(
            _start(
                "daemon",
                [str(VENV_BIN / "dagster-daemon"), "run", "--workspace", workspace],
                env,
                home,
                logs,
            )
        )
        _wait_until(
            "webserver",
            lambda: _http_ok(f"{result.webserver_url}/server_info"),
            startup_timeout,
            result.assert_running,
        )
        location_repositories(result)
        yield result
    except BaseException:
        for service in result.services:
            print(f"===== {service.name} log =====\n{_tail(service.log_path)}", file=sys.stderr)
        raise
    finally:
        _stop_all(result.services)


SCHEDULE_DRY_RUN = """
mutation($selector: ScheduleSelector!, $timestamp: Float!) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick { evaluationResult {
      runRequests { runConfigYaml jobName tags { key value } }
      skipReason error { message stack } } }
    ... on PythonError { message stack }
  }
}
"""

LAUNCH_MULTIPLE_RUNS = """
mutation($params: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $params) {
    __typename
    ... on LaunchMultipleRunsResult { launchMultipleRunsResult {
      __typename ... on LaunchRunSuccess { run { runId } }
      ... on PythonError { message }
      ... on RunConfigValidationInvalid { errors { message } } } }
    ... on PythonError { message }
  }
}
"""


def launch_schedule_tick(
    deployment: Deployment, repository: str, schedule: str, timestamp: float
) -> list[str]:
    """What the UI's "Test schedule" dialog does: evaluate the schedule as of `timestamp`, then
    "Launch all runs" it requested. Returns the launched run ids (queued for the daemon)."""
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": repository,
        "scheduleName": schedule,
    }
    tick = deployment.graphql(SCHEDULE_DRY_RUN, {"selector": selector, "timestamp": timestamp})[
        "scheduleDryRun"
    ]
    evaluation = tick.get("evaluationResult") or {}
    requests = evaluation.get("runRequests") or []
    if not requests:
        raise DeploymentError(f"schedule {schedule} at {timestamp} requested no run: {tick}")
    params = [
        {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": repository,
                "jobName": request["jobName"],
            },
            "runConfigData": request["runConfigYaml"],
            "mode": "default",
            "executionMetadata": {"tags": request["tags"]},
        }
        for request in requests
    ]
    launched = deployment.graphql(LAUNCH_MULTIPLE_RUNS, {"params": params})["launchMultipleRuns"]
    results = launched.get("launchMultipleRunsResult")
    if not results or any(r["__typename"] != "LaunchRunSuccess" for r in results):
        raise DeploymentError(f"launching the runs of schedule {schedule} failed: {launched}")
    return [r["run"]["runId"] for r in results]


def launch_partition_run(
    deployment: Deployment,
    repository: str,
    job: str,
    partition: str,
    assets: Sequence[Sequence[str]],
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """What the UI's "Materialize selected" does for one partition of some assets of a job:
    launch a run of just those assets (and their checks), queued for the daemon."""
    params = {
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": repository,
            "jobName": job,
            "assetSelection": [{"path": list(path)} for path in assets],
        },
        "runConfigData": dict(run_config or {}),
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = deployment.graphql(LAUNCH_MULTIPLE_RUNS, {"params": [params]})["launchMultipleRuns"]
    results = launched.get("launchMultipleRunsResult")
    if not results or results[0]["__typename"] != "LaunchRunSuccess":
        raise DeploymentError(f"launching {job} for {partition} of {assets} failed: {launched}")
    return str(results[0]["run"]["runId"])
