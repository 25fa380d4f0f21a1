"""Fixtures of the fault-injection suite: a Prefect server shared by a module's commands, and
the shards of an uninterrupted build to compare with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.harness import shard_digests, stage_counts


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """A Prefect server for the module (SQLite in its own PREFECT_HOME); the environment
    that points commands at it."""
    from flows.server import free_port, start_server, stop_server

    home = tmp_path_factory.mktemp("prefect-home")
    saved = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(home)
    try:
        port = free_port()
        server = start_server("127.0.0.1", port, ui=False, quiet=True)
    finally:
        if saved is None:
            os.environ.pop("PREFECT_HOME")
        else:
            os.environ["PREFECT_HOME"] = saved
    yield {"PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_HOME": str(home)}
    stop_server(server)


@pytest.fixture(scope="session")
def uninterrupted(built_sample):
    """Shard digests and stage counts of the sample built in one go."""
    from flows.recipe import load_recipe

    workdir = load_recipe(built_sample).workdir
    return shard_digests(workdir), stage_counts(workdir)


def without_server(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    return env


def migrated(home: Path) -> Path:
    """A PREFECT_HOME whose database exists (a first server start creates it, 20 s here)."""
    from flows.server import free_port, start_server, stop_server

    saved = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(home)
    try:
        stop_server(start_server("127.0.0.1", free_port(), ui=False, quiet=True))
    finally:
        os.environ.pop("PREFECT_HOME")
        if saved is not None:
            os.environ["PREFECT_HOME"] = saved
    return home


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    """The environment of a user with no Prefect server: each build starts its own, on the
    SQLite database under this PREFECT_HOME (as on a laptop, one for every build)."""
    return without_server(migrated(tmp_path_factory.mktemp("home")))
