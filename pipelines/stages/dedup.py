"""dedup: CCNet line dedup (CommonCrawl), exact dedup, then MinHash-LSH near dedup with
verified candidates and a distributed keep rule; sources can be deduplicated across each
other (`dedup.cross_source`). The transforms are in pipelines/transforms/dedup.py and
near_dedup.py; this module reads each group, composes them and writes each source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.stage import Stage, StageContext, require_manifest
from pipelines.store import KEPT, REJECTED, ReadStage, WriteStage
from pipelines.transforms.dedup import (
    ApplyNear,
    ExactDedup,
    KeepOrder,
    LineDedup,
    LineDedupConfig,
)
from pipelines.transforms.near_dedup import (
    ClusterSizes,
    KeepOrRemove,
    NearDedupConfig,
    NearDuplicates,
    decision,
)

CLUSTERS_FILE = "clusters.json"


@dataclass
class _Group:
    """One dedup group's branch of the pipeline, until its decisions are known."""

    sources: list[str]
    label: str
    docs: Any  # after line and exact dedup
    rejects: dict[str, list[Any]]  # per source: rejects of line dedup
    exact_rejects: Any
    threshold: float
    nodes: Any = None  # near-duplicate nodes, when near dedup is on


class DedupStage(Stage):
    name = "dedup"

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

    def build(
        self, pipeline: beam.Pipeline, ctx: StageContext, sources: Sequence[str], prepared: Any
    ) -> None:
        """Every group's line and exact dedup and near-duplicate nodes; one set of keep/remove
        rounds for the nodes of all groups (the rounds' fixed cost is paid once, not once
        per source); then each group's decisions applied and its sources written."""
        groups = [
            self._group(pipeline, ctx, ctx.recipe.dedup_group(s))
            for s in sources
            if s == ctx.recipe.dedup_group(s)[0]  # the group's first source builds it
        ]
        final = decisions = None
        if ctx.recipe.dedup.near and groups:
            nodes = [g.nodes for g in groups] | "Near/AllNodes" >> beam.Flatten()
            final = nodes | "Near/Rounds" >> KeepOrRemove(ctx.recipe.dedup.rounds)
            decisions = final | "Near/Decisions" >> beam.FlatMap(decision)
        for group in groups:
            self._write_group(pipeline, ctx, group, final, decisions)

    def _group(self, pipeline: beam.Pipeline, ctx: StageContext, sources: list[str]) -> _Group:
        recipe, settings = ctx.recipe, ctx.recipe.dedup
        order = KeepOrder(
            tuple(settings.keep), {s: i for i, s in enumerate(settings.source_priority)}
        )
        label = "+".join(sources)
        docs_by_source, rejects = [], {s: [] for s in sources}
        for member in sources:
            docs = pipeline | f"{member}/Read" >> ReadStage(
                ctx.store, self.upstream, member, as_rows=True
            )
            if recipe.line_dedup(member):
                config = LineDedupConfig(
                    settings.line_groups,
                    settings.min_words_after_lines,
                    self.metrics_namespace(member),
                )
                lines = docs | f"{member}/Lines" >> LineDedup(config)
                docs = lines[KEPT]
                rejects[member].append(lines[REJECTED])
            docs_by_source.append(docs)
        docs = docs_by_source | f"{label}/Merge" >> beam.Flatten()
        if settings.exact:
            exact = docs | f"{label}/Exact" >> ExactDedup(order)
            docs, exact_rejects = exact[KEPT], exact[REJECTED]
        else:
            exact_rejects = pipeline | f"{label}/NoExact" >> beam.Create([])
        group = _Group(
            sources, label, docs, rejects, exact_rejects, recipe.dedup_threshold(sources)
        )
        if settings.near:
            near = NearDedupConfig(
                group.threshold,
                settings.ngram,
                settings.num_perm,
                settings.seed,
                settings.verify,
                settings.max_miss,
                settings.bucket_all_pairs,
                order,
                self.metrics_namespace(label),
            )
            group.nodes = docs | f"{label}/Near" >> NearDuplicates(near)
        return group

    def _write_group(self, pipeline, ctx: StageContext, group: _Group, final, decisions) -> None:
        label, sources = group.label, group.sources
        if decisions is not None:
            applied = {
                "docs": group.docs,
                "exact_rejects": group.exact_rejects,
                "decisions": decisions,
            } | f"{label}/ApplyNear" >> ApplyNear(group.threshold)
            kept, near_rejects, exact_rejects = applied[KEPT], applied[REJECTED], applied["exact"]
            members = set(sources)
            (
                final
                | f"{label}/GroupNodes"
                >> beam.Filter(lambda n, m=members: n.id.split("/", 1)[0] in m)
                | f"{label}/Clusters" >> ClusterSizes()
                | f"{label}/WriteClusters"
                >> beam.io.WriteToText(
                    ctx.store.path(self.name, sources[0], CLUSTERS_FILE), shard_name_template=""
                )
            )
        else:
            kept, exact_rejects = group.docs, group.exact_rejects
            near_rejects = pipeline | f"{label}/NoNear" >> beam.Create([])
        n = len(sources)
        kept_parts = kept | f"{label}/SplitKept" >> beam.Partition(_by_source, n, sources)
        exact_parts = exact_rejects | f"{label}/SplitExact" >> beam.Partition(
            _by_source, n, sources
        )
        near_parts = near_rejects | f"{label}/SplitNear" >> beam.Partition(_by_source, n, sources)
        for i, member in enumerate(sources):
            namespace = self.metrics_namespace(member)
            if ctx.recipe.dedup.exact:
                exact_parts[i] | f"{member}/CountExact" >> beam.Map(
                    _count, namespace, "removed_exact"
                )
            near_parts[i] | f"{member}/CountNear" >> beam.Map(_count, namespace, "removed_near")
            outputs = {KEPT: kept_parts[i], f"{REJECTED}/exact": exact_parts[i]}
            outputs[f"{REJECTED}/near"] = near_parts[i]
            for k, lines in enumerate(group.rejects[member]):
                outputs[f"{REJECTED}/lines{k}"] = lines
            outputs | f"{member}/Write" >> WriteStage(ctx.store, self.name, member, "rows")

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics, prepared)
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


def _by_source(doc: dict[str, Any], partitions: int, sources: list[str]) -> int:
    return sources.index(doc["source"])


def _count(doc: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    beam.metrics.Metrics.counter(namespace, name).inc()
    return doc
