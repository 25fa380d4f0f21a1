"""CCNet's perplexity filter (Wenzek et al. 2019): a KenLM n-gram model scores each document
after CCNet's normalization and SentencePiece tokenization; documents fall in the head, middle
or tail bucket by cut-offs at percentiles of the data (30th and 60th in CCNet).

The cut-offs are a statistic of the whole source: the quality stage computes them and hands
them to the filter with every document, under PERPLEXITY_CUTOFFS."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from filters.base import KEEP, Document, FilterConfig, LocalFile, Verdict, as_is, register

Bucket = Literal["head", "middle", "tail"]

# CCNet's table of Unicode punctuation and its ASCII replacement.
_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"',
    "１": '"', "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":",
    "？": "?", "！": "!", "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ",
    "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]",
    "％": "%", "►": "-",
}  # fmt: skip
_PUNCT_TABLE = str.maketrans(_PUNCT)
_NON_PRINTING_RE = re.compile("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]")
_DIGIT_RE = re.compile(r"\d")

PERPLEXITY_CUTOFFS = "perplexity_cutoffs"  # the document key of the source's (head, tail) cut-offs
Cutoffs = tuple[float, float]


@register
class PerplexityConfig(FilterConfig):
    """A KenLM model and the SentencePiece model it was trained with (CCNet publishes both per
    language: `.arpa.bin` and `.sp.model`)."""

    name: Literal["perplexity"] = "perplexity"
    model: str  # KenLM model (.arpa or KenLM binary): path, URI or http(s) URL
    tokenizer: str  # SentencePiece model: path, URI or http(s) URL
    keep: list[Bucket] = Field(default_factory=lambda: ["head", "middle"])
    percentiles: tuple[float, float] = (30.0, 60.0)  # CCNet: head < 30th <= middle < 60th
    # Fixed perplexity cut-offs instead of percentiles of the data (e.g. CCNet's published ones).
    cutoffs: tuple[float, float] | None = None
    files = ("model", "tokenizer")

    @model_validator(mode="after")
    def _ordered(self) -> PerplexityConfig:
        low, high = self.percentiles
        if not 0 < low < high < 100:
            raise ValueError("percentiles: two numbers with 0 < head < tail < 100")
        if self.cutoffs is not None and not 0 < self.cutoffs[0] < self.cutoffs[1]:
            raise ValueError("cutoffs: two perplexities with 0 < head < tail")
        if not self.keep:
            raise ValueError("keep: at least one of head, middle, tail")
        return self

    def build(self, local_file: LocalFile = as_is) -> PerplexityFilter:
        return PerplexityFilter(self, local_file)


def normalize_line(line: str) -> str:
    """CCNet's normalization: lower case, accents stripped, digits to 0, Unicode punctuation to
    ASCII, control characters removed."""
    line = line.strip().lower()
    if not line:
        return line
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = _DIGIT_RE.sub("0", line)
    return _NON_PRINTING_RE.sub("", line.translate(_PUNCT_TABLE))


class PerplexityScorer:
    """Document perplexity under a KenLM model, CCNet's way: each line normalized, split into
    SentencePiece pieces and scored with sentence boundaries; 10^(-sum log10 p / tokens)."""

    def __init__(self, model_path: str, tokenizer_path: str):
        import kenlm  # imported here: workers load the model once in DoFn.setup
        import sentencepiece as spm

        self.lm = kenlm.Model(model_path)
        self.sp = spm.SentencePieceProcessor(model_file=tokenizer_path)

    def perplexity(self, text: str) -> float:
        log_score, length = 0.0, 0
        for line in text.split("\n"):
            line = normalize_line(line)
            if not line:
                continue
            pieces = self.sp.encode(line, out_type=str)
            log_score += self.lm.score(" ".join(pieces), bos=True, eos=True)
            length += len(pieces) + 1  # + </s>
        if length == 0:
            return float("inf")
        return 10.0 ** (-log_score / length)

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        return [self.perplexity(t or "") for t in texts]


def bucket_of(perplexity: float, cutoffs: tuple[float, float]) -> Bucket:
    head, tail = cutoffs
    if perplexity < head:
        return "head"
    if perplexity < tail:
        return "middle"
    return "tail"


def perplexity_verdict(
    perplexity: float, cutoffs: tuple[float, float], keep: Sequence[str]
) -> Verdict:
    """Keep the document when its bucket is one of `keep`; a drop names bucket and cut-off."""
    bucket = bucket_of(perplexity, cutoffs)
    if bucket in keep:
        return KEEP
    if bucket == "tail":
        return Verdict(False, "tail", perplexity, ">=", cutoffs[1])
    if bucket == "head":
        return Verdict(False, "head", perplexity, "<", cutoffs[0])
    return Verdict(False, "middle", perplexity, ">=", cutoffs[0])


class PerplexityFilter:
    """Scores documents into the `perplexity` column; keeps those in the configured buckets of
    the source's cut-offs (a document without a score or cut-offs, as in an empty source, is
    kept: there is nothing to compare with)."""

    score_column = "perplexity"

    def __init__(self, config: PerplexityConfig, local_file: LocalFile):
        self.config = config
        self.local_file = local_file
        self.scorer: PerplexityScorer | None = None

    def load(self) -> None:
        if self.scorer is None:
            config = self.config
            self.scorer = PerplexityScorer(
                self.local_file(config.model), self.local_file(config.tokenizer)
            )

    def score_batch(self, texts: Sequence[str], ids: Sequence[str]) -> list[float | None]:
        self.load()
        return self.scorer.score_batch(texts)

    def __call__(self, doc: Document) -> Verdict:
        value, cutoffs = doc.get("perplexity"), doc.get(PERPLEXITY_CUTOFFS)
        if value is None or not cutoffs:
            return KEEP
        return perplexity_verdict(value, tuple(cutoffs), self.config.keep)


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
