"""JSON Lines: one object per line with `text` and optional `id`, `url`, `meta`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Record,
    Rejected,
    base_name,
    bounded_lines,
    decode_text,
    register,
)


def json_objects(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[tuple[str, dict[str, Any]] | Rejected]:
    """(origin, object) per non-blank line; a line that is not a JSON object, or is larger
    than a document may be, is rejected and the file goes on."""
    name = base_name(path)
    # JSON escapes can double a text's size: allow twice the document limit per line.
    for line_no, line in enumerate(bounded_lines(fh, 2 * limits.max_document_bytes), start=1):
        origin = f"{name}:{line_no}"
        if line is None:
            yield Rejected(
                make_document(source, origin, ""),
                "extract:too_large",
                f"line over {2 * limits.max_document_bytes} bytes",
            )
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(decode_text(line))
        except json.JSONDecodeError as exc:
            yield Rejected(make_document(source, origin, ""), "extract:bad_json", str(exc))
            continue
        if not isinstance(obj, dict):
            yield Rejected(make_document(source, origin, ""), "extract:bad_json", "not an object")
            continue
        yield origin, obj


def read_json_lines(
    path: str,
    source: str,
    fh: BinaryIO,
    limits: ExtractConfig,
    to_document: Callable[[str, dict[str, Any]], Record],
) -> Iterator[Record]:
    """Documents from a JSON Lines file: `to_document(origin, object)` per good line."""
    for item in json_objects(path, source, fh, limits):
        yield item if isinstance(item, Rejected) else to_document(*item)


def text_field(obj: dict[str, Any], key: str = "text") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


@register("jsonl")
def read_jsonl(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    def to_document(origin: str, obj: dict[str, Any]) -> Record:
        # A user-given id is the origin: it stays stable however the files are split.
        if obj.get("id") is not None:
            origin = str(obj["id"])
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else None
        return make_document(source, origin, text_field(obj), url=obj.get("url"), meta=meta)

    return read_json_lines(path, source, fh, limits, to_document)
