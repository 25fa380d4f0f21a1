"""C4 as allenai/c4 publishes it: `*.json.gz` lines with `text`, `timestamp`, `url`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pipelines.document import make_document
from pipelines.sources.base import Record, Rejected, register
from pipelines.sources.jsonl import json_objects, text_field


@register("c4")
def read_c4(path: str, source: str, fh: BinaryIO) -> Iterator[Record]:
    for item in json_objects(path, source, fh):
        if isinstance(item, Rejected):
            yield item
            continue
        origin, obj = item
        url = obj.get("url")
        # The URL identifies a C4 page; fall back to the line for files without one.
        yield make_document(
            source,
            url or origin,
            text_field(obj),
            url=url,
            timestamp=obj.get("timestamp") or obj.get("date"),
        )
