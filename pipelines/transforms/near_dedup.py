"""MinHash-LSH near dedup as transforms: candidate pairs from LSH buckets, verified by their
Jaccard similarity, then every document with verified neighbours decided kept or removed in
distributed rounds (see dedup/cluster.py for the rule each node applies)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np

from dedup.cluster import KEPT, REMOVED, UNDECIDED, Node, resolve_locally
from dedup.minhash import choose_banding, estimated_jaccard, exact_jaccard, shingle_hashes
from dedup.minhash import signature as minhash_signature
from pipelines.transforms.dedup import KeepOrder


@dataclass(frozen=True)
class NearDedupConfig:
    threshold: float  # Jaccard similarity of word n-gram shingles
    ngram: int
    num_perm: int
    seed: int
    verify: str  # "exact" (on the shingles) or "estimated" (on the signatures)
    max_miss: float  # the banding misses a pair at the threshold at most this often
    bucket_all_pairs: int  # larger buckets pair each member with their top members only
    order: KeepOrder
    namespace: str  # where candidate_pairs and verified_pairs are counted


class SignatureFn(beam.DoFn):
    """doc -> ("payload", (id, shingles or signature bytes)) and its (band, rows) keys."""

    def __init__(self, config: NearDedupConfig):
        self.config = config

    def setup(self) -> None:
        c = self.config
        self.banding = choose_banding(c.threshold, c.num_perm, c.max_miss)

    def process(self, doc: dict[str, Any]) -> Iterator[Any]:
        c = self.config
        shingles = shingle_hashes(doc["text"] or "", c.ngram)
        if shingles.size == 0:
            return
        sig = minhash_signature(shingles, c.num_perm, c.seed)
        priority = c.order.priority(doc)
        payload = shingles if c.verify == "exact" else sig
        yield beam.pvalue.TaggedOutput("payload", (doc["id"], payload.tobytes()))
        for band, rows in self.banding.keys(sig):
            yield (band, rows), (priority, doc["id"])


def _bucket_pairs(item, all_pairs: int) -> Iterator[tuple[str, str, tuple, tuple]]:
    """Candidate pairs of a bucket, higher priority first in each pair."""
    _, members = item
    members = sorted(set(members))
    if len(members) < 2:
        return
    anchors = members if len(members) <= all_pairs else members[:all_pairs]
    for i, (pa, a) in enumerate(anchors):
        for pb, b in members[i + 1 :]:
            yield a, b, pa, pb


def _attach_first(item) -> Iterator[Any]:
    _, joined = item
    payloads = list(joined["payload"])
    if not payloads:
        return
    for a, b, pa, pb in joined["pairs"]:
        yield b, (a, pa, pb, payloads[0])


class VerifyFn(beam.DoFn):
    """Confirms each candidate pair by its Jaccard similarity; emits verified edges."""

    def __init__(self, config: NearDedupConfig):
        self.config = config

    def process(self, item) -> Iterator[Any]:
        doc_id, joined = item
        payloads = list(joined["payload"])
        if not payloads:
            return
        exact = self.config.verify == "exact"
        dtype = np.uint64 if exact else np.uint32
        mine = np.frombuffer(payloads[0], dtype=dtype)
        measure = exact_jaccard if exact else estimated_jaccard
        checked = confirmed = 0
        for a, pa, pb, other in joined["half"]:
            checked += 1
            similarity = measure(np.frombuffer(other, dtype=dtype), mine)
            if similarity >= self.config.threshold:
                confirmed += 1
                yield a, (doc_id, pb, similarity)
                yield doc_id, (a, pa, similarity)
        beam.metrics.Metrics.counter(self.config.namespace, "candidate_pairs").inc(checked)
        beam.metrics.Metrics.counter(self.config.namespace, "verified_pairs").inc(confirmed)


def _node_of(item) -> Iterator[tuple[str, Node]]:
    doc_id, joined = item
    links = list(joined["links"])
    if not links:
        return
    (priority,) = joined["priority"]
    neighbours = {}
    for other, other_priority, similarity in links:
        neighbours[other] = (other_priority, similarity)
    yield doc_id, Node(doc_id, priority, neighbours)


class NearDuplicates(beam.PTransform):
    """Documents -> (id, Node): the documents that have verified near-duplicates, undecided,
    each with its neighbours' priorities and similarities."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        config = self.config
        signed = docs | "Sign" >> beam.ParDo(SignatureFn(config)).with_outputs(
            "payload", main="bands"
        )
        pairs = (
            signed["bands"]
            | "Buckets" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(_bucket_pairs, config.bucket_all_pairs)
            | "DistinctPairs" >> beam.Distinct()
        )
        half = (
            {
                "pairs": pairs | "ByFirst" >> beam.Map(lambda p: (p[0], p)),
                "payload": signed["payload"],
            }
            | "JoinFirst" >> beam.CoGroupByKey()
            | "AttachFirst" >> beam.FlatMap(_attach_first)
        )
        edges = (
            {"half": half, "payload": signed["payload"]}
            | "JoinSecond" >> beam.CoGroupByKey()
            | "Verify" >> beam.ParDo(VerifyFn(config))
        )
        priorities = docs | "Priority" >> beam.Map(lambda d: (d["id"], config.order.priority(d)))
        return (
            {"links": edges, "priority": priorities}
            | "Neighbourhoods" >> beam.CoGroupByKey()
            | "Nodes" >> beam.FlatMap(_node_of)
        )


