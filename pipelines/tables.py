"""Per-row decisions over pyarrow Tables: the kept rows in the stage's schema, the rejected
ones with their reasons, as the tagged outputs `WriteStage` takes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

from filters.base import Verdict
from pipelines.document import document_schema, reject_schema
from pipelines.store import KEPT, REJECTED


@dataclass(frozen=True)
class RowDecisions:
    """A decision per row of a Table: kept or not, and for the rows not kept the reason
    (`<stage>:<rule>`), the detail, and the measured value and threshold where there are some."""

    keep: Sequence[bool]
    reasons: Sequence[str | None]
    details: Sequence[str | None]
    values: Sequence[float | None] | None = None
    thresholds: Sequence[float | None] | None = None

    @classmethod
    def of(cls, verdicts: Sequence[Verdict], reasons: Sequence[str | None]) -> RowDecisions:
        """From filter verdicts, with the reason each dropped row is recorded under."""
        return cls(
            [v.keep for v in verdicts],
            reasons,
            [v.detail for v in verdicts],
            [v.value for v in verdicts],
            [v.threshold for v in verdicts],
        )


def split_table(
    table: pa.Table, decisions: RowDecisions, stage: str
) -> Iterator[beam.pvalue.TaggedOutput]:
    """Tagged kept/rejected Tables from one Table and a decision per row."""
    kept = table.filter(pa.array(decisions.keep, pa.bool_()))
    if kept.num_rows:
        schema = document_schema(stage)
        yield beam.pvalue.TaggedOutput(KEPT, kept.select(schema.names).cast(schema))
    rejected = rejected_table(table, decisions, stage)
    if rejected is not None:
        yield beam.pvalue.TaggedOutput(REJECTED, rejected)


def rejected_table(table: pa.Table, decisions: RowDecisions, stage: str) -> pa.Table | None:
    """The rows not kept, with their reasons, in the stage's reject schema (None if none)."""
    dropped = [i for i, k in enumerate(decisions.keep) if not k]
    if not dropped:
        return None
    rejected = table.take(pa.array(dropped, pa.int64()))
    for name, column, kind in (
        ("reason", decisions.reasons, pa.string()),
        ("detail", decisions.details, pa.string()),
        ("duplicate_of", None, pa.string()),
        ("value", decisions.values, pa.float64()),
        ("threshold", decisions.thresholds, pa.float64()),
    ):
        data = [column[i] for i in dropped] if column is not None else [None] * len(dropped)
        rejected = rejected.append_column(name, pa.array(data, kind))
    schema = reject_schema(stage)
    return rejected.select(schema.names).cast(schema)
