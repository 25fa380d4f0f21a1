"""The Gopher quality and repetition rules (Rae et al. 2021, "Scaling Language Models", Appendix
A.1.1 and Table A1), with the published thresholds as defaults.

Each rule is a named check; a document is dropped by the first rule it fails, and the Verdict
carries the rule, the measured value and the threshold.
"""

from __future__ import annotations

from itertools import compress
from operator import not_
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
from filters.text import lines, paragraphs, split

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
    split_text = split(text)
    toks = split_text.all
    if not toks:
        return Verdict(False, "word_count", 0, "<", config.min_words)
    words = split_text.words
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
    # Tokens with a letter: the all-letter ones at C speed, the few others character by character
    # (a token with a letter is never all digits).
    all_letters = list(map(str.isalpha, toks))
    alpha = sum(all_letters) + sum(
        1 for t in compress(toks, map(not_, all_letters)) if len(t) > 1 and any(map(str.isalpha, t))
    )
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


def _ngram_hashes(word_ids: np.ndarray, n: int, starts: np.ndarray) -> np.ndarray:
    """One 64-bit hash per n-gram of word ids starting at `starts` (a polynomial hash,
    vectorized)."""
    hashes = np.zeros(len(starts), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            hashes = hashes * np.uint64(0x100000001B3) + word_ids[starts + k]
    return hashes


def _top_ngram(hashes: np.ndarray) -> tuple[int, int]:
    """(first position, count) of the most frequent n-gram; of equally frequent ones, the
    smallest hash."""
    ordered = np.sort(hashes)
    firsts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(firsts, len(ordered)))
    top = int(np.argmax(counts))
    return int(np.argmax(hashes == ordered[firsts[top]])), int(counts[top])


def _repeats(hashes: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the n-grams at `starts` (ascending): the starts of occurrences whose n-gram was seen
    earlier, and the starts of every occurrence of an n-gram seen more than once."""
    order = np.argsort(hashes, kind="stable")  # a group's occurrences stay in text order
    same = hashes[order[1:]] == hashes[order[:-1]]
    in_group = np.zeros(len(order), dtype=bool)
    in_group[1:] |= same
    in_group[:-1] |= same
    return np.sort(starts[order[1:][same]]), np.sort(starts[order[in_group]])


def _duplicate_ngram_chars(repeats: np.ndarray, prefix: np.ndarray, n: int) -> int:
    """Characters of the n-gram occurrences whose n-gram was seen earlier in the document,
    scanning left to right and skipping past each repeat (so no character counts twice);
    `prefix` holds the cumulative word lengths."""
    window_chars = prefix[repeats + n] - prefix[repeats]
    total, next_free = 0, -1
    for i, chars in zip(repeats.tolist(), window_chars.tolist(), strict=True):  # few
        if i >= next_free:
            total += chars
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
    words = split(text).all
    if len(words) < 2:
        return KEEP
    # Word ids in order of first appearance, the dictionary built and read at C speed.
    vocabulary = {word: index for index, word in enumerate(dict.fromkeys(words))}
    word_ids = np.fromiter(map(vocabulary.__getitem__, words), np.uint64, len(words))
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    every_start = np.arange(len(words), dtype=np.int64)
    for n, limit in sorted(config.max_top_ngram_char_fraction.items()):
        if len(words) < n:
            continue
        start, count = _top_ngram(_ngram_hashes(word_ids, n, every_start[: len(words) - n + 1]))
        # The n-gram as text ("w1 w2 ..."), times its count.
        top_chars = (int(lengths[start : start + n].sum()) + n - 1) * count
        verdict = drop_if_above(f"top_{n}gram_char_fraction", top_chars / n_chars, limit)
        if verdict:
            return verdict
    prefix = np.concatenate(([0], np.cumsum(lengths)))
    # Two occurrences of an n-gram begin with two occurrences of every shorter one: each longer
    # n looks only at the starts where the shorter one repeated.
    starts = every_start
    for n, limit in sorted(config.max_duplicate_ngram_char_fraction.items()):
        starts = starts[starts <= len(words) - n]
        if not len(starts):
            break
        repeats, starts = _repeats(_ngram_hashes(word_ids, n, starts), starts)
        repeated = _duplicate_ngram_chars(repeats, prefix, n)
        verdict = drop_if_above(f"duplicate_{n}gram_char_fraction", repeated / n_chars, limit)
        if verdict:
            return verdict
    return KEEP


def word_count(text: str) -> int:
    """Words (tokens with a letter or digit), as the quality rules count them."""
    return len(split(text).words)
