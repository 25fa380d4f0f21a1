"""The mix stage's transforms: each source's documents as instances of the mixture (whole
epochs, then a partial one cut by a token-mass histogram over a per-document hash), instances
laid out in rows, rows cut into shards and written.

Only compact records are shuffled until the shards: a document is its place in the tokenize
store (a doc key, as in pipelines/store.py), its id and its token count. Where each instance's
tokens go (group, position in the group's stream, then shard and offset) is computed from those
alone; the token files are then read again, one per element, and each instance's tokens (with
BOS and EOS) travel once, straight to the shard they fill.

  SourceInstances  (key, id, tokens) + the source's plan (a side input: what a validation
                   split leaves is known only in the pipeline) -> whole epochs; the partial
                   epoch by a fixed-size histogram, only the boundary bucket's documents
                   meeting on one key
  PackRows         instances -> GroupByKey by group -> each group's stream laid out in hash
                   order: every instance's start, and the group's rows and tail
  WriteShards      the groups' sizes (one small side input) -> every instance's pieces in the
                   global row order, cut at shard boundaries -> token files read again ->
                   (shard, (offset, tokens)) -> GroupByKey -> one file per shard; other sets
                   of shards (validation) in the same reading of the token files
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipelines.beam_io import read_arrow_ipc
from pipelines.document import unit_hash
from pipelines.mixture import (
    HISTOGRAM_BINS,
    SourcePlan,
    boundary,
    bucket_of,
    doc_cost,
    row_offsets,
    take_prefix,
)
from pipelines.shards import BOS_ID, EOS_ID, ids_name, shard_bytes, shard_name
from pipelines.store import doc_key, file_of, row_of


class Instance(NamedTuple):
    """One appearance of a document in the mixture (a document is in it once per epoch)."""

    source: str
    source_index: int
    epoch: int
    doc_id: str
    key: int  # the document's place in the tokenize store
    length: int  # its tokens in the mixture: all, or the first ones of a cut document
    complete: bool  # False for the one document cut to end a partial epoch exactly


def token_counts(path: str, file_no: int) -> Iterator[tuple[int, str, int]]:
    """(doc key, id, tokens) of every document of one tokenize file (its tokens unread)."""
    row = 0
    for table in read_arrow_ipc(path, ["id", "num_tokens"]):
        ids, counts = table.column("id").to_pylist(), table.column("num_tokens").to_pylist()
        for doc_id, n in zip(ids, counts, strict=True):
            yield doc_key(file_no, row), doc_id, n
            row += 1


class TokenHistogram(beam.CombineFn):
    """Token mass per hash bucket: a fixed-size accumulator whatever the corpus size."""

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    def add_input(self, acc: np.ndarray, element: tuple[int, int]) -> np.ndarray:
        acc[element[0]] += element[1]
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, acc: np.ndarray) -> np.ndarray:
        return acc


@dataclass(frozen=True)
class SourceSampling:
    source: str
    source_index: int
    seed: int


class SourceInstances(beam.PTransform):
    """(key, id, tokens) documents of one source -> its `Instance`s: every document once per
    whole epoch (each epoch ordered by hashes that include its number), then the documents
    of the partial epoch in hash order until its token budget, the last one cut to fit
    exactly. `plan` holds the source's one `SourcePlan`."""

    def __init__(self, config: SourceSampling, plan: beam.PCollection):
        super().__init__()
        self.config, self.plan = config, plan

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        name, index, seed = self.config.source, self.config.source_index, self.config.seed
        plan = beam.pvalue.AsSingleton(self.plan)
        whole = docs | "WholeEpochs" >> beam.FlatMap(
            lambda d, plan: (
                Instance(name, index, epoch, d[1], d[0], d[2], True)
                for epoch in range(plan.full_epochs)
            ),
            plan,
        )
        hashed = docs | "HashPartial" >> beam.Map(
            lambda d, plan: (unit_hash(seed, "select", name, plan.full_epochs, d[1]), *d), plan
        )
        histogram = beam.pvalue.AsSingleton(
            hashed
            | "Mass" >> beam.Map(lambda h: (bucket_of(h[0]), doc_cost(h[3])))
            | "Histogram" >> beam.CombineGlobally(TokenHistogram())
        )
        selected = hashed | "Select" >> beam.FlatMap(
            _select_partial, plan=plan, histogram=histogram
        ).with_outputs("boundary", main="inside")
        cut = (
            selected["boundary"]
            | "KeyBoundary" >> beam.Map(lambda h: (0, h))
            | "GroupBoundary" >> beam.GroupByKey()
            | "CutBoundary" >> beam.FlatMap(_cut_boundary, plan=plan, histogram=histogram)
        )
        partial = (
            (selected["inside"], cut)
            | "MergePartial" >> beam.Flatten()
            | "TagPartial"
            >> beam.Map(lambda x, plan: Instance(name, index, plan.full_epochs, *x), plan)
        )
        return (whole, partial) | "Instances" >> beam.Flatten()


