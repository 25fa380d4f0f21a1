"""Packed training shards: the schema the mix stage writes, its versions, and a reader for the
trainer that checks what it reads.

Each run of `mix` commits a new version, `<mix dir>/<version>/` (shards and mixture.json),
and names it in the stage's manifest, written last; earlier versions stay until newer ones
push them out, so a training run keeps reading, and resumes on, the version it started on.
When the recipe holds documents out (`mixture.validation`), each source's held-out documents
are shards of their own in `<version>/validation/<source>/`, listed in the version's
mixture.json under `validation`, with their ids in `ids-*.txt`.

This module imports nothing heavier than pyarrow and numpy, so a training job can read
shards without the data pipeline's dependencies.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import posixpath
import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from pipelines.errors import UserError

SHARD_GLOB = "shard-*.arrow"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2  # LLaMA's special ids: every document is BOS ... EOS
MIXTURE_JSON = "mixture.json"
MANIFEST = "_MANIFEST.json"
VALIDATION = "validation"  # <version>/validation/<source>/: the source's held-out documents
VALIDATION_IDS = "ids"  # ...their ids, one a line, in ids-*.txt beside their shards


class ShardError(UserError):
    """A shard does not match mixture.json, or holds a token id past the vocabulary."""


def shard_schema(seq_len: int, vocab_size: int) -> pa.Schema:
    """One row per training sequence: seq_len + 1 token ids (inputs and shifted targets)."""
    value_type = pa.uint16() if vocab_size <= 1 << 16 else pa.uint32()
    return pa.schema([pa.field("tokens", pa.list_(value_type, seq_len + 1), nullable=False)])


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


def ids_name(index: int) -> str:
    """The ids of the held-out documents of one packing group, one a line."""
    return f"{VALIDATION_IDS}-{index:05d}.txt"


def shard_bytes(rows: np.ndarray, seq_len: int, vocab_size: int) -> bytes:
    """One shard file: `rows` [n, seq_len + 1] token ids as an Arrow IPC file in
    `shard_schema`, in batches of 1024 rows (what `ShardReader` reads back)."""
    schema = shard_schema(seq_len, vocab_size)
    value_type = schema.field("tokens").type.value_type
    numpy_type = np.uint16 if value_type == pa.uint16() else np.uint32
    flat = pa.array(rows.reshape(-1).astype(numpy_type), type=value_type)
    column = pa.FixedSizeListArray.from_arrays(flat, seq_len + 1)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(pa.table({"tokens": column}, schema=schema), max_chunksize=1024)
    return sink.getvalue().to_pybytes()


def committed_version(mix_dir: str) -> str | None:
    """The version the mix stage's manifest names; while mix reruns (no manifest), the newest
    committed version; None when there is none."""
    try:
        with open(os.path.join(mix_dir, MANIFEST)) as fh:
            return json.load(fh)["version"]
    except (OSError, ValueError, KeyError):
        found = versions(mix_dir)
        return found[-1] if found else None


def versions(mix_dir: str) -> list[str]:
    """Committed versions in `mix_dir`, oldest first (a version is committed when its
    mixture.json, written after every shard, exists)."""
    found = glob.glob(os.path.join(mix_dir, "*", MIXTURE_JSON))
    return sorted(os.path.basename(os.path.dirname(path)) for path in found)


def shards_dir(mix_dir: str, version: str | None = None) -> tuple[str, str | None]:
    """(folder of the shards, version) for a mix stage folder: `version` when given, else the
    committed one. A folder that holds shards itself is read as it is (version None)."""
    if version is None and glob.glob(os.path.join(mix_dir, SHARD_GLOB)):
        return mix_dir, None
    chosen = version or committed_version(mix_dir)
    if chosen is None:
        raise ShardError(f"{mix_dir}: no committed mix (build the recipe first)")
    directory = os.path.join(mix_dir, chosen)
    if not os.path.exists(os.path.join(directory, MIXTURE_JSON)):
        raise ShardError(
            f"{mix_dir}: mix version {chosen} is not there any more (versions: "
            f"{', '.join(versions(mix_dir)) or 'none'}; mixture.keep_versions keeps the newest)"
        )
    return directory, chosen


def validation_path(version_dir: str, source: str) -> str:
    """The folder of a source's validation shards in a mix version (a path or a URI)."""
    return posixpath.join(version_dir, VALIDATION, source)


def validation_readers(
    version_dir: str, vocab_size: int | None = None, verify: bool = True
) -> dict[str, ShardReader]:
    """A reader of each source's validation shards in a mix version, by source; sources that
    hold out less than a row are left out, and a version without validation gives none."""
    path = os.path.join(version_dir, MIXTURE_JSON)
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        held_out = json.load(fh).get(VALIDATION) or {}
    return {
        source: ShardReader(
            validation_path(version_dir, source), vocab_size, verify, shards=record["shards"]
        )
        for source, record in sorted(held_out.items())
        if record["shards"]
    }


