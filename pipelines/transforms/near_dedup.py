"""MinHash-LSH near dedup as transforms: candidate pairs from LSH buckets, verified by their
Jaccard similarity, then every document with verified neighbours decided kept or removed in
distributed rounds (see dedup/cluster.py for the rule each node applies).

As in dedup.py, documents travel as doc keys (file, row), never as rows:

  NearDuplicates per file with its cuts, the documents exact dedup keeps: packed (band rows,
                 doc) arrays by (group, band, shard) -> GroupByKey -> buckets of 2+
                 documents -> their members' files read again for their priorities and
                 shingles -> (bucket, (priority, doc)) ->
                 GroupByKey -> candidate pairs -> Distinct -> those the set sizes allow ->
                 two CoGroupByKeys with the shingles -> verified edges -> GroupByKey ->
                 per-document neighbourhoods
  KeepOrRemove   rounds of local decisions, one GroupByKey each, the rest finished in order

Stopping early. A Beam graph is fixed before it runs, so the rounds cannot be cut short by
what they find; instead a node leaves the rounds as soon as nothing can change it any more
(kept, or removed and every neighbour that could name it a better survivor decided), and
each round carries only the nodes still open and the news sent to them. Each round decides
at least the best open node, so once a round decides nothing, no node is open and every
later round is an empty GroupByKey; with no candidate pairs at all, every round is empty from
the start. This is correct on any runner (a node's decision never depends on the round
count), gives the same decisions as running every node through every round, and costs a
distributed runner only the empty stages. Only the nodes still open after `rounds` rounds
(long chains of alternating priority) meet on one key, to be finished in priority order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from dedup.cluster import KEPT, REMOVED, UNDECIDED, Node, resolve_locally
from dedup.minhash import (
    choose_banding,
    estimated_jaccard,
    exact_jaccard,
    shared_rows,
    shingle_hashes,
)
from dedup.minhash import signature as minhash_signature
from pipelines.transforms.dedup import (
    PRIORITY_COLUMNS,
    DedupFiles,
    KeepOrder,
    LineDedupConfig,
    cut_documents,
    file_of,
    row_of,
)


@dataclass(frozen=True)
class NearDedupConfig:
    ngram: int
    num_perm: int
    seed: int
    verify: str  # "exact" (on the shingles) or "estimated" (on the signatures)
    max_miss: float  # the banding misses a pair at the threshold at most this often
    bucket_all_pairs: int  # larger buckets pair each member with their top members only
    order: KeepOrder


_PACKED_DOCS = 4096  # documents whose band rows one record packs


class SignFn(beam.DoFn):
    """A file with its cuts and its exact copies' rows ("skip") -> ((group, band, shard),
    (band rows [n, rows], doc keys [n])) for its other documents that have shingles, packed
    per file instead of one record a band."""

    def __init__(self, files: DedupFiles, lines: LineDedupConfig, config: NearDedupConfig):
        self.files, self.lines, self.config = files, lines, config

    def setup(self) -> None:
        c = self.config
        self.bandings = [
            choose_banding(g.threshold, c.num_perm, c.max_miss) for g in self.files.groups
        ]

    def process(self, item) -> Iterator[Any]:
        c = self.config
        skip = set(item[1]["skip"])
        packs: dict[int, tuple[list[np.ndarray], list[int]]] = {}  # group -> band rows, keys
        signed = 0
        for key, _, doc, _ in cut_documents(self.files, self.lines, item, ("id", "text")):
            shingles = shingle_hashes(doc["text"] or "", c.ngram) if doc else None
            if shingles is None or shingles.size == 0 or row_of(key) in skip:
                continue
            group = self.files.group_index(key)
            bands, keys = packs.setdefault(group, ([], []))
            sig = minhash_signature(shingles, c.num_perm, c.seed)
            bands.append(self.bandings[group].band_rows(sig))
            keys.append(key)
            signed += 1
            if signed % _PACKED_DOCS == 0:
                yield from self._packed(packs)
                packs = {}
        yield from self._packed(packs)

    def _packed(self, packs) -> Iterator[Any]:
        shards = np.uint32(self.files.shards)
        for group, (bands, keys) in packs.items():
            bands, keys = np.stack(bands), np.array(keys, dtype=np.uint64)  # [n, bands, rows]
            for band in range(bands.shape[1]):
                rows = np.ascontiguousarray(bands[:, band, :])
                shard_of = rows[:, 0] % shards
                for shard in np.unique(shard_of).tolist():
                    mine = shard_of == shard
                    yield (group, band, shard), (rows[mine], keys[mine])


def _bucket_members(item) -> Iterator[tuple[int, tuple[int, ...]]]:
    """(doc key, bucket) for the documents of a band's buckets that hold two or more."""
    shuffle_key, packs = item
    packs = list(packs)
    rows = np.concatenate([p[0] for p in packs])
    keys = np.concatenate([p[1] for p in packs])
    members, buckets = shared_rows(rows)
    for member, bucket in zip(members.tolist(), buckets.tolist(), strict=True):
        yield int(keys[member]), (*shuffle_key, bucket)


