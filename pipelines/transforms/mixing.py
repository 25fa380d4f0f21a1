"""The mix stage's transforms: each source's documents as instances of the mixture (whole
epochs, then a partial one cut by a token-mass histogram over a per-document hash), instances
packed into rows, rows cut into shards and written.

Everything that grows with the corpus stays distributed: the histogram is a fixed-size combine,
only the documents of the one boundary bucket meet on one key, packing happens per group.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipelines.document import unit_hash
from pipelines.mixture import (
    HISTOGRAM_BINS,
    SourcePlan,
    boundary,
    bucket_of,
    cut_rows,
    doc_cost,
    shard_pieces,
    stream_of,
    take_prefix,
)
from pipelines.shards import shard_bytes, shard_name


class Instance(NamedTuple):
    """One appearance of a document in the mixture (a document is in it once per epoch)."""

    source: str
    source_index: int
    epoch: int
    doc_id: str
    tokens: np.ndarray
    complete: bool  # False for the one document cut to end a partial epoch exactly


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
    plan: SourcePlan
    source_index: int
    seed: int


class SourceInstances(beam.PTransform):
    """(id, tokens) documents of one source -> its `Instance`s: every document once per whole
    epoch (each epoch ordered by hashes that include its number), then the documents of the
    partial epoch in hash order until its token budget, the last one cut to fit exactly."""

    def __init__(self, config: SourceSampling):
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        plan, index, seed = self.config.plan, self.config.source_index, self.config.seed
        name = plan.source
        branches = []
        if plan.full_epochs:
            branches.append(
                docs
                | "WholeEpochs"
                >> beam.FlatMap(
                    lambda d, n=plan.full_epochs: (
                        Instance(name, index, epoch, d[0], d[1], True) for epoch in range(n)
                    )
                )
            )
        if plan.remainder_tokens:
            epoch, remainder = plan.full_epochs, plan.remainder_tokens
            hashed = docs | "HashPartial" >> beam.Map(
                lambda d: (unit_hash(seed, "select", name, epoch, d[0]), d[0], d[1])
            )
            histogram = beam.pvalue.AsSingleton(
                hashed
                | "Mass" >> beam.Map(lambda h: (bucket_of(h[0]), doc_cost(len(h[2]))))
                | "Histogram" >> beam.CombineGlobally(TokenHistogram())
            )
            selected = hashed | "Select" >> beam.FlatMap(
                _select_partial, remainder=remainder, histogram=histogram
            ).with_outputs("boundary", main="inside")
            cut = (
                selected["boundary"]
                | "KeyBoundary" >> beam.Map(lambda h: (0, h))
                | "GroupBoundary" >> beam.GroupByKey()
                | "CutBoundary"
                >> beam.FlatMap(_cut_boundary, remainder=remainder, histogram=histogram)
            )
            branches.append(
                (selected["inside"], cut)
                | "MergePartial" >> beam.Flatten()
                | "TagPartial" >> beam.Map(lambda x: Instance(name, index, epoch, *x))
            )
        if not branches:
            return docs.pipeline | "NoInstances" >> beam.Create([])
        return tuple(branches) | "Instances" >> beam.Flatten()


def _select_partial(
    hashed: tuple[float, str, np.ndarray], remainder: int, histogram: np.ndarray
) -> Iterator[Any]:
    bucket, _ = boundary(histogram, remainder)
    u, doc_id, tokens = hashed
    mine = bucket_of(u)
    if mine < bucket:
        yield doc_id, tokens, True
    elif mine == bucket:
        yield beam.pvalue.TaggedOutput("boundary", hashed)


def _cut_boundary(
    group: tuple[int, Iterable[tuple]], remainder: int, histogram: np.ndarray
) -> Iterator[tuple[str, np.ndarray, bool]]:
    _, budget = boundary(histogram, remainder)
    yield from take_prefix(list(group[1]), budget)


@dataclass(frozen=True)
class Packing:
    sources: list[str]  # source names by index
    seq_len: int
    groups: int  # packing groups (about one shard's worth of tokens each)
    seed: int
    namespace: str  # where tokens/<source> and documents/<source> are counted


class PackGroup(beam.DoFn):
    """Packs one group of instances into rows; what does not fill a row goes to the tail,
    where the tails of all groups are packed together (so at most one row's worth of tokens
    is lost in the whole mixture, not one per group)."""

    TAIL = "tail"

    def __init__(self, config: Packing):
        self.config = config

    def count(self, tokens: np.ndarray, docs: np.ndarray | None = None) -> None:
        for i, source in enumerate(self.config.sources):
            if tokens[i]:
                beam.metrics.Metrics.counter(self.config.namespace, f"tokens/{source}").inc(
                    int(tokens[i])
                )
            if docs is not None and docs[i]:
                beam.metrics.Metrics.counter(self.config.namespace, f"documents/{source}").inc(
                    int(docs[i])
                )

    def process(self, group: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        index, instances = group
        n_sources = len(self.config.sources)
        stream, owner, docs = stream_of(list(instances), n_sources)
        rows, tokens, tail = cut_rows(stream, owner, self.config.seq_len + 1, n_sources)
        self.count(tokens, docs)
        yield index, rows
        if len(tail[0]):
            yield beam.pvalue.TaggedOutput(self.TAIL, (0, (index, tail)))


class PackTails(PackGroup):
    """The groups' tails, in group order, packed into the rows of one more group."""

    def process(self, group: tuple[int, Iterable[tuple]]) -> Iterator[Any]:
        tails = sorted(group[1], key=lambda t: t[0])
        stream = np.concatenate([t[1][0] for t in tails])
        owner = np.concatenate([t[1][1] for t in tails])
        # What is left over here, less than one row, is all the mixture loses.
        n_sources = len(self.config.sources)
        rows, tokens, _ = cut_rows(stream, owner, self.config.seq_len + 1, n_sources)
        self.count(tokens)
        yield self.config.groups, rows


