"""Exact deduplication on normalized text: a cheap 64-bit hash per document."""

from __future__ import annotations

import re
import unicodedata

import xxhash

_SPACES_RE = re.compile(r"\s+")


def normalize_for_exact(text: str) -> str:
    """NFC, lower case, whitespace runs collapsed: copies that differ only in layout match."""
    return _SPACES_RE.sub(" ", unicodedata.normalize("NFC", text).lower()).strip()


def text_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(normalize_for_exact(text).encode("utf-8"))
