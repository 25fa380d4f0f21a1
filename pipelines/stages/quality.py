"""quality: heuristic rules per document; the first failed rule is the recorded reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from filters.heuristics import check_quality
from pipelines.recipe import QualityConfig
from pipelines.stages.base import StageContext
from pipelines.stages.filtering import FilterStage, split_table


class QualityFn(beam.DoFn):
    def __init__(self, config: QualityConfig):
        self.config = config

    def process(self, table: pa.Table) -> Iterator[Any]:
        verdicts = [
            check_quality(text or "", self.config) for text in table.column("text").to_pylist()
        ]
        table = table.append_column(
            "word_count", pa.array([v.word_count for v in verdicts], pa.int32())
        )
        yield from split_table(
            table,
            [v.keep for v in verdicts],
            [v.reason for v in verdicts],
            [v.detail for v in verdicts],
            "quality",
        )


class QualityStage(FilterStage):
    name = "quality"
    upstream = "langid"

    def config(self, ctx: StageContext, source: str) -> Any:
        return ctx.recipe.quality_for(source).model_dump(mode="json")

    def make_fn(self, ctx: StageContext, source: str) -> beam.DoFn:
        return QualityFn(ctx.recipe.quality_for(source))
