"""A source's quality filters as one chain: model scores first (perplexity, classifier score),
then each filter in the recipe's order; the first that fails drops the document.

Pure Python over documents: the `quality` stage wraps it in Beam, `explain-filters` calls it
directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from filters.base import KEEP, Document, FilterConfig, LocalFile, Scorer, Verdict, as_is


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
    """`configs` are the source's filters with their files found; `local_file` gives a local
    copy of a file they name (a worker's copy of a URI's file)."""

    def __init__(self, configs: Sequence[FilterConfig], local_file: LocalFile = as_is):
        self.names = [config.name for config in configs]
        self.filters = [config.build(local_file) for config in configs]
        self.scorers = [f for f in self.filters if isinstance(f, Scorer)]

    def load_models(self) -> None:
        """Load the models of the filters that score documents."""
        for scorer in self.scorers:
            scorer.load()

    def score_batch(
        self, texts: Sequence[str], ids: Sequence[str] | None = None
    ) -> dict[str, list[float | None]]:
        """Each scoring filter's column of scores; `ids` let a cross-fitted classifier score
        its training documents with the model that did not see them."""
        ids = ids if ids is not None else [""] * len(texts)
        return {s.score_column: s.score_batch(texts, ids) for s in self.scorers}

    def verdicts(self, doc: Document, stop_at_first: bool = True) -> list[tuple[str, Verdict, str]]:
        """(filter name, verdict, text after it) for each filter in order, up to the first
        drop (or through all of them, for explaining)."""
        out = []
        for name, check in zip(self.names, self.filters, strict=True):
            verdict = check(doc)
            if verdict.keep and verdict.text is not None:
                doc = {**doc, "text": verdict.text}
            out.append((name, verdict, doc["text"]))
            if stop_at_first and not verdict.keep:
                break
        return out

    def decide(self, doc: Document) -> Decision:
        steps = self.verdicts(doc)
        if steps and not steps[-1][1].keep:
            name, verdict, _ = steps[-1]
            return Decision(verdict, name, doc["text"])
        return Decision(KEEP, None, steps[-1][2] if steps else doc["text"])
