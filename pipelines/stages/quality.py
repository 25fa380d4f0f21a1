"""quality: each source's named filters (C4, Gopher, CCNet perplexity, the reference
classifier), in the recipe's order; the first that fails is the recorded reason, with the
measured value and the threshold (see pipelines/transforms/quality.py).
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.assets import read_file_bytes, resolve_filters
from pipelines.fetch import is_remote_url
from pipelines.registry import spec
from pipelines.stage import Stage, StageContext, require_manifest
from pipelines.store import ALL_SOURCES, KEPT, REJECTED, ReadStage, WriteStage, file_metadata
from pipelines.transforms.quality import QualityFiltering, QualityFilters

CUTOFFS_FILE = "perplexity_cutoffs.json"


class QualityStage(Stage):
    name = "quality"

    def config(self, ctx: StageContext, source: str) -> Any:
        return [f.model_dump(mode="json") for f in ctx.recipe.sources[source].filters]

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        """The upstream runs, and the size and time of every model file a filter names, so
        that replacing a model in place reruns the stage."""
        files = []
        for f in ctx.recipe.sources[source].filters:
            for key in f.files:
                location = getattr(f, key)
                if location and not is_remote_url(location):
                    files.append(file_metadata(location))
        return [*super().inputs_identity(ctx, source), files]

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        manifests = super().upstream_manifests(ctx, source)
        if ctx.recipe.uses_trained_classifier(source):
            # After the documents' upstream (counted in summarize): the classifier it trained.
            for stage in spec(self.name).optional_reads:
                manifests.append(require_manifest(ctx, stage, ALL_SOURCES, self.name))
        return manifests

    def prepare(self, ctx: StageContext, sources: list[str]) -> dict[str, Any]:
        """Each source's model files found (URLs fetched) once, on the driver."""
        return {source: resolve_filters(ctx, source) for source in sources}

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: dict[str, Any]
    ) -> None:
        filters, classifier = prepared[source]
        config = QualityFiltering(
            filters,
            classifier,
            self.metrics_namespace(source),
            ctx.recipe.quality.max_document_seconds,
        )
        read = ReadStage(ctx.store, self.upstream, source)
        inputs = {"tables": pipeline | f"{source}/Read" >> read}
        if QualityFilters.reads_twice(filters):
            inputs["again"] = pipeline | f"{source}/ReadAgain" >> read
        outputs = inputs | f"{source}/Filter" >> QualityFilters(config)
        if "cutoffs" in outputs:
            (
                outputs["cutoffs"]
                | f"{source}/CutoffsJson" >> beam.Map(json.dumps)
                | f"{source}/WriteCutoffs"
                >> beam.io.WriteToText(
                    ctx.store.path(self.name, source, CUTOFFS_FILE), shard_name_template=""
                )
            )
        {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]} | f"{source}/Write" >> WriteStage(
            ctx.store, self.name, source, "tables"
        )

    def summarize(
        self, ctx: StageContext, source: str, metrics: dict[str, int], prepared: Any
    ) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics, prepared)
        by_filter: dict[str, int] = {}
        for reason, count in summary["rejected_by_reason"].items():
            name = reason.split(":", 1)[1].split(".", 1)[0]
            by_filter[name] = by_filter.get(name, 0) + count
        summary["rejected_by_filter"] = by_filter
        path = ctx.store.path(self.name, source, CUTOFFS_FILE)
        if FileSystems.exists(path):
            text = read_file_bytes(path).decode().strip()
            summary["perplexity_cutoffs"] = json.loads(text) if text else None
        return summary
