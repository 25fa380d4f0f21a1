"""Batches by global sequence index: step t of a run reads sequences
[t·B, (t+1)·B) of the shards (B = the global batch), rank r of W reading its slice. The
position is one number, so a run resumed on another number of ranks reads exactly the
sequences it would have read: none skipped, none twice."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.shards import ShardReader


def rank_slice(global_batch: int, rank: int, world: int) -> tuple[int, int]:
    """(offset, count) of a rank's part of a global batch (the first ranks take the rest)."""
    base, extra = divmod(global_batch, world)
    offset = rank * base + min(rank, extra)
    return offset, base + (1 if rank < extra else 0)


def batch_for(
    reader: ShardReader, position: int, global_batch: int, rank: int = 0, world: int = 1
) -> torch.Tensor:
    """This rank's sequences of the global batch starting at `position` (wrapping around the
    data), as int64 [count, seq_len + 1]."""
    offset, count = rank_slice(global_batch, rank, world)
    rows = [reader[(position + offset + i) % len(reader)] for i in range(count)]
    return torch.from_numpy(np.stack(rows).astype(np.int64))
