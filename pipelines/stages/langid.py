"""langid: fastText lid.176 language and score on every document; the source's policy decides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from filters.langid import LanguageIdentifier, language_decision
from pipelines.assets import local_copy, model_location
from pipelines.lid_model import resolve_model_path
from pipelines.stage import Stage, StageContext
from pipelines.store import KEPT, REJECTED, ReadStage, WriteStage
from pipelines.tables import RowDecisions, split_table


class LangIdFn(beam.DoFn):
    def __init__(
        self, model_path: str, languages: list[str] | None, min_score: float, batch_size: int
    ):
        self.model_path = model_path
        self.languages = languages
        self.min_score = min_score
        self.batch_size = batch_size

    def setup(self) -> None:
        # Once per worker: the model is loaded here, never shipped with the pipeline.
        self.identifier = LanguageIdentifier(local_copy(self.model_path))

    def process(self, table: pa.Table) -> Iterator[Any]:
        texts = table.column("text").to_pylist()
        predictions: list[tuple[str, float]] = []
        for start in range(0, len(texts), self.batch_size):
            predictions.extend(self.identifier.predict(texts[start : start + self.batch_size]))
        table = table.append_column("language", pa.array([p[0] for p in predictions], pa.string()))
        table = table.append_column(
            "language_score", pa.array([p[1] for p in predictions], pa.float32())
        )
        verdicts = [
            language_decision(lang, score, self.languages, self.min_score)
            for lang, score in predictions
        ]
        reasons = [None if v.keep else f"langid:{v.rule}" for v in verdicts]
        # The measured score; a threshold only where the score is what failed.
        yield from split_table(table, RowDecisions.of(verdicts, reasons), "langid")


class LangIdStage(Stage):
    name = "langid"

    def config(self, ctx: StageContext, source: str) -> Any:
        spec = ctx.recipe.sources[source]
        return {
            "languages": spec.languages,
            "min_language_score": spec.min_language_score,
            "model": ctx.recipe.langid.model or "lid.176.ftz",
        }

    def prepare(self, ctx: StageContext, sources: list[str]) -> str:
        """Where the workers read the model (a URL is fetched once, here)."""
        configured = ctx.recipe.langid.model
        if configured:
            return model_location(ctx, configured, "langid.model")
        return resolve_model_path(None)

    def expand(
        self, pipeline: beam.Pipeline, ctx: StageContext, source: str, prepared: str
    ) -> None:
        spec = ctx.recipe.sources[source]
        identify = LangIdFn(
            prepared, spec.languages, spec.min_language_score, ctx.recipe.langid.batch_size
        )
        outputs = (
            pipeline
            | f"{source}/Read" >> ReadStage(ctx.store, self.upstream, source)
            | f"{source}/langid" >> beam.ParDo(identify).with_outputs(KEPT, REJECTED)
        )
        {KEPT: outputs[KEPT], REJECTED: outputs[REJECTED]} | f"{source}/Write" >> WriteStage(
            ctx.store, self.name, source, "tables"
        )
