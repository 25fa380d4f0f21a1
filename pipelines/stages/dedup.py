"""dedup: CCNet line dedup (CommonCrawl), exact dedup, then MinHash-LSH near dedup with
verified candidates and a distributed keep rule; sources can be deduplicated across each
other (`dedup.cross_source`).

Per group of sources, in Beam:
  lines    (line hash, doc) -> GroupByKey -> lines in 2+ documents -> CoGroupByKey by doc id
  exact    (text hash, doc) -> GroupByKey -> the best copy by the keep rule survives
  near     doc -> shingles + MinHash -> (band, rows) buckets -> GroupByKey -> candidate pairs
           -> Distinct -> two CoGroupByKeys with the shingles -> verified edges (J >= t)
           -> per-node neighbourhoods -> keep/remove rounds (one CoGroupByKey each)
  output   decisions joined back to the documents; kept and rejected per source.
No step holds more than one key's group: a bucket, a document's neighbourhood, a text hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from dedup.cluster import KEPT, REMOVED, UNDECIDED, Node, keep_priority, resolve_locally
from dedup.exact import text_hash
from dedup.lines import document_line_hashes, remove_lines
from dedup.minhash import choose_banding, estimated_jaccard, exact_jaccard, shingle_hashes
from dedup.minhash import signature as minhash_signature
from filters.gopher import word_count
from pipelines.document import unit_hash, with_rejection
from pipelines.stages.base import Stage, StageContext, require_manifest
from pipelines.stages.extract import REJECTS, write_documents
from pipelines.store import match_files

CLUSTERS_FILE = "clusters.json"


# -- line dedup (CCNet) -----------------------------------------------------------------------
class LineDedupFn(beam.DoFn):
    """(doc, duplicated line hashes) -> the document without them, or a rejection."""

    def __init__(self, min_words: int, namespace: str):
        self.min_words = min_words
        self.namespace = namespace

    def process(self, item: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        _, joined = item
        docs = list(joined["doc"])
        if not docs:
            return
        doc = docs[0]
        duplicated = set(joined["lines"])
        if not duplicated:
            yield doc
            return
        text = remove_lines(doc["text"] or "", duplicated)
        words = word_count(text)
        if words < self.min_words:
            beam.metrics.Metrics.counter(self.namespace, "removed_lines").inc()
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                with_rejection(
                    doc,
                    "dedup:lines_too_short",
                    f"{words} words left < {self.min_words} after {len(duplicated)} repeated "
                    "lines went",
                    value=words,
                    threshold=self.min_words,
                ),
            )
            return
        beam.metrics.Metrics.counter(self.namespace, "documents_line_deduplicated").inc()
        yield {**doc, "text": text}


def _repeated_lines(item: tuple[tuple[int, int], Iterable[str]]) -> Iterator[tuple[str, int]]:
    (_, line), doc_ids = item
    ids = list(dict.fromkeys(doc_ids))
    if len(ids) > 1:
        for doc_id in ids:
            yield doc_id, line


def line_dedup(docs, label: str, groups: int, min_words: int, namespace: str):
    """(kept docs, rejects) after CCNet line dedup within `groups` groups of documents."""
    keyed = docs | f"{label}/KeyById" >> beam.Map(lambda d: (d["id"], d))
    repeated = (
        docs
        | f"{label}/LineHashes"
        >> beam.FlatMap(
            lambda d: (
                ((int(unit_hash("line-group", d["id"]) * groups), h), d["id"])
                for h in document_line_hashes(d["text"] or "")
            )
        )
        | f"{label}/GroupLines" >> beam.GroupByKey()
        | f"{label}/Repeated" >> beam.FlatMap(_repeated_lines)
    )
    out = (
        {"doc": keyed, "lines": repeated}
        | f"{label}/JoinLines" >> beam.CoGroupByKey()
        | f"{label}/RemoveLines"
        >> beam.ParDo(LineDedupFn(min_words, namespace)).with_outputs(REJECTS, main="kept")
    )
    return out["kept"], out[REJECTS]


# -- exact dedup ----------------------------------------------------------------------------------
def _exact_group(item: tuple[str, Iterable[dict[str, Any]]], rules, ranks) -> Iterator[Any]:
    digest, docs = item
    ordered = sorted(docs, key=lambda d: keep_priority(d, rules, ranks))
    yield ordered[0]
    for doc in ordered[1:]:
        yield beam.pvalue.TaggedOutput(
            REJECTS,
            with_rejection(
                doc, "dedup:exact", f"same text as {ordered[0]['id']}", ordered[0]["id"], 1.0, 1.0
            ),
        )


# -- near dedup -----------------------------------------------------------------------------------
class SignatureFn(beam.DoFn):
    """doc -> ("node", (id, priority, shingles, signature)) and its band keys."""

    def __init__(self, config: dict[str, Any], rules, ranks):
        self.config = config
        self.rules = rules
        self.ranks = ranks

    def setup(self) -> None:
        self.banding = choose_banding(
            self.config["threshold"], self.config["num_perm"], self.config["max_miss"]
        )

    def process(self, doc: dict[str, Any]) -> Iterator[Any]:
        shingles = shingle_hashes(doc["text"] or "", self.config["ngram"])
        if shingles.size == 0:
            return
        sig = minhash_signature(shingles, self.config["num_perm"], self.config["seed"])
        priority = keep_priority(doc, self.rules, self.ranks)
        payload = shingles if self.config["verify"] == "exact" else sig
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
    doc_id, joined = item
    payloads = list(joined["payload"])
    if not payloads:
        return
    for a, b, pa, pb in joined["pairs"]:
        yield b, (a, pa, pb, payloads[0])


class VerifyFn(beam.DoFn):
    """Confirms each candidate pair by its Jaccard similarity; emits verified edges."""

    def __init__(self, threshold: float, verify: str, namespace: str):
        self.threshold = threshold
        self.verify = verify
        self.namespace = namespace

    def process(self, item) -> Iterator[Any]:
        doc_id, joined = item
        payloads = list(joined["payload"])
        if not payloads:
            return
        dtype = np.uint64 if self.verify == "exact" else np.uint32
        mine = np.frombuffer(payloads[0], dtype=dtype)
        measure = exact_jaccard if self.verify == "exact" else estimated_jaccard
        checked = confirmed = 0
        for a, pa, pb, other in joined["half"]:
            checked += 1
            similarity = measure(np.frombuffer(other, dtype=dtype), mine)
            if similarity >= self.threshold:
                confirmed += 1
                yield a, (doc_id, pb, similarity)
                yield doc_id, (a, pa, similarity)
        beam.metrics.Metrics.counter(self.namespace, "candidate_pairs").inc(checked)
        beam.metrics.Metrics.counter(self.namespace, "verified_pairs").inc(confirmed)


class StepFn(beam.DoFn):
    """One keep/remove round: a node learns its neighbours' news and decides if it can."""

    def process(self, item) -> Iterator[Any]:
        doc_id, joined = item
        (node,) = joined["node"]
        if node.step(joined["news"]):
            for neighbour in node.neighbours:
                yield beam.pvalue.TaggedOutput("news", (neighbour, (node.id, node.status)))
        yield doc_id, node


