"""How fast each stage goes on one core: CPU seconds per GB of document text, as data.

Beam-free, so `llama-recipe plan` can turn a text size into core-hours by stage without
loading the pipelines. The rates are per GB of *extracted document text* (UTF-8), whatever
the stage reads, so one size per source prices every stage; `extract` has one rate per input
format because the readers differ most (a WARC page needs HTML extraction, a WET record is
already text). Replace a placeholder by a measured number (and flip `measured`) as soon as a
benchmark gives one; `MEASURED_ON` says where the measured ones come from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    machine: str
    date: str
    command: str  # the benchmark that gave the measured rates
    cores: int  # each process pinned to this many cores while timed

    def describe(self) -> str:
        cores = "one core" if self.cores == 1 else f"{self.cores} cores"
        return f"{cores} of {self.machine} ({self.date}, {self.command})"


MEASURED_ON = Measurement(
    machine="a 2-core x86 machine",
    date="2026-11-29",
    command="benchmarks/commoncrawl.py",
    cores=1,
)


@dataclass(frozen=True)
class Rate:
    stage: str
    seconds_per_gb: float  # CPU seconds on one core per GB of extracted text
    format: str | None = None  # an input format (recipe SourceFormat); None: every format
    measured: bool = False  # False: a placeholder, an educated guess to be replaced
    note: str = ""


# The one table. Rows marked PLACEHOLDER (measured=False) are guesses, not measurements:
# replace each with a benchmark's number and set measured=True. Measured rows name their
# benchmark in the note; extract of the formats other than warc comes from the real fixtures
# (`benchmarks/extract.py`, 2026-11-27, 1,000 C4 pages to 206 Wikipedia pages: small inputs,
# so per-file overhead is in the number).
RATES: tuple[Rate, ...] = (
    # extract: one rate per reader
    Rate("extract", 280, "warc", True, "commoncrawl.py: 315 MB raw WARC -> 78 MB text, 21.8 s"),
    Rate("extract", 57, "wet", True, "extract.py: 17.4 MB/s of text out"),
    Rate("extract", 7, "c4", True, "extract.py: 136.5 MB/s of text out"),
    Rate("extract", 625, "mediawiki", True, "extract.py: 1.6 MB/s of text out (wikitext)"),
    Rate("extract", 8, "gutenberg", True, "extract.py: 120 MB/s of text out"),
    Rate("extract", 8, "books-text"),  # PLACEHOLDER: as gutenberg (plain text files)
    Rate("extract", 72, "arxiv", True, "extract.py: 13.8 MB/s of text out (LaTeX)"),
    Rate("extract", 55, "stackexchange", True, "extract.py: 18.2 MB/s of text out"),
    Rate("extract", 100, "github"),  # PLACEHOLDER
    Rate("extract", 10, "jsonl"),  # PLACEHOLDER: as c4 (JSON lines)
    # the stages after it read text, whatever the format it came from
    Rate("langid", 68, measured=True, note="commoncrawl.py: 78 MB of text in 5.3 s (lid.176)"),
    Rate("train-classifier", 20),  # PLACEHOLDER
    Rate(
        "quality",
        262,
        measured=True,
        note="commoncrawl.py: Gopher + C4 rules on 40 MB in 10.5 s (no perplexity, classifier)",
    ),
    Rate("dedup", 300, measured=True, note="stage_memory.py 4x: 77 MB of text in 23.1 s"),
    Rate(
        "decontaminate",
        87,
        measured=True,
        note="decontamination.py 4x: 79.7 MB of text in 6.9 CPU s (353 evaluation examples)",
    ),
    Rate("train-tokenizer", 20),  # PLACEHOLDER: it trains on a bounded sample of the text
    Rate("tokenize", 230, measured=True, note="stage_memory.py 4x: 46 MB of text in 10.6 s"),
    Rate("mix", 63, measured=True, note="stage_memory.py 4x: 31.5 MB of text in 2.0 s"),
)


def rate_for(stage: str, source_format: str) -> Rate:
    """The rate of `stage` over text from a source of `source_format`: the format's own row if the
    table has one, else the stage's row for every format; KeyError when it has neither."""
    for wanted in (source_format, None):
        for rate in RATES:
            if rate.stage == stage and rate.format == wanted:
                return rate
    raise KeyError(f"no rate for stage {stage!r} over {source_format!r} text")
