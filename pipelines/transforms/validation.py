"""The mix's validation split: each source's documents, split by a hash of their id (with the
mixture's seed) into those held out and those that train, and the held-out ones packed into
shards of their own, the way the training shards are.

Nothing needs a global sort or holds a source's ids together: a document is held out when
its hash is below the source's fraction; one combine (a fixed-size accumulator) finds the
smallest and largest hash of the source, so that a source of two documents or more always
holds at least one out and never all of them (`pipelines.mixture.is_held_out`), and counts
the tokens that are left to train on.

  HoldOut          (key, id, tokens) -> {"training": ..., "validation": ..., "plan": ...},
                   the held-out documents and tokens counted per source
  PackHeldOut      held-out documents -> rows of seq_len + 1 tokens laid out by PackRows
                   (which lists each group's ids), written by WriteShards with the training
                   shards (a `ShardSet` of their own)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from pipelines.document import unit_hash
from pipelines.mixture import HoldOutTally, doc_cost, is_held_out, plan_source
from pipelines.transforms.mixing import Instance, Packing, PackRows

Document = tuple[int, str, int]  # (doc key, id, tokens), as mixing.token_counts gives them


@dataclass(frozen=True)
class HoldOutConfig:
    source: str
    fraction: float  # of the source's documents, by hash (pipelines.mixture.held_out_fraction)
    seed: int
    namespace: str  # where held_out_documents/<source> and held_out_tokens/<source> are counted
    target: int  # the source's tokens in the mixture, taken from what is left to train on


class TallyFn(beam.CombineFn):
    """(hash, (key, id, tokens)) -> the source's `HoldOutTally`: a fixed-size accumulator."""

    def __init__(self, fraction: float):
        self.fraction = fraction

    def create_accumulator(self) -> HoldOutTally:
        return HoldOutTally()

    def add_input(self, tally: HoldOutTally, hashed: tuple[float, Document]) -> HoldOutTally:
        u, (_, doc_id, n) = hashed
        return tally.add(u, doc_id, doc_cost(n), self.fraction)

    def merge_accumulators(self, tallies: Iterable[HoldOutTally]) -> HoldOutTally:
        merged = HoldOutTally()
        for tally in tallies:
            merged = merged.merge(tally)
        return merged

    def extract_output(self, tally: HoldOutTally) -> HoldOutTally:
        return tally


def _split(hashed: tuple[float, Document], config: HoldOutConfig, tally: HoldOutTally) -> Any:
    u, doc = hashed
    if is_held_out(u, doc[1], config.fraction, tally):
        counter = beam.metrics.Metrics.counter
        counter(config.namespace, f"held_out_documents/{config.source}").inc()
        counter(config.namespace, f"held_out_tokens/{config.source}").inc(doc_cost(doc[2]))
        return beam.pvalue.TaggedOutput("validation", doc)
    return doc


class HoldOut(beam.PTransform):
    """(key, id, tokens) documents of one source -> {"training": ..., "validation": ...,
    "plan": the source's one `SourcePlan`}: documents whose hash is below the fraction are
    held out (see the module docstring), and the plan is made from the tokens left."""

    def __init__(self, config: HoldOutConfig):
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self.config
        hashed = docs | "Hash" >> beam.Map(
            lambda d: (unit_hash(config.seed, "validation", config.source, d[1]), d)
        )
        tally = (
            hashed | "Tally" >> beam.CombineGlobally(TallyFn(config.fraction)).without_defaults()
        )
        split = hashed | "Split" >> beam.Map(
            _split, config, beam.pvalue.AsSingleton(tally)
        ).with_outputs("validation", main="training")
        plan = tally | "Plan" >> beam.Map(
            lambda t: plan_source(
                config.source, config.target, t.tokens - t.held_out_tokens(config.fraction)
            )
        )
        return {"training": split["training"], "validation": split["validation"], "plan": plan}


class PackHeldOut(beam.PTransform):
    """One source's held-out (key, id, tokens) documents -> the documents packed as the
    training rows are, each once: PackRows' {"placements", "sizes"}, for a `ShardSet` of
    WriteShards. With the packing's `ids_dir`, each group's ids are written there."""

    def __init__(self, packing: Packing):
        super().__init__()
        self.packing = packing

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        (source,) = self.packing.sources
        return (
            docs
            | "Instances" >> beam.Map(lambda d: Instance(source, 0, 0, d[1], d[0], d[2], True))
            | "Pack" >> PackRows(self.packing)
        )
