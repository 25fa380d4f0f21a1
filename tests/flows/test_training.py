"""The train flow's view of a torchrun run: the records rank 0 appends to metrics.jsonl."""

from __future__ import annotations

import json
import os

import pytest

from flows.training import MetricsFollower, step_line
from trainer.train import keep_metrics_until


def line(step: int) -> str:
    return json.dumps({"step": step, "loss": 5.0 - step / 10}) + "\n"


def steps(records) -> list[int]:
    return [r["step"] for r in records]


def test_a_new_run_reads_its_steps_not_those_of_the_last_run(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(line(1) + line(2) + line(3))  # an earlier run's
    follower = MetricsFollower(str(tmp_path), resume=False)
    assert follower.new_records() == []  # the trainer has not started it afresh yet
    with open(metrics, "w") as fh:  # as the trainer opens it for a new run
        fh.write(line(1))
        fh.flush()
        assert steps(follower.new_records()) == [1]
        fh.write(line(2) + line(3)[:10])  # a line still being written
        fh.flush()
        assert steps(follower.new_records()) == [2]
        fh.write(line(3)[10:])
        fh.flush()
        assert steps(follower.new_records()) == [3]
        assert follower.new_records() == []


def test_a_resumed_run_reads_the_steps_after_its_checkpoint(tmp_path):
    os.makedirs(tmp_path / "step-00000002")
    (tmp_path / "step-00000002" / "trainer.json").write_text(json.dumps({"step": 2}))
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(line(1) + line(2) + line(3))  # step 3: logged by the run that died
    follower = MetricsFollower(str(tmp_path), resume=True)
    assert follower.new_records() == []
    keep_metrics_until(str(metrics), 2)  # what the trainer does first on resuming
    with open(metrics, "a") as fh:
        fh.write(line(3) + line(4))
    assert steps(follower.new_records()) == [3, 4]


def test_a_run_that_writes_nothing_gives_nothing(tmp_path):
    follower = MetricsFollower(str(tmp_path / "checkpoints"), resume=False)
    assert follower.new_records() == []


def test_evaluations_are_printed_and_rolled_back_with_their_steps(tmp_path):
    evaluation = {
        "step": 2,
        "validation_loss": 5.25,
        "validation": {"c4": 5.5, "books": 5.0},
        "validation_tokens": {"c4": 128, "books": 128},
    }
    assert step_line(evaluation) == "step     2  validation loss 5.2500  (c4 5.5000  books 5.0000)"
    training = {"step": 2, "loss": 4.5, "lr": 3e-4, "grad_norm": 1.0, "tokens_per_s": 1000.0}
    assert step_line(training).startswith("step     2  loss 4.5000  lr 3.00e-04")
    # A resumed run forgets what came after its checkpoint, evaluations included.
    metrics = tmp_path / "metrics.jsonl"
    later = {**evaluation, "step": 3}
    metrics.write_text("".join(json.dumps(r) + "\n" for r in [training, evaluation, later]))
    keep_metrics_until(str(metrics), 2)
    assert [json.loads(x) for x in metrics.read_text().splitlines()] == [training, evaluation]


def test_a_count_out_of_range_in_the_train_section_is_one_line(tmp_path):
    from flows.recipe import load_recipe
    from pipelines.errors import RecipeError
    from tests.conftest import write_recipe

    for key, value, problem in [
        ("eval_every", -1, "eval_every must be 0 or more"),
        ("log_every", 0, "log_every must be 1 or more"),
        ("micro_batch_size", 0, "micro_batch_size must be 1 or more"),
    ]:
        path = write_recipe(tmp_path, train={"max_steps": 5, key: value})
        with pytest.raises(RecipeError) as raised:
            load_recipe(path)
        assert str(raised.value) == f"{path}: train: Value error, {problem}"
    assert load_recipe(write_recipe(tmp_path, train={"eval_every": 0})).train.eval_rows == 256
