"""dedup: exact duplicates on normalized text, across the whole source (a GroupByKey on the
text hash, so no worker holds more than one group)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from dedup.exact import split_duplicates, text_hash
from pipelines.document import with_rejection
from pipelines.stages.base import Stage, StageContext
from pipelines.stages.extract import REJECTS, write_documents
from pipelines.store import match_files


def resolve_group(group: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[Any]:
    digest, docs = group
    kept, removed = split_duplicates(docs)
    yield kept
    for doc in removed:
        yield beam.pvalue.TaggedOutput(
            REJECTS, with_rejection(doc, "dedup:exact", digest[:16], duplicate_of=kept["id"])
        )


class DedupStage(Stage):
    name = "dedup"
    upstream = "quality"

    def config(self, ctx: StageContext, source: str) -> Any:
        return {
            "method": "exact",
            "normalization": "nfc-lower-collapse-spaces",
            "keep": "longest,id",
        }

    def expand(self, pipeline: beam.Pipeline, ctx: StageContext, source: str) -> None:
        pattern = ctx.store.parts("quality", source)
        if match_files(pattern):
            docs = pipeline | f"{source}/ReadQuality" >> beam.io.ReadFromParquet(pattern)
        else:
            docs = pipeline | f"{source}/ReadQuality" >> beam.Create([])
        outputs = (
            docs
            | f"{source}/KeyByTextHash" >> beam.Map(lambda d: (text_hash(d["text"] or ""), d))
            | f"{source}/GroupCopies" >> beam.GroupByKey()
            | f"{source}/KeepOne" >> beam.FlatMap(resolve_group).with_outputs(REJECTS, main="kept")
        )
        write_documents(ctx, self.name, source, [outputs["kept"]], [outputs[REJECTS]])
