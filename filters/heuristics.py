"""Heuristic quality rules (a first subset of the Gopher and C4 rules).

Each rule is a named check with its published threshold; `check_quality` applies them in order
and returns the first one a document fails, so every drop carries the rule and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.recipe import QualityConfig

_WORD_RE = re.compile(r"\S+")
_ALPHA_RE = re.compile(r"[^\W\d_]")
_LOREM_RE = re.compile(r"lorem ipsum", re.IGNORECASE)


@dataclass(frozen=True)
class QualityVerdict:
    keep: bool
    word_count: int
    reason: str | None = None  # `quality:<rule>` when dropped
    detail: str | None = None  # the measured value against the threshold


def check_quality(text: str, config: QualityConfig) -> QualityVerdict:
    words = _WORD_RE.findall(text)
    n = len(words)

    def drop(rule: str, detail: str) -> QualityVerdict:
        return QualityVerdict(False, n, f"quality:{rule}", detail)

    if not config.enabled:
        return QualityVerdict(True, n)
    if n < config.min_words:
        return drop("min_words", f"{n} < {config.min_words}")
    if n > config.max_words:
        return drop("max_words", f"{n} > {config.max_words}")
    mean_length = sum(len(w) for w in words) / n
    if mean_length < config.min_mean_word_length:
        return drop("mean_word_length", f"{mean_length:.2f} < {config.min_mean_word_length}")
    if mean_length > config.max_mean_word_length:
        return drop("mean_word_length", f"{mean_length:.2f} > {config.max_mean_word_length}")
    symbols = text.count("#") + text.count("...") + text.count("\u2026")
    if symbols / n > config.max_symbol_word_ratio:
        return drop("symbol_word_ratio", f"{symbols / n:.3f} > {config.max_symbol_word_ratio}")
    alpha = sum(1 for w in words if _ALPHA_RE.search(w)) / n
    if alpha < config.min_alpha_word_fraction:
        return drop("alpha_words", f"{alpha:.2f} < {config.min_alpha_word_fraction}")
    lorem = len(_LOREM_RE.findall(text))
    if lorem > config.max_lorem_ipsum:
        return drop("lorem_ipsum", f"{lorem} occurrences")
    return QualityVerdict(True, n)