def _finish(nodes: Iterable[Node]) -> Iterator[Node]:
    nodes = list(nodes)
    resolve_locally(nodes)
    yield from nodes


def near_nodes(docs, label: str, config: dict[str, Any], rules, ranks, namespace: str):
    """The documents that have verified near-duplicates, as undecided nodes (id, Node)."""
    signed = docs | f"{label}/Sign" >> beam.ParDo(SignatureFn(config, rules, ranks)).with_outputs(
        "payload", main="bands"
    )
    pairs = (
        signed["bands"]
        | f"{label}/Buckets" >> beam.GroupByKey()
        | f"{label}/Pairs" >> beam.FlatMap(_bucket_pairs, config["bucket_all_pairs"])
        | f"{label}/DistinctPairs" >> beam.Distinct()
    )
    half = (
        {
            "pairs": pairs | f"{label}/ByFirst" >> beam.Map(lambda p: (p[0], p)),
            "payload": signed["payload"],
        }
        | f"{label}/JoinFirst" >> beam.CoGroupByKey()
        | f"{label}/AttachFirst" >> beam.FlatMap(_attach_first)
    )
    edges = (
        {"half": half, "payload": signed["payload"]}
        | f"{label}/JoinSecond" >> beam.CoGroupByKey()
        | f"{label}/Verify"
        >> beam.ParDo(VerifyFn(config["threshold"], config["verify"], namespace))
    )
    priorities = docs | f"{label}/Priority" >> beam.Map(
        lambda d: (d["id"], keep_priority(d, rules, ranks))
    )
    return (
        {"links": edges, "priority": priorities}
        | f"{label}/Neighbourhoods" >> beam.CoGroupByKey()
        | f"{label}/Nodes" >> beam.FlatMap(_node_of)
    )