class PackRows(beam.PTransform):
    """`Instance`s -> (group index, rows [n, seq_len + 1]): each instance falls in a group by
    its hash, each group is one stream in hash order with BOS/EOS, cut into rows."""

    def __init__(self, config: Packing):
        super().__init__()
        self.config = config

    def expand(self, instances: beam.PCollection) -> beam.PCollection:
        seed, groups = self.config.seed, self.config.groups
        packed = (
            instances
            | "AssignGroup"
            >> beam.Map(
                lambda x: (
                    int(unit_hash(seed, "group", x.source, x.epoch, x.doc_id) * groups),
                    (
                        unit_hash(seed, "order", x.source, x.epoch, x.doc_id),
                        x.source_index,
                        x.doc_id,
                        x.tokens,
                        x.complete,
                    ),
                )
            )
            | "GroupPacks" >> beam.GroupByKey()
            | "Pack" >> beam.ParDo(PackGroup(self.config)).with_outputs(PackGroup.TAIL, main="rows")
        )
        tails = (
            packed[PackGroup.TAIL]
            | "GroupTails" >> beam.GroupByKey()
            | "PackTails" >> beam.ParDo(PackTails(self.config))
        )
        return (packed["rows"], tails) | "AllRows" >> beam.Flatten()


@dataclass(frozen=True)
class ShardLayout:
    directory: str  # the mix version's folder
    seq_len: int
    vocab_size: int
    rows_per_shard: int


class WriteShard(beam.DoFn):
    """Writes one shard: its rows in global order, exactly `rows_per_shard` (the last one may
    hold fewer)."""

    def __init__(self, layout: ShardLayout):
        self.layout = layout

    def process(self, shard: tuple[int, Iterable[tuple[int, np.ndarray]]]) -> Iterator[int]:
        index, pieces = shard
        rows = np.concatenate([r for _, r in sorted(pieces, key=lambda p: p[0])])
        data = shard_bytes(rows, self.layout.seq_len, self.layout.vocab_size)
        with FileSystems.create(FileSystems.join(self.layout.directory, shard_name(index))) as fh:
            fh.write(data)
        yield len(rows)


class WriteShards(beam.PTransform):
    """(group index, rows) -> shard files: groups in index order make the global row order,
    cut where shard boundaries fall. Outputs the rows of each shard written."""

    def __init__(self, layout: ShardLayout):
        super().__init__()
        self.layout = layout

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        counts = packed | "RowCounts" >> beam.Map(lambda p: (p[0], len(p[1])))
        return (
            packed
            | "CutIntoShards"
            >> beam.FlatMap(
                shard_pieces,
                counts=beam.pvalue.AsList(counts),
                rows_per_shard=self.layout.rows_per_shard,
            )
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShard(self.layout))
        )
