"""Write a back-off n-gram language model in the ARPA format that KenLM loads.

KenLM's Python package only queries models; this builds small ones from the project's own
text (tests, samples, or a perplexity filter trained on a user's reference corpus). The model
is absolute discounting with back-off (Ney et al. 1994): each seen n-gram gives up a fixed
discount D, and the mass freed goes to the lower order through the back-off weight of its
context, normalized so that every distribution sums to one.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import IO

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter]:
    """counts[k][ngram] for k = 1..order over sentences padded with <s> and </s>."""
    counts = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = [BOS, *sentence, EOS]
        for k in range(1, order + 1):
            for i in range(len(words) - k + 1):
                counts[k][tuple(words[i : i + k])] += 1
    return counts


def write_arpa(
    sentences: Iterable[Sequence[str]], out: IO[str], order: int = 3, discount: float = 0.7
) -> None:
    """Estimate an `order`-gram model from tokenized sentences and write it as ARPA text."""
    if order < 1 or not 0 < discount < 1:
        raise ValueError("order >= 1 and 0 < discount < 1")
    counts = count_ngrams(sentences, order)
    vocabulary = {w for (w,) in counts[1]} | {UNK}
    # Unigrams: discounted relative frequencies, the freed mass shared by <unk>.
    total = sum(c for (w,), c in counts[1].items() if w != BOS)
    prob: dict[tuple[str, ...], float] = {}
    for (w,), c in counts[1].items():
        if w != BOS:
            prob[(w,)] = (c - discount) / total
    prob[(UNK,)] = discount * sum(1 for (w,) in counts[1] if w != BOS) / total
    prob[(BOS,)] = 0.0  # never predicted

    followers: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    for k in range(2, order + 1):
        for ngram in counts[k]:
            followers[ngram[:-1]].append(ngram)
    context_total = {h: sum(counts[len(h) + 1][g] for g in gs) for h, gs in followers.items()}
    for k in range(2, order + 1):
        for ngram, c in counts[k].items():
            prob[ngram] = (c - discount) / context_total[ngram[:-1]]

    backoff: dict[tuple[str, ...], float] = {}

    def lower_prob(ngram: tuple[str, ...]) -> float:
        """P(w | ngram[1:-1]) under the back-off model."""
        if ngram in prob:
            return prob[ngram]
        return backoff.get(ngram[:-1], 1.0) * lower_prob(ngram[1:])

    # Back-off weights order by order: the freed mass over what the lower order gives the
    # words that were not seen after this context.
    for k in range(1, order):
        for h, gs in followers.items():
            if len(h) != k:
                continue
            freed = discount * len(gs) / context_total[h]
            seen_lower = sum(lower_prob(g[1:]) for g in gs)
            backoff[h] = freed / max(1.0 - seen_lower, 1e-12)

    def log10(p: float) -> float:
        return -99.0 if p <= 0 else math.log10(p)

    sizes = [len(vocabulary) + (0 if (BOS,) in counts[1] else 1)] + [
        len(counts[k]) for k in range(2, order + 1)
    ]
    out.write("\\data\\\n")
    for k, size in enumerate(sizes, start=1):
        out.write(f"ngram {k}={size}\n")
    for k in range(1, order + 1):
        out.write(f"\n\\{k}-grams:\n")
        grams = sorted(vocabulary | {BOS}) if k == 1 else sorted(counts[k])
        for g in grams:
            ngram = (g,) if k == 1 else g
            line = f"{log10(prob.get(ngram, 0.0)):.6f}\t{' '.join(ngram)}"
            if k < order:
                line += f"\t{log10(backoff[ngram]) if ngram in backoff else 0.0:.6f}"
            out.write(line + "\n")
    out.write("\n\\end\\\n")
