"""The dedup stage's transforms: CCNet line dedup, exact dedup, and the decisions applied to the
documents (near dedup's shuffles are in near_dedup.py).

Documents never travel through a shuffle. A document is named by its place in the upstream
store, a doc key (file number << 32 | row); every GroupByKey carries such keys with hashes,
signatures, priorities and decisions. A step that needs the text reads the upstream files
again, one file per element, with the compact notes about that file joined to it by file
number (`{"file": ..., <notes>: ...} | CoGroupByKey`). On the in-process runner, where every
shuffle is held in memory, this keeps the stage's memory to the size of those records.

  LineDedup      per file: packed (line hash, doc) arrays by (source, line group, shard)
                 -> GroupByKey -> hashes in 2+ documents -> (file, (rows, hashes)) notes
  Survey         per file with its line notes, each document's text after line dedup once:
                 "cuts" (which lines go, or too short) and "exact" ((group, text hash),
                 (priority, doc)); later readings apply the cuts by line number
  ExactDedup     exact records -> GroupByKey -> each copy but the best, naming the best
  Verdicts       exact copies (repointed when their survivor went as a near copy) and near
                 copies, as (file, (row, verdict)) notes
  ApplyVerdicts  per file with its cuts and verdicts: the rows read again, each kept (its
                 repeated lines removed) or rejected with its reason, one output per source
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np

from dedup.cluster import keep_priority
from dedup.exact import text_hash
from dedup.lines import (
    document_line_hashes,
    repeated_entries,
    repeated_line_numbers,
    without_line_numbers,
)
from filters.gopher import word_count
from pipelines.document import unit_hash, with_rejection
from pipelines.store import (
    KEPT,
    REJECTED,
    ROW_BITS,
    doc_key,
    file_of,
    iter_rows,
    row_of,
)

_PACKED_ENTRIES = 1 << 20  # (line hash, doc) entries one record packs (16 bytes each)


@dataclass(frozen=True)
class KeepOrder:
    """Which copy of a document survives: the rules in order, then the id."""

    rules: tuple[str, ...]  # "source_priority", "quality_score", "length"
    source_ranks: dict[str, int]  # earlier sources win under "source_priority"

    def priority(self, doc: dict[str, Any]) -> tuple:
        return keep_priority(doc, list(self.rules), self.source_ranks)


@dataclass(frozen=True)
class DedupSource:
    name: str
    group: int  # index of its dedup group in DedupFiles.groups
    lines: bool  # CCNet line dedup on
    namespace: str  # where its removals are counted


@dataclass(frozen=True)
class DedupGroup:
    sources: tuple[str, ...]  # deduplicated against each other
    threshold: float  # near dedup's Jaccard threshold
    namespace: str  # where candidate_pairs and verified_pairs are counted


@dataclass(frozen=True)
class DedupFiles:
    """The upstream files one dedup run reads, numbered across all its sources (so that the
    groups of a run share every transform), and what each belongs to."""

    paths: tuple[str, ...]
    file_sources: tuple[int, ...]  # per file: index into `sources`
    sources: tuple[DedupSource, ...]
    groups: tuple[DedupGroup, ...]
    shards: int = 1  # shuffle keys per line group and per LSH band (more for larger inputs)

    def source_of(self, key: int) -> DedupSource:
        return self.sources[self.file_sources[file_of(key)]]

    def group_index(self, key: int) -> int:
        return self.source_of(key).group

    def group_of(self, key: int) -> DedupGroup:
        return self.groups[self.group_index(key)]

    def numbered(self) -> list[tuple[int, None]]:
        """(file number, None) per file: what the per-file joins are keyed by."""
        return [(i, None) for i in range(len(self.paths))]


@dataclass(frozen=True)
class LineDedupConfig:
    groups: int  # a source's documents fall into this many groups by id
    min_words: int  # documents shorter than this after the lines went are dropped


PRIORITY_COLUMNS = ("id", "source", "text", "quality_score")  # what KeepOrder reads

# A document's cut: (repeated lines, words left, numbers of the lines to remove); the
# document is dropped when fewer than `min_words` are left.
Cut = tuple[int, int, tuple[int, ...]]


def line_notes(notes: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[int, set[int]]:
    """row -> the hashes of its lines found in other documents, from a file's line notes."""
    out: dict[int, set[int]] = {}
    for rows, hashes in notes:
        for row, line in zip(rows.tolist(), hashes.tolist(), strict=True):
            out.setdefault(row, set()).add(line)
    return out


