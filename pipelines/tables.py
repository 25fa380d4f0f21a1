"""Per-row decisions over pyarrow Tables: the kept rows in the stage's schema, the rejected
ones with their reasons, as the tagged outputs `WriteStage` takes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow as pa

from pipelines.document import document_schema, reject_schema
from pipelines.store import KEPT, REJECTED


def split_table(
    table: pa.Table,
    keep: Sequence[bool],
    reasons: Sequence[str | None],
    details: Sequence[str | None],
    stage: str,
    values: Sequence[float | None] | None = None,
    thresholds: Sequence[float | None] | None = None,
) -> Iterator[beam.pvalue.TaggedOutput]:
    """Tagged kept/rejected Tables from one Table and a decision per row."""
    mask = pa.array(keep, pa.bool_())
    kept = table.filter(mask)
    if kept.num_rows:
        yield beam.pvalue.TaggedOutput(
            KEPT, kept.select(document_schema(stage).names).cast(document_schema(stage))
        )
    rejected = rejected_table(table, keep, reasons, details, stage, values, thresholds)
    if rejected is not None:
        yield beam.pvalue.TaggedOutput(REJECTED, rejected)


def rejected_table(
    table: pa.Table,
    keep: Sequence[bool],
    reasons: Sequence[str | None],
    details: Sequence[str | None],
    stage: str,
    values: Sequence[float | None] | None = None,
    thresholds: Sequence[float | None] | None = None,
) -> pa.Table | None:
    """The rows not kept, with their reasons, in the stage's reject schema (None if none)."""
    dropped = [i for i, k in enumerate(keep) if not k]
    if not dropped:
        return None
    rejected = table.take(pa.array(dropped, pa.int64()))
    rejected = rejected.append_column(
        "reason", pa.array([reasons[i] for i in dropped], pa.string())
    )
    rejected = rejected.append_column(
        "detail", pa.array([details[i] for i in dropped], pa.string())
    )
    rejected = rejected.append_column("duplicate_of", pa.nulls(len(dropped), pa.string()))
    for name, column in (("value", values), ("threshold", thresholds)):
        data = [column[i] for i in dropped] if column is not None else [None] * len(dropped)
        rejected = rejected.append_column(name, pa.array(data, pa.float64()))
    schema = reject_schema(stage)
    return rejected.select(schema.names).cast(schema)
