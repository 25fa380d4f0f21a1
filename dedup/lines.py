"""CCNet's line-level deduplication (Wenzek et al. 2019, section 3.1): lines normalized (lower
case, digits to 0, punctuation removed) and hashed; a line found in more than one document of
a group is removed from all of them (navigation, cookie notices, "share this article"), and a
document left too short is dropped."""

from __future__ import annotations

import re

import xxhash

_DIGIT_RE = re.compile(r"\d")
_PUNCT_RE = re.compile(r"[^\w\s]|_")
_SPACES_RE = re.compile(r"\s+")


def normalize_line(line: str) -> str:
    line = _DIGIT_RE.sub("0", line.lower())
    return _SPACES_RE.sub(" ", _PUNCT_RE.sub("", line)).strip()


def line_hash(line: str) -> int | None:
    """A 64-bit hash of the normalized line; None for a line with nothing left."""
    normalized = normalize_line(line)
    return xxhash.xxh3_64_intdigest(normalized.encode("utf-8")) if normalized else None


def document_line_hashes(text: str) -> set[int]:
    """The distinct line hashes of a document (each counts once per document)."""
    return {h for h in map(line_hash, text.split("\n")) if h is not None}


def remove_lines(text: str, duplicated: set[int]) -> str:
    """The document without its duplicated lines (blank lines kept where they separate)."""
    kept = [line for line in text.split("\n") if line_hash(line) not in duplicated]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")
