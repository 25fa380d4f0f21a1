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

from filters.base import Document, FilterConfig, Verdict
from filters.chain import Decision, FilterChain
from filters.gopher import word_count
from filters.perplexity import PERPLEXITY_CUTOFFS, PerplexityConfig, cutoffs_from_quantiles
from filters.quality_classifier import ClassifierFiles, with_trained_classifier
from pipelines.assets import local_copy
from pipelines.budget import DocumentTimeout, time_budget
from pipelines.document import SCORE_FIELDS
from pipelines.store import KEPT, REJECTED
from pipelines.tables import RowDecisions, split_table

QUANTILES = 1001  # per-mille resolution for the percentile cut-offs


class ScoreFn(beam.DoFn):
    """Adds the model scores (perplexity, classifier) to every document of a table: a column
    for each of the Document's score fields, null where no filter of the source fills it."""

    def __init__(self, configs: list[FilterConfig]):
        self.configs = configs

    def setup(self) -> None:
        # Once per worker: models are loaded here, never shipped with the pipeline.
        self.chain = FilterChain(self.configs, local_copy)
        self.chain.load_models()
        columns = {f.name for f in SCORE_FIELDS}
        for scorer in self.chain.scorers:
            if scorer.score_column not in columns:
                raise ValueError(f"{scorer.score_column!r} is not a Document score column")

    def process(self, table: pa.Table) -> Iterator[pa.Table]:
        scores = self.chain.score_batch(
            table.column("text").to_pylist(), table.column("id").to_pylist()
        )
        for field in SCORE_FIELDS:
            values = scores.get(field.name, [None] * table.num_rows)
            table = table.append_column(field.name, pa.array(values, field.type))
        yield table


class DecideFn(beam.DoFn):
    """Runs the chain on each scored document: kept (possibly cleaned) or rejected with the rule.
    The side input `source_statistics` (the perplexity cut-offs) reaches every filter with each
    document."""

    def __init__(
        self, configs: list[FilterConfig], namespace: str, max_document_seconds: float | None
    ):
        self.configs = configs
        self.max_document_seconds = max_document_seconds
        self.cleaned = beam.metrics.Metrics.counter(namespace, "documents_cleaned")

    def setup(self) -> None:
        self.chain = FilterChain(self.configs, local_copy)

    def decide(self, doc: Document) -> Decision:
        """The chain's decision, or a drop when the filters take longer than the budget."""
        try:
            with time_budget(self.max_document_seconds):
                return self.chain.decide(doc)
        except DocumentTimeout as exc:
            verdict = Verdict(False, "too_slow", exc.seconds, ">", exc.limit_s)
            return Decision(verdict, None, doc["text"])

    def process(self, table: pa.Table, source_statistics: Any = None) -> Iterator[Any]:
        statistics = source_statistics or {}
        rows = table.to_pylist()
        texts = [row["text"] for row in rows]
        decisions, words = [], []
        for row in rows:
            decisions.append(self.decide({**row, "text": row["text"] or "", **statistics}))
            # Counted right after the chain, which has just split this text into words.
            words.append(word_count(decisions[-1].text))
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
        table = table.append_column("word_count", pa.array(words, pa.int32()))
        verdicts = [d.verdict for d in decisions]
        reasons = [None if d.verdict.keep else f"quality:{d.reason}" for d in decisions]
        yield from split_table(table, RowDecisions.of(verdicts, reasons), "quality")


def _finite(table: pa.Table) -> list[float]:
    return [v for v in table.column("perplexity").to_pylist() if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class QualityFiltering:
    """A source's filters with their files readable by the workers, and the files of the
    classifier train-classifier trained when a reference_classifier names no model."""

    filters: list[FilterConfig]
    classifier: ClassifierFiles | None
    namespace: str  # where documents_cleaned is counted
    max_document_seconds: float | None


class QualityFilters(beam.PTransform):
    """{"tables": Document Tables, "again": the same Tables read a second time} ->
    {KEPT: Tables, REJECTED: Tables}, and "cutoffs" (the perplexity cut-offs used, as one
    list) when the source has a perplexity filter.

    Percentile cut-offs need every document's perplexity before the first decision. They are
    computed from the second read ("again", scored for perplexity alone), so the documents
    themselves flow from the first read through scoring and deciding without ever being held
    all at once (a runner keeps a PCollection that waits for a side input in full); the price
    is scoring perplexity twice. Without percentiles, "again" is not needed."""

    def __init__(self, config: QualityFiltering):
        super().__init__()
        self.config = config

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        config = self.config
        filters = with_trained_classifier(config.filters, config.classifier)
        scored = inputs["tables"] | "Score" >> beam.ParDo(ScoreFn(filters))
        decide = DecideFn(filters, config.namespace, config.max_document_seconds)
        perplexity = next((f for f in filters if isinstance(f, PerplexityConfig)), None)
        if perplexity is None:
            outputs = scored | "Decide" >> beam.ParDo(decide, None).with_outputs(KEPT, REJECTED)
            return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]}
        pipeline = inputs["tables"].pipeline
        if perplexity.cutoffs is not None:
            cutoffs = pipeline | "FixedCutoffs" >> beam.Create([list(perplexity.cutoffs)])
        else:
            cutoffs = (
                inputs["again"]
                | "ScorePerplexity" >> beam.ParDo(ScoreFn([perplexity]))
                | "Perplexities" >> beam.FlatMap(_finite)
                | "Quantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES)
                | "Cutoffs"
                >> beam.Map(lambda q, p=perplexity.percentiles: cutoffs_from_quantiles(q, p))
            )
        statistics = cutoffs | "Statistics" >> beam.Map(lambda c: {PERPLEXITY_CUTOFFS: c})
        side = beam.pvalue.AsSingleton(statistics, default_value=None)
        outputs = scored | "Decide" >> beam.ParDo(decide, side).with_outputs(KEPT, REJECTED)
        return {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED], "cutoffs": cutoffs}

    @staticmethod
    def reads_twice(filters: list[FilterConfig]) -> bool:
        """Whether the filters need the second read ("again"): percentile cut-offs."""
        return any(isinstance(f, PerplexityConfig) and f.cutoffs is None for f in filters)
