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
    """Memory-maps every shard of a mix output; sequence i in O(1), iteration from anywhere.

    Nothing is read at open: each record batch of each shard is a zero-copy numpy view of
    the mapped file, so memory holds only the pages the trainer touches.
    """

    def __init__(self, directory: str):
        paths = sorted(glob.glob(os.path.join(directory, SHARD_GLOB)))
        if not paths:
            raise FileNotFoundError(f"{directory}: no {SHARD_GLOB} shards")
        self.paths = paths
        self._blocks: list[np.ndarray] = []
        for path in paths:
            reader = pa.ipc.open_file(pa.memory_map(path, "r"))
            for i in range(reader.num_record_batches):
                column = reader.get_batch(i).column(0)
                width = column.type.list_size
                values = column.values.slice(column.offset * width, len(column) * width)
                # Zero-copy view over the mapped file: [rows, seq_len + 1].
                self._blocks.append(values.to_numpy(zero_copy_only=True).reshape(-1, width))
        self.row_tokens = self._blocks[0].shape[1]
        self._offsets = np.cumsum([0] + [len(b) for b in self._blocks])
        mixture_path = os.path.join(directory, "mixture.json")
        self.mixture = json.load(open(mixture_path)) if os.path.exists(mixture_path) else None

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        block = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return self._blocks[block][index - self._offsets[block]]

    def iter_from(self, start: int) -> Iterator[np.ndarray]:
        """Sequences from global index `start` on (a resumed run continues here)."""
        if not 0 <= start <= len(self):
            raise IndexError(start)
        block = int(np.searchsorted(self._offsets, start, side="right")) - 1
        within = start - int(self._offsets[block])
        for rows in self._blocks[block:]:
            yield from rows[within:]
            within = 0
