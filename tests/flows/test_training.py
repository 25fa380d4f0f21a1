"""The train flow's view of a torchrun run: the records rank 0 appends to metrics.jsonl."""

from __future__ import annotations

import json
import os

from flows.training import MetricsFollower
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
