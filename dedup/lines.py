"""CCNet's line-level deduplication (Wenzek et al. 2019, section 3.1): lines normalized (lower
case, digits to 0, punctuation removed) and hashed; a line found in more than one document of
a group is removed from all of them (navigation, cookie notices, "share this article"), and a
document left too short is dropped."""

from __future__ import annotations

import re

import numpy as np
import xxhash

_DIGIT_RE = re.compile(r"\d")
_PUNCT_RE = re.compile(r"[^\w\s]|_")
_SPACES_RE = re.compile(r"\s+")


def normalize_line(line: str) -> str:
    line = _DIGIT_RE.sub("0", line.lower())
    return _SPACES_RE.sub(" ", _PUNCT_RE.sub("", line)).strip()


def _ascii_tables() -> tuple[bytes, bytes]:
    """A bytes.translate table and the bytes it deletes that normalize an ASCII line as
    normalize_line does, character by character: lower case, digits to 0, punctuation and
    "_" deleted; every white space character becomes a space (bytes.split() then collapses
    them, as it does not know all of them as separators)."""
    table, delete = bytearray(range(256)), bytearray()
    for code in range(128):
        normalized = _PUNCT_RE.sub("", _DIGIT_RE.sub("0", chr(code).lower()))
        if not normalized:
            delete.append(code)
        else:
            table[code] = 32 if normalized.isspace() else ord(normalized)
    return bytes(table), bytes(delete)


_ASCII_TABLE, _ASCII_DELETE = _ascii_tables()


def normalized_line_bytes(line: str) -> bytes:
    """normalize_line(line) as UTF-8, with a byte-level path (several times faster) for
    ASCII lines, most lines of most corpora."""
    if line.isascii():
        return b" ".join(line.encode().translate(_ASCII_TABLE, _ASCII_DELETE).split())
    return normalize_line(line).encode("utf-8")


def line_hash(line: str) -> int | None:
    """A 64-bit hash of the normalized line; None for a line with nothing left."""
    normalized = normalized_line_bytes(line)
    return xxhash.xxh3_64_intdigest(normalized) if normalized else None


def document_line_hashes(text: str) -> set[int]:
    """The distinct line hashes of a document (each counts once per document)."""
    return {h for h in map(line_hash, text.split("\n")) if h is not None}


def repeated_line_numbers(text: str, duplicated: set[int]) -> list[int]:
    """The numbers (from 0, lines split on "\\n") of the lines whose hash is in `duplicated`."""
    return [i for i, line in enumerate(text.split("\n")) if line_hash(line) in duplicated]


def without_line_numbers(text: str, numbers: set[int]) -> str:
    """The text without those lines (blank lines kept where they separate)."""
    kept = [line for i, line in enumerate(text.split("\n")) if i not in numbers]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def remove_lines(text: str, duplicated: set[int]) -> str:
    """The document without its duplicated lines (blank lines kept where they separate)."""
    return without_line_numbers(text, set(repeated_line_numbers(text, duplicated)))


def repeated_entries(hashes: np.ndarray) -> np.ndarray:
    """Which entries of a (line hash per document) array hold a line found in more than one
    document: every document lists each of its line hashes once, so these are the hashes
    that occur more than once (a boolean mask)."""
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return counts[inverse] > 1
