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
# replace each with a benchmark's number and set measured=True.
RATES: tuple[Rate, ...] = (
    # extract: one rate per reader
    Rate("extract", 282, "warc", True, "315 MB of raw WARC gave 78 MB of text in 22 CPU s"),
    Rate("extract", 100, "wet"),  # PLACEHOLDER
    Rate("extract", 100, "c4"),  # PLACEHOLDER
    Rate("extract", 1100, "mediawiki", note="0.9 MB/s of bz2, text ~1/4 of it"),  # PLACEHOLDER
    Rate("extract", 100, "gutenberg"),  # PLACEHOLDER
    Rate("extract", 100, "books-text"),  # PLACEHOLDER
    Rate("extract", 100, "arxiv"),  # PLACEHOLDER
    Rate("extract", 100, "stackexchange"),  # PLACEHOLDER
    Rate("extract", 100, "github"),  # PLACEHOLDER
    Rate("extract", 100, "jsonl"),  # PLACEHOLDER
    # the stages after it read text, whatever the format it came from
    Rate("langid", 70, measured=True, note="fastText lid.176"),
    Rate("train-classifier", 20),  # PLACEHOLDER
    Rate("quality", 320, measured=True, note="Gopher + C4 rules, without perplexity or classifier"),
    Rate("dedup", 130),  # PLACEHOLDER
    Rate("train-tokenizer", 20),  # PLACEHOLDER
    Rate("tokenize", 60),  # PLACEHOLDER
    Rate("mix", 20),  # PLACEHOLDER
)


def rate_for(stage: str, source_format: str) -> Rate:
    """The rate of `stage` over text from a source of `source_format`: the format's own row if the
    table has one, else the stage's row for every format; KeyError when it has neither."""
    for wanted in (source_format, None):
        for rate in RATES:
            if rate.stage == stage and rate.format == wanted:
                return rate
    raise KeyError(f"no rate for stage {stage!r} over {source_format!r} text")
