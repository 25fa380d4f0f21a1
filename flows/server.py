"""A local Prefect server, for `serve` (with the UI) and for a `build` that has no Prefect API
configured (a temporary one, without the UI, for the length of the command).

Prefect's own embedded server keeps concurrency-slot leases in its memory and does not run
the service that frees expired ones, so a build killed while it held a slot left the slot
taken forever. The server started here keeps leases on disk under PREFECT_HOME and runs
that service, so a dead build's slots come free a minute after it died, whichever server
comes next. It runs in its own session (a Ctrl-C at the terminal is for the command, which
stops it last) and dies with the command that started it, SIGKILL included.
"""

from __future__ import annotations

import _thread
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flows.processes import spawn
from pipelines.errors import UserError

# What the servers started here need (a user's own setting of these wins).
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"
SERVER_SETTINGS = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": FILE_LEASES,
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
}
# Services a temporary build server does not need (it serves no deployments or schedules).
_BUILD_SERVER_OFF = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "CANCELLATION_CLEANUP",
)


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return False  # nothing there, or something that does not speak HTTP took the port


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (connections of a server that just died
    linger for a while; servers bind with SO_REUSEADDR, so they do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def prefect_home() -> str:
    return os.environ.get("PREFECT_HOME", str(Path.home() / ".prefect"))


def start_server(
    host: str, port: int, ui: bool, timeout_s: float = 180.0, quiet: bool = False
) -> subprocess.Popen:
    """A Prefect server (SQLite under PREFECT_HOME unless the environment names a database)
    on host:port, healthy when this returns; its log is PREFECT_HOME/server.log."""
    if not port_free(host, port):
        raise UserError(
            f"{host}:{port} is in use; stop what listens there, give --port, or set "
            "PREFECT_API_URL to use a running Prefect server"
        )
    home = prefect_home()
    os.makedirs(home, exist_ok=True)
    api_url = f"http://{host}:{port}/api"
    env = {**SERVER_SETTINGS, **os.environ}
    env.update(
        {
            "PREFECT_UI_ENABLED": "1" if ui else "0",
            # The UI asks the API at this address (its default is port 4200).
            "PREFECT_UI_API_URL": api_url,
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
        }
    )
    if not ui:
        for service in _BUILD_SERVER_OFF:
            env.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
    env.pop("PREFECT_API_URL", None)
    import prefect

    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect.__file__).parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--lifespan",
        "on",
    ]
    log_path = os.path.join(home, "server.log")
    if not quiet:
        print(f"starting a Prefect server on {host}:{port} (database under {home}) ...", flush=True)
    with open(log_path, "ab") as log:  # the server keeps its own handle
        server = spawn(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    try:
        while not healthy(api_url):
            if server.poll() is not None:
                with open(log_path, errors="replace") as log:
                    error = log.read().strip().splitlines()
                raise UserError(
                    f"the Prefect server did not start: {error[-1] if error else '?'} ({log_path})"
                )
            if time.monotonic() > deadline:
                raise UserError(
                    f"the Prefect server on {host}:{port} was not healthy after {timeout_s:g} s"
                )
            time.sleep(0.3)
    except BaseException:  # Ctrl-C included: never leave a server behind
        stop_server(server)
        raise
    return server


def stop_server(server: subprocess.Popen, timeout_s: float = 30.0) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass
class Api:
    url: str
    keeper: _Keeper | None = None  # the temporary server's keeper, when one was started

    @property
    def restarted(self) -> bool:
        return self.keeper is not None and self.keeper.restarts > 0


@contextmanager
def prefect_api() -> Iterator[Api]:
    """The configured Prefect API, or a temporary local server for the length of the block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if not healthy(configured.rstrip("/")):
            raise UserError(
                f"the Prefect API at {configured} does not answer (PREFECT_API_URL); start "
                "the server, or unset PREFECT_API_URL to use a local one"
            )
        yield Api(configured)
        return
    host = "127.0.0.1"
    for attempt in range(3):  # another process may take the free port first
        port = free_port(host)
        try:
            server = start_server(host, port, ui=False, quiet=True)
            break
        except UserError:
            if attempt == 2:
                raise
    api_url = f"http://{host}:{port}/api"
    keeper = _Keeper(server, host, port)
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            try:
                yield Api(api_url, keeper)
            finally:
                keeper.stopping.set()
                # After a restart, what failed meanwhile is retried with a backoff of up to
                # half a minute: do not wait for it.
                _send_what_is_queued(2.0 if keeper.restarts else 10.0)
    finally:
        keeper.stopping.set()
        stop_server(keeper.server, timeout_s=10)


class _Keeper:
    """Restarts the temporary server on its port if it dies during the command (at most
    MAX_RESTARTS times): Prefect's client retries its calls meanwhile, so the build goes on.
    If it cannot, the command stops with one line (what was committed stays committed)."""

    MAX_RESTARTS = 3

    def __init__(self, server: subprocess.Popen, host: str, port: int):
        self.server, self.host, self.port = server, host, port
        self.restarts = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._run, name="prefect-server", daemon=True).start()

    def _run(self) -> None:
        while not self.stopping.wait(0.5):
            if self.server.poll() is None:
                continue
            code = self.server.returncode
            if self.restarts == self.MAX_RESTARTS:
                self._give_up(f"stopped {self.restarts + 1} times (last exit code {code})")
                return
            self.restarts += 1
            print(
                f"llama-recipe: the temporary Prefect server stopped (exit code {code}); "
                "restarting it",
                file=sys.stderr,
                flush=True,
            )
            try:
                self.server = start_server(self.host, self.port, ui=False, quiet=True)
            except UserError as exc:
                self._give_up(f"could not be restarted ({exc})")
                return

    def _give_up(self, why: str) -> None:
        print(
            f"llama-recipe: error: the temporary Prefect server {why}; stopping (what was "
            f"committed stays; run the build again; server log: {prefect_home()}/server.log)",
            file=sys.stderr,
            flush=True,
        )
        _thread.interrupt_main()
        if not self.stopping.wait(15.0):
            os._exit(1)


def _send_what_is_queued(timeout_s: float = 10.0) -> None:
    """Logs and events still queued for the API go before the server stops (else Prefect
    retries them against a stopped server at exit, for over a minute)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout_s)
        except Exception:  # noqa: BLE001 (nothing to lose but log lines)
            pass
