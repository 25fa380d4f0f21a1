"""Extraction throughput per source format on real public samples and on our own samples.

    .venv/bin/python benchmarks/extract.py [--repeat 3]

One process, so figures are per core: MB of input file read per second (as stored on disk,
compressed where the format is), documents per second, and MB of text produced per second.
Real samples come from ../shared/fixtures (skipped when absent).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import statistics
import time
from pathlib import Path

from pipelines.sources import ASSEMBLERS, READERS, Partial, read_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
SAMPLES = ROOT / "samples"

CASES = [
    ("wet", "real", FIXTURES / "commoncrawl", "whirlwind.warc.wet.gz"),
    ("warc", "real", FIXTURES / "commoncrawl", "*.warc.gz"),
    ("c4", "real", FIXTURES / "c4", "*.json.gz"),
    ("mediawiki", "real", FIXTURES / "wikipedia", "*.bz2"),
    ("gutenberg", "real", FIXTURES / "gutenberg" / "raw", "*.txt"),
    ("arxiv", "real", FIXTURES / "arxiv", "*"),
    ("stackexchange", "real", FIXTURES / "stackexchange", "*.xml"),
    ("wet", "sample", SAMPLES / "commoncrawl", "*.wet.gz"),
    ("c4", "sample", SAMPLES / "c4", "*.json.gz"),
    ("mediawiki", "sample", SAMPLES / "wikipedia", "*.bz2"),
    ("gutenberg", "sample", SAMPLES / "gutenberg", "*.txt"),
    ("arxiv", "sample", SAMPLES / "arxiv", "*.gz"),
    ("stackexchange", "sample", SAMPLES / "stackexchange", "*/Posts.xml"),
]


DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress}


def run(fmt: str, files: list[Path]) -> tuple[float, int, int]:
    """(seconds, documents, text bytes) for reading every file, threads assembled."""
    started = time.perf_counter()
    docs, text_bytes, groups = 0, 0, {}
    for path in files:
        for record in read_file(str(path), "bench", READERS[fmt]):
            if isinstance(record, Partial):
                groups.setdefault(record.key, []).append(record.value)
            elif isinstance(record, dict):
                docs += 1
                text_bytes += len(record["text"].encode())
    for key, parts in groups.items():
        for record in ASSEMBLERS[fmt]("bench", key, parts):
            if isinstance(record, dict):
                docs += 1
                text_bytes += len(record["text"].encode())
    return time.perf_counter() - started, docs, text_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'format':<14} {'data':<7} {'input MB':>9} {'MB/s in':>8} {'docs/s':>8} "
        f"{'MB/s text':>9} {'MB unpacked':>11}"
    )
    for fmt, kind, folder, pattern in CASES:
        files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix != ".md")
        if not files:
            continue
        size = sum(p.stat().st_size for p in files)
        raw = sum(len(DECOMPRESS.get(p.suffix, bytes)(p.read_bytes())) for p in files)
        runs = [run(fmt, files) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        _, docs, text = runs[0]
        print(
            f"{fmt:<14} {kind:<7} {size / 1e6:>9.2f} {size / 1e6 / seconds:>8.2f} "
            f"{docs / seconds:>8.0f} {text / 1e6 / seconds:>9.2f} {raw / 1e6:>11.2f}"
        )


if __name__ == "__main__":
    main()
