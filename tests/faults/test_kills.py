"""SIGKILL of `build` inside every stage, at moments drawn from a seed and at the failpoints
where a crash is hardest to recover from (a stage's output cleared; its data written but not
its manifest; its manifest written, the next stage not begun). After each kill nothing the
build started survives it, the next `build` goes on where the last one stopped (each kill is
followed by a build that is killed later, the last by a plain build that completes), and
the final shards are byte-identical (sha256) to an uninterrupted build."""

from __future__ import annotations

import os
import random
import time

import pytest

from pipelines.registry import STAGES
from tests.conftest import write_recipe
from tests.faults.harness import (
    assert_nothing_survives,
    shard_digests,
    stage_counts,
    start,
)

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("LLAMA_RECIPE_FAULT_SEED", "20261129"))
# Failpoints per stage beyond the kill at a random moment (`make faults` adds every one).
EXTRA_POINTS = {
    "extract": ["after-clear"],
    "langid": ["after-manifest"],
    "dedup": ["after-clear"],
    "tokenize": ["after-manifest"],
    "mix": ["after-clear", "after-manifest"],
}
ALL_POINTS = os.environ.get("LLAMA_RECIPE_FAULT_ALL_POINTS") == "1"
# Stages the sample recipe runs without a Beam job (a pass-through commits a manifest at
# once): there is no moment inside them to kill at, only their failpoints.
NO_JOB = ("decontaminate",)


def points_for(stage: str) -> list[str]:
    extra = ["after-clear", "after-manifest"] if ALL_POINTS else EXTRA_POINTS.get(stage, [])
    return (["moment"] if stage not in NO_JOB else []) + ["before-manifest", *extra]


def test_builds_killed_in_every_stage_end_with_identical_shards(
    shared_server, uninterrupted, lid_model_path, tmp_path
):
    rng = random.Random(SEED)
    recipe = str(write_recipe(tmp_path))
    workdir = str(tmp_path / "work")
    kills = []
    for stage in STAGES:
        for point in points_for(stage):
            if point == "moment":
                build = start(["build", recipe], shared_server)
                began = build.wait_for(rf"for flow '{stage}'")
                # Somewhere inside the stage's Beam job (they take 0.5 to 10 s here).
                deadline = build.started + began + rng.uniform(0.1, 1.5)
                while build.process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert build.process.poll() is None, "the build ended before the kill"
                build.kill()
            else:
                # The stage may be complete already (the last kill landed after it): ask
                # for it again, as a user rerunning a stage does. A pass-through follows a
                # stage the last kill left unfinished (dedup), and can never be current
                # here: the whole build reaches it.
                again = [] if stage in NO_JOB else ["--stages", stage, "--force"]
                build = start(
                    ["build", recipe, *again],
                    shared_server,
                    LLAMA_RECIPE_FAILPOINTS=f"{stage}:{point}",
                )
                assert build.finish() == -9, build.output()[-2000:]
            kills.append(f"{stage}:{point}")
            assert_nothing_survives(build)
    final = start(["build", recipe], shared_server)
    assert final.finish() == 0, final.output()[-3000:]
    digests, counts = uninterrupted
    assert shard_digests(workdir) == digests
    assert stage_counts(workdir) == counts
    print(f"{len(kills)} kills (seed {SEED}): {', '.join(kills)}")
