"""One Wikipedia dump file through the extract stage, on one worker and on several.

    .venv/bin/python benchmarks/wikipedia.py [--megabytes 60] [--workers 1 2] [--repeat 3]

Builds one `pages-articles` .xml.bz2 of about `--megabytes` MB of XML from the real dump
excerpt in ../shared/fixtures/wikipedia (its pages repeated under fresh ids and titles),
then runs the extract stage alone (real Beam, FnApiRunner in multi_processing mode, no
Prefect) with each number of workers, each run in a fresh workdir. Prints MB/s of the bz2
file and of its XML, the speed-up over the first worker count, and the wall seconds (the
median of the repetitions, the best in brackets); the kept and rejected counts of every run
must agree.

On a shared machine other work takes cores from the workers, so it also measures the two
phases outside Beam in CPU seconds: the scan, which one worker runs for the whole file, and
the render, which the workers share; (scan + render) / (scan + render / workers) is what
that many workers gain on idle cores, pipeline start and finish aside (a little more where
the scan's decompressing overlaps its parsing).
"""

from __future__ import annotations

import argparse
import bz2
import re
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.recipe import ExtractConfig, Recipe
from pipelines.sources import SPLIT_READERS, read_or_scan
from pipelines.sources.base import render_batch
from pipelines.stages import STAGE_CLASSES, StageContext, run_stage

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "wikipedia"
_PAGE_RE = re.compile(rb"  <page>.*?</page>\n", re.DOTALL)


def build_dump(target: Path, megabytes: float) -> tuple[int, int]:
    """Write a dump of about `megabytes` MB of XML to `target`: the fixture's siteinfo, its
    pages over and over (each copy with its own page id and a numbered title, so every
    document is new), then its end. Returns (bz2 bytes, XML bytes)."""
    source = next(FIXTURES.glob("*.bz2"))
    xml = bz2.decompress(source.read_bytes())
    pages = _PAGE_RE.findall(xml)
    head, tail = xml[: xml.index(pages[0])], xml[xml.rindex(pages[-1]) + len(pages[-1]) :]
    compressor = bz2.BZ2Compressor(9)
    written = len(head)
    with target.open("wb") as out:
        out.write(compressor.compress(head))
        copy, next_id = 0, 1
        while written < megabytes * 1e6:
            copy += 1
            for page in pages:
                page = re.sub(rb"<title>([^<]*)</title>", rb"<title>\1 (%d)</title>" % copy, page)
                page = re.sub(rb"(</ns>\s*<id>)\d+(</id>)", rb"\g<1>%d\2" % next_id, page)
                next_id += 1
                written += len(page)
                out.write(compressor.compress(page))
        out.write(compressor.compress(tail))
        out.write(compressor.flush())
    return target.stat().st_size, written + len(tail)


def extract_once(dump: Path, workers: int) -> tuple[float, dict[str, int]]:
    """(wall seconds, counts) of the extract stage over `dump` with `workers` workers."""
    with tempfile.TemporaryDirectory() as workdir:
        recipe = Recipe(
            name="bench-wikipedia",
            workdir=workdir,
            runner={
                "name": "FnApiRunner",
                "options": {
                    "direct_num_workers": workers,
                    "direct_running_mode": "multi_processing",
                    "default_sdk_harness_log_level": "WARNING",
                },
            },
            sources={"wikipedia": {"format": "mediawiki", "inputs": [str(dump)], "weight": 1}},
            mixture={"total_tokens": 1000},
        )
        ctx = StageContext.from_recipe(recipe)
        started = time.perf_counter()
        (result,) = run_stage(STAGE_CLASSES["extract"](), ctx, ["wikipedia"])
        return time.perf_counter() - started, result.manifest["counts"]


def phase_cpu_seconds(dump: Path) -> tuple[float, float]:
    """CPU seconds of (scan, render) of the dump, outside Beam, in this process."""
    limits, render = ExtractConfig(), SPLIT_READERS["mediawiki"][1]
    started = time.process_time()
    batches = [
        b for b in read_or_scan(str(dump), "bench", "mediawiki", limits) if isinstance(b, list)
    ]
    scanned = time.process_time()
    for batch in batches:
        for _ in render_batch(render, batch, limits):
            pass
    return scanned - started, time.process_time() - scanned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=60, help="of XML in the dump")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"{FIXTURES} is missing: this benchmark needs the shared fixtures")
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "enwiki-bench-pages-articles.xml.bz2"
        bz2_bytes, xml_bytes = build_dump(dump, args.megabytes)
        print(f"dump: {bz2_bytes / 1e6:.1f} MB bz2, {xml_bytes / 1e6:.1f} MB XML")
        times: dict[int, list[float]] = {n: [] for n in args.workers}
        counts = []
        # Interleaved, so that a burst of load on a shared machine hits every worker count.
        for _ in range(args.repeat):
            for workers in args.workers:
                seconds, count = extract_once(dump, workers)
                times[workers].append(seconds)
                counts.append(count)
        assert all(count == counts[0] for count in counts), counts
        scan_s, render_s = phase_cpu_seconds(dump)
    print(f"counts: {counts[0]}")
    print(f"{'workers':>7} {'seconds':>16} {'bz2 MB/s':>9} {'XML MB/s':>9} {'speed-up':>9}")
    first = statistics.median(times[args.workers[0]])
    for workers in args.workers:
        median = statistics.median(times[workers])
        print(
            f"{workers:>7} {median:>7.1f} ({min(times[workers]):>6.1f}) "
            f"{bz2_bytes / 1e6 / median:>9.2f} {xml_bytes / 1e6 / median:>9.2f} "
            f"{first / median:>8.2f}x"
        )
    print(f"CPU seconds outside Beam: scan {scan_s:.1f} (both its threads), render {render_s:.1f}")
    for workers in args.workers[1:]:
        bound = (scan_s + render_s) / (scan_s + render_s / workers)
        print(f"  {workers} workers on idle cores: about {bound:.2f}x one worker, start aside")


if __name__ == "__main__":
    main()