class CandidateFn(beam.DoFn):
    """A file with its cuts and candidate rows -> (doc key, shingles or signature bytes),
    and (doc key, (priority, shingles in it)) under "priority", for each candidate."""

    def __init__(self, files: DedupFiles, lines: LineDedupConfig, config: NearDedupConfig):
        self.files, self.lines, self.config = files, lines, config

    def process(self, item) -> Iterator[Any]:
        c = self.config
        candidates = set(item[1]["candidates"])
        # A file without candidates is not read.
        documents = (
            cut_documents(self.files, self.lines, item, PRIORITY_COLUMNS) if candidates else ()
        )
        for key, _, doc, _ in documents:
            if row_of(key) not in candidates:
                continue
            shingles = shingle_hashes(doc["text"] or "", c.ngram)
            payload = shingles
            if c.verify != "exact":
                payload = minhash_signature(shingles, c.num_perm, c.seed)
            yield beam.pvalue.TaggedOutput(
                "priority", (key, (c.order.priority(doc), shingles.size))
            )
            yield key, payload.tobytes()


def _bucket_pairs(item, all_pairs: int) -> Iterator[tuple[Any, Any, tuple, tuple, int, int]]:
    """Candidate pairs of a bucket, higher priority first in each pair, with the number of
    shingles of each side."""
    _, members = item
    members = sorted(set(members))
    if len(members) < 2:
        return
    anchors = members if len(members) <= all_pairs else members[:all_pairs]
    for i, (pa, a, sa) in enumerate(anchors):
        for pb, b, sb in members[i + 1 :]:
            yield a, b, pa, pb, sa, sb


def _in_buckets(item) -> Iterator[tuple[tuple[int, ...], tuple[tuple, int, int]]]:
    key, joined = item
    ((priority, size),) = joined["priority"]
    for bucket in joined["bucket"]:
        yield bucket, (priority, key, size)


def _within_reach(pair, files: DedupFiles, verify: str) -> Iterator[tuple]:
    """The pair, unless its sizes alone rule it out: the Jaccard similarity of two sets is
    at most the smaller size over the larger, so a pair below the threshold by that bound
    (with a margin for rounding) is counted as checked and never shipped with its shingles."""
    a, b, pa, pb, sa, sb = pair
    group = files.group_of(a)
    if verify == "exact" and min(sa, sb) < group.threshold * max(sa, sb) * (1 - 1e-9):
        beam.metrics.Metrics.counter(group.namespace, "candidate_pairs").inc()
    else:
        yield a, b, pa, pb


def _attach_first(item) -> Iterator[Any]:
    _, joined = item
    payloads = list(joined["payload"])
    if not payloads:
        return
    for a, b, pa, pb in joined["pairs"]:
        yield b, (a, pa, pb, payloads[0])


class VerifyFn(beam.DoFn):
    """Confirms each candidate pair by its Jaccard similarity; emits verified edges, each end
    (doc key, (neighbour, neighbour's priority, similarity, own priority))."""

    def __init__(self, files: DedupFiles, config: NearDedupConfig):
        self.files, self.config = files, config

    def process(self, item) -> Iterator[Any]:
        key, joined = item
        payloads = list(joined["payload"])  # none: a key with no candidate document
        exact = self.config.verify == "exact"
        dtype = np.uint64 if exact else np.uint32
        measure = exact_jaccard if exact else estimated_jaccard
        group = self.files.group_of(key)
        checked = confirmed = 0
        for a, pa, pb, other in joined["half"] if payloads else ():
            checked += 1
            mine = np.frombuffer(payloads[0], dtype=dtype)
            similarity = measure(np.frombuffer(other, dtype=dtype), mine)
            if similarity >= group.threshold:
                confirmed += 1
                yield a, (key, pb, similarity, pa)
                yield key, (a, pa, similarity, pb)
        beam.metrics.Metrics.counter(group.namespace, "candidate_pairs").inc(checked)
        beam.metrics.Metrics.counter(group.namespace, "verified_pairs").inc(confirmed)


