"""The dedup stage's transforms over documents (row dicts): CCNet line dedup, exact dedup,
MinHash-LSH near-duplicate candidates and their verification, keep/remove rounds over the
verified edges, and the decisions joined back to the documents.

  LineDedup     (line hash, doc) -> GroupByKey -> lines in 2+ documents -> CoGroupByKey by id
  ExactDedup    (text hash, doc) -> GroupByKey -> the best copy by the keep order survives
  NearDuplicates doc -> shingles + MinHash -> (band, rows) buckets -> GroupByKey -> candidate
                pairs -> Distinct -> two CoGroupByKeys with the shingles -> verified edges
                -> per-document neighbourhoods (undecided nodes)
  KeepOrRemove  rounds of local decisions (one CoGroupByKey each), the rest finished in order
  ApplyNear     decisions joined back to the documents; exact copies repointed to survivors
No step holds more than one key's group: a bucket, a document's neighbourhood, a text hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from dedup.cluster import keep_priority
from dedup.exact import text_hash
from dedup.lines import document_line_hashes, remove_lines
from filters.gopher import word_count
from pipelines.document import unit_hash, with_rejection
from pipelines.store import KEPT, REJECTED


@dataclass(frozen=True)
class KeepOrder:
    """Which copy of a document survives: the rules in order, then the id."""

    rules: tuple[str, ...]  # "source_priority", "quality_score", "length"
    source_ranks: dict[str, int]  # earlier sources win under "source_priority"

    def priority(self, doc: dict[str, Any]) -> tuple:
        return keep_priority(doc, list(self.rules), self.source_ranks)


# -- line dedup (CCNet) -----------------------------------------------------------------------
@dataclass(frozen=True)
class LineDedupConfig:
    groups: int  # the source's documents fall into this many groups by id
    min_words: int  # documents shorter than this after the lines went are dropped
    namespace: str  # where removed_lines and documents_line_deduplicated are counted


class LineDedupFn(beam.DoFn):
    """(doc, duplicated line hashes) -> the document without them, or a rejection."""

    def __init__(self, config: LineDedupConfig):
        self.config = config

    def process(self, item: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[Any]:
        _, joined = item
        docs = list(joined["doc"])
        if not docs:
            return
        doc = docs[0]
        duplicated = set(joined["lines"])
        if not duplicated:
            yield doc
            return
        text = remove_lines(doc["text"] or "", duplicated)
        words = word_count(text)
        min_words, namespace = self.config.min_words, self.config.namespace
        if words < min_words:
            beam.metrics.Metrics.counter(namespace, "removed_lines").inc()
            yield beam.pvalue.TaggedOutput(
                REJECTED,
                with_rejection(
                    doc,
                    "dedup:lines_too_short",
                    f"{words} words left < {min_words} after {len(duplicated)} repeated lines went",
                    value=words,
                    threshold=min_words,
                ),
            )
            return
        beam.metrics.Metrics.counter(namespace, "documents_line_deduplicated").inc()
        yield {**doc, "text": text}


def _repeated_lines(item: tuple[tuple[int, int], Iterable[str]]) -> Iterator[tuple[str, int]]:
    (_, line), doc_ids = item
    ids = list(dict.fromkeys(doc_ids))
    if len(ids) > 1:
        for doc_id in ids:
            yield doc_id, line


class LineDedup(beam.PTransform):
    """Documents -> {KEPT, REJECTED}: lines that appear in more than one document of a group
    removed from each of them; documents left too short rejected."""

    def __init__(self, config: LineDedupConfig):
        super().__init__()
        self.config = config

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        groups = self.config.groups
        keyed = docs | "KeyById" >> beam.Map(lambda d: (d["id"], d))
        repeated = (
            docs
            | "LineHashes"
            >> beam.FlatMap(
                lambda d: (
                    ((int(unit_hash("line-group", d["id"]) * groups), h), d["id"])
                    for h in document_line_hashes(d["text"] or "")
                )
            )
            | "GroupLines" >> beam.GroupByKey()
            | "Repeated" >> beam.FlatMap(_repeated_lines)
        )
        out = (
            {"doc": keyed, "lines": repeated}
            | "JoinLines" >> beam.CoGroupByKey()
            | "RemoveLines"
            >> beam.ParDo(LineDedupFn(self.config)).with_outputs(REJECTED, main=KEPT)
        )
        return {KEPT: out[KEPT], REJECTED: out[REJECTED]}


# -- exact dedup ----------------------------------------------------------------------------------
def _exact_group(item: tuple[str, Iterable[dict[str, Any]]], order: KeepOrder) -> Iterator[Any]:
    _, docs = item
    ordered = sorted(docs, key=order.priority)
    yield ordered[0]
    for doc in ordered[1:]:
        yield beam.pvalue.TaggedOutput(
            REJECTED,
            with_rejection(
                doc, "dedup:exact", f"same text as {ordered[0]['id']}", ordered[0]["id"], 1.0, 1.0
            ),
        )


class ExactDedup(beam.PTransform):
    """Documents -> {KEPT, REJECTED}: of the documents with the same normalized text, the
    first in the keep order stays; the others name it in `duplicate_of`."""

    def __init__(self, order: KeepOrder):
        super().__init__()
        self.order = order

    def expand(self, docs: beam.PCollection) -> dict[str, beam.PCollection]:
        out = (
            docs
            | "KeyByText" >> beam.Map(lambda d: (text_hash(d["text"] or ""), d))
            | "GroupCopies" >> beam.GroupByKey()
            | "KeepBestCopy"
            >> beam.FlatMap(_exact_group, self.order).with_outputs(REJECTED, main=KEPT)
        )
        return {KEPT: out[KEPT], REJECTED: out[REJECTED]}


# -- near-duplicate decisions, joined back ---------------------------------------------------
class ApplyFn(beam.DoFn):
    """Joins the near-dedup decisions back to the documents."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def process(self, item) -> Iterator[Any]:
        _, joined = item
        docs = list(joined["doc"])
        if not docs:
            return
        doc = docs[0]
        decisions = [d for d in joined["decision"] if d is not None]
        if not decisions:
            yield doc
            return
        kept_id, similarity = decisions[0]
        yield beam.pvalue.TaggedOutput(
            REJECTED,
            with_rejection(
                doc,
                "dedup:near",
                f"jaccard {similarity:.3f} >= {self.threshold} with {kept_id} (its cluster)",
                kept_id,
                similarity,
                self.threshold,
            ),
        )


