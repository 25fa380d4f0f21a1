"""Exact deduplication on normalized text: a cheap 64-bit hash per document."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import xxhash

_SPACES_RE = re.compile(r"\s+")


def normalize_for_exact(text: str) -> str:
    """NFC, lower case, whitespace runs collapsed: copies that differ only in layout match."""
    return _SPACES_RE.sub(" ", unicodedata.normalize("NFC", text).lower()).strip()


def text_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(normalize_for_exact(text).encode("utf-8"))


def keep_order(doc: dict[str, Any]) -> tuple:
    """Which copy of a duplicate group survives: the longest text, then the smallest id.

    Deterministic whatever order the copies arrive in.
    """
    return (-len(doc.get("text") or ""), doc["id"])


def split_duplicates(docs: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(kept, removed) for a group of documents with the same normalized text."""
    ordered = sorted(docs, key=keep_order)
    return ordered[0], ordered[1:]
