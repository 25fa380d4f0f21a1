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
    file_rejection,
    register,
)

_SNIFF_BYTES = 1 << 16


def binary_data(head: bytes) -> str | None:
    """Why the start of a text file is binary data instead (NUL bytes, or mostly bytes that
    are not UTF-8), or None."""
    if b"\0" in head:
        return f"NUL bytes in the first {len(head)} bytes"
    text = head.decode("utf-8", "replace")
    undecodable = text.count("\ufffd")
    if len(text) >= 64 and undecodable > 0.3 * len(text):
        return f"{undecodable} of the first {len(text)} characters are not UTF-8"
    return None


def json_objects(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[tuple[str, dict[str, Any]] | Rejected]:
    """(origin, object) per non-blank line; a line that is not a JSON object, or is larger
    than a document may be, is rejected and the file goes on. A file of binary data is not
    JSON Lines at all: one rejection for the whole file."""
    name = base_name(path)
    binary = binary_data(fh.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]) if hasattr(fh, "peek") else None
    if binary:
        yield file_rejection(path, source, "extract:wrong_format", f"not JSON Lines: {binary}")
        return
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
        except (json.JSONDecodeError, RecursionError) as exc:
            # RecursionError: thousands of nested brackets.
            yield Rejected(make_document(source, origin, ""), "extract:bad_json", str(exc))
            continue
        if not isinstance(obj, dict):
            kind = _kind(obj)
            yield Rejected(
                make_document(source, origin, ""), "extract:bad_json", f"{kind}, not an object"
            )
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


def _kind(value: Any) -> str:
    """What a JSON value is, with its article: "a number", "an object"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def text_field(obj: dict[str, Any], key: str = "text") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def string_field(obj: dict[str, Any], key: str) -> str | None:
    """An optional string (url, timestamp...): a value of another type counts as absent."""
    value = obj.get(key)
    return value if isinstance(value, str) else None


def with_text(doc: dict[str, Any], obj: dict[str, Any], key: str = "text") -> Record:
    """The document with its text from `obj[key]`, or its rejection when the field is missing
    or not a string."""
    value = obj.get(key)
    if value is None:
        return Rejected(doc, "extract:missing_field", f"no `{key}` field")
    if not isinstance(value, str):
        return Rejected(doc, "extract:wrong_type", f"`{key}` is {_kind(value)}, not a string")
    doc["text"] = value
    return doc


@register("jsonl")
def read_jsonl(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    def to_document(origin: str, obj: dict[str, Any]) -> Record:
        # A user-given id is the origin: it stays stable however the files are split.
        if obj.get("id") is not None:
            origin = str(obj["id"])
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else None
        doc = make_document(source, origin, "", url=string_field(obj, "url"), meta=meta)
        return with_text(doc, obj)

    return read_json_lines(path, source, fh, limits, to_document)