def _repoint(item) -> Iterator[dict[str, Any]]:
    _, joined = item
    decisions = [d for d in joined["decision"] if d is not None]
    for reject in joined["reject"]:
        if decisions:
            survivor, similarity = decisions[0]
            yield {
                **reject,
                "duplicate_of": survivor,
                "detail": f"same text as {reject['duplicate_of']}, itself a near copy "
                f"(jaccard {similarity:.3f}) of {survivor}",
                "value": similarity,
            }
        else:
            yield reject


class ApplyNear(beam.PTransform):
    """{"docs", "exact_rejects", "decisions"} -> {KEPT, REJECTED (near copies), "exact" (the
    exact rejects, those whose kept twin then went as a near copy naming the final survivor)}.
    `decisions` are (id, (kept id, similarity)) for removed documents, (id, None) for kept."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        decisions = inputs["decisions"]
        applied = (
            {
                "doc": inputs["docs"] | "DocById" >> beam.Map(lambda d: (d["id"], d)),
                "decision": decisions,
            }
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(ApplyFn(self.threshold)).with_outputs(REJECTED, main=KEPT)
        )
        exact = (
            {
                "reject": inputs["exact_rejects"]
                | "ExactByKept" >> beam.Map(lambda d: (d["duplicate_of"], d)),
                "decision": decisions,
            }
            | "JoinExact" >> beam.CoGroupByKey()
            | "Repoint" >> beam.FlatMap(_repoint)
        )
        return {KEPT: applied[KEPT], REJECTED: applied[REJECTED], "exact": exact}
