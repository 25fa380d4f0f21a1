"""The training loop on the sample shards: learning, exact resume, FSDP2 on two processes,
data positions that survive a change of world size, and the loss on the held-out documents."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from flows.recipe import load_recipe
from pipelines.shards import ShardReader, shards_dir
from pipelines.store import StageStore
from tests.conftest import ROOT, free_port
from trainer.config import TrainSettings
from trainer.data import batch_for, rank_slice
from trainer.train import train

pytestmark = pytest.mark.integration
SETTINGS = TrainSettings(
    model="tiny", batch_size=4, lr=3e-3, warmup_steps=2, max_steps=6, device="cpu", log_every=1
)


@pytest.fixture(scope="module")
def shards(built_sample):
    return StageStore(load_recipe(built_sample).workdir).dir("mix", "_all")


def records(checkpoints) -> list[dict]:
    return [json.loads(x) for x in (checkpoints / "metrics.jsonl").read_text().splitlines()]


def commit_a_version_without_validation(mix_dir) -> None:
    """What a rebuild with `mixture.validation` removed commits: a newer version, named in
    the mix manifest, whose mixture.json holds out nothing."""
    old = shards_dir(str(mix_dir))[0]
    new = mix_dir / "v99990101T000000Z-newer"
    shutil.copytree(old, new, ignore=shutil.ignore_patterns("validation"))
    mixture = json.loads((new / "mixture.json").read_text())
    del mixture["validation"]
    (new / "mixture.json").write_text(json.dumps(mixture))
    (mix_dir / "_MANIFEST.json").write_text(json.dumps({"version": new.name}))


def test_stop_and_resume_gives_the_same_losses_bitwise(built_sample, shards, tmp_path):
    mix = tmp_path / "mix"
    shutil.copytree(shards, mix)  # a version of its own to rebuild below
    settings = dataclasses.replace(SETTINGS, eval_every=3, eval_rows=8)
    logged = []
    full = train(str(mix), 1024, settings, str(tmp_path / "a"), log=logged.append)
    assert full[-1]["loss"] < full[0]["loss"]
    first = train(str(mix), 1024, settings, str(tmp_path / "b"), stop_after=3)
    assert [r["step"] for r in first] == [1, 2, 3]
    # The run that stopped had logged a step and an evaluation past its checkpoint; and a
    # rebuild has committed a version that holds nothing out since.
    with open(tmp_path / "b" / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({**first[-1], "step": 4, "loss": 9.0}) + "\n")
        fh.write(json.dumps({"step": 4, "validation_loss": 9.0, "validation": {}}) + "\n")
    commit_a_version_without_validation(mix)
    rest = train(str(mix), 1024, settings, str(tmp_path / "b"), resume=True)
    assert [r["step"] for r in rest] == [4, 5, 6]
    assert [r["loss"] for r in first + rest] == [r["loss"] for r in full]
    assert rest[-1]["data_position"] == 6 * SETTINGS.batch_size
    assert all(r["max_memory_gib"] > 0 and r["tokens_per_s"] > 0 for r in full)
    assert "mfu" not in full[0]  # no peak known for a CPU unless train.peak_tflops says
    kept = sorted(n for n in os.listdir(tmp_path / "b") if n.startswith("step-"))
    assert kept == ["step-00000003", "step-00000006"]

    # Metrics: JSON lines for every step of both runs and every evaluation (the resumed run
    # evaluates on the version it started on), TensorBoard events, the loss curves.
    def losses(checkpoints):
        return [(r["step"], r.get("loss"), r.get("validation")) for r in records(checkpoints)]

    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    evaluations = [r for r in records(tmp_path / "b") if "validation_loss" in r]
    assert [r["step"] for r in records(tmp_path / "b")] == [1, 2, 3, 3, 4, 5, 6, 6]
    assert [r["step"] for r in evaluations] == [3, 6]
    assert [r for r in logged if "validation_loss" in r] == evaluations
    sources = set(load_recipe(built_sample).sources)
    for evaluation in evaluations:
        losses, tokens = evaluation["validation"], evaluation["validation_tokens"]
        assert set(losses) == set(tokens) == sources and min(tokens.values()) >= 128
        overall = sum(losses[s] * tokens[s] for s in sources) / sum(tokens.values())
        assert evaluation["validation_loss"] == pytest.approx(overall)
    # Learning shows on text never trained on, and per source.
    assert evaluations[1]["validation_loss"] < evaluations[0]["validation_loss"] < 6.9
    assert (tmp_path / "b" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "a" / "tensorboard"))
    tags = set(board.Reload().Tags()["scalars"])
    assert {f"validation/{s}" for s in sources} | {"validation/_overall", "train/loss"} <= tags
    assert [e.step for e in board.Scalars("validation/books")] == [3, 6]

    # A version without validation shards trains as before: no evaluation.
    plain = train(str(mix), 1024, dataclasses.replace(settings, max_steps=2), str(tmp_path / "c"))
    assert [r["step"] for r in records(tmp_path / "c")] == [r["step"] for r in plain] == [1, 2]


def test_each_global_batch_is_read_once_whatever_the_world_size(shards):
    reader = ShardReader(shards_dir(shards)[0])
    for world in (1, 2, 3):
        slices = [rank_slice(8, r, world) for r in range(world)]
        assert sum(c for _, c in slices) == 8
        parts = [batch_for(reader, 16, 8, r, world) for r in range(world)]
        assert np.array_equal(np.concatenate(parts), batch_for(reader, 16, 8).numpy())


RUNNER = """
import json, sys
from trainer.config import TrainSettings
from trainer.train import train
settings = TrainSettings(**json.loads(sys.argv[1]))
history = train(sys.argv[2], 1024, settings, sys.argv[3], resume=sys.argv[4] == "resume",
                stop_after=int(sys.argv[5]) or None)
