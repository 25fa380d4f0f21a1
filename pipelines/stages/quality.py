"""quality: each source's named filters (C4, Gopher, CCNet perplexity, the reference
classifier), in the recipe's order; the first that fails is the recorded reason, with the
measured value and the threshold.

Scores come first, in one pass; perplexity cut-offs that are percentiles of the data are
computed over those scores (bounded-memory quantiles) and reach the deciding pass as a side
input, so the bucket boundaries are the whole source's, not one worker's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from filters.base import Verdict
from filters.chain import Decision, FilterChain, Scores, cutoffs_from_quantiles, word_count
from filters.perplexity import PerplexityConfig
from filters.quality_classifier import ReferenceClassifier, ReferenceClassifierConfig
from pipelines.budget import DocumentTimeout, time_budget
from pipelines.fetch import is_remote_url
from pipelines.stages.assets import local_copy, model_location
from pipelines.stages.base import StageContext, require_manifest
from pipelines.stages.classifier import TRAINED_ON, model_file
from pipelines.stages.filtering import (
    KEPT,
    REJECTED,
    FilterStage,
    read_tables,
    split_table,
    write_tables,
)
from pipelines.store import file_metadata

CUTOFFS_FILE = "perplexity_cutoffs.json"
QUANTILES = 1001  # per-mille resolution for the percentile cut-offs


def read_file_bytes(path: str) -> bytes:
    """A whole file through Beam's filesystems (local paths and URIs alike)."""
    with FileSystems.open(path) as fh:
        return fh.read()


def local_configs(configs: list[Any]) -> list[Any]:
    """The filters with their model files copied to this worker's disk."""
    local = []
    for config in configs:
        if isinstance(config, PerplexityConfig):
            config = config.model_copy(
                update={
                    "model": local_copy(config.model),
                    "tokenizer": local_copy(config.tokenizer),
                }
            )
        local.append(config)
    return local


@dataclass(frozen=True)
class ClassifierFiles:
    """The reference classifier's files: one model, or the cross-fitted pair with the ids
    each was trained on."""

    models: list[str]
    trained_on: str | None = None
    max_chars: int = 10_000

    def load(self) -> ReferenceClassifier:
        trained_on = None
        if self.trained_on is not None:
            halves = json.loads(read_file_bytes(self.trained_on))
            trained_on = [set(halves[str(k)]) for k in range(len(self.models))]
        return ReferenceClassifier([local_copy(m) for m in self.models], trained_on, self.max_chars)


class ScoreFn(beam.DoFn):
    """Adds the model scores (perplexity, classifier) to every document of a table."""

    def __init__(self, configs: list[Any], classifier: ClassifierFiles | None):
        self.configs = configs
        self.classifier = classifier

    def setup(self) -> None:
        # Once per worker: models are loaded here, never shipped with the pipeline.
        classifier = self.classifier.load() if self.classifier else None
        self.chain = FilterChain(local_configs(self.configs), read_file_bytes, classifier)
        self.chain.load_models()

    def process(self, table: pa.Table) -> Iterator[pa.Table]:
        scores = self.chain.score_batch(
            table.column("text").to_pylist(), table.column("id").to_pylist()
        )
        table = table.append_column(
            "perplexity", pa.array([s.perplexity for s in scores], pa.float32())
        )
        yield table.append_column(
            "quality_score", pa.array([s.quality_score for s in scores], pa.float32())
        )


class DecideFn(beam.DoFn):
    """Runs the chain on each scored document: kept (possibly cleaned) or rejected with the rule."""

    def __init__(self, configs: list[Any], namespace: str, max_document_seconds: float | None):
        self.configs = configs
        self.max_document_seconds = max_document_seconds
        self.cleaned = beam.metrics.Metrics.counter(namespace, "documents_cleaned")

    def setup(self) -> None:
        self.chain = FilterChain(self.configs, read_file_bytes)

    def decide(self, text: str, scores: Scores, cutoffs: Any) -> Decision:
        """The chain's decision, or a drop when the filters take longer than the budget."""
        try:
            with time_budget(self.max_document_seconds):
                return self.chain.decide(text, scores, cutoffs)
        except DocumentTimeout as exc:
            verdict = Verdict(False, "too_slow", exc.seconds, ">", exc.limit_s)
            return Decision(verdict, None, text)

    def process(self, table: pa.Table, cutoffs: Any = None) -> Iterator[Any]:
        cutoffs = tuple(cutoffs) if cutoffs else None
        texts = table.column("text").to_pylist()
        perplexities = table.column("perplexity").to_pylist()
        classifier = table.column("quality_score").to_pylist()
        decisions = [
            self.decide(text or "", Scores(p, q), cutoffs)
            for text, p, q in zip(texts, perplexities, classifier, strict=True)
        ]
        cleaned = [d.text for d in decisions]
        changed = sum(
            1
            for d, t in zip(decisions, texts, strict=True)
            if d.verdict.keep and d.text != (t or "")
        )
        if changed:
            self.cleaned.inc(changed)
            table = table.set_column(
                table.schema.get_field_index("text"), "text", pa.array(cleaned, pa.string())
            )
        table = table.append_column(
            "word_count", pa.array([word_count(t) for t in cleaned], pa.int32())
        )
        verdicts = [d.verdict for d in decisions]
        yield from split_table(
            table,
            [v.keep for v in verdicts],
            [None if d.verdict.keep else f"quality:{d.reason}" for d in decisions],
            [v.detail for v in verdicts],
            "quality",
            [v.value for v in verdicts],
            [v.threshold for v in verdicts],
        )


