"""Packed training shards: the schema the mix stage writes and a reader for the trainer.

This module imports nothing heavier than pyarrow and numpy, so a training job can read
shards without the data pipeline's dependencies.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

SHARD_GLOB = "shard-*.arrow"


def shard_schema(seq_len: int, vocab_size: int) -> pa.Schema:
    """One row per training sequence: seq_len + 1 token ids (inputs and shifted targets)."""
    value_type = pa.uint16() if vocab_size <= 1 << 16 else pa.uint32()
    return pa.schema([pa.field("tokens", pa.list_(value_type, seq_len + 1), nullable=False)])


class ShardReader:
    """Memory-maps every shard of a mix output; sequence i in O(1), iteration from anywhere."""

    def __init__(self, directory: str):
        paths = sorted(glob.glob(os.path.join(directory, SHARD_GLOB)))
        if not paths:
            raise FileNotFoundError(f"{directory}: no {SHARD_GLOB} shards")
        self.paths = paths
        self._arrays: list[np.ndarray] = []
        for path in paths:
            table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
            column = table.column("tokens").combine_chunks()
            width = column.type.list_size
            # Zero-copy view over the mapped file: [rows, seq_len + 1].
            self._arrays.append(column.values.to_numpy(zero_copy_only=True).reshape(-1, width))
        self.row_tokens = self._arrays[0].shape[1]
        self._offsets = np.cumsum([0] + [len(a) for a in self._arrays])
        mixture_path = os.path.join(directory, "mixture.json")
        self.mixture = json.load(open(mixture_path)) if os.path.exists(mixture_path) else None

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return self._arrays[shard][index - self._offsets[shard]]

    def iter_from(self, start: int) -> Iterator[np.ndarray]:
        for index in range(start, len(self)):
            yield self[index]
