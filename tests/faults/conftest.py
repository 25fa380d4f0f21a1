"""Fixtures of the fault-injection suite: a Prefect server shared by a module's commands, and
the shards of an uninterrupted build to compare with."""

from __future__ import annotations

import os

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
    from pipelines.recipe import load_recipe

    workdir = load_recipe(built_sample).workdir
    return shard_digests(workdir), stage_counts(workdir)