def _select_partial(
    hashed: tuple[float, int, str, int], plan: SourcePlan, histogram: np.ndarray
) -> Iterator[Any]:
    if not plan.remainder_tokens:  # whole epochs only
        return
    bucket, _ = boundary(histogram, plan.remainder_tokens)
    u, key, doc_id, n = hashed
    mine = bucket_of(u)
    if mine < bucket:
        yield doc_id, key, n, True
    elif mine == bucket:
        yield beam.pvalue.TaggedOutput("boundary", hashed)


def _cut_boundary(
    group: tuple[int, Iterable[tuple]], plan: SourcePlan, histogram: np.ndarray
) -> Iterator[tuple[str, int, int, bool]]:
    _, budget = boundary(histogram, plan.remainder_tokens)
    docs = list(group[1])
    keys = {doc_id: key for _, key, doc_id, _ in docs}
    # take_prefix measures and slices the tokens it is given: a range of the token count
    # stands for them, and what it keeps of the range is how many tokens are taken.
    for doc_id, taken, complete in take_prefix([(u, i, range(n)) for u, _, i, n in docs], budget):
        yield doc_id, keys[doc_id], len(taken), complete


@dataclass(frozen=True)
class Packing:
    sources: list[str]  # source names by index
    seq_len: int
    groups: int  # packing groups (about one shard's worth of tokens each)
    seed: int
    namespace: str  # where tokens/<source> and documents/<source> are counted
    ids_dir: str | None = None  # where each group's document ids go (held-out documents)


def count_tokens(config: Packing, tokens: np.ndarray, docs: np.ndarray | None = None) -> None:
    for i, source in enumerate(config.sources):
        if tokens[i]:
            beam.metrics.Metrics.counter(config.namespace, f"tokens/{source}").inc(int(tokens[i]))
        if docs is not None and docs[i]:
            beam.metrics.Metrics.counter(config.namespace, f"documents/{source}").inc(int(docs[i]))


def _piece_length(length: int, complete: bool) -> int:
    return 1 + length + complete  # BOS, the tokens, EOS unless cut