def cut_of(text: str, duplicated: set[int], min_words: int) -> tuple[Cut, str]:
    """The cut of a document with repeated lines, and its text without them."""
    numbers = repeated_line_numbers(text, duplicated)
    after = without_line_numbers(text, set(numbers))
    words = word_count(after)
    return (len(duplicated), words, tuple(numbers) if words >= min_words else ()), after


def read_file(
    files: DedupFiles, file_no: int, columns: Sequence[str] | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(doc key, row) for every row of one of the files, read again."""
    for row, doc in enumerate(iter_rows(files.paths[file_no], columns)):
        yield doc_key(file_no, row), doc


def cut_documents(
    files: DedupFiles, lines: LineDedupConfig, item, columns: Sequence[str] | None
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any] | None, Cut | None]]:
    """For a file joined with its "cuts": (doc key, row as read, row after line dedup or
    None when line dedup drops it, its cut or None) per row."""
    file_no, joined = item
    cuts = dict(joined.get("cuts", ()))
    for key, doc in read_file(files, file_no, columns):
        cut = cuts.get(row_of(key))
        if cut is None:
            yield key, doc, doc, None
        elif cut[1] < lines.min_words:
            yield key, doc, None, cut
        else:
            yield (
                key,
                doc,
                {**doc, "text": without_line_numbers(doc["text"] or "", set(cut[2]))},
                cut,
            )


# -- line dedup (CCNet) -----------------------------------------------------------------------
class LineHashesFn(beam.DoFn):
    """(file number, _) -> ((source, line group, shard), (line hashes, doc keys)) arrays:
    each document's distinct line hashes, packed per key instead of one record a line."""

    def __init__(self, files: DedupFiles, config: LineDedupConfig):
        self.files, self.config = files, config

    def process(self, item: tuple[int, Any]) -> Iterator[Any]:
        file_no = item[0]
        source = self.files.file_sources[file_no]
        groups = self.config.groups
        packs: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        entries = 0
        with_lines = self.files.sources[source].lines
        for key, doc in read_file(self.files, file_no, ["id", "text"]) if with_lines else ():
            group = int(unit_hash("line-group", doc["id"]) * groups)
            distinct = document_line_hashes(doc["text"] or "")
            hashes, keys = packs.setdefault(group, ([], []))
            hashes.append(np.fromiter(distinct, dtype=np.uint64, count=len(distinct)))
            keys.append(np.full(len(distinct), key, dtype=np.uint64))
            entries += len(distinct)
            if entries >= _PACKED_ENTRIES:
                yield from self._packed(source, packs)
                packs, entries = {}, 0
        yield from self._packed(source, packs)

    def _packed(self, source: int, packs) -> Iterator[Any]:
        shards = np.uint64(self.files.shards)
        for group, (hashes, keys) in packs.items():
            hashes, keys = np.concatenate(hashes), np.concatenate(keys)
            shard_of = hashes % shards
            for shard in np.unique(shard_of).tolist():
                mine = shard_of == shard
                yield (source, group, shard), (hashes[mine], keys[mine])


def _repeated_lines(item) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """Of one shuffle key's (hash, doc) entries, those of lines in 2+ documents, as one
    (file, (rows, hashes)) note per file."""
    _, packs = item
    packs = list(packs)
    hashes = np.concatenate([p[0] for p in packs])
    keys = np.concatenate([p[1] for p in packs])
    mask = repeated_entries(hashes)
    hashes, keys = hashes[mask], keys[mask]
    order = np.argsort(keys, kind="stable")
    hashes, keys = hashes[order], keys[order]
    boundaries = np.flatnonzero(np.diff(keys >> np.uint64(ROW_BITS))) + 1
    for piece_keys, piece_hashes in zip(
        np.split(keys, boundaries), np.split(hashes, boundaries), strict=True
    ):
        if len(piece_keys):
            rows = (piece_keys & np.uint64((1 << ROW_BITS) - 1)).astype(np.uint32)
            yield int(piece_keys[0]) >> ROW_BITS, (rows, piece_hashes)


class LineDedup(beam.PTransform):
    """(file number, None) of every file -> (file number, (rows, line hashes)) notes: the
    lines that appear in more than one document of a line group of a source."""

    def __init__(self, files: DedupFiles, config: LineDedupConfig):
        super().__init__()
        self.files, self.config = files, config

    def expand(self, numbered: beam.PCollection) -> beam.PCollection:
        return (
            numbered
            | "LineHashes" >> beam.ParDo(LineHashesFn(self.files, self.config))
            | "GroupLines" >> beam.GroupByKey()
            | "Repeated" >> beam.FlatMap(_repeated_lines)
        )


# -- one pass over the text after line dedup ----------------------------------------------------
@dataclass(frozen=True)
class SurveyConfig:
    lines: LineDedupConfig
    order: KeepOrder
    exact: bool  # exact dedup on: text hashes


class SurveyFn(beam.DoFn):
    """A file joined with its line notes -> its documents' cuts (file, (row, cut)), and
    exact records ((group, text hash), (priority, doc key)) under "exact"."""

    def __init__(self, files: DedupFiles, config: SurveyConfig):
        self.files, self.config = files, config

    def process(self, item) -> Iterator[Any]:
        file_no, joined = item
        lines, order = self.config.lines, self.config.order
        repeated = line_notes(joined.get("lines", ()))
        columns = PRIORITY_COLUMNS if self.config.exact else ("id", "text")
        # Without line notes or exact dedup there is nothing to learn from this file.
        documents = read_file(self.files, file_no, columns) if repeated or self.config.exact else ()
        for key, doc in documents:
            duplicated = repeated.get(row_of(key))
            if duplicated:
                cut, text = cut_of(doc["text"] or "", duplicated, lines.min_words)
                yield file_no, (row_of(key), cut)
                if cut[1] < lines.min_words:
                    continue  # too short: line dedup drops it
                doc = {**doc, "text": text}
            if self.config.exact:
                group = self.files.group_index(key)
                exact_key = (group, text_hash(doc["text"] or ""))
                yield beam.pvalue.TaggedOutput("exact", (exact_key, (order.priority(doc), key)))


class Survey(beam.PTransform):
    """{"file": every (file number, None), "lines": line notes} -> {"cuts", "exact"} (see
    SurveyFn): what later steps need from line and exact dedup, in one reading."""

    def __init__(self, files: DedupFiles, config: SurveyConfig):
        super().__init__()
        self.fn = SurveyFn(files, config)

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        out = (
            inputs
            | "JoinFiles" >> beam.CoGroupByKey()
            | "Survey" >> beam.ParDo(self.fn).with_outputs("exact", main="cuts")
        )
        return {"cuts": out["cuts"], "exact": out["exact"]}


# -- exact dedup ----------------------------------------------------------------------------------
def _exact_copies(item) -> Iterator[tuple[int, int, str]]:
    """(doc key, its survivor's key, its survivor's id) for every copy but the best."""
    _, copies = item
    ordered = sorted(copies)
    best_priority, best = ordered[0]
    for _, key in ordered[1:]:
        yield key, best, best_priority[-1]  # a priority ends with the document's id


class ExactDedup(beam.PTransform):
    """Exact records ((group, text hash), (priority, doc key)) -> (doc key, survivor key,
    survivor id) for each document whose normalized text a better one in the keep order
    has too."""

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        return (
            records
            | "GroupCopies" >> beam.GroupByKey()
            | "AllButBest" >> beam.FlatMap(_exact_copies)
        )


# -- verdicts, applied to the rows read again ----------------------------------------------------
def _repointed(item) -> Iterator[tuple[int, tuple[int, tuple]]]:
    _, joined = item
    decisions = [d for d in joined["decision"] if d is not None]
    final = decisions[0] if decisions else None  # (kept id, similarity) when it went
    for key, survivor_id in joined["copy"]:
        yield file_of(key), (row_of(key), ("exact", survivor_id, final))


def _near_verdict(item) -> Iterator[tuple[int, tuple[int, tuple]]]:
    key, removed = item
    if removed is not None:
        yield file_of(key), (row_of(key), ("near", *removed))


class Verdicts(beam.PTransform):
    """{"exact": exact copies, "decisions": near decisions (doc key, (kept id, similarity) or
    None), optional} -> (file number, (row, verdict)): ("exact", survivor id, None or the
    survivor's own (kept id, similarity) when it went as a near copy), ("near", kept id,
    similarity)."""

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        copies = inputs["exact"]
        if "decisions" not in inputs:
            return copies | "ExactVerdicts" >> beam.Map(
                lambda c: (file_of(c[0]), (row_of(c[0]), ("exact", c[2], None)))
            )
        decisions = inputs["decisions"]
        exact = (
            {
                "copy": copies | "BySurvivor" >> beam.Map(lambda c: (c[1], (c[0], c[2]))),
                "decision": decisions,
            }
            | "JoinSurvivors" >> beam.CoGroupByKey()
            | "Repoint" >> beam.FlatMap(_repointed)
        )
        near = decisions | "NearVerdicts" >> beam.FlatMap(_near_verdict)
        return (exact, near) | "AllVerdicts" >> beam.Flatten()


class ApplyVerdictsFn(beam.DoFn):
    """A file with its cuts and verdicts -> its rows, kept (without their repeated lines)
    under `kept<source>` or rejected under `rejected<source>`."""

    def __init__(self, files: DedupFiles, lines: LineDedupConfig):
        self.files, self.lines = files, lines

    def process(self, item) -> Iterator[Any]:
        files = self.files
        verdicts = dict(item[1].get("verdicts", ()))
        source_index = files.file_sources[item[0]]
        source = files.sources[source_index]
        kept, rejected = f"{KEPT}{source_index}", f"{REJECTED}{source_index}"
        count = beam.metrics.Metrics.counter
        for key, doc, after, cut in cut_documents(files, self.lines, item, None):
            if after is None:
                count(source.namespace, "removed_lines").inc()
                yield beam.pvalue.TaggedOutput(rejected, self.too_short(doc, cut))
                continue
            if cut is not None:
                count(source.namespace, "documents_line_deduplicated").inc()
            verdict = verdicts.get(row_of(key))
            if verdict is None:
                yield beam.pvalue.TaggedOutput(kept, after)
            elif verdict[0] == "exact":
                count(source.namespace, "removed_exact").inc()
                yield beam.pvalue.TaggedOutput(rejected, exact_reject(after, *verdict[1:]))
            else:
                count(source.namespace, "removed_near").inc()
                threshold = files.groups[source.group].threshold
                yield beam.pvalue.TaggedOutput(
                    rejected, near_reject(after, *verdict[1:], threshold)
                )

    def too_short(self, doc: dict[str, Any], cut: Cut) -> dict[str, Any]:
        """The reject of a document too short once its repeated lines went (as it came in)."""
        repeated, words, _ = cut
        min_words = self.lines.min_words
        detail = f"{words} words left < {min_words} after {repeated} repeated lines went"
        return with_rejection(
            doc, "dedup:lines_too_short", detail, value=words, threshold=min_words
        )


def exact_reject(doc: dict[str, Any], survivor: str, final: tuple[str, float] | None) -> dict:
    """An exact copy's reject row; `final` when its survivor itself went as a near copy."""
    row = with_rejection(doc, "dedup:exact", f"same text as {survivor}", survivor, 1.0, 1.0)
    if final is None:
        return row
    kept, similarity = final
    detail = f"same text as {survivor}, itself a near copy (jaccard {similarity:.3f}) of {kept}"
    return {**row, "duplicate_of": kept, "detail": detail, "value": similarity}


def near_reject(doc: dict[str, Any], kept: str, similarity: float, threshold: float) -> dict:
    detail = f"jaccard {similarity:.3f} >= {threshold} with {kept} (its cluster)"
    return with_rejection(doc, "dedup:near", detail, kept, similarity, threshold)


class ApplyVerdicts(beam.PTransform):
    """{"file": every (file number, None), "cuts": cuts, "verdicts": verdicts} ->
    {f"kept{i}", f"rejected{i}"} for source i of the files."""

    def __init__(self, files: DedupFiles, lines: LineDedupConfig):
        super().__init__()
        self.files, self.lines = files, lines

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        tags = [f"{side}{i}" for i in range(len(self.files.sources)) for side in (KEPT, REJECTED)]
        out = (
            inputs
            | "JoinFiles" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(ApplyVerdictsFn(self.files, self.lines)).with_outputs(*tags)
        )
        return {tag: out[tag] for tag in tags}
