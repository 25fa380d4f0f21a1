"""What the filtering stages (langid, quality) share: Parquet tables in, each row kept or
rejected with a reason, both sides written back as Parquet."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.beam_io import CountChars
from pipelines.document import document_schema, reject_schema
from pipelines.stages.base import Stage, StageContext
from pipelines.store import match_files

KEPT, REJECTED = "kept", "rejected"


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


def read_tables(
    pipeline: beam.Pipeline,
    ctx: StageContext,
    stage: str,
    source: str,
    columns: Sequence[str] | None = None,
) -> beam.PCollection:
    """The Parquet documents an upstream stage kept, as pyarrow Tables."""
    pattern = ctx.store.parts(stage, source)
    label = f"{source}/Read{stage.capitalize()}"
    if not match_files(pattern):
        return pipeline | label >> beam.Create([])
    return pipeline | label >> beam.io.ReadFromParquetBatched(pattern, columns=columns)


def write_tables(ctx: StageContext, stage: str, source: str, outputs) -> None:
    (
        outputs[KEPT]
        | f"{source}/CountKept" >> beam.ParDo(CountChars(f"{stage}/{source}"))
        | f"{source}/WriteKept"
        >> beam.io.WriteToParquetBatched(
            FileSystems.join(ctx.store.dir(stage, source), "part"),
            document_schema(stage),
            file_name_suffix=".parquet",
        )
    )
    (
        outputs[REJECTED]
        | f"{source}/WriteRejects"
        >> beam.io.WriteToParquetBatched(
            FileSystems.join(ctx.store.dir(stage, source), "rejects", "part"),
            reject_schema(stage),
            file_name_suffix=".parquet",
        )
    )


class FilterStage(Stage):
    """A stage that reads its upstream's documents and runs one table DoFn over them."""

    def make_fn(self, ctx: StageContext, source: str) -> beam.DoFn:
        raise NotImplementedError

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        assert self.upstream is not None
        outputs = read_tables(pipeline, ctx, self.upstream, source) | f"{source}/{self.name}" >> (
            beam.ParDo(self.make_fn(ctx, source)).with_outputs(KEPT, REJECTED)
        )
        write_tables(ctx, self.name, source, outputs)
