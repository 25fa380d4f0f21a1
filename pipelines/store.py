"""The stage store: `<workdir>/<stage>/<source>/part-*.parquet`, rejects and `_MANIFEST.json`.

The only code that knows this layout: stages read an upstream stage's output with `ReadStage`
and write theirs with `WriteStage`; the flows ask `StageStore` where things are.

All I/O goes through Beam's FileSystems so that a workdir can be a local path or any URI a
Beam filesystem serves (gs://, s3://, hdfs://). A stage is finished exactly when its manifest
exists: the manifest is deleted before a stage reruns and written after every output file has
been committed, so a killed run never leaves a half stage that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from pipelines import __version__
from pipelines.beam_io import ArrowIpcSink, CountChars, read_arrow_ipc
from pipelines.document import document_schema, reject_schema

MANIFEST = "_MANIFEST.json"
ALL_SOURCES = "_all"  # the "source" of stages that run over every source at once
_PART = "part"  # kept output: part-*.parquet (documents) or part-*.arrow (token rows)
_REJECTS = "rejects"  # rejected documents, with their reasons: rejects/part-*.parquet
_SUFFIX = {"rows": ".parquet", "tables": ".parquet", "tokens": ".arrow"}
# Manifest key of a stage that kept its input as it was without copying it: the stage whose
# files hold its documents (see StageStore.kept_by).
PASSTHROUGH = "passthrough"


class StageStore:
    def __init__(self, workdir: str):
        self.workdir = workdir.rstrip("/")

    # -- locations -------------------------------------------------------------------------
    def dir(self, stage: str, source: str = ALL_SOURCES) -> str:
        return FileSystems.join(self.workdir, stage, source)

    def path(self, stage: str, source: str, *names: str) -> str:
        return FileSystems.join(self.dir(stage, source), *names)

    def parts(self, stage: str, source: str, suffix: str = ".parquet") -> str:
        """Glob of the documents a stage kept (in the files of the stage it passed its input
        through from, when it did)."""
        return self.path(self.kept_by(stage, source), source, f"{_PART}-*{suffix}")

    def kept_by(self, stage: str, source: str) -> str:
        """The stage whose files hold what `stage` kept for `source`: the stage itself, or,
        when its manifest says it passed its input through unchanged, that input's stage."""
        manifest = self.read_manifest(stage, source)
        while manifest is not None and manifest.get(PASSTHROUGH):
            stage = manifest[PASSTHROUGH]
            manifest = self.read_manifest(stage, source)
        return stage

    def rejects(self, stage: str, source: str) -> str:
        """Glob of the documents a stage dropped."""
        return self.path(stage, source, _REJECTS, f"{_PART}-*.parquet")

    def mix_dir(self) -> str:
        """Where the mix stage commits its shard versions (see pipelines/shards.py)."""
        return self.dir("mix")

    def tokenizer_dir(self) -> str:
        """Where train-tokenizer writes tokenizer.model and the Hugging Face files."""
        return self.dir("train-tokenizer")

    def tokenizer_model(self) -> str:
        return FileSystems.join(self.tokenizer_dir(), "tokenizer.model")

    def eval_index(self) -> str:
        """The evaluation examples' n-grams, written by decontaminate's driver for its workers."""
        return self.path("decontaminate", ALL_SOURCES, "eval_index.npz")

    # -- manifests -------------------------------------------------------------------------
    def read_manifest(self, stage: str, source: str = ALL_SOURCES) -> dict[str, Any] | None:
        """A stage's manifest, or None when it has not finished (a manifest that does not
        parse, from a crash of an older version or a damaged disk, counts as none)."""
        path = self.path(stage, source, MANIFEST)
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path) as fh:
            try:
                return json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return None

    def is_current(self, stage: str, source: str, fingerprint: str) -> bool:
        manifest = self.read_manifest(stage, source)
        return manifest is not None and manifest.get("fingerprint") == fingerprint

    def forget(self, stage: str, source: str = ALL_SOURCES) -> None:
        """Delete a stage's manifest: the stage reads as unfinished."""
        manifest = self.path(stage, source, MANIFEST)
        if FileSystems.exists(manifest):
            FileSystems.delete([manifest])

    def clear(self, stage: str, source: str = ALL_SOURCES) -> None:
        """Forget a stage's output: the manifest goes first, so the stage reads as unfinished."""
        self.forget(stage, source)
        delete_tree(self.dir(stage, source))

    def write_manifest(self, stage: str, source: str, manifest: dict[str, Any]) -> dict[str, Any]:
        manifest = {"stage": stage, "source": source, "code_version": __version__, **manifest}
        manifest.setdefault("finished_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        self.write_bytes(self.path(stage, source, MANIFEST), data)
        return manifest

    # -- reading outputs -------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file or nothing: into a temporary name, then renamed into place (a
        crash or a full disk never leaves a file cut short under its real name)."""
        temporary = f"{path}.partial-{uuid.uuid4().hex[:8]}"
        try:
            with FileSystems.create(temporary) as fh:
                fh.write(data)
            if FileSystems.exists(path):
                FileSystems.delete([path])
            FileSystems.rename([temporary], [path])
        except BaseException:
            with contextlib.suppress(Exception):
                FileSystems.delete([temporary])
            raise

    def read_bytes(self, path: str) -> bytes:
        with FileSystems.open(path) as fh:
            return fh.read()


def delete_tree(directory: str) -> None:
    """A folder and everything in it: a real folder on a local disk, every object under the
    prefix on an object store (gs://, s3://), where folders do not exist and `exists` is never
    true of one."""
    if FileSystems.exists(directory):
        FileSystems.delete([directory])
    inside = match_files(FileSystems.join(directory, "**"))
    if inside:
        FileSystems.delete(inside)


def match_files(pattern: str) -> list[str]:
    """Sorted paths matching a glob; an empty list when nothing matches."""
    result = FileSystems.match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def file_metadata(pattern: str) -> list[tuple[str, int, float]]:
    """(path, size_bytes, last_updated) for every file matching a glob, sorted by path."""
    result = FileSystems.match([pattern])[0]
    return sorted(
        (m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in result.metadata_list
    )


def parquet_rows(pattern: str) -> int:
    """Rows in every Parquet file matching a glob, from the footers alone."""
    total = 0
    for path in match_files(pattern):
        with FileSystems.open(path) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def reject_reasons(pattern: str) -> dict[str, int]:
    """How many rejects each reason accounts for."""
    counts: Counter[str] = Counter()
    for path in match_files(pattern):
        with FileSystems.open(path) as fh:
            column = pq.read_table(fh, columns=["reason"]).column("reason")
        counts.update(column.to_pylist())
    return dict(sorted(counts.items()))


def file_problems(pattern: str) -> list[tuple[str, str]]:
    """(reason, detail) of the rejects that stand for an input file or a damaged part of one
    (origin `<name>#file`, or `<name>#file@<offset>`)."""
    problems = []
    for path in match_files(pattern):
        with FileSystems.open(path) as fh:
            table = pq.read_table(fh, columns=["origin", "reason", "detail"])
        for row in table.to_pylist():
            if "#file" in (row["origin"] or ""):
                problems.append((row["reason"], row["detail"] or ""))
    return sorted(problems)


# A row's place in a stage's files (file number << 32 | row): what shuffles carry instead of
# the row, which is read again where it is needed.
ROW_BITS = 32


def doc_key(file_no: int, row: int) -> int:
    return (file_no << ROW_BITS) | row


def file_of(key: int) -> int:
    return key >> ROW_BITS


def row_of(key: int) -> int:
    return key & ((1 << ROW_BITS) - 1)


def iter_rows(
    path: str, columns: Sequence[str] | None = None, batch_rows: int = 256
) -> Iterator[dict[str, Any]]:
    """The rows of one Parquet file as dicts, in the file's order, a batch at a time (memory
    bounded by a batch, not the file): the same values ReadStage(as_rows=True) gives. With
    `columns`, only those of them the file has."""
    with FileSystems.open(path) as fh:
        # Page by page (no pre-buffering of whole column chunks): a large row group of text
        # is never all in memory.
        parquet = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
        if columns is not None:
            names = set(parquet.schema_arrow.names)
            columns = [c for c in columns if c in names]
        batches = parquet.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
        for batch in batches:
            yield from batch.to_pylist()


def ipc_rows(pattern: str) -> int:
    """Rows in every Arrow IPC file matching a glob (reads batch by batch, not whole files)."""
    total = 0
    for path in match_files(pattern):
        with FileSystems.open(path) as fh:
            reader = ipc.open_file(fh)
            total += sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return total


# -- Beam: how every stage reads its input and writes its output ----------------------------
KEPT, REJECTED = "kept", "rejected"


class ReadStage(beam.PTransform):
    """What an upstream stage kept for one source: pyarrow Tables (`as_rows=False`, optionally
    only some `columns`), row dicts (`as_rows=True`), or token Tables of the tokenize stage
    (`tokens=True`). Nothing when the stage kept nothing."""

    def __init__(
        self,
        store: StageStore,
        stage: str,
        source: str,
        *,
        columns: list[str] | None = None,
        as_rows: bool = False,
        tokens: bool = False,
    ):
        super().__init__()
        self.pattern = store.parts(stage, source, ".arrow" if tokens else ".parquet")
        self.columns = columns
        self.as_rows = as_rows
        self.tokens = tokens

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        files = match_files(self.pattern)
        if self.tokens:
            return (
                pbegin
                | "ListFiles" >> beam.Create(files)
                | "ReadTokens" >> beam.FlatMap(read_arrow_ipc, columns=self.columns)
            )
        if not files:
            return pbegin | "Nothing" >> beam.Create([])
        if self.as_rows:
            return pbegin | "ReadRows" >> beam.io.ReadFromParquet(self.pattern)
        return pbegin | "ReadTables" >> beam.io.ReadFromParquetBatched(
            self.pattern, columns=self.columns
        )


class WriteStage(beam.PTransform):
    """A stage's output for one source, from `{KEPT: ..., REJECTED: ...}`: the kept documents
    (row dicts or Tables, `kind` "rows" or "tables") as `part-*.parquet` in the stage's schema,
    counted in `kept_text_chars`, or token Tables (`kind` "tokens", with their `schema`) as
    `part-*.arrow`; the rejects as `rejects/part-*.parquet`, in the same kind as the kept.
    More streams of a side go under keys that start with its name (`"kept/assembled"`)."""

    def __init__(
        self,
        store: StageStore,
        stage: str,
        source: str,
        kind: str = "rows",
        schema: pa.Schema | None = None,
    ):
        super().__init__()
        self.directory = store.dir(stage, source)
        self.stage = stage
        self.source = source
        self.kind = kind
        self.schema = schema or document_schema(stage)

    def expand(self, outputs: dict[str, beam.PCollection]) -> None:
        kept = _merged(outputs, KEPT, "MergeDocs")
        rejected = _merged(outputs, REJECTED, "MergeRejects")
        if self.kind == "tokens":
            kept | "WriteTokens" >> fileio.WriteToFiles(
                path=self.directory,
                file_naming=fileio.default_file_naming(prefix=_PART, suffix=".arrow"),
                sink=lambda _destination, schema=self.schema: ArrowIpcSink(schema),
            )
            rejects_as = "tables"
        else:
            (
                kept
                | "CountKept" >> beam.ParDo(CountChars(f"{self.stage}/{self.source}"))
                | "WriteKept"
                >> _parquet_writer(self.kind, FileSystems.join(self.directory, _PART), self.schema)
            )
            rejects_as = self.kind
        rejected | "WriteRejects" >> _parquet_writer(
            rejects_as, FileSystems.join(self.directory, _REJECTS, _PART), reject_schema(self.stage)
        )


# Rows are written in row groups of about this much Arrow data: a writer holds one row group in
# memory, and the next stage reads (and its runner splits work) a row group at a time, so small
# groups keep every stage's memory flat and give a second worker something to take. Tables are
# written as they come, one row group each: a stage's tables are the row groups it read.
ROW_GROUP_BYTES = 4 << 20


def _parquet_writer(kind: str, prefix: str, schema: pa.Schema) -> beam.PTransform:
    if kind == "rows":
        return beam.io.WriteToParquet(
            prefix, schema, row_group_buffer_size=ROW_GROUP_BYTES, file_name_suffix=".parquet"
        )
    return beam.io.WriteToParquetBatched(prefix, schema, file_name_suffix=".parquet")


def _merged(outputs: dict[str, beam.PCollection], side: str, label: str) -> beam.PCollection:
    streams = [pc for key, pc in outputs.items() if key == side or key.startswith(side + "/")]
    if len(streams) == 1:
        return streams[0]
    return tuple(streams) | label >> beam.Flatten()