import os
if os.environ.get("RANK", "0") == "0":
    with open(sys.argv[6], "w") as fh:
        json.dump(history, fh)
sys.stdout.flush()
# Leave without interpreter teardown: under pytest a gloo worker thread sometimes aborts the
# process at exit ("terminate called without an active exception") after all work is done.
os._exit(0)
"""


def torchrun(
    tmp_path, processes, shards, checkpoints, resume=False, stop_after=0, settings=SETTINGS
):
    script = tmp_path / "run.py"
    script.write_text(RUNNER)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(script),
        json.dumps(dataclasses.asdict(settings)),
        shards,
        str(checkpoints),
        "resume" if resume else "fresh",
        str(stop_after),
        str(tmp_path / "history.json"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # (a file: the two ranks' stdout interleave)
    return json.loads((tmp_path / "history.json").read_text())


def test_fsdp2_on_two_processes_matches_one(shards, tmp_path):
    # An evaluation at step 5 on at most 9 rows a source: the ranks' shares of the last
    # round of rows differ (one gets none), and every rank still runs its forward passes.
    settings = dataclasses.replace(SETTINGS, eval_every=5, eval_rows=9)
    single = train(shards, 1024, settings, str(tmp_path / "one"), stop_after=5)
    double = torchrun(tmp_path, 2, shards, tmp_path / "two", stop_after=5, settings=settings)
    assert len(double) == 5
    for a, b in zip(single, double, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-4, (a["loss"], b["loss"])
    one, two = (records(tmp_path / name)[-1] for name in ("one", "two"))
    assert one["step"] == two["step"] == 5 and one["validation_tokens"] == two["validation_tokens"]
    assert max(one["validation_tokens"].values()) == 9 * 128
    for name, loss in one["validation"].items():
        assert abs(loss - two["validation"][name]) < 1e-4, name


def test_resume_on_a_different_world_size(shards, tmp_path):
    # Two ranks train 3 steps; one process resumes from their sharded checkpoint.
    torchrun(tmp_path, 2, shards, tmp_path / "run", stop_after=3)
    rest = train(shards, 1024, SETTINGS, str(tmp_path / "run"), resume=True)
    full = train(shards, 1024, SETTINGS, str(tmp_path / "ref"))
    assert [r["data_position"] for r in rest] == [r["data_position"] for r in full[3:]]
    for a, b in zip(rest, full[3:], strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-4


def test_generate_command_continues_a_prompt(built_sample, shards, tmp_path, capsys):
    from flows.cli import main

    workdir = StageStore(load_recipe(built_sample).workdir).workdir
    checkpoints = os.path.join(workdir, "checkpoints-generate")
    train(shards, 1024, dataclasses.replace(SETTINGS, max_steps=2), checkpoints)
    tokenizer = os.path.join(workdir, "train-tokenizer", "_all")
    code = main(
        [
            "generate",
            os.path.join(checkpoints, "checkpoint.pt"),
            "--prompt",
            "The river",
            "--max-new-tokens",
            "8",
            "--tokenizer",
            tokenizer,
        ]  # fmt: skip
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("The river")
