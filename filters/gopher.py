"""The Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", Appendix
A.1.1 and Table A1), with the published thresholds as defaults.

Each rule is a named check; a document is dropped by the first rule it fails, and the Verdict
carries the rule, the measured value and the threshold.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from filters.base import (
    KEEP,
    Filter,
    FilterConfig,
    LocalFile,
    Verdict,
    as_is,
    drop_if_above,
    drop_if_below,
    register,
)
from filters.text import is_word, lines, paragraphs, tokens

# Gopher: a document must contain at least two of these English words.
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@register
class GopherQualityConfig(FilterConfig):
    """Thresholds of Gopher's quality filter; `null` disables a rule."""

    name: Literal["gopher_quality"] = "gopher_quality"
    min_words: int | None = 50  # Gopher: 50 to 100,000 words
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3  # Gopher: mean word length 3 to 10 characters
    max_mean_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # Gopher: '#' or ellipsis per word
    max_bullet_lines_ratio: float | None = 0.9  # Gopher: lines starting with a bullet
    max_ellipsis_lines_ratio: float | None = 0.3  # Gopher: lines ending with an ellipsis
    min_alpha_words_ratio: float | None = 0.8  # Gopher: words with an alphabetic character
    min_stop_words: int | None = 2  # Gopher: at least two of STOP_WORDS
    stop_words: list[str] = Field(default_factory=lambda: list(STOP_WORDS))

    def build(self, local_file: LocalFile = as_is) -> Filter:
        return lambda doc: gopher_quality(doc["text"], self)


def gopher_quality(text: str, config: GopherQualityConfig) -> Verdict:
    """Gopher's quality rules, in the published order."""
    toks = tokens(text)
    if not toks:
        return Verdict(False, "word_count", 0, "<", config.min_words)
    words = [t for t in toks if is_word(t)]
    n_words = len(words)
    verdict = drop_if_below("word_count", n_words, config.min_words) or drop_if_above(
        "word_count", n_words, config.max_words
    )
    if verdict:
        return verdict
    mean_length = sum(map(len, words)) / n_words if n_words else 0.0
    verdict = drop_if_below(
        "mean_word_length", mean_length, config.min_mean_word_length
    ) or drop_if_above("mean_word_length", mean_length, config.max_mean_word_length)
    if verdict:
        return verdict
    n_tokens = len(toks)
    verdict = drop_if_above(
        "hash_ratio", text.count("#") / n_tokens, config.max_symbol_word_ratio
    ) or drop_if_above(
        "ellipsis_ratio",
        (text.count("...") + text.count("\u2026")) / n_tokens,
        config.max_symbol_word_ratio,
    )
    if verdict:
        return verdict
    all_lines = text.splitlines() or [""]
    bullets = sum(1 for line in all_lines if line.lstrip().startswith(("\u2022", "-")))
    ellipses = sum(1 for line in all_lines if line.rstrip().endswith(("...", "\u2026")))
    verdict = drop_if_above(
        "bullet_lines_ratio", bullets / len(all_lines), config.max_bullet_lines_ratio
    ) or drop_if_above(
        "ellipsis_lines_ratio", ellipses / len(all_lines), config.max_ellipsis_lines_ratio
    )
    if verdict:
        return verdict
    alpha = sum(1 for t in toks if not t.isdigit() and any(c.isalpha() for c in t))
    verdict = drop_if_below("alpha_words_ratio", alpha / n_tokens, config.min_alpha_words_ratio)
    if verdict:
        return verdict
    if config.min_stop_words is not None:
        found = len(set(config.stop_words).intersection(toks))
        verdict = drop_if_below("stop_words", found, config.min_stop_words)
        if verdict:
            return verdict
    return KEEP