class ShardReader:
    """Memory-maps every shard of a mix version; sequence i in O(1), iteration from anywhere.

    Each shard is checked when the reader opens it: present, of the size mixture.json
    records, with a readable Arrow footer and the recorded number of rows. With `verify`, a
    background thread also hashes each shard (sha256 against mixture.json) and checks its
    token ids against `vocab_size`, and the first read of a shard waits for its check. Any
    mismatch is a ShardError naming the shard and what differs. `shards` gives the shards'
    records where the folder has no mixture.json of its own (validation shards are listed in
    their version's).
    """

    def __init__(
        self,
        directory: str,
        vocab_size: int | None = None,
        verify: bool = True,
        shards: list[dict] | None = None,
    ):
        self.directory = directory
        mixture_path = os.path.join(directory, MIXTURE_JSON)
        self.mixture = None
        if shards is None and os.path.exists(mixture_path):
            with open(mixture_path) as fh:
                self.mixture = json.load(fh)
            shards = self.mixture["shards"]
        if shards is not None:
            recorded = {s["file"]: s for s in shards}
            paths = [os.path.join(directory, name) for name in sorted(recorded)]
        else:  # shards without a manifest (written by hand): nothing to check them against
            recorded = {}
            paths = sorted(glob.glob(os.path.join(directory, SHARD_GLOB)))
        if not paths:
            raise ShardError(f"{directory}: no {SHARD_GLOB} shards")
        self.paths = paths
        self.vocab_size = vocab_size
        self._blocks: list[np.ndarray] = []
        self._block_shard: list[int] = []
        self._shard_blocks: list[list[int]] = []
        for index, path in enumerate(paths):
            self._shard_blocks.append([])
            for block in self._open(path, recorded.get(os.path.basename(path))):
                self._shard_blocks[index].append(len(self._blocks))
                self._blocks.append(block)
                self._block_shard.append(index)
        self.row_tokens = self._blocks[0].shape[1]
        self._offsets = np.cumsum([0] + [len(b) for b in self._blocks])
        self._checked = [threading.Event() for _ in paths]
        self._problems: list[str | None] = [None] * len(paths)
        if verify and (recorded or vocab_size):
            threading.Thread(
                target=self._check_all, args=(recorded,), name="shard-check", daemon=True
            ).start()
        else:
            for event in self._checked:
                event.set()

    def _open(self, path: str, record: dict | None) -> list[np.ndarray]:
        """Zero-copy [rows, row_tokens] views of one shard's record batches, after the
        checks that cost nothing: size, footer, row count."""
        name = os.path.basename(path)
        if not os.path.exists(path):
            raise ShardError(f"{name}: missing from {self.directory} (listed in mixture.json)")
        size = os.path.getsize(path)
        if record is not None and "bytes" in record and size != record["bytes"]:
            raise ShardError(f"{name}: {size} bytes, mixture.json records {record['bytes']}")
        try:
            reader = pa.ipc.open_file(pa.memory_map(path, "r"))
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        except (pa.ArrowException, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShardError(f"{name}: not a readable Arrow IPC file ({reason})") from None
        blocks = []
        for batch in batches:
            column = batch.column(0)
            if not pa.types.is_fixed_size_list(column.type):
                raise ShardError(f"{name}: column {column.type}, not fixed-size token rows")
            width = column.type.list_size
            values = column.values.slice(column.offset * width, len(column) * width)
            blocks.append(values.to_numpy(zero_copy_only=True).reshape(-1, width))
        rows = sum(len(b) for b in blocks)
        if record is not None and rows != record["rows"]:
            raise ShardError(f"{name}: {rows} rows, mixture.json records {record['rows']}")
        return blocks

    def _check_all(self, recorded: dict[str, dict]) -> None:
        for index, path in enumerate(self.paths):
            name = os.path.basename(path)
            try:
                expected = recorded.get(name, {}).get("sha256")
                if expected:
                    digest = hashlib.sha256()
                    with open(path, "rb") as fh:
                        while chunk := fh.read(1 << 22):
                            digest.update(chunk)
                    if digest.hexdigest() != expected:
                        self._problems[index] = (
                            f"{name}: sha256 {digest.hexdigest()[:16]}..., mixture.json "
                            f"records {expected[:16]}... (the file changed after mix wrote it)"
                        )
                        continue
                if self.vocab_size:
                    self._problems[index] = self._token_problem(index)
            except OSError as exc:
                self._problems[index] = f"{name}: cannot be read ({exc})"
            finally:
                self._checked[index].set()

    def _token_problem(self, index: int) -> str | None:
        first_row = 0
        for block in (self._blocks[b] for b in self._shard_blocks[index]):
            high = int(block.max()) if block.size else 0
            if high >= self.vocab_size:
                row = first_row + int(np.argmax((block >= self.vocab_size).any(axis=1)))
                name = os.path.basename(self.paths[index])
                return (
                    f"{name}: token id {high} in row {row} is past the vocabulary "
                    f"({self.vocab_size} ids)"
                )
            first_row += len(block)
        return None

    def _ready(self, block: int) -> None:
        shard = self._block_shard[block]
        self._checked[shard].wait()
        if self._problems[shard]:
            raise ShardError(self._problems[shard])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        block = int(np.searchsorted(self._offsets, index, side="right")) - 1
        self._ready(block)
        return self._blocks[block][index - self._offsets[block]]

    def iter_from(self, start: int) -> Iterator[np.ndarray]:
        """Sequences from global index `start` on (a resumed run continues here)."""
        if not 0 <= start <= len(self):
            raise IndexError(start)
        block = int(np.searchsorted(self._offsets, start, side="right")) - 1
        within = start - int(self._offsets[block])
        for index, rows in enumerate(self._blocks[block:], start=block):
            self._ready(index)
            yield from rows[within:]
            within = 0

    def verify_all(self) -> None:
        """Wait for every shard's check; raise the first problem."""
        for block in range(len(self._blocks)):
            self._ready(block)
