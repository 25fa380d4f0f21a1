"""Coordination under faults, with the temporary Prefect server `build` starts by itself: a
killed build never blocks the next one, two builds on one workdir take turns whatever their
Prefect databases, and a build whose server is killed goes on."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from flows.recipe import load_recipe
from tests.conftest import write_recipe
from tests.faults.conftest import migrated, without_server
from tests.faults.harness import (
    assert_nothing_survives,
    shard_digests,
    stage_counts,
    start,
    survivors,
)

pytestmark = pytest.mark.faults

LATE_STAGES = ("dedup", "decontaminate", "train-tokenizer", "tokenize", "mix")


def half_built(built_sample, directory: Path, name: str = "sample", forget=LATE_STAGES) -> str:
    """A recipe whose workdir is the built sample's up to quality: dedup and what follows
    run again (so a test spends its time where the faults are)."""
    directory.mkdir(parents=True, exist_ok=True)
    workdir = directory / "work"
    shutil.copytree(load_recipe(built_sample).workdir, workdir)
    for stage in forget:
        for manifest in workdir.glob(f"{stage}/*/_MANIFEST.json"):
            manifest.unlink()
    return str(write_recipe(directory, name=name))


def test_a_killed_build_leaves_nothing_that_blocks_the_next(
    built_sample, uninterrupted, embedded, tmp_path, lid_model_path
):
    recipe = half_built(built_sample, tmp_path)
    # Killed while it holds the dedup slot, the workdir lease and its temporary server.
    killed = start(["build", recipe], embedded, LLAMA_RECIPE_FAILPOINTS="dedup:before-manifest")
    assert killed.finish() == -9
    assert_nothing_survives(killed)  # the temporary Prefect server died with it
    lease = json.loads((tmp_path / "work" / "_LEASE.json").read_text())
    assert lease["pid"] == killed.process.pid and len(lease["slots"]) == 1
    again = start(["build", recipe], embedded)
    assert again.finish() == 0, again.output()[-3000:]
    output = again.output()
    assert f"(pid {killed.process.pid} on" in output and "its process is gone" in output
    assert f"gave back the concurrency slots the dead build held: {lease['slots']}" in output
    assert "waiting for" not in output  # it used to wait forever
    assert not (tmp_path / "work" / "_LEASE.json").exists()
    assert shard_digests(str(tmp_path / "work")) == uninterrupted[0]


def test_two_builds_on_one_workdir_take_turns_whatever_their_prefect(
    built_sample, uninterrupted, embedded, tmp_path_factory, tmp_path, lid_model_path
):
    # Two recipes (two names) with one workdir, each build with its own Prefect database.
    recipe = half_built(built_sample, tmp_path)
    (tmp_path / "other").mkdir()
    other = write_recipe(tmp_path / "other", name="other")
    data = other.read_text().replace(str(tmp_path / "other" / "work"), str(tmp_path / "work"))
    other.write_text(data)
    other_home = migrated(tmp_path_factory.mktemp("other-home"))
    first = start(["build", recipe], embedded)
    first.wait_for(r"for flow 'extract'")  # it holds the workdir now
    second = start(["build", str(other)], without_server(other_home))
    second.wait_for(rf"waiting for {tmp_path / 'work'}: build of recipe sample")
    assert first.finish() == 0, first.output()[-3000:]
    assert second.finish() == 0, second.output()[-3000:]
    assert "has not run yet" not in second.output()
    assert "mix: up to date, nothing ran" in second.output()  # the first one built it
    assert shard_digests(str(tmp_path / "work")) == uninterrupted[0]


def test_a_build_whose_server_is_killed_goes_on(
    built_sample, uninterrupted, embedded, tmp_path, lid_model_path
):
    recipe = half_built(built_sample, tmp_path)
    build = start(["build", recipe], embedded)
    build.wait_for(r"for flow 'dedup'")
    (server,) = [
        pid
        for pid in survivors(build.mark)
        if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    os.kill(server, 9)
    assert build.finish() == 0, build.output()[-3000:]
    assert "the temporary Prefect server stopped (exit code -9); restarting it" in build.output()
    assert shard_digests(str(tmp_path / "work")) == uninterrupted[0]
    assert stage_counts(str(tmp_path / "work")) == uninterrupted[1]


def test_beam_worker_processes_end_with_a_killed_build(
    built_sample, embedded, tmp_path, lid_model_path
):
    recipe = half_built(built_sample, tmp_path)
    options = {"direct_num_workers": 2, "direct_running_mode": "multi_processing"}
    text = Path(recipe).read_text()
    Path(recipe).write_text(
        text + f"runner: {{name: FnApiRunner, options: {json.dumps(options)}}}\n"
    )
    build = start(["build", recipe], embedded)
    build.wait_for(r"for flow 'dedup'")
    deadline = time.monotonic() + 120
    while not (workers := _beam_workers(build)):
        assert build.process.poll() is None and time.monotonic() < deadline, build.output()
        time.sleep(0.2)
    build.kill()
    assert_nothing_survives(build)
    assert not any(_running(pid) for pid in workers)


def _running(pid: int) -> bool:
    """Alive, not a zombie waiting for an init that does not reap (as in some containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _beam_workers(command) -> list[int]:
    found = []
    for pid in survivors(command.mark):
        try:
            if b"sdk_worker_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_dead_builds_slot_comes_free_for_another_workdir(
    built_sample, uninterrupted, embedded, tmp_path, lid_model_path
):
    # The build that dies holds the dedup slot; the next build is of another workdir, so it
    # cannot take the dead build's lease over: it waits, says so, and the slot's lease expires.
    dead = start(
        ["build", half_built(built_sample, tmp_path / "a", name="dies")],
        embedded,
        LLAMA_RECIPE_FAILPOINTS="dedup:before-manifest",
    )
    assert dead.finish() == -9
    other = start(["build", half_built(built_sample, tmp_path / "b", name="waits")], embedded)
    waited_from = other.wait_for(r"waiting for a slot of the Prefect concurrency limit")
    dedup_from = other.wait_for(r"waits/dedup|dedup/commoncrawl: ran")
    assert other.finish() == 0, other.output()[-3000:]
    assert "llama-recipe-dedup (1 of 1 in use" in other.output()
    assert dedup_from - waited_from < 90  # a 60 s lease, freed within 5 s of expiring
    assert shard_digests(str(tmp_path / "b" / "work")) == uninterrupted[0]