@register
class GopherRepetitionConfig(FilterConfig):
    """Thresholds of Gopher's repetition filter (Table A1); `null` disables a rule."""

    name: Literal["gopher_repetition"] = "gopher_repetition"
    max_duplicate_line_fraction: float | None = 0.3
    max_duplicate_paragraph_fraction: float | None = 0.3
    max_duplicate_line_char_fraction: float | None = 0.2
    max_duplicate_paragraph_char_fraction: float | None = 0.2
    # n -> max fraction of characters in the most frequent n-gram
    max_top_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16}
    )
    # n -> max fraction of characters in n-grams that occur more than once
    max_duplicate_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )

    def build(self, local_file: LocalFile = as_is) -> Filter:
        return lambda doc: gopher_repetition(doc["text"], self)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items seen before, their characters)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _ngram_hashes(word_ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit hash per n-gram of word ids (a polynomial rolling hash, vectorized)."""
    count = len(word_ids) - n + 1
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            hashes = hashes * np.uint64(0x100000001B3) + word_ids[k : k + count]
    return hashes


def _duplicate_ngram_chars(hashes: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """Characters of the n-gram occurrences whose n-gram was seen earlier in the document,
    scanning left to right and skipping past each repeat (so no character counts twice)."""
    _, first = np.unique(hashes, return_index=True)
    is_first = np.zeros(len(hashes), dtype=bool)
    is_first[first] = True
    repeats = np.flatnonzero(~is_first)
    if not len(repeats):
        return 0
    # Character count of every n-gram window: prefix sums of word lengths.
    prefix = np.concatenate(([0], np.cumsum(lengths)))
    window_chars = prefix[n:] - prefix[:-n]
    total, next_free = 0, -1
    for i in repeats.tolist():  # only the repeats: few in normal text
        if i >= next_free:
            total += int(window_chars[i])
            next_free = i + n
    return total


def gopher_repetition(text: str, config: GopherRepetitionConfig) -> Verdict:
    """Gopher's repetition rules: duplicate lines and paragraphs, frequent and repeated n-grams."""
    if not text:
        return Verdict(False, "empty")
    n_chars = len(text)
    paras = paragraphs(text)
    count, chars = _duplicates(paras)
    verdict = drop_if_above(
        "duplicate_paragraph_fraction", count / len(paras), config.max_duplicate_paragraph_fraction
    ) or drop_if_above(
        "duplicate_paragraph_char_fraction",
        chars / n_chars,
        config.max_duplicate_paragraph_char_fraction,
    )
    if verdict:
        return verdict
    all_lines = lines(text)
    count, chars = _duplicates(all_lines)
    verdict = drop_if_above(
        "duplicate_line_fraction", count / len(all_lines), config.max_duplicate_line_fraction
    ) or drop_if_above(
        "duplicate_line_char_fraction", chars / n_chars, config.max_duplicate_line_char_fraction
    )
    if verdict:
        return verdict
    words = tokens(text)
    if len(words) < 2:
        return KEEP
    vocabulary: dict[str, int] = {}
    word_ids = np.fromiter(
        (vocabulary.setdefault(w, len(vocabulary)) for w in words), np.uint64, len(words)
    )
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    for n, limit in sorted(config.max_top_ngram_char_fraction.items()):
        if len(words) < n:
            continue
        hashes = _ngram_hashes(word_ids, n)
        values, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        top = int(np.argmax(counts))
        start = int(first[top])
        # The n-gram as text ("w1 w2 ..."), times its count.
        top_chars = (int(lengths[start : start + n].sum()) + n - 1) * int(counts[top])
        verdict = drop_if_above(f"top_{n}gram_char_fraction", top_chars / n_chars, limit)
        if verdict:
            return verdict
    for n, limit in sorted(config.max_duplicate_ngram_char_fraction.items()):
        if len(words) < n:
            continue
        repeated = _duplicate_ngram_chars(_ngram_hashes(word_ids, n), lengths, n)
        verdict = drop_if_above(f"duplicate_{n}gram_char_fraction", repeated / n_chars, limit)
        if verdict:
            return verdict
    return KEEP


def word_count(text: str) -> int:
    """Words (tokens with a letter or digit), as the quality rules count them."""
    return sum(1 for t in tokens(text) if is_word(t))