def _node_of(item) -> tuple[int, Node]:
    key, links = item
    links = list(links)
    neighbours = {other: (other_priority, sim) for other, other_priority, sim, _ in links}
    return key, Node(key, links[0][3], neighbours)


class NearDuplicates(beam.PTransform):
    """{"file": every (file number, None), "cuts": the survey's cuts, "skip": (file number,
    row) of exact copies} -> (doc key, Node): the documents that have verified
    near-duplicates, undecided, each with its neighbours' priorities and similarities."""

    def __init__(self, files: DedupFiles, lines: LineDedupConfig, config: NearDedupConfig):
        super().__init__()
        self.files, self.lines, self.config = files, lines, config

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        files, lines, config = self.files, self.lines, self.config
        members = (
            inputs
            | "JoinToSign" >> beam.CoGroupByKey()
            | "Sign" >> beam.ParDo(SignFn(files, lines, config))
            | "Buckets" >> beam.GroupByKey()
            | "SharedBuckets" >> beam.FlatMap(_bucket_members)
        )
        candidates = (
            {
                "file": inputs["file"],
                "cuts": inputs["cuts"],
                "candidates": members
                | "ByFile" >> beam.Map(lambda m: (file_of(m[0]), row_of(m[0]))),
            }
            | "JoinCandidates" >> beam.CoGroupByKey()
            | "ReadCandidates"
            >> beam.ParDo(CandidateFn(files, lines, config)).with_outputs(
                "priority", main="payload"
            )
        )
        pairs = (
            {"bucket": members, "priority": candidates["priority"]}
            | "JoinPriorities" >> beam.CoGroupByKey()
            | "IntoBuckets" >> beam.FlatMap(_in_buckets)
            | "GroupBuckets" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(_bucket_pairs, config.bucket_all_pairs)
            | "DistinctPairs" >> beam.Distinct()
            | "WithinReach" >> beam.FlatMap(_within_reach, files, config.verify)
        )
        half = (
            {
                "pairs": pairs | "ByFirst" >> beam.Map(lambda p: (p[0], p)),
                "payload": candidates["payload"],
            }
            | "JoinFirst" >> beam.CoGroupByKey()
            | "AttachFirst" >> beam.FlatMap(_attach_first)
        )
        return (
            {"half": half, "payload": candidates["payload"]}
            | "JoinSecond" >> beam.CoGroupByKey()
            | "Verify" >> beam.ParDo(VerifyFn(files, config))
            | "Neighbourhoods" >> beam.GroupByKey()
            | "Nodes" >> beam.Map(_node_of)
        )


# -- keep/remove rounds -----------------------------------------------------------------------
_NODE, _NEWS, _DONE, _OPEN = "node", "news", "done", "open"
ROUND_COUNTER = "keep_remove_round"  # + the round's number: nodes still in that round


def _node_and_news(values: Iterable[tuple[str, Any]]) -> tuple[Node | None, list]:
    node, news = None, []
    for tag, value in values:
        if tag == _NODE:
            node = value
        else:
            news.append(value)
    return node, news


def _step(item, round_no: int, namespace_of: Callable[[Any], str] | None) -> Iterator[Any]:
    """One keep/remove round: a node learns its neighbours' news and decides if it can; it
    stays in the rounds (main output) until nothing can change it, then goes to "done"."""
    key, values = item
    node, news = _node_and_news(values)
    if node is None:
        return  # news for a node that has left the rounds: it changes nothing there
    if namespace_of is not None:
        counter = f"{ROUND_COUNTER}{round_no:03d}"
        beam.metrics.Metrics.counter(namespace_of(node.id), counter).inc()
    if node.step(news):
        for neighbour in node.neighbours:
            yield neighbour, (_NEWS, (node.id, node.status))
    if node.settled():
        yield beam.pvalue.TaggedOutput(_DONE, node)
    else:
        yield key, (_NODE, node)


