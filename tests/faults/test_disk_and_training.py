"""A disk that fills up during a stage, and training killed while it writes a checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from flows.recipe import load_recipe
from tests.conftest import write_recipe
from tests.faults.harness import assert_nothing_survives, shard_digests, start

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB tmpfs (a real file system that fills up), grown on request; root only, as CI
    runs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=5m", f"llama-recipe-{uuid.uuid4().hex[:6]}", mount],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)

    yield mount, grow
    subprocess.run(["umount", "-l", mount], check=False)


def test_a_full_disk_is_one_line_and_the_next_build_completes(
    small_disk, uninterrupted, embedded, tmp_path, lid_model_path
):
    mount, grow = small_disk
    recipe = write_recipe(tmp_path)
    recipe.write_text(recipe.read_text().replace(str(tmp_path / "work"), str(mount / "work")))
    env = embedded
    full = start(["build", str(recipe)], env)
    assert full.finish() == 2
    errors = [line for line in full.output().splitlines() if "llama-recipe: error:" in line]
    assert len(errors) == 1 and "No space left on device while" in errors[0]
    assert "Traceback" not in full.output()
    assert_nothing_survives(full)
    grow()  # the operator frees space; nothing else
    again = start(["build", str(recipe)], env)
    assert again.finish() == 0, again.output()[-3000:]
    assert shard_digests(str(mount / "work")) == uninterrupted[0]


def test_training_killed_while_writing_a_checkpoint_resumes_to_the_same_losses(
    built_sample, tmp_path, lid_model_path
):
    shutil.copytree(load_recipe(built_sample).workdir, tmp_path / "work")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings = {"max_steps": 6, "batch_size": 4, "warmup_steps": 2, "lr": 3e-3}
    straight = write_recipe(
        tmp_path / "a", train={**settings, "checkpoint_dir": str(tmp_path / "a" / "ckpt")}
    )
    broken = write_recipe(
        tmp_path / "b",
        train={**settings, "checkpoint_every": 2, "checkpoint_dir": str(tmp_path / "b" / "ckpt")},
    )
    for recipe in (straight, broken):  # both read the one built mix
        text = recipe.read_text().replace(str(recipe.parent / "work"), str(tmp_path / "work"))
        recipe.write_text(text)
    assert start(["train", str(straight)]).finish() == 0
    # Killed between writing the step-4 checkpoint and committing it.
    killed = start(["train", str(broken)], LLAMA_RECIPE_FAILPOINTS="checkpoint:before-commit@2")
    assert killed.finish() == -9
    checkpoints = sorted(os.listdir(tmp_path / "b" / "ckpt"))
    assert "step-00000002" in checkpoints and "step-00000004.partial" in checkpoints
    resumed = start(["train", str(broken), "--resume"])
    assert resumed.finish() == 0, resumed.output()[-3000:]

    def losses(folder):
        lines = (tmp_path / folder / "ckpt" / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(x) for x in lines]
        return [(r["step"], r.get("loss"), r.get("validation")) for r in records]

    # The training steps, then the sample recipe's evaluation on its held-out documents.
    assert losses("b") == losses("a")
    assert [s for s, _, _ in losses("b")] == [1, 2, 3, 4, 5, 6, 6]
    assert not any(n.endswith(".partial") for n in os.listdir(tmp_path / "b" / "ckpt"))


def test_torchrun_ranks_end_with_a_killed_torchrun(built_sample, tmp_path, lid_model_path):
    import sys
    import time
    from pathlib import Path

    from tests.faults.harness import run_command, survivors

    shutil.copytree(load_recipe(built_sample).workdir, tmp_path / "work")
    recipe = write_recipe(tmp_path, train={"max_steps": 1000, "batch_size": 2, "device": "cpu"})
    launcher = run_command(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + ["-m", "flows.cli", "train", str(recipe)]
    )
    launcher.wait_for(r"step +\d+ +loss")  # the ranks are training

    def ranks() -> list[int]:
        return [
            pid
            for pid in survivors(launcher.mark)
            if b"flows.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and pid != launcher.process.pid
        ]

    assert len(ranks()) == 2
    launcher.kill()  # SIGKILL of torchrun's agent, which cannot pass it on
    deadline = time.monotonic() + 15
    while ranks() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ranks()
    assert_nothing_survives(launcher)