def decide_rounds(nodes, label: str, rounds: int):
    """Every node kept or removed: `rounds` rounds of local decisions, then the few left
    finished in priority order. Nodes of different groups never link, so every group of the
    pipeline goes through the same rounds."""
    news = nodes | f"{label}/NoNews" >> beam.FlatMap(lambda _: [])
    for r in range(rounds):
        stepped = (
            {"node": nodes, "news": news}
            | f"{label}/Round{r}" >> beam.CoGroupByKey()
            | f"{label}/Step{r}" >> beam.ParDo(StepFn()).with_outputs("news", main="nodes")
        )
        nodes, news = stepped["nodes"], stepped["news"]
    final = (
        {"node": nodes, "news": news}
        | f"{label}/LastNews" >> beam.CoGroupByKey()
        | f"{label}/Deliver" >> beam.Map(lambda item: _deliver(item))
        # Nodes still undecided (long chains of alternating priority) finish in order; a
        # single key, but only they and their links travel there.
        | f"{label}/KeyUndecided"
        >> beam.Map(lambda n: (("open" if n.status == UNDECIDED else n.id), n))
        | f"{label}/GroupUndecided" >> beam.GroupByKey()
        | f"{label}/Finish" >> beam.FlatMap(lambda item: _finish(item[1]))
    )
    return final


def _node_of(item) -> Iterator[Node]:
    doc_id, joined = item
    links = list(joined["links"])
    if not links:
        return
    (priority,) = joined["priority"]
    neighbours = {}
    for other, other_priority, similarity in links:
        neighbours[other] = (other_priority, similarity)
    yield doc_id, Node(doc_id, priority, neighbours)


def _deliver(item) -> Node:
    """The last round's news, taken in without deciding: a decision now would reach nobody."""
    _, joined = item
    (node,) = joined["node"]
    node.absorb(joined["news"])
    return node


def _decision(node: Node) -> Iterator[tuple[str, Any]]:
    if node.status == REMOVED:
        yield node.id, node.kept_by
    elif node.status == KEPT:
        yield node.id, None


