"""Beam glue shared by the stages: pipeline options from the recipe, Arrow IPC I/O, counters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from pipelines.recipe import Recipe


def pipeline_options(recipe: Recipe, extra_flags: Sequence[str] = ()) -> PipelineOptions:
    """The recipe's runner and options, then any Beam flags given on the command line."""
    flags = [f"--runner={recipe.runner.name}"]
    for key, value in recipe.runner.options.items():
        if isinstance(value, bool):
            flags.append(f"--{key}" if value else f"--no_{key}")  # Beam: --no_use_public_ips
        else:
            flags.append(f"--{key}={value}")
    return PipelineOptions([*flags, *extra_flags])


def in_one_process(options: PipelineOptions) -> bool:
    """Whether a pipeline runs on Beam's embedded runner with one worker (the default): there,
    spreading one file's records over workers gains nothing, and the runner would hold the
    whole shuffle in memory."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    workers = options.view_as(DirectOptions).direct_num_workers
    return runner in ("DirectRunner", "FnApiRunner") and workers == 1


class ArrowIpcSink(fileio.FileSink):
    """Writes pyarrow Tables into one Arrow IPC file per shard."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._writer: pa.ipc.RecordBatchFileWriter | None = None

    def open(self, fh) -> None:
        self._writer = pa.ipc.new_file(fh, self.schema)

    def write(self, table: pa.Table) -> None:
        assert self._writer is not None
        self._writer.write_table(table.cast(self.schema))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_arrow_ipc(path: str, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Record batches of one Arrow IPC file as Tables, one batch in memory at a time."""
    with FileSystems.open(path) as fh:
        reader = pa.ipc.open_file(fh)
        for i in range(reader.num_record_batches):
            table = pa.Table.from_batches([reader.get_batch(i)])
            yield table.select(list(columns)) if columns else table


class CountChars(beam.DoFn):
    """Passes Tables or row dicts through, counting their text characters in a Beam metric."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def setup(self) -> None:
        self.chars = beam.metrics.Metrics.counter(self.namespace, "kept_text_chars")

    def process(self, element: pa.Table | dict) -> Iterator[pa.Table | dict]:
        if isinstance(element, dict):
            self.chars.inc(len(element.get("text") or ""))
        elif element.num_rows:
            lengths = pc.utf8_length(element.column("text").fill_null(""))
            self.chars.inc(int(pc.sum(lengths).as_py() or 0))
        yield element
