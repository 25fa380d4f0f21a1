"""The stage store: `<workdir>/<stage>/<source>/part-*.parquet`, rejects and `_MANIFEST.json`.

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
from typing import Any

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines import __version__

MANIFEST = "_MANIFEST.json"
ALL_SOURCES = "_all"  # the "source" of stages that run over every source at once


class StageStore:
    def __init__(self, workdir: str):
        self.workdir = workdir.rstrip("/")

    # -- locations -------------------------------------------------------------------------
    def dir(self, stage: str, source: str = ALL_SOURCES) -> str:
        return FileSystems.join(self.workdir, stage, source)

    def path(self, stage: str, source: str, *names: str) -> str:
        return FileSystems.join(self.dir(stage, source), *names)

    def parts(self, stage: str, source: str, suffix: str = ".parquet") -> str:
        """Glob of the documents a stage kept."""
        return self.path(stage, source, f"part-*{suffix}")

    def rejects(self, stage: str, source: str) -> str:
        """Glob of the documents a stage dropped."""
        return self.path(stage, source, "rejects", "part-*.parquet")

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
        directory = self.dir(stage, source)
        if FileSystems.exists(directory):
            FileSystems.delete([directory])

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


def ipc_rows(pattern: str) -> int:
    """Rows in every Arrow IPC file matching a glob (reads batch by batch, not whole files)."""
    total = 0
    for path in match_files(pattern):
        with FileSystems.open(path) as fh:
            reader = ipc.open_file(fh)
            total += sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return total