class ApplyFn(beam.DoFn):
    """Joins the near-dedup decisions back to the documents."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def process(self, item) -> Iterator[Any]:
        _, joined = item
        docs = list(joined["doc"])
        if not docs:
            return
        doc = docs[0]
        decisions = [d for d in joined["decision"] if d is not None]
        if not decisions:
            yield doc
            return
        kept_id, similarity = decisions[0]
        yield beam.pvalue.TaggedOutput(
            REJECTS,
            with_rejection(
                doc,
                "dedup:near",
                f"jaccard {similarity:.3f} >= {self.threshold} with {kept_id} (its cluster)",
                kept_id,
                similarity,
                self.threshold,
            ),
        )


def _repoint(item) -> Iterator[dict[str, Any]]:
    _, joined = item
    decisions = [d for d in joined["decision"] if d is not None]
    for reject in joined["reject"]:
        if decisions:
            survivor, similarity = decisions[0]
            yield {
                **reject,
                "duplicate_of": survivor,
                "detail": f"same text as {reject['duplicate_of']}, itself a near copy "
                f"(jaccard {similarity:.3f}) of {survivor}",
                "value": similarity,
            }
        else:
            yield reject


def _by_source(doc: dict[str, Any], partitions: int, sources: list[str]) -> int:
    return sources.index(doc["source"])


class DedupStage(Stage):
    name = "dedup"
    upstream = "quality"

    def config(self, ctx: StageContext, source: str) -> Any:
        recipe = ctx.recipe
        group = recipe.dedup_group(source)
        return {
            "dedup": recipe.dedup.model_dump(mode="json"),
            "group": group,
            "threshold": recipe.dedup_threshold(group),
            "lines": {s: recipe.line_dedup(s) for s in group},
        }

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        # The source's own upstream first (its input count), then its group's.
        group = ctx.recipe.dedup_group(source)
        ordered = [source] + [s for s in group if s != source]
        return [require_manifest(ctx, self.upstream, s, self.name) for s in ordered]

    def widen(self, ctx: StageContext, sources: list[str]) -> list[str]:
        """A group is deduplicated together: rerunning one source reruns its group."""
        out: list[str] = []
        for source in sources:
            for member in ctx.recipe.dedup_group(source):
                if member not in out:
                    out.append(member)
        return out

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        recipe = ctx.recipe
        group = recipe.dedup_group(source)
        if source != group[0]:
            return  # the group's first source builds the whole group
        settings = recipe.dedup
        rules = list(settings.keep)
        ranks = {name: i for i, name in enumerate(settings.source_priority)}
        label = "+".join(group)
        docs_by_source = []
        rejects: dict[str, list] = {s: [] for s in group}
        for member in group:
            pattern = ctx.store.parts(self.upstream, member)
            docs = (
                pipeline | f"{member}/Read" >> beam.io.ReadFromParquet(pattern)
                if match_files(pattern)
                else pipeline | f"{member}/Read" >> beam.Create([])
            )
            if recipe.line_dedup(member):
                docs, dropped = line_dedup(
                    docs,
                    f"{member}/Lines",
                    settings.line_groups,
                    settings.min_words_after_lines,
                    self.metrics_namespace(member),
                )
                rejects[member].append(dropped)
            docs_by_source.append(docs)
        docs = docs_by_source | f"{label}/Merge" >> beam.Flatten()
        if settings.exact:
            exact = (
                docs
                | f"{label}/KeyByText" >> beam.Map(lambda d: (text_hash(d["text"] or ""), d))
                | f"{label}/GroupCopies" >> beam.GroupByKey()
                | f"{label}/KeepBestCopy"
                >> beam.FlatMap(_exact_group, rules, ranks).with_outputs(REJECTS, main="kept")
            )
            docs = exact["kept"]
            exact_rejects = exact[REJECTS]
        else:
            exact_rejects = pipeline | f"{label}/NoExact" >> beam.Create([])
        threshold = recipe.dedup_threshold(group)
        group_state = {
            "group": group,
            "label": label,
            "docs": docs,
            "exact_rejects": exact_rejects,
            "rejects": rejects,
            "threshold": threshold,
        }
        if settings.near:
            config = {**settings.model_dump(mode="json"), "threshold": threshold}
            group_state["nodes"] = near_nodes(
                docs, label, config, rules, ranks, self.metrics_namespace(label)
            )
            self.pending.append(group_state)  # decided with every group's nodes in finish()
        else:
            self._write_group(pipeline, ctx, group_state, None, None)

    def before_run(self, ctx: StageContext, sources: Any) -> None:
        self.pending: list[dict[str, Any]] = []

    def finish(self, pipeline: beam.Pipeline, ctx: StageContext) -> None:
        """One set of keep/remove rounds for the nodes of every group in the pipeline: the
        rounds' fixed cost is paid once, not once per source."""
        if not self.pending:
            return
        nodes = [state["nodes"] for state in self.pending] | "Near/AllNodes" >> beam.Flatten()
        final = decide_rounds(nodes, "Near", ctx.recipe.dedup.rounds)
        decisions = final | "Near/Decisions" >> beam.FlatMap(_decision)
        for state in self.pending:
            self._write_group(pipeline, ctx, state, final, decisions)

    def _write_group(self, pipeline, ctx, state, final, decisions) -> None:
        group, label, docs = state["group"], state["label"], state["docs"]
        exact_rejects, threshold = state["exact_rejects"], state["threshold"]
        settings = ctx.recipe.dedup
        if decisions is not None:
            applied = (
                {
                    "doc": docs | f"{label}/DocById" >> beam.Map(lambda d: (d["id"], d)),
                    "decision": decisions,
                }
                | f"{label}/JoinDecisions" >> beam.CoGroupByKey()
                | f"{label}/Apply"
                >> beam.ParDo(ApplyFn(threshold)).with_outputs(REJECTS, main="kept")
            )
            kept, near_rejects = applied["kept"], applied[REJECTS]
            # An exact copy whose kept twin then went as a near copy names the final survivor.
            exact_rejects = (
                {
                    "reject": exact_rejects
                    | f"{label}/ExactByKept" >> beam.Map(lambda d: (d["duplicate_of"], d)),
                    "decision": decisions,
                }
                | f"{label}/JoinExact" >> beam.CoGroupByKey()
                | f"{label}/Repoint" >> beam.FlatMap(_repoint)
            )
            members = set(group)
            (
                final
                | f"{label}/GroupNodes"
                >> beam.Filter(lambda n, m=members: n.id.split("/", 1)[0] in m)
                | f"{label}/ClusterOf" >> beam.FlatMap(_cluster_member)
                | f"{label}/ClusterSizes" >> beam.combiners.Count.PerElement()
                | f"{label}/SizeOnly" >> beam.Map(lambda kv: kv[1])
                | f"{label}/Histogram" >> beam.combiners.Count.PerElement()
                | f"{label}/AllSizes" >> beam.combiners.ToList()
                | f"{label}/HistogramJson"
                >> beam.Map(lambda pairs: json.dumps({str(k): v for k, v in sorted(pairs)}))
                | f"{label}/WriteClusters"
                >> beam.io.WriteToText(
                    ctx.store.path(self.name, group[0], CLUSTERS_FILE), shard_name_template=""
                )
            )
        else:
            kept = docs
            near_rejects = pipeline | f"{label}/NoNear" >> beam.Create([])
        kept_parts = kept | f"{label}/SplitKept" >> beam.Partition(_by_source, len(group), group)
        exact_parts = exact_rejects | f"{label}/SplitExact" >> beam.Partition(
            _by_source, len(group), group
        )
        near_parts = near_rejects | f"{label}/SplitNear" >> beam.Partition(
            _by_source, len(group), group
        )
        for i, member in enumerate(group):
            if settings.exact:
                exact_parts[i] | f"{member}/CountExact" >> beam.Map(
                    _count, self.metrics_namespace(member), "removed_exact"
                )
            near_parts[i] | f"{member}/CountNear" >> beam.Map(
                _count, self.metrics_namespace(member), "removed_near"
            )
            write_documents(
                ctx,
                self.name,
                member,
                [kept_parts[i]],
                [*state["rejects"][member], exact_parts[i], near_parts[i]],
            )

    def summarize(self, ctx: StageContext, source: str, metrics: dict[str, int]) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics)
        group = ctx.recipe.dedup_group(source)
        path = ctx.store.path(self.name, group[0], CLUSTERS_FILE)
        histogram = {}
        if FileSystems.exists(path):
            with FileSystems.open(path) as fh:
                text = fh.read().decode().strip()
            histogram = json.loads(text) if text else {}
        reasons = summary["rejected_by_reason"]
        summary["removed_by_kind"] = {
            "lines": reasons.get("dedup:lines_too_short", 0),
            "exact": reasons.get("dedup:exact", 0),
            "near": reasons.get("dedup:near", 0),
        }
        summary["group"] = group
        summary["cluster_sizes"] = histogram  # near-duplicate clusters (kept + removed) by size
        return summary


def _cluster_member(node: Node) -> Iterator[str]:
    if node.status == KEPT:
        yield node.id
    elif node.status == REMOVED and node.kept_by:
        yield node.kept_by[0]


def _count(doc: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    beam.metrics.Metrics.counter(namespace, name).inc()
    return doc
