"""Throughput of each filter, and of language ID + quality filtering together, side by side
with datatrove's equivalent filters on the same documents, with the agreement rate.

    .venv/bin/python benchmarks/filter_speed.py [--repeat 3] [--copies 1]

Input: real text from ../shared/fixtures (C4 pages, Wikipedia articles, Gutenberg books,
StackExchange posts, the CommonCrawl WARC's pages), or the project's samples without it.
Both sides run in this one process on one core, on documents already in memory: this measures
the filters, not I/O or the runner. datatrove (with spaCy, its English word tokenizer) comes
from the `bench` extra: `pip install -e '.[bench]'`.

Pairs: LanguageFilter / lid.176 with our policy (en, score >= 0.5 as in CCNet),
GopherQualityFilter / gopher_quality, GopherRepetitionFilter / gopher_repetition,
C4QualityFilter / the C4 rules; "whole stage" runs the four in that order on both sides.
CCNet's perplexity filter and the reference classifier are timed too (ours only).
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filters.c4 import C4Config, C4Rules
from filters.gopher import (
    GopherQualityConfig,
    GopherRepetitionConfig,
    gopher_quality,
    gopher_repetition,
)
from filters.langid import LanguageIdentifier, language_decision
from filters.perplexity import PerplexityScorer, cutoffs_from_quantiles, perplexity_verdict
from filters.quality_classifier import (
    NEGATIVE,
    POSITIVE,
    ClassifierTrainingConfig,
    ReferenceClassifier,
    classifier_text,
    classifier_verdict,
    train_fasttext,
)
from pipelines.lid_model import fetch_lid_model
from pipelines.sources import READERS, read_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
BATCH = 512  # the langid stage's batch size


def load_texts() -> tuple[list[str], str]:
    """Real documents from the shared fixtures (or the samples), and a description."""
    inputs = (
        [
            ("c4", f"{FIXTURES}/c4/*.json.gz"),
            ("mediawiki", f"{FIXTURES}/wikipedia/*.bz2"),
            ("gutenberg", f"{FIXTURES}/gutenberg/raw/*.txt"),
            ("stackexchange", f"{FIXTURES}/stackexchange/*.xml"),
            ("warc", f"{FIXTURES}/commoncrawl/resiliparse-*.warc.gz"),
        ]
        if FIXTURES.is_dir()
        else [
            ("wet", f"{ROOT}/samples/commoncrawl/*.wet.gz"),
            ("c4", f"{ROOT}/samples/c4/*.json.gz"),
            ("mediawiki", f"{ROOT}/samples/wikipedia/*.bz2"),
            ("gutenberg", f"{ROOT}/samples/gutenberg/*.txt"),
        ]
    )
    texts = []
    for fmt, pattern in inputs:
        for path in sorted(glob.glob(pattern)):
            records = list(read_file(path, "bench", READERS[fmt]))
            texts += [r["text"] for r in records if isinstance(r, dict) and r.get("text")]
    where = "../shared/fixtures" if FIXTURES.is_dir() else "samples/"
    return texts, where


def model_filters(texts: list[str], workdir: str) -> dict[str, Callable[[list[str]], list[bool]]]:
    """The two model-based filters, which datatrove has no equivalent of: CCNet's perplexity
    (the sample KenLM model; cut-offs at the 30th/60th percentile of these documents) and a
    reference classifier trained here on a tenth of the documents (every fifth vs the rest)."""
    scorer = PerplexityScorer(
        str(ROOT / "samples" / "lm" / "wikipedia.arpa"),
        str(ROOT / "samples" / "lm" / "wikipedia.sp.model"),
    )
    train = Path(workdir) / "train.txt"
    train.write_text(
        "".join(
            f"{POSITIVE if i % 5 == 0 else NEGATIVE} {classifier_text(t)}\n"
            for i, t in enumerate(texts[::10])
        )
    )
    config = ClassifierTrainingConfig(positives=["x"], negatives=["y"])
    train_fasttext(str(train), config, str(Path(workdir) / "model.bin"))
    classifier = ReferenceClassifier([str(Path(workdir) / "model.bin")])

    def perplexity(batch: list[str]) -> list[bool]:
        scores = scorer.score_batch(batch)
        finite = sorted(p for p in scores if p != float("inf"))
        cutoffs = cutoffs_from_quantiles(finite, (30.0, 60.0)) or (0.0, 0.0)
        return [perplexity_verdict(p, cutoffs, ["head", "middle"]).keep for p in scores]

    def reference(batch: list[str]) -> list[bool]:
        return [
            classifier_verdict(p, 0.5).keep
            for start in range(0, len(batch), BATCH)
            for p in classifier.score_batch(batch[start : start + BATCH])
        ]

    return {"perplexity": perplexity, "reference_classifier": reference}


def ours(lid_path: str) -> dict[str, Callable[[list[str]], list[bool]]]:
    identifier = LanguageIdentifier(lid_path)
    quality, repetition = GopherQualityConfig(), GopherRepetitionConfig()
    c4 = C4Rules(C4Config())

    def langid(texts: list[str]) -> list[bool]:
        keep = []
        for start in range(0, len(texts), BATCH):
            for lang, score in identifier.predict(texts[start : start + BATCH]):
                keep.append(language_decision(lang, score, ["en"], 0.5).keep)
        return keep

    def stage(texts: list[str]) -> list[bool]:
        keep = langid(texts)
        out = []
        for text, ok in zip(texts, keep, strict=True):
            if ok:
                ok = gopher_quality(text, quality).keep and gopher_repetition(text, repetition).keep
            out.append(ok and c4(text).keep)
        return out

    return {
        "langid": langid,
        "gopher_quality": lambda texts: [gopher_quality(t, quality).keep for t in texts],
        "gopher_repetition": lambda texts: [gopher_repetition(t, repetition).keep for t in texts],
        "c4": lambda texts: [c4(t).keep for t in texts],
        "whole stage": stage,
    }


def datatrove(lid_path: str) -> dict[str, Callable[[list[str]], list[bool]]]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from peers import datatrove_here

    datatrove_here(lid_path)  # the same local lid.176, no download
    language = LanguageFilter(languages=["en"], language_threshold=0.5)
    filters = {
        "langid": language,
        "gopher_quality": GopherQualityFilter(),
        "gopher_repetition": GopherRepetitionFilter(),
        "c4": C4QualityFilter(),
    }

    def decide(f, doc) -> bool:
        result = f.filter(doc)
        return result if isinstance(result, bool) else bool(result[0])

    def run(name: str) -> Callable[[list[str]], list[bool]]:
        def go(texts: list[str]) -> list[bool]:
            docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
            return [decide(filters[name], d) for d in docs]

        return go

    def stage(texts: list[str]) -> list[bool]:
        out = []
        for i, text in enumerate(texts):
            doc = Document(text=text, id=str(i))
            order = ("langid", "gopher_quality", "gopher_repetition", "c4")
            out.append(all(decide(filters[n], doc) for n in order))
        return out

    return {**{name: run(name) for name in filters}, "whole stage": stage}


def timed(fn: Callable[[list[str]], list[bool]], texts: list[str], repeat: int):
    seconds, decisions = [], None
    for _ in range(repeat):
        batch = copy.copy(texts)
        started = time.perf_counter()
        decisions = fn(batch)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="repeat the corpus N times")
    args = parser.parse_args()
    texts, where = load_texts()
    texts = texts * args.copies
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    lid_path = os.environ.get("LID_MODEL") or str(fetch_lid_model())
    mine = ours(lid_path)
    workdir = tempfile.mkdtemp()
    mine.update(model_filters(texts, workdir))
    try:
        theirs = datatrove(lid_path)
    except ImportError:
        theirs = {}
        print("datatrove is not installed (pip install -e '.[bench]'): ours only")
    print(f"{len(texts)} documents, {megabytes:.1f} MB of text from {where}; one core, "
          f"median of {args.repeat}")  # fmt: skip
    print()
    print("| filter | ours docs/s | ours MB/s | datatrove docs/s | datatrove MB/s | speed-up "
          "| agreement | kept (ours / datatrove) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name, fn in mine.items():
        seconds, keep = timed(fn, texts, args.repeat)
        row = [name, f"{len(texts) / seconds:,.0f}", f"{megabytes / seconds:.2f}"]
        if name in theirs:
            their_seconds, their_keep = timed(theirs[name], texts, args.repeat)
            agree = sum(a == b for a, b in zip(keep, their_keep, strict=True)) / len(texts)
            row += [
                f"{len(texts) / their_seconds:,.0f}",
                f"{megabytes / their_seconds:.2f}",
                f"{their_seconds / seconds:.1f}x",
                f"{agree:.1%}",
                f"{sum(keep)} / {sum(their_keep)}",
            ]
            results[name] = {"seconds": seconds, "datatrove_seconds": their_seconds,
                             "agreement": agree}  # fmt: skip
        else:
            row += ["–"] * 4 + [str(sum(keep))]
        print("| " + " | ".join(row) + " |")
    out = os.environ.get("BENCH_JSON")
    if out:
        Path(out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
