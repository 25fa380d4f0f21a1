"""`llama-recipe explain-filters`: for a sample of one source's documents, every score and
every filter's verdict, and the first rule that would drop each document. Runs the same pure
filter functions as the `quality` stage, without Beam, so thresholds can be tuned quickly."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters.chain import FilterChain
from filters.langid import LanguageIdentifier, language_decision
from filters.perplexity import PERPLEXITY_CUTOFFS, PerplexityConfig, cutoffs_from_quantiles
from filters.quality_classifier import with_trained_classifier
from pipelines.assets import local_copy, model_location, resolve_filters
from pipelines.document import unit_hash
from pipelines.errors import UserError
from pipelines.lid_model import resolve_model_path
from pipelines.stage import StageContext
from pipelines.store import match_files


@dataclass
class Explained:
    doc: dict[str, Any]
    language: tuple[str, float]
    langid_reason: str | None
    scores: dict[str, float | None]  # each model score by its column
    steps: list[tuple[str, Any]]  # (filter name, Verdict) for every filter, in order

    @property
    def first_drop(self) -> str | None:
        if self.langid_reason:
            return self.langid_reason
        for name, verdict in self.steps:
            if not verdict.keep:
                return f"quality:{name}.{verdict.rule}"
        return None


def sample_documents(ctx: StageContext, source: str, n: int, seed: int) -> list[dict[str, Any]]:
    """A deterministic sample of n extracted documents (the n smallest hashes of their ids)."""
    files = match_files(ctx.store.parts("extract", source))
    if not files:
        raise UserError(f"explain-filters: source {source!r} has no extracted documents")
    heap: list[tuple[float, str, dict[str, Any]]] = []
    for path in files:
        with FileSystems.open(path) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=1024):
                for doc in batch.to_pylist():
                    key = (-unit_hash(seed, "explain", doc["id"]), doc["id"], doc)
                    if len(heap) < n:
                        heapq.heappush(heap, key)
                    elif key > heap[0]:
                        heapq.heapreplace(heap, key)
    return [doc for _, _, doc in sorted(heap, key=lambda k: (-k[0], k[1]))]


def explain(ctx: StageContext, source: str, n: int, seed: int = 0) -> tuple[list[Explained], Any]:
    """Explained documents and the perplexity cut-offs used (None if no perplexity filter)."""
    if source not in ctx.recipe.sources:
        raise UserError(
            f"explain-filters: no source {source!r} in the recipe "
            f"(sources: {', '.join(ctx.recipe.sources)})"
        )
    docs = sample_documents(ctx, source, n, seed)
    spec = ctx.recipe.sources[source]
    configured = ctx.recipe.langid.model
    lid_path = (
        local_copy(model_location(ctx, configured, "langid.model"))
        if configured
        else resolve_model_path(None)
    )
    texts = [d["text"] or "" for d in docs]
    languages = LanguageIdentifier(lid_path).predict(texts)
    if ctx.recipe.uses_trained_classifier(source) and not ctx.store.read_manifest(
        "train-classifier"
    ):
        raise UserError(
            "explain-filters: the reference classifier is not trained yet "
            "(run `llama-recipe train-quality-classifier RECIPE`)"
        )
    configs, trained = resolve_filters(ctx, source)
    configs = with_trained_classifier(configs, trained)
    chain = FilterChain(configs, local_copy)
    columns = chain.score_batch(texts, [d["id"] for d in docs])
    scores = [{c: values[i] for c, values in columns.items()} for i in range(len(docs))]
    cutoffs = None
    perplexity = next((c for c in configs if isinstance(c, PerplexityConfig)), None)
    if perplexity is not None:
        manifest = ctx.store.read_manifest("quality", source) or {}
        if perplexity.cutoffs is not None:
            cutoffs = tuple(perplexity.cutoffs)
        elif manifest.get("perplexity_cutoffs"):
            cutoffs = tuple(manifest["perplexity_cutoffs"])  # the whole source's, from the build
        else:  # no build yet: percentiles of this sample
            values = sorted(s["perplexity"] for s in scores if s["perplexity"] is not None)
            cutoffs = cutoffs_from_quantiles(values, perplexity.percentiles)
    out = []
    for doc, text, (lang, score), s in zip(docs, texts, languages, scores, strict=True):
        language = language_decision(lang, score, spec.languages, spec.min_language_score)
        reason = None if language.keep else f"langid:{language.rule}"
        scored = {**doc, "text": text, **s, PERPLEXITY_CUTOFFS: cutoffs}
        steps = [(name, v) for name, v, _ in chain.verdicts(scored, stop_at_first=False)]
        out.append(Explained(doc, (lang, score), reason, s, steps))
    return out, cutoffs


def render(explained: list[Explained], cutoffs: Any) -> str:
    lines = []
    for e in explained:
        where = e.doc.get("url") or e.doc.get("title") or e.doc.get("origin")
        lines.append(f"{e.doc['id']}  {where}")
        lang, score = e.language
        lines.append(
            f"  langid      {lang} {score:.3f}"
            + (f"  -> {e.langid_reason}" if e.langid_reason else "")
        )
        perplexity, quality_score = e.scores.get("perplexity"), e.scores.get("quality_score")
        if perplexity is not None:
            lines.append(f"  perplexity  {perplexity:.1f}  (cut-offs {_fmt(cutoffs)})")
        if quality_score is not None:
            lines.append(f"  classifier  {quality_score:.3f}")
        for name, verdict in e.steps:
            if verdict.keep:
                lines.append(f"  {name:<21} pass")
            else:
                lines.append(f"  {name:<21} FAIL {verdict.rule}: {verdict.detail}")
        decision = e.first_drop
        lines.append(f"  => {'dropped by ' + decision if decision else 'kept'}")
        lines.append("")
    counts = Counter(e.first_drop or "kept" for e in explained)
    lines.append(
        f"{len(explained)} documents: " + ", ".join(f"{k} {v}" for k, v in counts.most_common())
    )
    return "\n".join(lines)


def _fmt(cutoffs: Any) -> str:
    return "-" if not cutoffs else f"head < {cutoffs[0]:.1f} <= middle < {cutoffs[1]:.1f} <= tail"


def explain_json(explained: list[Explained]) -> str:
    """One JSON object per document, for scripts."""
    return "\n".join(
        json.dumps(
            {
                "id": e.doc["id"],
                "url": e.doc.get("url"),
                "language": e.language[0],
                "language_score": round(e.language[1], 4),
                "perplexity": e.scores.get("perplexity"),
                "quality_score": e.scores.get("quality_score"),
                "filters": [
                    {
                        "filter": name,
                        "keep": v.keep,
                        "rule": v.rule,
                        "value": v.value,
                        "threshold": v.threshold,
                    }  # fmt: skip
                    for name, v in e.steps
                ],
                "dropped_by": e.first_drop,
            }
        )
        for e in explained
    )
