"""GitHub files as the public BigQuery dataset exports them: JSON lines with `content`,
`repo_name`, `path` and `license`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import Record, register
from pipelines.sources.jsonl import read_json_lines, text_field


@register("github")
def read_github(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    def to_document(origin: str, obj: dict[str, Any]) -> Record:
        repo, file_path = obj.get("repo_name"), obj.get("path")
        if repo and file_path:
            origin = f"{repo}/{file_path}"
        meta = {k: obj[k] for k in ("repo_name", "path", "license") if obj.get(k)}
        return make_document(
            source, origin, text_field(obj, "content"), title=file_path, meta=meta or None
        )

    return read_json_lines(path, source, fh, limits, to_document)
