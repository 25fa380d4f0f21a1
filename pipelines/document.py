"""The Document: one row per document, the same Arrow schema in every stage store.

Each stage adds columns to the schema of the stage before it; none rewrites `id`.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import xxhash

from pipelines.registry import spec

EXTRACT_FIELDS = [
    pa.field("id", pa.string(), nullable=False),  # stable: source + origin, never a run
    pa.field("source", pa.string(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("timestamp", pa.string()),
    pa.field("origin", pa.string()),  # file name and position inside it
    pa.field("meta", pa.string()),  # JSON object: format-specific metadata
]
LANGID_FIELDS = [pa.field("language", pa.string()), pa.field("language_score", pa.float32())]
# The model scores a quality filter fills in (filters.base.Scorer.score_column).
SCORE_FIELDS = [
    pa.field("perplexity", pa.float32()),  # CCNet's KenLM perplexity, when configured
    pa.field("quality_score", pa.float32()),  # the reference classifier's score, when configured
]
QUALITY_FIELDS = [pa.field("word_count", pa.int32()), *SCORE_FIELDS]
REJECT_FIELDS = [
    pa.field(
        "reason", pa.string(), nullable=False
    ),  # `<stage>:<rule>` or `<stage>:<filter>.<rule>`
    pa.field("detail", pa.string()),  # the measured value against the threshold, as text
    pa.field("duplicate_of", pa.string()),  # dedup: id of the copy that was kept
    pa.field("value", pa.float64()),  # filters: the measured value...
    pa.field("threshold", pa.float64()),  # ...and the threshold it failed
]

# The fields each stage adds to the documents it keeps; a stage not listed keeps its
# upstream's documents as they are (dedup; tokenize, whose rejects are dedup's documents).
_ADDED_FIELDS = {
    "extract": EXTRACT_FIELDS,
    "langid": LANGID_FIELDS,
    "quality": QUALITY_FIELDS,
}


def _fields(stage: str) -> list[pa.Field]:
    upstream = spec(stage).upstream
    return (_fields(upstream) if upstream else []) + _ADDED_FIELDS.get(stage, [])


def document_schema(stage: str) -> pa.Schema:
    """Schema of the documents a stage keeps."""
    return pa.schema(_fields(stage))


def reject_schema(stage: str) -> pa.Schema:
    """Schema of a stage's rejects: the document as it entered, plus why it was dropped."""
    return pa.schema(_fields(stage) + REJECT_FIELDS)


def token_schema(vocab_size: int) -> pa.Schema:
    """Schema of the tokenize stage's Arrow IPC files."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("num_tokens", pa.int32(), nullable=False),
            pa.field("tokens", pa.list_(token_dtype(vocab_size))),
        ]
    )


def token_dtype(vocab_size: int) -> pa.DataType:
    """uint16 when every id fits, else uint32."""
    return pa.uint16() if vocab_size <= 1 << 16 else pa.uint32()


def unit_hash(*parts: Any) -> float:
    """A deterministic number in [0, 1) from any values: sampling and shuffling without state."""
    return xxhash.xxh3_64_intdigest("\x1f".join(map(str, parts)).encode()) / 2**64


def make_id(source: str, origin: str) -> str:
    """A document id stable across runs and machines: the source plus a hash of the origin."""
    return f"{source}/{xxhash.xxh3_64_hexdigest(origin.encode('utf-8'))}"


def make_document(
    source: str,
    origin: str,
    text: str,
    *,
    url: str | None = None,
    title: str | None = None,
    timestamp: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A row of the extract schema."""
    return {
        "id": make_id(source, origin),
        "source": source,
        "text": text,
        "url": url,
        "title": title,
        "timestamp": timestamp,
        "origin": origin,
        "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else None,
    }


def with_rejection(
    row: dict[str, Any],
    reason: str,
    detail: str | None = None,
    duplicate_of: str | None = None,
    value: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """A reject row: the document plus the rule that dropped it."""
    return {
        **row,
        "reason": reason,
        "detail": detail,
        "duplicate_of": duplicate_of,
        "value": value,
        "threshold": threshold,
    }