def _deliver(item) -> Iterator[Any]:
    """The last round's news, taken in without deciding: a decision now would reach nobody."""
    node, news = _node_and_news(item[1])
    if node is None:
        return
    node.absorb(news)
    yield beam.pvalue.TaggedOutput(_OPEN, (_OPEN, node)) if node.status == UNDECIDED else node


def _finish(item) -> Iterator[Node]:
    nodes = list(item[1])
    resolve_locally(nodes)
    yield from nodes


class KeepOrRemove(beam.PTransform):
    """(id, Node) -> every Node kept or removed: at most `rounds` rounds of local decisions,
    then the few left open finished in priority order. Nodes of different groups never link,
    so the nodes of every group of a pipeline can go through the same rounds. With
    `namespace_of(node id)`, counts the nodes in each round (`ROUND_COUNTER` + its number)."""

    def __init__(self, rounds: int, namespace_of: Callable[[Any], str] | None = None):
        super().__init__()
        self.rounds, self.namespace_of = rounds, namespace_of

    def expand(self, nodes: beam.PCollection) -> beam.PCollection:
        live = nodes | "Tag" >> beam.Map(lambda kv: (kv[0], (_NODE, kv[1])))
        done = []
        for r in range(self.rounds):
            stepped = (
                live
                | f"Round{r}" >> beam.GroupByKey()
                | f"Step{r}"
                >> beam.FlatMap(_step, r, self.namespace_of).with_outputs(_DONE, main="live")
            )
            live = stepped["live"]
            done.append(stepped[_DONE])
        delivered = (
            live
            | "LastNews" >> beam.GroupByKey()
            | "Deliver" >> beam.FlatMap(_deliver).with_outputs(_OPEN, main="decided")
        )
        # Nodes still open (long chains of alternating priority) finish in order; a single
        # key, but only they travel there.
        finished = (
            delivered[_OPEN] | "GroupOpen" >> beam.GroupByKey() | "Finish" >> beam.FlatMap(_finish)
        )
        return (*done, delivered["decided"], finished) | "AllDecided" >> beam.Flatten()


def rounds_used(metrics: dict[str, int]) -> int:
    """How many rounds had nodes, from the counters KeepOrRemove left."""
    used = [
        int(name[len(ROUND_COUNTER) :]) + 1 for name in metrics if name.startswith(ROUND_COUNTER)
    ]
    return max(used, default=0)


def decision(node: Node) -> Iterator[tuple[Any, Any]]:
    """(id, (kept document's id, similarity)) for a removed node, (id, None) for a kept one."""
    if node.status == REMOVED:
        kept, similarity = node.kept_by
        yield node.id, (node.neighbours[kept][0][-1], similarity)  # a priority ends with the id
    elif node.status == KEPT:
        yield node.id, None


def cluster_member(node: Node) -> Iterator[Any]:
    """The id of the cluster (its survivor) a decided node belongs to."""
    if node.status == KEPT:
        yield node.id
    elif node.status == REMOVED and node.kept_by:
        yield node.kept_by[0]


class ClusterSizes(beam.PTransform):
    """Decided nodes -> (group, JSON object): how many near-duplicate clusters (kept +
    removed) of each size a group has; `group_of(node id)` names the group (one by default)."""

    def __init__(self, group_of: Callable[[Any], int] | None = None):
        super().__init__()
        self.group_of = group_of or (lambda _: 0)

    def expand(self, nodes: beam.PCollection) -> beam.PCollection:
        group_of = self.group_of
        return (
            nodes
            | "ClusterOf"
            >> beam.FlatMap(lambda n: ((group_of(n.id), c) for c in cluster_member(n)))
            | "ClusterSizes" >> beam.combiners.Count.PerElement()
            | "GroupAndSize" >> beam.Map(lambda kv: (kv[0][0], kv[1]))
            | "Histogram" >> beam.combiners.Count.PerElement()
            | "ByGroup" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
            | "PerGroup" >> beam.GroupByKey()
            | "HistogramJson"
            >> beam.MapTuple(
                lambda g, pairs: (g, json.dumps({str(k): v for k, v in sorted(pairs)}))
            )
        )


class WriteClustersFn(beam.DoFn):
    """(group, JSON) -> the group's cluster file (`paths` by group)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def process(self, item: tuple[int, str]) -> Iterator[str]:
        group, histogram = item
        with FileSystems.create(self.paths[group]) as fh:
            fh.write((histogram + "\n").encode())
        yield self.paths[group]
