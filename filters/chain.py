"""A source's quality filters as one chain: scores first (word count, perplexity, classifier
score), then each filter in the recipe's order; the first that fails drops the document.

Pure Python over text: the `quality` stage wraps it in Beam, `explain-filters` calls it directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from filters.base import KEEP, Verdict
from filters.c4 import C4Config, C4Rules
from filters.gopher import (
    GopherQualityConfig,
    GopherRepetitionConfig,
    gopher_quality,
    gopher_repetition,
    word_count,
)
from filters.perplexity import PerplexityConfig, PerplexityScorer, perplexity_verdict
from filters.quality_classifier import (
    ReferenceClassifier,
    ReferenceClassifierConfig,
    classifier_verdict,
)

Cutoffs = tuple[float, float]


@dataclass(frozen=True)
class Scores:
    perplexity: float | None = None
    quality_score: float | None = None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict  # KEEP, or the failed rule with its value and threshold
    filter: str | None  # the filter that dropped the document
    text: str  # the text after line-level cleaning (C4), else the input

    @property
    def reason(self) -> str | None:
        """`<filter>.<rule>`, or the rule alone when no single filter dropped the document
        (its time budget ran out)."""
        if self.verdict.keep:
            return None
        return f"{self.filter}.{self.verdict.rule}" if self.filter else self.verdict.rule


class FilterChain:
    """`configs` are the source's filters with model locations readable here (local paths);
    `open_file` reads other files they name (the C4 bad-words list); `classifier` is the loaded
    reference classifier when the chain has one (it may be a cross-fitted pair)."""

    def __init__(
        self,
        configs: Sequence[Any],
        open_file: Callable[[str], bytes] | None = None,
        classifier: ReferenceClassifier | None = None,
    ):
        self.configs = list(configs)
        self._perplexity: PerplexityScorer | None = None
        self._classifier = classifier
        self._rules: dict[int, Callable[[str], Verdict]] = {}
        for i, config in enumerate(self.configs):
            if isinstance(config, C4Config):
                words = None
                if config.bad_words:
                    reader = open_file or (lambda p: open(p, "rb").read())
                    words = [
                        w.strip()
                        for w in reader(config.bad_words).decode("utf-8").splitlines()
                        if w.strip()
                    ]
                self._rules[i] = C4Rules(config, words)
            elif isinstance(config, GopherQualityConfig):
                self._rules[i] = lambda text, c=config: gopher_quality(text, c)
            elif isinstance(config, GopherRepetitionConfig):
                self._rules[i] = lambda text, c=config: gopher_repetition(text, c)

    @property
    def perplexity_config(self) -> PerplexityConfig | None:
        return next((c for c in self.configs if isinstance(c, PerplexityConfig)), None)

    @property
    def classifier_config(self) -> ReferenceClassifierConfig | None:
        return next((c for c in self.configs if isinstance(c, ReferenceClassifierConfig)), None)

    def load_models(self) -> None:
        """Load the KenLM/SentencePiece and classifier models the chain's filters use."""
        pp = self.perplexity_config
        if pp is not None and self._perplexity is None:
            self._perplexity = PerplexityScorer(pp.model, pp.tokenizer)
        rc = self.classifier_config
        if rc is not None and self._classifier is None:
            if rc.model is None:
                raise ValueError("the reference classifier has no model to load")
            self._classifier = ReferenceClassifier([rc.model])

    def score_batch(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[Scores]:
        """Model scores; `ids` let a cross-fitted classifier score its training documents
        with the model that did not see them."""
        self.load_models()
        n = len(texts)
        perplexities: Sequence[float | None] = (
            self._perplexity.score_batch(texts) if self._perplexity else [None] * n
        )
        classifier: Sequence[float | None] = (
            self._classifier.score_batch(texts, ids) if self._classifier else [None] * n
        )
        return [Scores(p, q) for p, q in zip(perplexities, classifier, strict=True)]

    def verdicts(
        self, text: str, scores: Scores, cutoffs: Cutoffs | None, stop_at_first: bool = True
    ) -> list[tuple[str, Verdict, str]]:
        """(filter name, verdict, text after it) for each filter in order, up to the first
        drop (or through all of them, for explaining)."""
        out = []
        for i, config in enumerate(self.configs):
            if i in self._rules:
                verdict = self._rules[i](text)
                if verdict.keep and verdict.text is not None:
                    text = verdict.text
            elif isinstance(config, PerplexityConfig):
                value = scores.perplexity
                if value is None or cutoffs is None:
                    verdict = KEEP  # nothing to compare with (an empty source)
                else:
                    verdict = perplexity_verdict(value, cutoffs, config.keep)
            elif isinstance(config, ReferenceClassifierConfig):
                value = scores.quality_score
                verdict = KEEP if value is None else classifier_verdict(value, config.threshold)
            else:  # pragma: no cover - the recipe's union lists every filter
                raise TypeError(f"unknown filter {config!r}")
            out.append((config.name, verdict, text))
            if stop_at_first and not verdict.keep:
                break
        return out

    def decide(self, text: str, scores: Scores, cutoffs: Cutoffs | None = None) -> Decision:
        steps = self.verdicts(text, scores, cutoffs)
        if steps and not steps[-1][1].keep:
            name, verdict, _ = steps[-1]
            return Decision(verdict, name, text)
        return Decision(KEEP, None, steps[-1][2] if steps else text)


def cutoffs_from_quantiles(quantiles: Sequence[float], percentiles: Cutoffs) -> Cutoffs | None:
    """Perplexity cut-offs at two percentiles from evenly spaced quantiles (min..max)."""
    values = [q for q in quantiles if q is not None and math.isfinite(q)]
    if len(values) < 2:
        return None
    steps = len(values) - 1

    def at(p: float) -> float:
        x = p / 100 * steps
        lo = int(math.floor(x))
        hi = min(lo + 1, steps)
        return values[lo] + (values[hi] - values[lo]) * (x - lo)

    return at(percentiles[0]), at(percentiles[1])


__all__ = ["Decision", "FilterChain", "Scores", "cutoffs_from_quantiles", "word_count"]
