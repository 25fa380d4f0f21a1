"""The quality stage's transforms: model scores on every document, perplexity cut-offs at
percentiles of the whole source (bounded-memory quantiles), then each source's filter chain
deciding kept or rejected with the rule, the value and the threshold."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa

from filters.base import Verdict
from filters.chain import Decision, FilterChain, Scores, cutoffs_from_quantiles, word_count
from filters.perplexity import PerplexityConfig
from pipelines.assets import ClassifierFiles, local_configs, read_file_bytes
from pipelines.budget import DocumentTimeout, time_budget
from pipelines.store import KEPT, REJECTED
from pipelines.tables import split_table

QUANTILES = 1001  # per-mille resolution for the percentile cut-offs


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


def _finite(table: pa.Table) -> list[float]:
    return [v for v in table.column("perplexity").to_pylist() if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class QualityFiltering:
    """A source's filters with their files readable by the workers."""

    filters: list[Any]
    classifier: ClassifierFiles | None
    namespace: str  # where documents_cleaned is counted
    max_document_seconds: float | None


class QualityFilters(beam.PTransform):
    """Document Tables -> {KEPT: Tables, REJECTED: Tables}, and "cutoffs" (the perplexity
    cut-offs used, as one list) when the source has a perplexity filter."""

    def __init__(self, config: QualityFiltering):
        super().__init__()
        self.config = config

    def expand(self, tables: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self.config
        scored = tables | "Score" >> beam.ParDo(ScoreFn(config.filters, config.classifier))
        perplexity = next((f for f in config.filters if isinstance(f, PerplexityConfig)), None)
        if perplexity is None:
            outputs = scored | "Decide" >> beam.ParDo(
                DecideFn(config.filters, config.namespace, config.max_document_seconds), None
            ).with_outputs(KEPT, REJECTED)
            return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]}
        if perplexity.cutoffs is not None:
            cutoffs = tables.pipeline | "FixedCutoffs" >> beam.Create([list(perplexity.cutoffs)])
        else:
            cutoffs = (
                scored
                | "Perplexities" >> beam.FlatMap(_finite)
                | "Quantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES)
                | "Cutoffs"
                >> beam.Map(lambda q, p=perplexity.percentiles: cutoffs_from_quantiles(q, p))
            )
        decide = DecideFn(config.filters, config.namespace, config.max_document_seconds)
        side = beam.pvalue.AsSingleton(cutoffs, default_value=None)
        outputs = scored | "Decide" >> beam.ParDo(decide, side).with_outputs(KEPT, REJECTED)
        return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], "cutoffs": cutoffs}