class LayOutGroup(beam.DoFn):
    """One group's instances, in hash order with BOS/EOS, as one stream cut into rows: each
    instance's (file, (row, length, complete, group, start in the stream)), and under
    "sizes" (group, (rows, the tail's (source index, tokens) runs)) for what does not fill a
    row, which goes with the other groups' tails into the rows of one more group."""

    def __init__(self, config: Packing):
        self.config = config

    def process(self, group: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        index, instances = group
        row_tokens, n_sources = self.config.seq_len + 1, len(self.config.sources)
        tokens = np.zeros(n_sources, dtype=np.int64)
        docs = np.zeros(n_sources, dtype=np.int64)
        laid_out, start, ids = [], 0, []
        for _, source_index, doc_id, key, length, complete in sorted(
            instances, key=lambda x: (x[0], x[2])
        ):
            laid_out.append((source_index, start, _piece_length(length, complete)))
            docs[source_index] += 1
            ids.append(doc_id)
            yield file_of(key), (row_of(key), length, complete, index, start)
            start += _piece_length(length, complete)
        if self.config.ids_dir is not None:  # in the order they are laid out, one a line
            with FileSystems.create(FileSystems.join(self.config.ids_dir, ids_name(index))) as fh:
                fh.write("".join(f"{doc_id}\n" for doc_id in ids).encode())
        used = start // row_tokens * row_tokens
        tail = []
        for source_index, begin, size in laid_out:
            tokens[source_index] += max(0, min(begin + size, used) - begin)
            if begin + size > used:
                tail.append((source_index, begin + size - max(begin, used)))
        count_tokens(self.config, tokens, docs)
        yield beam.pvalue.TaggedOutput("sizes", (index, (start // row_tokens, tail)))


class PackRows(beam.PTransform):
    """`Instance`s -> {"placements": (file, (row, length, complete, group, start)) per
    instance, "sizes": (group, (rows, tail runs)) per group}: each instance falls in a group
    by its hash, each group is one stream in hash order with BOS/EOS, cut into rows."""

    def __init__(self, config: Packing):
        super().__init__()
        self.config = config

    def expand(self, instances: beam.PCollection) -> dict[str, beam.PCollection]:
        seed, groups = self.config.seed, self.config.groups
        out = (
            instances
            | "AssignGroup"
            >> beam.Map(
                lambda x: (
                    int(unit_hash(seed, "group", x.source, x.epoch, x.doc_id) * groups),
                    (
                        unit_hash(seed, "order", x.source, x.epoch, x.doc_id),
                        x.source_index,
                        x.doc_id,
                        x.key,
                        x.length,
                        x.complete,
                    ),
                )
            )
            | "GroupPacks" >> beam.GroupByKey()
            | "LayOut"
            >> beam.ParDo(LayOutGroup(self.config)).with_outputs("sizes", main="placements")
        )
        return {"placements": out["placements"], "sizes": out["sizes"]}


@dataclass(frozen=True)
class ShardLayout:
    directory: str  # the mix version's folder
    seq_len: int
    vocab_size: int
    rows_per_shard: int


@dataclass(frozen=True)
class RowOrder:
    """Where every group's rows stand in the global order: groups in index order, then the
    group made of the tails (index `tail_group`), whose own leftover is dropped."""

    first_row: dict[int, int]  # group -> its first row in the global order
    used: dict[int, int]  # group -> tokens of its stream in its rows
    tail_start: dict[int, int]  # group -> where its tail starts in the tails' stream
    tail_group: int
    tail_used: int  # tokens of the tails' stream in rows


def row_order(sizes: list[tuple[int, tuple[int, list]]], packing: Packing) -> RowOrder:
    """The global row order from every group's sizes; counts the tokens of the tail rows."""
    row_tokens = packing.seq_len + 1
    counts = [(index, rows) for index, (rows, _) in sizes]
    tail_start, tails, runs = {}, 0, []
    for index, (_, tail) in sorted(sizes):
        tail_start[index] = tails
        tails += sum(n for _, n in tail)
        runs += tail
    tail_used = tails // row_tokens * row_tokens
    if runs:  # the tails make one more group, even one of no full row
        counts.append((packing.groups, tail_used // row_tokens))
        tokens, at = np.zeros(len(packing.sources), dtype=np.int64), 0
        for source_index, n in runs:
            tokens[source_index] += max(0, min(at + n, tail_used) - at)
            at += n
        count_tokens(packing, tokens)
    used = {index: rows * row_tokens for index, (rows, _) in sizes}
    return RowOrder(row_offsets(counts), used, tail_start, packing.groups, tail_used)


def placed(
    item: tuple[int, tuple], order: RowOrder, row_tokens: int, rows_per_shard: int
) -> tuple[int, tuple]:
    """An instance's piece in the global token order, cut where shards end: (file, (row,
    length, complete, [(shard, offset in the shard, from, to in the piece)]))."""
    file_no, (row, length, complete, group, start) = item
    size, spans = _piece_length(length, complete), []
    used = order.used[group]
    if start < used:  # in the group's own rows
        end = min(start + size, used)
        spans.append((order.first_row[group] * row_tokens + start, 0, end - start))
    if start + size > used:  # in its tail, while the tails' rows last
        skip = max(used - start, 0)
        at = order.tail_start[group] + max(start - used, 0)
        end = min(at + size - skip, order.tail_used)
        if end > at:
            spans.append(
                (order.first_row[order.tail_group] * row_tokens + at, skip, skip + end - at)
            )
    shard_tokens = rows_per_shard * row_tokens
    segments = []
    for position, begin, end in spans:
        while begin < end:
            shard, offset = divmod(position, shard_tokens)
            take = min(end - begin, shard_tokens - offset)
            segments.append((shard, offset, begin, begin + take))
            position, begin = position + take, begin + take
    return file_no, (row, length, complete, segments)


class RouteTokens(beam.DoFn):
    """A tokenize file with the placements of its documents' instances -> ((set, shard),
    (offset, tokens)) for every piece of them (a file no instance uses is not read)."""

    def __init__(self, paths: list[str], dtype: type):
        self.paths, self.dtype = paths, dtype

    def process(self, item: tuple[int, dict[str, Iterable[tuple]]]) -> Iterator[Any]:
        file_no, joined = item
        by_row: dict[int, list] = {}
        for shard_set, (row, length, complete, segments) in joined["placements"]:
            by_row.setdefault(row, []).append((shard_set, length, complete, segments))
        row = 0
        for table in read_arrow_ipc(self.paths[file_no], ["tokens"]) if by_row else ():
            for tokens in table.column("tokens"):
                for shard_set, length, complete, segments in by_row.get(row, ()):
                    ends = [[BOS_ID], np.asarray(tokens.values)[:length]]
                    piece = np.concatenate([*ends, [EOS_ID]] if complete else ends)
                    for shard, offset, begin, end in segments:
                        yield (shard_set, shard), (offset, piece[begin:end].astype(self.dtype))
                row += 1


class WriteShard(beam.DoFn):
    """Writes one shard of a set from its pieces: rows_per_shard rows (the last shard may
    hold fewer) of seq_len + 1 tokens, every position filled by exactly one piece."""

    def __init__(self, layouts: list[ShardLayout]):
        self.layouts = layouts

    def process(self, shard: tuple[tuple[int, int], Iterable[tuple]]) -> Iterator[int]:
        (shard_set, index), pieces = shard
        layout = self.layouts[shard_set]
        pieces = list(pieces)
        tokens = np.empty(sum(len(p) for _, p in pieces), dtype=pieces[0][1].dtype)
        for offset, piece in pieces:
            tokens[offset : offset + len(piece)] = piece
        rows = tokens.reshape(-1, layout.seq_len + 1)
        data = shard_bytes(rows, layout.seq_len, layout.vocab_size)
        with FileSystems.create(FileSystems.join(layout.directory, shard_name(index))) as fh:
            fh.write(data)
        yield len(rows)


@dataclass(frozen=True)
class ShardSet:
    """Shards of their own written in the same pass over the token files (the validation
    shards of a source), from their own PackRows."""

    layout: ShardLayout
    packing: Packing


class WriteShards(beam.PTransform):
    """{"file": every (file number, None) of the token files, "placements" and "sizes" from
    PackRows} -> shard files: groups in index order make the global row order, cut where
    shard boundaries fall. Each of `more`'s sets, its PackRows outputs under
    "<name>/placements" and "<name>/sizes", is laid out alike in its own folder; every token
    file is read once for all of them. Outputs the rows of each shard written."""

    def __init__(
        self,
        paths: list[str],
        layout: ShardLayout,
        packing: Packing,
        more: dict[str, ShardSet] | None = None,
    ):
        super().__init__()
        self.paths = paths
        self.sets = {"": ShardSet(layout, packing), **(more or {})}

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        placements = []
        for index, (name, shard_set) in enumerate(self.sets.items()):
            layout, prefix = shard_set.layout, f"{name}/" if name else ""
            order = beam.pvalue.AsSingleton(
                inputs[f"{prefix}sizes"]
                | f"{prefix}AllSizes" >> beam.combiners.ToList()
                | f"{prefix}RowOrder" >> beam.Map(row_order, shard_set.packing)
            )
            placements.append(
                inputs[f"{prefix}placements"]
                | f"{prefix}Place"
                >> beam.Map(placed, order, layout.seq_len + 1, layout.rows_per_shard)
                | f"{prefix}TagSet" >> beam.MapTuple(lambda f, p, i=index: (f, (i, p)))
            )
        vocab_size = self.sets[""].layout.vocab_size
        dtype = np.uint16 if vocab_size <= 1 << 16 else np.uint32
        layouts = [shard_set.layout for shard_set in self.sets.values()]
        return (
            {"file": inputs["file"], "placements": placements | "AllPlacements" >> beam.Flatten()}
            | "JoinFiles" >> beam.CoGroupByKey()
            | "Route" >> beam.ParDo(RouteTokens(self.paths, dtype))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShard(layouts))
        )
