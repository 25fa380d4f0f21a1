"""The coordination faults against a Prefect server on PostgreSQL, the database a team's shared
server uses, with the deployments run by a process work pool's worker: a build killed in the
middle, the server killed in the middle of the next one, and two runs on one workdir at
once. `.ci/run` installs and starts PostgreSQL (LLAMA_RECIPE_POSTGRES_URL); elsewhere the
module skips."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.faults.harness import run_command, shard_digests, start, survivors
from tests.faults.test_coordination import half_built

pytestmark = pytest.mark.faults

URL = os.environ.get(
    "LLAMA_RECIPE_POSTGRES_URL",
    "postgresql+asyncpg://llama_recipe:llama_recipe@127.0.0.1:5432/postgres",
)


def _reachable(url: str) -> bool:
    host, port = re.search(r"@([^:/]+):(\d+)/", url).groups()
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def database():
    """A new database for the module on the PostgreSQL server at LLAMA_RECIPE_POSTGRES_URL."""
    if not _reachable(URL):
        if os.environ.get("LLAMA_RECIPE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"no PostgreSQL at {URL} (.ci/run should have started one)")
        pytest.skip("no PostgreSQL server here (.ci/run installs and starts one)")
    import asyncpg

    name = f"llama_recipe_{uuid.uuid4().hex[:8]}"
    plain = URL.replace("+asyncpg", "")

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    yield URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def shared(database, tmp_path_factory):
    """A Prefect server on the database, a process work pool and its worker; the
    environment that points commands at them. The server can be killed and restarted."""
    from flows.server import free_port, start_server, stop_server

    home = tmp_path_factory.mktemp("shared-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": database,
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        }
    )

    class Shared:
        def __init__(self):
            self.env = env
            self.server = None
            self.start()

        def start(self):
            saved = dict(os.environ)
            os.environ.update({k: v for k, v in env.items() if k != "PREFECT_API_URL"})
            try:
                self.server = start_server("127.0.0.1", port, ui=False, quiet=True)
            finally:
                os.environ.clear()
                os.environ.update(saved)

    shared = Shared()
    prefect = str(Path(sys.executable).with_name("prefect"))
    created = run_command(
        [prefect, "work-pool", "create", "llama-faults", "--type", "process"], env
    )
    assert created.finish() == 0, created.output()
    # Polling every second instead of ten: the runs start sooner, nothing else changes.
    worker = run_command(
        [prefect, "worker", "start", "--pool", "llama-faults"],
        env,
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    shared.worker = worker
    yield shared
    worker.process.send_signal(signal.SIGINT)  # a worker ignores SIGTERM for a long while
    try:
        worker.finish(timeout_s=30)
    except Exception:  # noqa: BLE001
        worker.kill()
    stop_server(shared.server)


def _deploy(shared, recipe: str) -> None:
    deployed = start(["deploy", recipe, "--work-pool", "llama-faults"], shared.env)
    assert deployed.finish() == 0, deployed.output()


def _run(shared, deployment: str, **parameters):
    """Start a deployment's run (without waiting); its id."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: shared.env["PREFECT_API_URL"]}):
        run = run_deployment(deployment, parameters=parameters, timeout=0, _sync=True)
    return run.id


def _state(shared, run_id, final_within_s: float = 300):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + final_within_s
    with temporary_settings({PREFECT_API_URL: shared.env["PREFECT_API_URL"]}):
        while time.monotonic() < deadline:
            try:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    return state
            except Exception:  # noqa: BLE001 (the server may be restarting)
                pass
            time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not end within {final_within_s} s")


def _flow_run_process(shared, line: str, since: int = 0) -> int:
    """The pid of the flow-run process the worker started, once its output shows `line`."""
    shared.worker.wait_for(line, since=since)
    for pid in survivors(shared.worker.mark):
        if b"prefect.engine" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "):
            return pid
    raise AssertionError("no flow-run process found under the worker")


def test_a_killed_build_and_a_killed_server_on_postgres(
    shared, built_sample, uninterrupted, tmp_path, lid_model_path
):
    recipe = half_built(built_sample, tmp_path, name="pg-a")
    _deploy(shared, recipe)
    # A build killed in the middle of dedup, holding the workdir and the dedup slot.
    first = _run(shared, "build/pg-a")
    os.kill(_flow_run_process(shared, r"for flow 'dedup'"), signal.SIGKILL)
    assert not _state(shared, first).is_completed()
    # The next run of the deployment, with no manual step. While it runs dedup, the server
    # is killed and restarted (as a service manager does): the build goes on or, at worst,
    # the run after it completes.
    since = len(shared.worker.lines)
    second = _run(shared, "build/pg-a")
    shared.worker.wait_for(r"for flow 'dedup'", since=since)
    shared.server.send_signal(signal.SIGKILL)
    shared.server.wait()
    shared.start()
    if not _state(shared, second).is_completed():
        assert _state(shared, _run(shared, "build/pg-a")).is_completed()
    assert shard_digests(str(tmp_path / "work")) == uninterrupted[0]


def test_two_runs_on_one_workdir_take_turns_on_postgres(
    shared, built_sample, uninterrupted, tmp_path, lid_model_path
):
    recipe = half_built(built_sample, tmp_path, name="pg-c")
    _deploy(shared, recipe)
    # The build and a stage rerun of one recipe: two deployments, one workdir.
    since = len(shared.worker.lines)
    build = _run(shared, "build/pg-c")
    rerun = _run(shared, "rerun-stage/pg-c-mix")
    shared.worker.wait_for(rf"waiting for {tmp_path / 'work'}: ", since=since)
    assert _state(shared, build).is_completed() and _state(shared, rerun).is_completed()
    assert shard_digests(str(tmp_path / "work")) == uninterrupted[0]
