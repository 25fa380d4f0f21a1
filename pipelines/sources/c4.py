"""C4 as allenai/c4 publishes it: `*.json.gz` lines with `text`, `timestamp`, `url`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import Record, register
from pipelines.sources.jsonl import read_json_lines, string_field, with_text


@register("c4")
def read_c4(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    def to_document(origin: str, obj: dict[str, Any]) -> Record:
        url = string_field(obj, "url")
        # The URL identifies a C4 page; fall back to the line for files without one.
        doc = make_document(
            source,
            url or origin,
            "",
            url=url,
            timestamp=string_field(obj, "timestamp") or string_field(obj, "date"),
        )
        return with_text(doc, obj)

    return read_json_lines(path, source, fh, limits, to_document)
