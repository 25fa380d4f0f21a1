"""What robustness costs: the readers' throughput and peak memory at 1x and 4x input, and the
LaTeX cleaner on real documents.

    .venv/bin/python benchmarks/robust_readers.py [--repeat 3] [--code DIR]

`--code DIR` measures the readers of another checkout (e.g. a `git worktree` of an older
commit) with the same inputs, for a before/after comparison in one run.

- WARC: the real CommonCrawl excerpt of ../shared/fixtures repeated 30 times (16 MB of WARC),
  read by the `warc` reader (framing, warcio per record, resiliparse HTML to text): MB/s of
  raw WARC; then 50x and 200x in a fresh process each, for peak resident memory.
- MediaWiki: the real enwiki excerpt's pages repeated 1x and 4x (6 and 24 MB of XML): peak
  resident memory in a fresh process each.
- LaTeX: the 153 real documents of tests/data/latex/texlive-papers.tar through the arXiv
  reader: seconds per document (median, p99, max) and the largest output / source ratio.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
WARC = FIXTURES / "commoncrawl" / "resiliparse-CC-MAIN-2020-34-excerpt.warc.gz"
WIKI = (
    FIXTURES / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
)

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec,
# so a child of a large benchmark process would report the parent's size.
_PEAK = """
import re, sys
sys.path.insert(0, sys.argv[1])
from pipelines.sources import READERS, read_file
records = sum(1 for _ in read_file(sys.argv[2], "s", READERS[sys.argv[3]]))
with open("/proc/self/status") as status:
    print(records, int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1)) // 1024)
"""


def peak_memory(code: Path, path: str, fmt: str) -> tuple[int, int]:
    """(records, peak resident MB) of reading one file in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(code), path, fmt],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def warc(code: Path, repeat: int, folder: Path) -> None:
    from pipelines.sources import READERS, read_file

    data = WARC.read_bytes()
    path = folder / "bench.warc.gz"
    path.write_bytes(data * 30)
    raw = len(gzip.decompress(data)) * 30
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        records = sum(1 for _ in read_file(str(path), "s", READERS["warc"]))
        times.append(time.perf_counter() - started)
    best = statistics.median(times)
    print(f"warc: {records} records, {raw / 1e6:.1f} MB raw, {raw / best / 1e6:.1f} MB/s")
    for times_input in (50, 200):
        big = folder / f"x{times_input}.warc.gz"
        big.write_bytes(data * times_input)
        count, peak = peak_memory(code, str(big), "warc")
        size = len(gzip.decompress(data)) * times_input / 1e6
        print(f"warc {times_input}x ({size:.0f} MB raw): {count} records, peak {peak} MB")


def mediawiki(code: Path, folder: Path) -> None:
    dump = bz2.decompress(WIKI.read_bytes())
    first, last = dump.index(b"<page>"), dump.rindex(b"</page>") + len(b"</page>")
    for times_input in (1, 4):
        path = folder / f"x{times_input}-pages-articles.xml"
        path.write_bytes(dump[:first] + dump[first:last] * times_input + dump[last:])
        count, peak = peak_memory(code, str(path), "mediawiki")
        size = path.stat().st_size / 1e6
        print(f"mediawiki {times_input}x ({size:.0f} MB): {count} records, peak {peak} MB")


def latex() -> None:
    from tests.data.latex.corpus import source_sizes, timed_records

    sizes = source_sizes()
    seconds, ratios = [], []
    for took, record in timed_records():
        seconds.append(took)
        if isinstance(record, dict):
            ratios.append(len(record["text"]) / sizes[record["origin"]])
    seconds.sort()
    print(
        f"latex: {len(ratios)} of {len(seconds)} documents kept; seconds per document: median "
        f"{statistics.median(seconds):.4f}, p99 {seconds[int(0.99 * len(seconds))]:.3f}, "
        f"max {seconds[-1]:.3f}; largest output/source {max(ratios):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose readers to run")
    args = parser.parse_args()
    code = args.code.resolve()
    sys.path.insert(0, str(code))
    print(f"readers of {code}")
    with tempfile.TemporaryDirectory() as tmp:
        if WARC.exists() and WIKI.exists():
            warc(code, args.repeat, Path(tmp))
            mediawiki(code, Path(tmp))
        else:
            print("../shared/fixtures is not here: WARC and MediaWiki skipped")
        if (code / "tests" / "data" / "latex").is_dir():
            latex()
        else:
            print("latex: that checkout has no LaTeX corpus, skipped")


if __name__ == "__main__":
    main()
