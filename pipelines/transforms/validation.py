"""The mix's validation split: each source's documents, split by a hash of their id (with the
mixture's seed) into those held out and those that train, and the held-out ones packed into
shards of their own, the way the training shards are.

Nothing needs a global sort or holds a source's ids together: a document is held out when
its hash is below the source's fraction; one combine finds the smallest and largest hash of
the source (a fixed-size accumulator), so that a source of two documents or more always holds
at least one out and never all of them (`pipelines.mixture.is_held_out`).

  HoldOut          (key, id, tokens) -> {"training": ..., "validation": ...}, the held-out
                   documents and tokens counted per source
  WriteValidation  held-out documents -> their ids as text files, and rows of seq_len + 1 tokens in
                   shards (PackRows and WriteShards of the training shards)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.document import unit_hash
from pipelines.mixture import HashExtremes, doc_cost, is_held_out
from pipelines.shards import VALIDATION_IDS
from pipelines.transforms.mixing import Instance, Packing, PackRows, ShardLayout, WriteShards

Document = tuple[int, str, int]  # (doc key, id, tokens), as mixing.token_counts gives them


@dataclass(frozen=True)
class HoldOutConfig:
    source: str
    fraction: float  # of the source's documents, by hash (pipelines.mixture.held_out_fraction)
    seed: int
    namespace: str  # where held_out_documents/<source> and held_out_tokens/<source> are counted


class HashExtremesFn(beam.CombineFn):
    """(hash, id) pairs -> `HashExtremes`: how many, the smallest and the largest."""

    def create_accumulator(self) -> tuple[int, Any, Any]:
        return 0, None, None

    def add_input(self, acc: tuple[int, Any, Any], element: tuple[float, str]) -> tuple:
        count, smallest, largest = acc
        element = tuple(element)
        return (
            count + 1,
            element if smallest is None else min(smallest, element),
            element if largest is None else max(largest, element),
        )

    def merge_accumulators(self, accumulators: Iterable[tuple[int, Any, Any]]) -> tuple:
        count, smallest, largest = 0, None, None
        for n, low, high in accumulators:
            count += n
            if low is not None:
                smallest = low if smallest is None else min(smallest, low)
                largest = high if largest is None else max(largest, high)
        return count, smallest, largest

    def extract_output(self, acc: tuple[int, Any, Any]) -> HashExtremes:
        return HashExtremes(*acc)


def _split(
    hashed: tuple[float, Document], config: HoldOutConfig, extremes: HashExtremes
) -> Iterator[Any]:
    u, doc = hashed
    if is_held_out(u, doc[1], config.fraction, extremes):
        counter = beam.metrics.Metrics.counter
        counter(config.namespace, f"held_out_documents/{config.source}").inc()
        counter(config.namespace, f"held_out_tokens/{config.source}").inc(doc_cost(doc[2]))
        yield beam.pvalue.TaggedOutput("validation", doc)
    else:
        yield doc


class HoldOut(beam.PTransform):
    """(key, id, tokens) documents of one source -> {"training": ..., "validation": ...}:
    documents whose hash is below the fraction are held out (see the module docstring)."""

    def __init__(self, config: HoldOutConfig):
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self.config
        hashed = docs | "Hash" >> beam.Map(
            lambda d: (unit_hash(config.seed, "validation", config.source, d[1]), d)
        )
        extremes = beam.pvalue.AsSingleton(
            hashed
            | "HashAndId" >> beam.Map(lambda h: (h[0], h[1][1]))
            | "Extremes" >> beam.CombineGlobally(HashExtremesFn())
        )
        split = hashed | "Split" >> beam.FlatMap(_split, config, extremes).with_outputs(
            "validation", main="training"
        )
        return {"training": split["training"], "validation": split["validation"]}


class WriteIds(beam.DoFn):
    """One group of held-out ids -> `ids-<group>.txt` in `directory`, sorted, one a line."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, group: tuple[int, Iterable[str]]) -> Iterator[int]:
        index, ids = group
        ids = sorted(ids)
        name = f"{VALIDATION_IDS}-{index:05d}.txt"
        with FileSystems.create(FileSystems.join(self.directory, name)) as fh:
            fh.write("".join(f"{doc_id}\n" for doc_id in ids).encode())
        yield len(ids)


class WriteValidation(beam.PTransform):
    """{"documents": one source's held-out (key, id, tokens) documents, "file": every (file
    number, None) of the token files} -> their ids (`ids-*.txt`, one file per packing group)
    and their shards in `layout.directory`: each document once, packed as the training
    shards are. Outputs the rows of each shard written."""

    def __init__(self, paths: list[str], layout: ShardLayout, packing: Packing):
        super().__init__()
        self.paths, self.layout, self.packing = paths, layout, packing

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        docs, (source,), seed = inputs["documents"], self.packing.sources, self.packing.seed
        groups = self.packing.groups
        _ = (
            docs
            | "GroupIds" >> beam.Map(lambda d: (int(unit_hash(seed, "ids", d[1]) * groups), d[1]))
            | "IdGroups" >> beam.GroupByKey()
            | "WriteIds" >> beam.ParDo(WriteIds(self.layout.directory))
        )
        packed = (
            docs
            | "Instances" >> beam.Map(lambda d: Instance(source, 0, 0, d[1], d[0], d[2], True))
            | "Pack" >> PackRows(self.packing)
        )
        return {"file": inputs["file"], **packed} | "Shards" >> WriteShards(
            self.paths, self.layout, self.packing
        )