class StepFn(beam.DoFn):
    """One keep/remove round: a node learns its neighbours' news and decides if it can."""

    def process(self, item) -> Iterator[Any]:
        doc_id, joined = item
        (node,) = joined["node"]
        if node.step(joined["news"]):
            for neighbour in node.neighbours:
                yield beam.pvalue.TaggedOutput("news", (neighbour, (node.id, node.status)))
        yield doc_id, node


def _deliver(item) -> Node:
    """The last round's news, taken in without deciding: a decision now would reach nobody."""
    _, joined = item
    (node,) = joined["node"]
    node.absorb(joined["news"])
    return node


def _finish(nodes: Iterable[Node]) -> Iterator[Node]:
    nodes = list(nodes)
    resolve_locally(nodes)
    yield from nodes


class KeepOrRemove(beam.PTransform):
    """(id, Node) -> every Node kept or removed: `rounds` rounds of local decisions, then the
    few left finished in priority order. Nodes of different groups never link, so the nodes of
    every group of a pipeline can go through the same rounds."""

    def __init__(self, rounds: int):
        super().__init__()
        self.rounds = rounds

    def expand(self, nodes: beam.PCollection) -> beam.PCollection:
        news = nodes | "NoNews" >> beam.FlatMap(lambda _: [])
        for r in range(self.rounds):
            stepped = (
                {"node": nodes, "news": news}
                | f"Round{r}" >> beam.CoGroupByKey()
                | f"Step{r}" >> beam.ParDo(StepFn()).with_outputs("news", main="nodes")
            )
            nodes, news = stepped["nodes"], stepped["news"]
        return (
            {"node": nodes, "news": news}
            | "LastNews" >> beam.CoGroupByKey()
            | "Deliver" >> beam.Map(_deliver)
            # Nodes still undecided (long chains of alternating priority) finish in order; a
            # single key, but only they and their links travel there.
            | "KeyUndecided" >> beam.Map(lambda n: (("open" if n.status == UNDECIDED else n.id), n))
            | "GroupUndecided" >> beam.GroupByKey()
            | "Finish" >> beam.FlatMap(lambda item: _finish(item[1]))
        )


def decision(node: Node) -> Iterator[tuple[str, Any]]:
    """(id, (kept id, similarity)) for a removed node, (id, None) for a kept one."""
    if node.status == REMOVED:
        yield node.id, node.kept_by
    elif node.status == KEPT:
        yield node.id, None


def cluster_member(node: Node) -> Iterator[str]:
    """The id of the cluster (its survivor) a decided node belongs to."""
    if node.status == KEPT:
        yield node.id
    elif node.status == REMOVED and node.kept_by:
        yield node.kept_by[0]


class ClusterSizes(beam.PTransform):
    """Decided nodes -> one JSON object: how many near-duplicate clusters (kept + removed)
    there are of each size."""

    def expand(self, nodes: beam.PCollection) -> beam.PCollection:
        return (
            nodes
            | "ClusterOf" >> beam.FlatMap(cluster_member)
            | "ClusterSizes" >> beam.combiners.Count.PerElement()
            | "SizeOnly" >> beam.Map(lambda kv: kv[1])
            | "Histogram" >> beam.combiners.Count.PerElement()
            | "AllSizes" >> beam.combiners.ToList()
            | "HistogramJson"
            >> beam.Map(lambda pairs: json.dumps({str(k): v for k, v in sorted(pairs)}))
        )
