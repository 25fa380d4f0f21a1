"""dedup: CCNet line dedup (CommonCrawl), exact dedup, then MinHash-LSH near dedup with
verified candidates and a distributed keep rule; sources can be deduplicated across each
other (`dedup.cross_source`).

Every group of the run goes through the same transforms (pipelines/transforms/dedup.py and
near_dedup.py): the upstream files of all sources are numbered, and each shuffle carries doc
keys (file, row) with hashes, signatures and decisions, never the documents. The rows are read
from the quality stage's store again wherever a step needs their text, and at the end, one
file per element, to be written kept or rejected. The keep/remove rounds carry only the nodes
still open (see near_dedup.py); the manifest says how many rounds had any
(`keep_remove_rounds`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.stage import Stage, StageContext, require_manifest
from pipelines.store import KEPT, REJECTED, WriteStage, match_files
from pipelines.transforms.dedup import (
    ApplyVerdicts,
    DedupFiles,
    DedupGroup,
    DedupSource,
    ExactDedup,
    KeepOrder,
    LineDedup,
    LineDedupConfig,
    Survey,
    SurveyConfig,
    Verdicts,
    file_of,
    row_of,
)
from pipelines.transforms.near_dedup import (
    ROUND_COUNTER,
    ClusterSizes,
    KeepOrRemove,
    NearDedupConfig,
    NearDuplicates,
    WriteClustersFn,
    decision,
    rounds_used,
)

CLUSTERS_FILE = "clusters.json"
# One shuffle key per line group (and LSH band) for about this much text: a key's reducer
# holds 16 bytes per line of its documents (~3M lines here), tens of MB. No result depends
# on it.
TEXT_CHARS_PER_SHARD = 200_000_000


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

    def files(self, ctx: StageContext, sources: Sequence[str]) -> DedupFiles:
        """The upstream files of every source that runs, numbered, with their groups."""
        recipe = ctx.recipe
        groups = [recipe.dedup_group(s) for s in sources if s == recipe.dedup_group(s)[0]]
        group_of = {member: i for i, group in enumerate(groups) for member in group}
        ordered = [member for group in groups for member in group]
        paths, file_sources, chars = [], [], 0
        for index, source in enumerate(ordered):
            found = match_files(ctx.store.parts(self.upstream, source))
            paths += found
            file_sources += [index] * len(found)
            manifest = ctx.store.read_manifest(self.upstream, source) or {}
            chars += manifest.get("kept_text_chars", 0)
        return DedupFiles(
            tuple(paths),
            tuple(file_sources),
            tuple(
                DedupSource(s, group_of[s], recipe.line_dedup(s), self.metrics_namespace(s))
                for s in ordered
            ),
            tuple(
                DedupGroup(tuple(g), recipe.dedup_threshold(g), self.metrics_namespace("+".join(g)))
                for g in groups
            ),
            shards=1 + chars // TEXT_CHARS_PER_SHARD,
        )

    def build(
        self, pipeline: beam.Pipeline, ctx: StageContext, sources: Sequence[str], prepared: Any
    ) -> None:
        """Line, exact and near dedup of every group through one set of transforms (their
        fixed cost is paid once, not once per source); then each file's rows read again,
        decided, and written per source."""
        settings = ctx.recipe.dedup
        files = self.files(ctx, sources)
        order = KeepOrder(
            tuple(settings.keep), {s: i for i, s in enumerate(settings.source_priority)}
        )
        lines = LineDedupConfig(settings.line_groups, settings.min_words_after_lines)
        numbered = pipeline | "Files" >> beam.Create(files.numbered())
        if any(s.lines for s in files.sources):
            line_notes = numbered | "Lines" >> LineDedup(files, lines)
        else:
            line_notes = pipeline | "NoLines" >> beam.Create([])
        config = SurveyConfig(lines, order, settings.exact)
        survey = {"file": numbered, "lines": line_notes} | "Survey" >> Survey(files, config)
        copies = survey["exact"] | "Exact" >> ExactDedup()
        verdict_inputs = {"exact": copies}
        if settings.near:
            near = NearDedupConfig(
                settings.ngram,
                settings.num_perm,
                settings.seed,
                settings.verify,
                settings.max_miss,
                settings.bucket_all_pairs,
                order,
            )
            skip = copies | "SkipCopies" >> beam.Map(lambda c: (file_of(c[0]), row_of(c[0])))
            nodes = {"file": numbered, "cuts": survey["cuts"], "skip": skip} | "Near" >> (
                NearDuplicates(files, lines, near)
            )
            final = nodes | "Rounds" >> KeepOrRemove(
                settings.rounds, lambda key, f=files: f.source_of(key).namespace
            )
            verdict_inputs["decisions"] = final | "Decisions" >> beam.FlatMap(decision)
            clusters = [
                ctx.store.path(self.name, g.sources[0], CLUSTERS_FILE) for g in files.groups
            ]
            (
                final
                | "Clusters" >> ClusterSizes(files.group_index)
                | "WriteClusters" >> beam.ParDo(WriteClustersFn(clusters))
            )
        verdicts = verdict_inputs | "Verdicts" >> Verdicts()
        outputs = {"file": numbered, "cuts": survey["cuts"], "verdicts": verdicts} | "Apply" >> (
            ApplyVerdicts(files, lines)
        )
        for i, source in enumerate(files.sources):
            {KEPT: outputs[f"{KEPT}{i}"], REJECTED: outputs[f"{REJECTED}{i}"]} | (
                f"{source.name}/Write" >> WriteStage(ctx.store, self.name, source.name, "rows")
            )

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        rounds = rounds_used(metrics)
        metrics = {k: v for k, v in metrics.items() if not k.startswith(ROUND_COUNTER)}
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
        if ctx.recipe.dedup.near:
            summary.setdefault("candidate_pairs", 0)
            summary.setdefault("verified_pairs", 0)
            summary["keep_remove_rounds"] = rounds  # rounds that had any of its documents
        return summary
