"""GitHub files as the public BigQuery dataset exports them: JSON lines with `content`,
`repo_name`, `path` and `license`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pipelines.document import make_document
from pipelines.sources.base import Record, Rejected, register
from pipelines.sources.jsonl import json_objects, text_field


@register("github")
def read_github(path: str, source: str, fh: BinaryIO) -> Iterator[Record]:
    for item in json_objects(path, source, fh):
        if isinstance(item, Rejected):
            yield item
            continue
        origin, obj = item
        repo, file_path = obj.get("repo_name"), obj.get("path")
        if repo and file_path:
            origin = f"{repo}/{file_path}"
        meta = {k: obj[k] for k in ("repo_name", "path", "license") if obj.get(k)}
        yield make_document(
            source, origin, text_field(obj, "content"), title=file_path, meta=meta or None
        )
