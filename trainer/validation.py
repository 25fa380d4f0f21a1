"""The loss on the mix's held-out documents: per source, the mean next-token loss over the
first `eval_rows` rows of its validation shards (the same rows every time, so that the
curves compare), with no gradient, in eval mode, on every rank.

Under torchrun each rank takes a slice of every round of rows, and every rank runs the same
number of forward passes whatever its share (one with no rows runs a row that is not
counted): the model's parameters are sharded, and every rank takes part in gathering them.
The sums of losses and of tokens are then added across ranks."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from pipelines.shards import ShardReader
from trainer.data import rank_slice
from trainer.parallel import World


@torch.no_grad()
def validation_losses(
    model: torch.nn.Module,
    readers: dict[str, ShardReader],
    max_rows: int,
    batch_rows: int,
    world: World,
    autocast: Any = None,
) -> dict[str, tuple[float, int]]:
    """(mean loss, tokens) per source over the first `max_rows` rows of each reader, in
    forward passes of at most `batch_rows` rows per rank. Returns the same on every rank."""
    sums = torch.zeros(len(readers), 2, dtype=torch.float64, device=world.device)
    was_training = model.training
    model.eval()
    try:
        for index, reader in enumerate(readers.values()):
            rows = min(len(reader), max_rows)
            for start in range(0, rows, batch_rows * world.size):
                size = min(batch_rows * world.size, rows - start)
                offset, count = rank_slice(size, world.rank, world.size)
                first = start + offset if count else 0  # none: a row that is not counted
                batch = np.stack([reader[first + i] for i in range(max(count, 1))])
                tokens = torch.from_numpy(batch.astype(np.int64)).to(world.device)
                inputs, targets = tokens[:, :-1], tokens[:, 1:]
                with autocast or contextlib.nullcontext():
                    logits = model(inputs)
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)).float(),
                    targets.reshape(-1),
                    reduction="sum",
                )
                if count:
                    sums[index, 0] += loss.double()
                    sums[index, 1] += targets.numel()
    finally:
        model.train(was_training)
    if world.distributed:
        dist.all_reduce(sums)
    return {
        name: (float(total / tokens) if tokens else float("nan"), int(tokens))
        for name, (total, tokens) in zip(readers, sums.tolist(), strict=True)
    }


def validation_record(step: int, losses: dict[str, tuple[float, int]]) -> dict[str, Any]:
    """The metrics.jsonl record of one evaluation: the step, the token-weighted mean loss of
    every source together (`validation_loss`) and each source's (`validation`). Training
    records have a `loss` instead."""
    total = sum(loss * tokens for loss, tokens in losses.values())
    tokens = sum(tokens for _, tokens in losses.values())
    return {
        "step": step,
        "validation_loss": total / tokens if tokens else float("nan"),
        "validation": {name: loss for name, (loss, _) in losses.items()},
        "validation_tokens": {name: tokens for name, (_, tokens) in losses.items()},
    }


def is_validation(record: dict[str, Any]) -> bool:
    """Whether a metrics.jsonl record is an evaluation's (else a training step's)."""
    return "validation_loss" in record