def resolve_filters(ctx: StageContext, source: str) -> tuple[list[Any], ClassifierFiles | None]:
    """A source's filters with every file they name found (URLs fetched into the cache), and
    the reference classifier's files when the source has one."""
    configs, classifier = [], None
    for i, f in enumerate(ctx.recipe.sources[source].filters):
        key = f"sources.{source}.filters[{i}]"
        if isinstance(f, PerplexityConfig):
            f = f.model_copy(
                update={
                    "model": model_location(ctx, f.model, f"{key}.model"),
                    "tokenizer": model_location(ctx, f.tokenizer, f"{key}.tokenizer"),
                }
            )
        elif isinstance(f, ReferenceClassifierConfig):
            if f.model:
                classifier = ClassifierFiles([model_location(ctx, f.model, f"{key}.model")])
            else:
                classifier = trained_classifier(ctx)
        elif getattr(f, "bad_words", None):
            f = f.model_copy(
                update={"bad_words": model_location(ctx, f.bad_words, f"{key}.bad_words")}
            )
        configs.append(f)
    return configs, classifier


def trained_classifier(ctx: StageContext) -> ClassifierFiles:
    """The cross-fitted pair that train-classifier wrote for this recipe."""
    config = ctx.recipe.quality_classifier
    assert config is not None, "the recipe validator requires quality_classifier here"
    return ClassifierFiles(
        [ctx.store.path("train-classifier", "_all", model_file(k)) for k in (0, 1)],
        ctx.store.path("train-classifier", "_all", TRAINED_ON),
        config.max_chars,
    )


def _finite(table: pa.Table) -> list[float]:
    return [v for v in table.column("perplexity").to_pylist() if v is not None and math.isfinite(v)]


class QualityStage(FilterStage):
    name = "quality"
    upstream = "langid"

    def config(self, ctx: StageContext, source: str) -> Any:
        return [f.model_dump(mode="json") for f in ctx.recipe.sources[source].filters]

    def inputs_identity(self, ctx: StageContext, source: str) -> Any:
        """The upstream runs, and the size and time of every model file a filter names, so
        that replacing a model in place reruns the stage."""
        files = []
        for f in ctx.recipe.sources[source].filters:
            for key in ("model", "tokenizer", "bad_words"):
                location = getattr(f, key, None)
                if location and not is_remote_url(location):
                    files.append(file_metadata(location))
        return [*super().inputs_identity(ctx, source), files]

    def upstream_manifests(self, ctx: StageContext, source: str) -> list[dict[str, Any]]:
        manifests = super().upstream_manifests(ctx, source)
        if ctx.recipe.uses_trained_classifier(source):
            # Second in the list: the first is the documents' upstream (counted in summarize).
            manifests.append(require_manifest(ctx, "train-classifier", "_all", self.name))
        return manifests

    def before_run(self, ctx: StageContext, sources: list[str]) -> None:
        """Model locations resolved (and URLs fetched) once, on the driver."""
        self.resolved: dict[str, list[Any]] = {}
        self.classifiers: dict[str, ClassifierFiles | None] = {}
        for source in sources:
            self.resolved[source], self.classifiers[source] = resolve_filters(ctx, source)

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        configs = self.resolved[source]
        scored = read_tables(
            pipeline, ctx, self.upstream, source
        ) | f"{source}/Score" >> beam.ParDo(ScoreFn(configs, self.classifiers[source]))
        perplexity = next((f for f in configs if isinstance(f, PerplexityConfig)), None)
        cutoffs = None
        if perplexity is not None:
            if perplexity.cutoffs is not None:
                cutoffs_pc = pipeline | f"{source}/FixedCutoffs" >> beam.Create(
                    [list(perplexity.cutoffs)]
                )
            else:
                cutoffs_pc = (
                    scored
                    | f"{source}/Perplexities" >> beam.FlatMap(_finite)
                    | f"{source}/Quantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES)
                    | f"{source}/Cutoffs"
                    >> beam.Map(lambda q, p=perplexity.percentiles: cutoffs_from_quantiles(q, p))
                )
            (
                cutoffs_pc
                | f"{source}/CutoffsJson" >> beam.Map(json.dumps)
                | f"{source}/WriteCutoffs"
                >> beam.io.WriteToText(
                    ctx.store.path(self.name, source, CUTOFFS_FILE), shard_name_template=""
                )
            )
            cutoffs = beam.pvalue.AsSingleton(cutoffs_pc, default_value=None)
        outputs = scored | f"{source}/{self.name}" >> beam.ParDo(
            DecideFn(
                configs, self.metrics_namespace(source), ctx.recipe.quality.max_document_seconds
            ),
            cutoffs,
        ).with_outputs(KEPT, REJECTED)
        write_tables(ctx, self.name, source, outputs)

    def summarize(self, ctx: StageContext, source: str, metrics: dict[str, int]) -> dict[str, Any]:
        summary = super().summarize(ctx, source, metrics)
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
